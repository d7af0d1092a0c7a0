"""Opening the database the way every entry point does: engine plus migrations."""

from __future__ import annotations

from sqlalchemy import Engine

from core.settings import Settings
from db.engine import make_engine
from db.migrate import current_revision, head_revision, upgrade


def open_database(settings: Settings) -> Engine:
    """Creates the engine and upgrades the schema to the newest revision if needed.

    An older database is upgraded in place by its Alembic migrations; rows are kept.
    """
    engine = make_engine(settings.db_url)
    if current_revision(engine) != head_revision(engine):
        upgrade(engine)
    return engine
