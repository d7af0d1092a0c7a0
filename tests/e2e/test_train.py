"""Training from the browser: start a tiny training on the demo project, watch it, see the model version."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from db.engine import make_engine, session_scope
from db.models import Job, JobStatus, ModelVersion

from tests.e2e.conftest import AppServer, screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def _pick(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_start_tiny_training_watch_progress_and_see_model_version(app_server: AppServer, page) -> None:
    page.goto(f"{app_server.url}/train")
    wait_for_app(page, timeout=180_000)
    page.get_by_text("Start training").wait_for()
    page.get_by_text("Time budget (minutes)").wait_for()
    page.get_by_text("Now: 256x192 letterboxed").wait_for()  # the fit to the demo boxes, before any training
    _pick(page, "Input size", "128x96 (quick check)")
    _pick(page, "Backbone width (MobileNetV2 alpha)", "0.35")
    page.get_by_text("Advanced").click()
    page.get_by_role("spinbutton", name="Max epochs").fill("1")
    page.get_by_role("spinbutton", name="Max epochs").press("Enter")  # a number input commits on Enter or blur
    wait_for_app(page)
    page.get_by_role("button", name="Start training").click()

    # Progress: the job shows up, then its epoch/step/loss/ETA while training.
    page.get_by_text("Training job #").first.wait_for(timeout=60_000)
    page.get_by_text("one training per project at a time").wait_for(timeout=30_000)
    page.get_by_text("epoch 1/1").first.wait_for(timeout=180_000)
    screenshot(page, "train-progress")

    page.get_by_text("Finished: model version #").wait_for(timeout=300_000)
    page.get_by_text("Model versions").wait_for()
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    screenshot(page, "train-finished")

    engine = make_engine(app_server.db_url)
    with session_scope(engine) as session:
        job = session.scalars(select(Job).where(Job.kind == "train")).one()
        versions = session.scalars(select(ModelVersion)).all()
        status, progress = job.status, dict(job.progress)
    engine.dispose()
    assert status is JobStatus.SUCCEEDED
    assert len(versions) == 1 and versions[0].params["image_width"] == 128
    assert progress.get("curve"), "the loss curve reached the page's data"
