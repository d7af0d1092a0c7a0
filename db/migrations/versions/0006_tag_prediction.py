"""Model versions get a kind (detector or tags), and tags models' predictions get a table.

Existing model versions are detectors (the only kind before this revision), so the new
column's server default fills them in.

Revision ID: 0006_tag_prediction
Revises: 0005_import_note
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_tag_prediction"
down_revision = "0005_import_note"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum("detector", "tags", name="model_kind", native_enum=False, length=24),
                nullable=False,
                server_default="detector",
            )
        )
    op.create_table(
        "tag_prediction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("probabilities", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["image.id"], name=op.f("fk_tag_prediction_image_id_image"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_version.id"],
            name=op.f("fk_tag_prediction_model_version_id_model_version"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tag_prediction")),
        sa.UniqueConstraint(
            "model_version_id", "image_id", "tag", name=op.f("uq_tag_prediction_model_version_id_image_id_tag")
        ),
    )
    with op.batch_alter_table("tag_prediction", schema=None) as batch_op:
        batch_op.create_index("ix_tag_prediction_image", ["image_id"], unique=False)
        batch_op.create_index(
            "ix_tag_prediction_model_tag_confidence", ["model_version_id", "tag", "confidence"], unique=False
        )


def downgrade() -> None:
    op.drop_table("tag_prediction")
    with op.batch_alter_table("model_version", schema=None) as batch_op:
        batch_op.drop_column("kind")
