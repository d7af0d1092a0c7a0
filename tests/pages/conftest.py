"""AppTest fixtures: the real app script on a real SQLite file in a temporary folder."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _navigation_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs AppTest in the navigation mode a real server is in after its first run.

    A server whose app calls st.navigation leaves Streamlit's legacy pages/-folder mode on
    its first run and stays out of it. AppTest resets that switch before every run, so
    each run would start in legacy mode and widget ids would change between runs (a
    clicked button then reads as not clicked). Turn the switch off after AppTest resets it.
    """
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self: PagesManager, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


@pytest.fixture(autouse=True)
def _no_auth(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Page tests that are not about signing in run as one person on loopback (--no-auth).

    ``auth_app`` (below) turns this off and signs in through the form.
    """
    monkeypatch.setenv("TAGRACK_NO_AUTH", "1")
    address = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    yield
    config.set_option("server.address", address)


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder holding the demo project, made once and copied for each test."""
    from core.database import open_database
    from core.demo.project import ensure_demo_project
    from core.settings import Settings

    data = tmp_path_factory.mktemp("demo-template") / "data"
    settings = Settings.resolve(db_url=f"sqlite:///{data / 'tagrack.db'}", data_dir=data)
    engine = open_database(settings)
    ensure_demo_project(engine, settings)
    engine.dispose()
    return data


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_template: Path) -> Iterator[Path]:
    """Points the app at a copy of the demo data folder and forgets the cached context around the test."""
    from ui.context import reset_context

    data = tmp_path / "data"
    shutil.copytree(demo_template, data)
    monkeypatch.setenv("TAGRACK_DATA_DIR", str(data))
    monkeypatch.setenv("TAGRACK_DB_URL", f"sqlite:///{data / 'tagrack.db'}")
    monkeypatch.setenv("TAGRACK_USER", "apptest")
    reset_context()
    yield data
    reset_context()


@pytest.fixture
def make_app(app_env: Path) -> Callable[[], AppTest]:
    """Builds an AppTest of app.py (the first run creates the demo project: allow time)."""

    def build() -> AppTest:
        return AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)

    return build


@pytest.fixture
def auth_app(app_env: Path, monkeypatch: pytest.MonkeyPatch, make_app: Callable[[], AppTest]) -> Callable[[], AppTest]:
    """The app with sign-in on, and accounts boss (admin), rev (reviewer), ann (annotator); password NAME-password."""
    from core.accounts.users import add_account
    from db.engine import make_engine, session_scope

    monkeypatch.delenv("TAGRACK_NO_AUTH")
    engine = make_engine(f"sqlite:///{app_env / 'tagrack.db'}")
    with session_scope(engine) as session:
        for name, role in (("boss", "admin"), ("rev", "reviewer"), ("ann", "annotator")):
            add_account(session, name, f"{name}-password", role)
    engine.dispose()
    return make_app
