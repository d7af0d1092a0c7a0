"""The Evaluate page in a real browser: metrics, charts, and an error opened on the Annotate page.

The model version's predictions are made up from the ground truth (tests/core/evaluation_factory.py)
so the page has realistic content without a long training; the metrics are computed for real.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from core.database import open_database
from core.demo.project import create_demo_project
from core.model.evaluation import evaluate_model_version
from core.project.splits import assign_splits
from core.settings import Settings
from db.engine import session_scope
from db.models import Image, ModelVersion
from tests.core.evaluation_factory import fake_model_version
from tests.e2e.conftest import screenshot, start_server, stop_server, wait_for_app

pytestmark = pytest.mark.e2e


def test_evaluate_page_and_open_an_error(tmp_path: Path, page) -> None:
    data = tmp_path / "data"
    settings = Settings.resolve(f"sqlite:///{data / 'tagrack.db'}", data)
    engine = open_database(settings)
    pid = create_demo_project(engine, settings, count=90)
    with session_scope(engine) as session:
        assign_splits(session, pid, (0.6, 0.1, 0.3))
    fake_model_version(engine, pid, name="Demo v1", seed=1)
    version_id = fake_model_version(engine, pid, name="Demo v2", seed=2)
    for v in (version_id - 1, version_id):
        evaluate_model_version(engine, settings, v)
    with session_scope(engine) as session:
        first = session.get(ModelVersion, version_id).metrics["test"]["coco"]["errors"]["false_positive"][0]
        name = session.scalar(select(Image.original_name).where(Image.id == first["image_id"]))
    engine.dispose()

    server = start_server(data)
    try:
        page.set_viewport_size({"width": 1400, "height": 2400})  # Streamlit scrolls inside: show the charts too
        page.goto(f"{server.url}/evaluate")
        wait_for_app(page, timeout=120_000)
        page.get_by_text("Precision-recall (IoU 0.5)").wait_for()
        page.locator('[data-testid="stVegaLiteChart"]').first.wait_for()
        page.wait_for_timeout(1500)  # let the charts finish drawing
        screenshot(page, "evaluate")
        page.get_by_role("tab", name="Dataset health").click()
        page.get_by_text("Box size and shape per class").wait_for()
        page.get_by_role("tab", name="Error gallery").click()
        # By key: a bare role query for "Open" also matches the charts' "open in fullscreen" buttons.
        page.locator(".st-key-open_false_positive_0 button").click()
        page.wait_for_url("**/annotate")
        wait_for_app(page)
        page.get_by_text("Label for new boxes").wait_for()
        page.get_by_text(f"{name} · image", exact=False).wait_for()  # the Annotate header names the image
    finally:
        stop_server(server)
