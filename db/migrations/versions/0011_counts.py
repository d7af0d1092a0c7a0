"""Counts kept on write: images per (status, split) and boxes per label, maintained by triggers.

Home, Annotate's progress, Train and ``python -m core stats`` show counts that took a
``GROUP BY`` over every image and box (500,000 boxes: 200-400 ms). Triggers on ``image`` and
``box`` append a signed delta row (+1 / -1) to ``count_delta`` in the same transaction as the
write, whatever wrote it (a save, an import, auto-accept, a review decision, a bulk COPY, a
cascade), so the counts are a sum over a few rows and can never drift from the data.

Deltas are appended, never updated in place: a counter row updated by every save would be a
lock every writer queues on (and two saves touching two labels in opposite orders would
deadlock on PostgreSQL). ``db.counts`` folds them back into one row per key now and then.

- ``kind = 'image'``: ``key`` is ``status|split`` (split empty when unassigned);
- ``kind = 'label'``: ``key`` is the label id.

Also ``ix_image_project_status_who_time``: Home's per-person finished counts read it alone
instead of every finished image's row.

No foreign key on ``project_id``: a project's cascade deletes write their -1 rows after the
project row is gone; those rows sum to zero.

Revision ID: 0011_counts
Revises: 0010_model_export
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_counts"
down_revision = "0010_model_export"
branch_labels = None
depends_on = None

_IMAGE_KEY_SQLITE = "{row}.status || '|' || COALESCE({row}.split, '')"

_SQLITE = [
    f"""CREATE TRIGGER trg_count_image_ins AFTER INSERT ON image BEGIN
        INSERT INTO count_delta (project_id, kind, key, n)
        VALUES (NEW.project_id, 'image', {_IMAGE_KEY_SQLITE.format(row="NEW")}, 1); END""",
    f"""CREATE TRIGGER trg_count_image_del AFTER DELETE ON image BEGIN
        INSERT INTO count_delta (project_id, kind, key, n)
        VALUES (OLD.project_id, 'image', {_IMAGE_KEY_SQLITE.format(row="OLD")}, -1); END""",
    f"""CREATE TRIGGER trg_count_image_upd AFTER UPDATE OF status, split, project_id ON image
        WHEN OLD.status IS NOT NEW.status OR OLD.split IS NOT NEW.split OR OLD.project_id IS NOT NEW.project_id
        BEGIN
        INSERT INTO count_delta (project_id, kind, key, n)
        VALUES (OLD.project_id, 'image', {_IMAGE_KEY_SQLITE.format(row="OLD")}, -1);
        INSERT INTO count_delta (project_id, kind, key, n)
        VALUES (NEW.project_id, 'image', {_IMAGE_KEY_SQLITE.format(row="NEW")}, 1); END""",
    """CREATE TRIGGER trg_count_box_ins AFTER INSERT ON box BEGIN
        INSERT INTO count_delta (project_id, kind, key, n)
        SELECT project_id, 'label', CAST(NEW.label_id AS TEXT), 1 FROM label WHERE id = NEW.label_id; END""",
    """CREATE TRIGGER trg_count_box_del AFTER DELETE ON box BEGIN
        INSERT INTO count_delta (project_id, kind, key, n)
        SELECT project_id, 'label', CAST(OLD.label_id AS TEXT), -1 FROM label WHERE id = OLD.label_id; END""",
    """CREATE TRIGGER trg_count_box_upd AFTER UPDATE OF label_id ON box WHEN OLD.label_id IS NOT NEW.label_id BEGIN
        INSERT INTO count_delta (project_id, kind, key, n)
        SELECT project_id, 'label', CAST(OLD.label_id AS TEXT), -1 FROM label WHERE id = OLD.label_id;
        INSERT INTO count_delta (project_id, kind, key, n)
        SELECT project_id, 'label', CAST(NEW.label_id AS TEXT), 1 FROM label WHERE id = NEW.label_id; END""",
]

# PostgreSQL: statement-level triggers over transition tables, so a bulk insert (an import, a
# COPY of 500,000 boxes) writes one delta row per key and statement instead of one per row.
_IMAGE_GROUP = (
    "SELECT project_id, 'image', status || '|' || COALESCE(split, ''), {sign} count(*) FROM {rows} GROUP BY 1, 3"
)
_LABEL_GROUP = (
    "SELECT l.project_id, 'label', r.label_id::text, {sign} count(*) FROM {rows} r "
    "JOIN label l ON l.id = r.label_id GROUP BY 1, 3"
)
_INSERT = "INSERT INTO count_delta (project_id, kind, key, n) "

_POSTGRESQL = [
    f"""CREATE FUNCTION tagrack_count_image_ins() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        {_INSERT}{_IMAGE_GROUP.format(sign="", rows="new_rows")}; RETURN NULL; END $$""",
    f"""CREATE FUNCTION tagrack_count_image_del() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        {_INSERT}{_IMAGE_GROUP.format(sign="-", rows="old_rows")}; RETURN NULL; END $$""",
    f"""CREATE FUNCTION tagrack_count_image_upd() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        {_INSERT}{_IMAGE_GROUP.format(sign="-", rows="(SELECT o.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.status IS DISTINCT FROM n.status OR o.split IS DISTINCT FROM n.split OR o.project_id IS DISTINCT FROM n.project_id) c")};
        {_INSERT}{_IMAGE_GROUP.format(sign="", rows="(SELECT n.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.status IS DISTINCT FROM n.status OR o.split IS DISTINCT FROM n.split OR o.project_id IS DISTINCT FROM n.project_id) c")};
        RETURN NULL; END $$""",
    f"""CREATE FUNCTION tagrack_count_box_ins() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        {_INSERT}{_LABEL_GROUP.format(sign="", rows="new_rows")}; RETURN NULL; END $$""",
    f"""CREATE FUNCTION tagrack_count_box_del() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        {_INSERT}{_LABEL_GROUP.format(sign="-", rows="old_rows")}; RETURN NULL; END $$""",
    f"""CREATE FUNCTION tagrack_count_box_upd() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
        {_INSERT}{_LABEL_GROUP.format(sign="-", rows="(SELECT o.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.label_id <> n.label_id)")};
        {_INSERT}{_LABEL_GROUP.format(sign="", rows="(SELECT n.* FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE o.label_id <> n.label_id)")};
        RETURN NULL; END $$""",
    """CREATE TRIGGER trg_count_image_ins AFTER INSERT ON image REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION tagrack_count_image_ins()""",
    """CREATE TRIGGER trg_count_image_del AFTER DELETE ON image REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION tagrack_count_image_del()""",
    """CREATE TRIGGER trg_count_image_upd AFTER UPDATE ON image REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION tagrack_count_image_upd()""",
    """CREATE TRIGGER trg_count_box_ins AFTER INSERT ON box REFERENCING NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION tagrack_count_box_ins()""",
    """CREATE TRIGGER trg_count_box_del AFTER DELETE ON box REFERENCING OLD TABLE AS old_rows
        FOR EACH STATEMENT EXECUTE FUNCTION tagrack_count_box_del()""",
    """CREATE TRIGGER trg_count_box_upd AFTER UPDATE ON box REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION tagrack_count_box_upd()""",
]

_NAMES = ["image_ins", "image_del", "image_upd", "box_ins", "box_del", "box_upd"]


def upgrade() -> None:
    op.create_table(
        "count_delta",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_count_delta")),
    )
    op.create_index("ix_count_delta_project", "count_delta", ["project_id", "kind", "key", "n"])
    # Home's people panel counts finished images per person (and this week's) from this index alone.
    op.create_index("ix_image_project_status_who_time", "image", ["project_id", "status", "updated_by", "updated_at"])
    bind = op.get_bind()
    for statement in _POSTGRESQL if bind.dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)
    # The counts of the rows already there, as one delta per key.
    op.execute(
        "INSERT INTO count_delta (project_id, kind, key, n) "
        "SELECT project_id, 'image', status || '|' || COALESCE(split, ''), count(*) FROM image GROUP BY 1, 3"
    )
    op.execute(
        "INSERT INTO count_delta (project_id, kind, key, n) "
        "SELECT l.project_id, 'label', CAST(b.label_id AS TEXT), "
        "count(*) FROM box b JOIN label l ON l.id = b.label_id GROUP BY 1, 3"
    )


def downgrade() -> None:
    bind = op.get_bind()
    for name in _NAMES:
        table = "image" if name.startswith("image") else "box"
        if bind.dialect.name == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS trg_count_{name} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS tagrack_count_{name}()")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS trg_count_{name}")
    op.drop_index("ix_image_project_status_who_time", table_name="image")
    op.drop_index("ix_count_delta_project", table_name="count_delta")
    op.drop_table("count_delta")
