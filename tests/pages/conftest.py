"""AppTest fixtures: the real app script on a real SQLite file in a temporary folder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Points the app at a fresh data folder and forgets the cached context around the test."""
    from ui.context import reset_context

    data = tmp_path / "data"
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
