"""The Review page in headless Chromium: one item reviewed with the keyboard only.

The server runs on a prepared data folder: a demo project whose new images carry
predictions of a model version inserted directly (no training in a browser test; the
review page never loads the model file).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from core.database import open_database
from core.demo_project import create_demo_project
from core.settings import Settings
from db.engine import session_scope
from db.models import Box, BoxSource, Image, ImageStatus, Label, ModelVersion, Prediction, ReviewDecision
from tests.e2e.conftest import AppServer, screenshot, start_server, stop_server, wait_for_app

pytestmark = pytest.mark.e2e

# Top scores of the three new images' predictions: the queue shows the lowest first.
TOP_SCORES = (0.93, 0.62, 0.78)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    data_dir = tmp_path_factory.mktemp("review") / "data"
    data_dir.mkdir()
    settings = Settings.resolve(f"sqlite:///{data_dir / 'tagrack.db'}", data_dir)
    engine = open_database(settings)
    pid = create_demo_project(engine, settings, name="E2E review", count=6, labelled_fraction=0.5)
    with session_scope(engine) as session:
        labels = {lab.name: lab.id for lab in session.scalars(select(Label).where(Label.project_id == pid))}
        version = ModelVersion(project_id=pid, name="inserted v1", path="models/none/model.keras")
        session.add(version)
        session.flush()
        new = session.scalars(select(Image).where(Image.status == ImageStatus.NEW).order_by(Image.id)).all()
        for image, top in zip(new, TOP_SCORES, strict=True):
            for k, (label, score) in enumerate((("Jeans", top), ("Shirts", round(top - 0.1, 2)))):
                x = 40 + 200 * k
                session.add(
                    Prediction(model_version_id=version.id, image_id=image.id, label_id=labels[label],
                               x_min=x, y_min=60, x_max=x + 150, y_max=260, score=score)
                )  # fmt: skip
    engine.dispose()
    srv = start_server(data_dir)
    yield srv
    stop_server(srv)


def test_review_one_item_with_the_keyboard_only(page, server: AppServer) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{server.url}/review")
    wait_for_app(page)
    page.get_by_text(re.compile(r"3 to review · top score 0\.62")).wait_for(timeout=60_000)
    # The canvas component reruns the page once it has mounted; a key pressed during that
    # rerun can be lost, so wait until the canvas is there and the script is idle again.
    page.locator(".dc-container canvas").last.wait_for(timeout=60_000)
    page.get_by_role("button", name=re.compile("Accept as is")).wait_for()
    wait_for_app(page)
    page.wait_for_timeout(500)
    wait_for_app(page)
    screenshot(page, "review_first_item")
    page.keyboard.press("a")  # Accept as is
    try:
        page.get_by_text(re.compile(r"2 to review · top score 0\.78")).wait_for(timeout=30_000)
    except Exception:
        screenshot(page, "review_failed_accept")
        raise
    page.get_by_text(re.compile(r"2 accepted")).wait_for()
    wait_for_app(page)
    screenshot(page, "review_after_accept")

    engine = open_database(Settings.resolve(server.db_url, server.data_dir))
    try:
        with session_scope(engine) as session:
            reviewed = session.scalars(
                select(Image).where(Image.status == ImageStatus.DONE, Image.updated_by == "e2e-tester")
            ).all()
            assert len(reviewed) == 1
            boxes = session.scalars(select(Box).where(Box.image_id == reviewed[0].id)).all()
            decisions = session.scalars(select(ReviewDecision).where(ReviewDecision.image_id == reviewed[0].id)).all()
        assert sorted((b.source, round(b.score, 2)) for b in boxes) == [
            (BoxSource.MODEL, 0.52),
            (BoxSource.MODEL, 0.62),
        ]
        assert sorted(d.decision for d in decisions) == ["accepted", "accepted"]
        assert all(d.who == "e2e-tester" and d.box_id is not None for d in decisions)
    finally:
        engine.dispose()
