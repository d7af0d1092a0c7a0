"""Every page runs without exception on the demo project (AppTest, real database)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
PAGE_FILES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))


def test_home_shows_demo_counts(make_app: Callable[[], AppTest]) -> None:
    at = make_app().run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "300"
    assert metrics["Done"] == "200"
    assert metrics["New"] == "100"
    assert at.sidebar.selectbox[0].value is not None


def test_every_page_file_is_in_the_navigation() -> None:
    app_source = (ROOT / "app.py").read_text()
    for page in PAGE_FILES:
        assert f'"{page}"' in app_source, f"{page} is not listed in app.py's PAGES"


@pytest.mark.parametrize("page", PAGE_FILES)
def test_every_page_runs(make_app: Callable[[], AppTest], page: str) -> None:
    at = make_app().run()
    at.switch_page(page).run()
    assert not at.exception, f"{page}: {at.exception}"


def test_create_project_and_edit_labels(make_app: Callable[[], AppTest]) -> None:
    at = make_app().run()
    form_name = next(t for t in at.text_input if t.label == "Project name")
    form_name.input("Autumn catalogue")
    next(t for t in at.text_area if t.label.startswith("Labels")).input("Coats\nScarves\nBoots")
    next(b for b in at.button if b.label == "Create project").click().run()
    assert not at.exception, at.exception
    assert at.header[0].value == "Autumn catalogue"
    assert {m.label: m.value for m in at.metric}["Images"] == "0"


def test_duplicate_project_name_is_refused(make_app: Callable[[], AppTest]) -> None:
    at = make_app().run()
    next(t for t in at.text_input if t.label == "Project name").input("Demo: clothing scenes")
    next(b for b in at.button if b.label == "Create project").click().run()
    assert any("already exists" in e.value for e in at.error)


def test_pages_run_no_queries_themselves() -> None:
    """Queries live in core/ or db/: a page opens a session only to call them."""
    import re

    query = re.compile(
        r"(^|[^a-z_])select\(|session\.(get|execute|scalars?|query|add|delete)\(|^(from|import) sqlalchemy", re.M
    )
    pages = Path(__file__).resolve().parents[2] / "pages"
    found = {p.name: m.group(0) for p in sorted(pages.glob("*.py")) if (m := query.search(p.read_text()))}
    assert found == {}
