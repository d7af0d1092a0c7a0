"""Shared fixtures: a real database (a SQLite file, or PostgreSQL for tests marked so), migrated to head.

A test module or test marked ``both_databases`` runs twice: on a SQLite file and on a
fresh database of a throwaway PostgreSQL server (:mod:`tests.postgres_server`; skipped
with the reason when PostgreSQL is not installed, which ``.ci/run`` installs).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from core.database import open_database
from core.project.projects import create_project
from core.settings import Settings
from db.engine import session_scope
from tests.postgres_server import PostgresServer, start_server

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("both_databases") and "settings" in metafunc.fixturenames:
        metafunc.parametrize("database", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run; each test gets its own database on it."""
    try:
        server = start_server()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    """Which database the ``settings`` fixture uses: "sqlite" unless the test is marked ``both_databases``."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def settings(tmp_path: Path, database: str, request: pytest.FixtureRequest) -> Settings:
    """Settings pointing at a fresh data folder and a fresh database (a SQLite file inside, or PostgreSQL)."""
    if database == "postgresql":
        url = request.getfixturevalue("postgres_server").new_database()
    else:
        url = f"sqlite:///{tmp_path / 'tagrack.db'}"
    return Settings.resolve(db_url=url, data_dir=tmp_path / "data")


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
