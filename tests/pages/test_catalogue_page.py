"""The Catalogue page through Streamlit's AppTest: a checked catalogue, the worst listing first, decisions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.catalogue.check import run_check
from core.project.projects import create_project
from db.engine import session_scope
from db.models import CatalogueDecision
from db.models import Image as ImageRow
from tests.core.catalogue.test_check import _setup
from ui.context import reset_context

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(engine, settings, monkeypatch, tmp_path) -> Iterator[tuple[AppTest, int]]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        pid = create_project(session, "Shop").id
    version, _ = _setup(engine, settings, pid, tmp_path)
    run_check(engine, pid, version)
    monkeypatch.setenv("TAGRACK_DB_URL", settings.db_url)
    monkeypatch.setenv("TAGRACK_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TAGRACK_USER", "apptest")
    reset_context()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("pages/catalogue.py")
    at.run()
    assert not at.exception
    yield at, version
    reset_context()


def test_worst_listing_first_with_reason_and_highlight(app) -> None:  # type: ignore[no-untyped-def]
    at, _ = app
    assert at.title[0].value == "Catalogue"
    text = " ".join(m.value for m in at.markdown)
    assert "**S1**" in text and "mismatch score **0.98**" in text
    assert ":red-background[hoodie]" in text  # the contradicted phrase, highlighted
    assert "title says Hoodie · photo looks like Shoes \\(0\\.94\\)" in text
    assert "2 flagged to review" in " ".join(c.value for c in at.caption)
    labels = [b.label for b in at.button]
    for label in ("Description wrong", "Photo wrong", "Model wrong", "Fine", "Skip"):
        assert label in labels


def test_model_wrong_stores_the_claim_as_ground_truth_and_moves_on(app, engine) -> None:  # type: ignore[no-untyped-def]
    at, _ = app
    next(b for b in at.button if b.label == "Model wrong").click()
    at.run()
    assert not at.exception
    assert "S1: model wrong · stored as the photos' tags: category = Hoodie" in at.success[0].value
    assert "**S5**" in " ".join(m.value for m in at.markdown)  # the next flagged listing
    with session_scope(engine) as session:
        assert session.scalar(select(ImageRow).where(ImageRow.original_name == "hood.jpg")).attributes == {
            "category": "Hoodie"
        }
        assert [(d.decision, d.who) for d in session.scalars(select(CatalogueDecision))] == [("model_wrong", "apptest")]


def test_tag_filter_and_vocabulary_editor(app) -> None:  # type: ignore[no-untyped-def]
    at, _ = app
    at.selectbox(key="cat_tag").select("sleeve_length")
    at.run()
    assert not at.exception
    assert "No flagged listing to review" in at.info[0].value
    assert any(b.label == "Save vocabulary" for b in at.button)
