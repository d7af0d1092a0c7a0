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
    page.get_by_text("Advanced", exact=True).click()
    wait_for_app(page)
    _pick(page, "Backbone width (MobileNetV2 alpha)", "0.35")
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


def test_queued_message_goes_when_the_job_runs(tmp_path, page) -> None:  # type: ignore[no-untyped-def]
    """A job seen queued and then running shows "running" only (the page's message used to stay "queued")."""
    import re

    from core.database import open_database
    from core.demo.project import create_demo_project
    from core.jobs import create_job
    from core.model.training import JOB_KIND, train_params
    from core.settings import Settings
    from db.models import utcnow
    from tests.e2e.conftest import start_server, stop_server

    data = tmp_path / "data"
    settings = Settings.resolve(f"sqlite:///{data / 'tagrack.db'}", data)
    engine = open_database(settings)
    pid = create_demo_project(engine, settings, count=12)
    with session_scope(engine) as session:
        job_id = create_job(session, JOB_KIND, train_params(pid), pid, exclusive=True).id  # never launched
    server = start_server(data)
    try:
        page.goto(f"{server.url}/train")
        wait_for_app(page, timeout=180_000)
        page.get_by_text(f"Training job #{job_id}: queued").wait_for()
        page.get_by_text(re.compile("one training per project at a time")).wait_for()
        with session_scope(engine) as session:  # what the worker writes when it starts
            job = session.get(Job, job_id)
            job.status, job.started_at, job.heartbeat_at = JobStatus.RUNNING, utcnow(), utcnow()
            job.progress = {
                "message": "epoch 3/5",
                "epoch": 3,
                "epochs": 5,
                "step": 3,
                "steps": 10,
                "curve": [[s, 2.0 / s] for s in range(1, 25)],
                "history": [{"epoch": 3, "val_map50": 0.41}],
            }
        page.get_by_text(f"Training job #{job_id}: running").wait_for(timeout=30_000)
        wait_for_app(page)
        screenshot(page, "train-running")
        assert page.get_by_text(re.compile(r"\bqueued\b")).count() == 0
        page.get_by_text(re.compile("one training per project at a time")).wait_for()
    finally:
        stop_server(server)
        engine.dispose()
