"""Migrations: empty to head, models agree with the migrations, older databases upgrade without loss."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from core.database import open_database
from core.settings import Settings
from db.engine import make_engine
from db.migrate import current_revision, head_revision, upgrade
from db.models import Base


def test_empty_database_upgrades_to_head(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    tables = set(inspect(engine).get_table_names())
    for table in ("project", "label", "image", "box", "job", "model_version", "prediction", "review_decision"):
        assert table in tables


def test_models_match_migrations(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree; write a migration: {diff}"


def test_sqlite_pragmas_on_every_connection(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    for _ in range(2):
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
        engine.dispose()


def test_older_revision_with_rows_upgrades_without_loss(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    upgrade(engine, "0001_annotation_core")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO project (id, name, description, attribute_schema, created_at) "
                "VALUES (1, 'Old', '', '{}', '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text("INSERT INTO label (id, project_id, name, colour, \"order\") VALUES (1, 1, 'Shirts', '#ff0000', 0)")
        )
        conn.execute(
            text(
                "INSERT INTO image (id, project_id, sha256, stored_path, display_path, width, height, original_name, "
                "status, split, revision, created_at, updated_at) VALUES "
                "(1, 1, 'abc', 'a.jpg', 'a.jpg', 640, 480, 'a.jpg', 'done', 'train', 3, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO box (id, image_id, label_id, x_min, y_min, x_max, y_max, source, created_by, created_at, "
                "updated_at) VALUES (1, 1, 1, 10.5, 20.25, 300, 400, 'human', 'ann', "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    engine.dispose()

    # What the app does on start: open_database upgrades to head.
    upgraded = open_database(Settings.resolve(db_url=url, data_dir=tmp_path / "data"))
    assert current_revision(upgraded) == head_revision(upgraded)
    with upgraded.connect() as conn:
        image = conn.execute(text("SELECT status, split, revision, width, attributes FROM image WHERE id = 1")).one()
        assert tuple(image[:4]) == ("done", "train", 3, 640)
        assert image.attributes in ("{}", {})
        box = conn.execute(text("SELECT x_min, y_min, x_max, y_max, created_by FROM box WHERE id = 1")).one()
        assert tuple(box) == (10.5, 20.25, 300.0, 400.0, "ann")
        assert conn.execute(text("SELECT name FROM label")).scalar() == "Shirts"


def test_downgrade_and_upgrade_again(tmp_path: Path) -> None:
    from alembic import command

    from db.migrate import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    upgrade(engine)
    command.downgrade(alembic_config(engine), "base")
    assert "image" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert current_revision(engine) == head_revision(engine)


@pytest.mark.both_databases
def test_import_note_added_and_removed_keeping_images(settings: Settings) -> None:
    """0005 adds images.import_note (NULL for existing images) and its downgrade drops it, on both databases."""
    from alembic import command

    from db.migrate import alembic_config

    engine = make_engine(settings.db_url)
    upgrade(engine, "0004_review")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO project (id, name, description, attribute_schema, created_at) "
                "VALUES (1, 'Old', '', '{}', '2026-01-01 00:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO image (id, project_id, sha256, stored_path, display_path, width, height, original_name, "
                "status, split, revision, attributes, created_at, updated_at) VALUES "
                "(1, 1, 'abc', 'a.jpg', 'a.jpg', 640, 480, 'a.jpg', 'new', NULL, 0, '{}', "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
    upgrade(engine)
    with engine.begin() as conn:
        assert conn.execute(text("SELECT import_note FROM image WHERE id = 1")).scalar() is None
        conn.execute(text("UPDATE image SET import_note = 'box 1 (Shirts) left out' WHERE id = 1"))
    command.downgrade(alembic_config(engine), "0004_review")
    columns = {c["name"] for c in inspect(engine).get_columns("image")}
    assert "import_note" not in columns
    with engine.connect() as conn:
        assert conn.execute(text("SELECT original_name, status FROM image WHERE id = 1")).one() == ("a.jpg", "new")
    engine.dispose()
