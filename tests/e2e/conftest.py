"""Browser fixtures: a real Streamlit server on loopback driven by Debian's Chromium."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.app_server import AppServer, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TAGRACK_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium through Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--disable-quic",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    """A fresh browser page in a laptop window (1400x900, the size the layout checks are made for)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    # CI machines have 2 cores and the first request also builds the demo project: be patient.
    context.set_default_timeout(90_000)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture(scope="module")
def app_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """A Streamlit server on a fresh data folder (the first start creates the demo project)."""
    data_dir = tmp_path_factory.mktemp("app") / "data"
    data_dir.mkdir()
    server = start_server(data_dir)
    yield server
    stop_server(server)


def fill_with_models(data_dir: Path) -> None:
    """A demo project with two evaluated model versions and predictions on its new images.

    Every page then has its full content (model-version tables, charts, a review item)
    without a training: the predictions are made up from the ground truth
    (tests/core/evaluation_factory.py) and the metrics are computed for real.
    """
    from sqlalchemy import select

    from core.database import open_database
    from core.demo.project import DEMO_PROJECT_NAME, create_demo_project
    from core.model.evaluation import evaluate_model_version
    from core.project.splits import assign_splits
    from core.settings import Settings
    from db.engine import session_scope
    from db.models import Image, ImageStatus, Label, ModelVersion, Prediction
    from tests.core.evaluation_factory import fake_model_version

    settings = Settings.resolve(f"sqlite:///{data_dir / 'tagrack.db'}", data_dir)
    engine = open_database(settings)
    pid = create_demo_project(engine, settings, count=40)
    with session_scope(engine) as session:
        assign_splits(session, pid, (0.6, 0.1, 0.3))
    for n in (1, 2):
        version_id = fake_model_version(engine, pid, name=f"{DEMO_PROJECT_NAME} v{n}", seed=n)
        evaluate_model_version(engine, settings, version_id)
        with session_scope(engine) as session:
            version = session.get(ModelVersion, version_id)
            # What a real training stores (core/model/training.py), so the tables have all their columns.
            version.params = {
                "budget_minutes": 15.0,
                "epochs": 500,
                "image_width": 256,
                "image_height": 192,
                "weights": "imagenet-offline",
                "images": {"train": 24, "val": 4, "test": 12},
            }
            version.metrics = {
                **version.metrics,
                "val": {"map50": 0.612},
                "best_epoch": 7,
                "stopped": "budget",
                "history": [{"epoch": e, "val_map50": 0.06 * e} for e in range(1, 10)],
                "train_seconds": 880.0,
                "images_per_s": 6.1,
                "ap50": {"Jeans": 0.7, "Shirts": 0.5},
            }
            version.dataset_hash = "0123456789abcdef" * 4
            labels = {lab.name: lab.id for lab in session.scalars(select(Label).where(Label.project_id == pid))}
            new = session.scalars(select(Image).where(Image.status == ImageStatus.NEW).order_by(Image.id)).all()
            for i, image in enumerate(new):
                for k, (label, score) in enumerate((("Jeans", 0.5 + i / 100), ("Shirts", 0.4))):
                    x = 40 + 200 * k
                    session.add(
                        Prediction(
                            model_version_id=version_id,
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


@pytest.fixture(scope="session")
def models_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    """A server on :func:`fill_with_models`' data (read-only checks share it)."""
    data_dir = tmp_path_factory.mktemp("models") / "data"
    data_dir.mkdir()
    fill_with_models(data_dir)
    server = start_server(data_dir)
    yield server
    stop_server(server)


def screenshot(page: object, name: str) -> Path:
    """Saves a full-page screenshot under test-artifacts/ for people to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def wait_for_app(page: object, timeout: float = 60_000) -> None:
    """Waits until Streamlit has run the script to the end (its own e2e tests' signal)."""
    page.wait_for_selector(  # type: ignore[attr-defined]
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout
    )


__all__ = ["AppServer", "fill_with_models", "screenshot", "start_server", "stop_server", "wait_for_app"]
