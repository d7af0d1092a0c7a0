"""Review tags in headless Chromium: one suggestion accepted with the keyboard, found in the DB and in tags.csv.

The server runs on a prepared data folder: a demo project whose category tags came in through
the labels import (a real CSV), and a tags model version with predictions inserted directly (no
training in a browser test; the page never loads the model file).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.database import open_database
from core.dataset.exporter import export_dataset
from core.dataset.labels import import_labels
from core.demo.project import create_demo_project
from core.settings import Settings
from db.engine import session_scope
from db.models import Image, ImageStatus, ReviewDecision
from tests.core.tags_factory import add_tags_version
from tests.e2e.conftest import AppServer, screenshot, start_server, stop_server, wait_for_app

pytestmark = pytest.mark.e2e

HEADS = {"category": ["Shirt", "Shoes"], "colour": ["single", "multi"]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    data_dir = tmp_path_factory.mktemp("review-tags") / "data"
    data_dir.mkdir()
    settings = Settings.resolve(f"sqlite:///{data_dir / 'tagrack.db'}", data_dir)
    engine = open_database(settings)
    pid = create_demo_project(engine, settings, name="E2E tags", count=6, labelled_fraction=0.5)
    with session_scope(engine) as session:
        names = list(
            session.scalars(select(Image.original_name).where(Image.status == ImageStatus.NEW).order_by(Image.id))
        )
    labels = data_dir.parent / "labels.csv"
    labels.write_text(f"image,label\n{names[0]},Shirt\n{names[1]},Shoes\n", encoding="utf-8")
    report = import_labels(engine, settings, pid, labels)
    assert report.count("updated") == 2, report.outcomes
    with session_scope(engine) as session:
        image_id = session.scalar(select(Image.id).where(Image.project_id == pid, Image.original_name == names[2]))
        add_tags_version(
            session, pid, HEADS, [(image_id, "category", "Shoes", 0.58), (image_id, "colour", "multi", 0.81)]
        )
    engine.dispose()
    srv = start_server(data_dir)
    yield srv
    stop_server(srv)


def test_review_a_tag_suggestion_with_the_keyboard(page, server: AppServer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server.url}/review_tags")
    wait_for_app(page)
    page.get_by_text("suggested · 0.58").wait_for(timeout=60_000)
    accept = page.get_by_role("button", name=re.compile("Accept Shoes"))
    accept.wait_for()
    wait_for_app(page)
    # The decision keys are on screen without scrolling in a 1400x900 window.
    box = accept.bounding_box()
    assert box is not None and box["y"] + box["height"] <= 900
    screenshot(page, "review_tags_first_item")
    page.keyboard.press("a")  # Accept
    try:
        page.get_by_text("suggested · 0.81").wait_for(timeout=30_000)
    except Exception:
        screenshot(page, "review_tags_failed_accept")
        raise
    page.get_by_text(re.compile(r"category = Shoes accepted")).wait_for()
    wait_for_app(page)
    screenshot(page, "review_tags_after_accept")

    settings = Settings.resolve(server.db_url, server.data_dir)
    engine = open_database(settings)
    try:
        with session_scope(engine) as session:
            (decision,) = session.scalars(select(ReviewDecision)).all()
            image = session.get(Image, decision.image_id)
            assert (decision.decision, decision.who) == ("accepted", "e2e-tester")
            assert decision.details == {"tag": "category", "suggested": "Shoes", "chosen": "Shoes", "confidence": 0.58}
            assert image.attributes["category"] == "Shoes"
            name, pid = image.original_name, image.project_id
        out = tmp_path / "tags"
        export_dataset(engine, settings, pid, "tags-csv", out)
    finally:
        engine.dispose()
    with open(out / "tags.csv", newline="", encoding="utf-8") as fh:
        rows = {r["image"]: r for r in csv.DictReader(fh)}
    assert rows[name]["category"] == "Shoes"
    assert sorted(r["category"] for r in rows.values() if r["category"]) == ["Shirt", "Shoes", "Shoes"]
