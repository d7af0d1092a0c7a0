"""Shared fixtures: a real SQLite file in a temporary data folder, migrated to head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.database import open_database
from core.projects import create_project
from core.settings import Settings
from db.engine import session_scope

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings pointing at a fresh data folder with a SQLite file inside."""
    return Settings.resolve(db_url=f"sqlite:///{tmp_path / 'tagrack.db'}", data_dir=tmp_path / "data")


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    """A migrated engine on the fixture's SQLite file."""
    eng = open_database(settings)
    yield eng
    eng.dispose()


@pytest.fixture
def project_id(engine: Engine) -> int:
    """An empty project with the nine clothing labels."""
    with session_scope(engine) as session:
        return create_project(session, "Test project").id


def shared_data(name: str) -> Path:
    """A folder of ../shared/data, or a skip with the reason when it is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent (the shared data folder beside the checkout)")
    return path
