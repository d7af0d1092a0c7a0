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
from core.demo.project import create_demo_project
from core.settings import Settings
from db.engine import session_scope
from db.models import BoxRow, BoxSource, Image, ImageStatus, Label, ModelVersion, Prediction, ReviewDecision
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
                    Prediction(
                        model_version_id=version.id,
                        image_id=image.id,
                        label_id=labels[label],
                        x_min=x,
                        y_min=60,
                        x_max=x + 150,
                        y_max=260,
                        score=score,
                    )
                )
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
            boxes = session.scalars(select(BoxRow).where(BoxRow.image_id == reviewed[0].id)).all()
            decisions = session.scalars(select(ReviewDecision).where(ReviewDecision.image_id == reviewed[0].id)).all()
        assert sorted((b.source, round(b.score, 2)) for b in boxes) == [
            (BoxSource.MODEL, 0.52),
            (BoxSource.MODEL, 0.62),
        ]
        assert sorted(d.decision for d in decisions) == ["accepted", "accepted"]
        assert all(d.who == "e2e-tester" and d.box_id is not None for d in decisions)
    finally:
        engine.dispose()


# The second module server's new images: a garment a young model named twice (one box, two
# classes), then two plain items. Lowest top score first, so the pair comes first.
PAIR = (("Shirts", 0.62, (60, 50, 260, 250)), ("Jackets", 0.61, (60, 50, 260, 252)))
PLAIN_SCORES = (0.80, 0.90)


@pytest.fixture(scope="module")
def pair_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    data_dir = tmp_path_factory.mktemp("review-pair") / "data"
    data_dir.mkdir()
    settings = Settings.resolve(f"sqlite:///{data_dir / 'tagrack.db'}", data_dir)
    engine = open_database(settings)
    pid = create_demo_project(engine, settings, name="E2E review pair", count=6, labelled_fraction=0.5)
    with session_scope(engine) as session:
        labels = {lab.name: lab.id for lab in session.scalars(select(Label).where(Label.project_id == pid))}
        version = ModelVersion(project_id=pid, name="young", path="models/none/model.keras")
        session.add(version)
        session.flush()
        first, *rest = session.scalars(select(Image).where(Image.status == ImageStatus.NEW).order_by(Image.id)).all()
        predictions = [(first, label, score, box) for label, score, box in PAIR]
        predictions += [
            (image, "Jeans", score, (40, 60, 190, 260)) for image, score in zip(rest, PLAIN_SCORES, strict=True)
        ]
        for image, label, score, (x0, y0, x1, y1) in predictions:
            session.add(
                Prediction(
                    model_version_id=version.id,
                    image_id=image.id,
                    label_id=labels[label],
                    x_min=x0,
                    y_min=y0,
                    x_max=x1,
                    y_max=y1,
                    score=score,
                )
            )
    engine.dispose()
    srv = start_server(data_dir)
    yield srv
    stop_server(srv)


def _settle(page) -> None:  # type: ignore[no-untyped-def]
    """Waits until the canvas has mounted and the rerun it causes is over (a key pressed during it is lost)."""
    page.locator(".dc-container canvas").last.wait_for(timeout=60_000)
    page.get_by_role("button", name=re.compile("Accept as is")).wait_for()
    wait_for_app(page)
    page.wait_for_timeout(500)
    wait_for_app(page)


def test_a_box_predicted_as_two_classes_is_accepted_once_and_shift_n_says_no_garments(  # type: ignore[no-untyped-def]
    page, pair_server: AppServer
) -> None:
    """Issue 13: Accept stored Shirts and Jackets for one garment. Now one box, the other class a hint."""
    page.goto(f"{pair_server.url}/review")
    wait_for_app(page)
    page.get_by_text(re.compile(r"3 to review · top score 0\.62")).wait_for(timeout=60_000)
    _settle(page)
    page.get_by_text(re.compile(r"box 1 Shirts 0\.62 — also: Jackets 0\.61")).wait_for()
    screenshot(page, "review_pair_item")
    page.keyboard.press("a")  # Accept as is
    try:
        page.get_by_text(re.compile(r"2 to review · top score 0\.80")).wait_for(timeout=30_000)
    except Exception:
        screenshot(page, "review_pair_failed_accept")
        raise

    engine = open_database(Settings.resolve(pair_server.db_url, pair_server.data_dir))
    try:
        with session_scope(engine) as session:
            (reviewed,) = session.scalars(
                select(Image).where(Image.status == ImageStatus.DONE, Image.updated_by == "e2e-tester")
            ).all()
            boxes = session.scalars(select(BoxRow).where(BoxRow.image_id == reviewed.id)).all()
            labels = {lab.id: lab.name for lab in session.scalars(select(Label))}
            assert [(labels[b.label_id], b.source, round(b.score, 2)) for b in boxes] == [
                ("Shirts", BoxSource.MODEL, 0.62)
            ]
            decisions = session.scalars(select(ReviewDecision).where(ReviewDecision.image_id == reviewed.id)).all()
            assert [d.decision for d in decisions] == ["accepted"]
        page.get_by_text(re.compile(r"1 accepted")).wait_for()

        # "No garments" is Shift+N (as on Annotate), not N, which Annotate once used to move on.
        _settle(page)
        page.keyboard.press("Shift+N")
        page.get_by_text(re.compile(r"1 to review · top score 0\.90")).wait_for(timeout=30_000)
        with session_scope(engine) as session:
            empty = session.scalars(select(Image).where(Image.status == ImageStatus.NO_OBJECTS)).all()
            assert len(empty) == 1 and empty[0].updated_by == "e2e-tester"
            assert not session.scalars(select(BoxRow).where(BoxRow.image_id == empty[0].id)).all()
    finally:
        engine.dispose()
