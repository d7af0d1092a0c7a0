"""Evaluate page (AppTest, real database): metrics, curves, confusion matrix, errors, dataset health.

One test follows a real tiny training (a small demo project, 1 epoch at 96x128) and a real
evaluation (test-split predictions through core.model.prediction); the others use a model
version with made-up predictions (tests/core/evaluation_factory.py) for speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.database import open_database
from core.model.evaluation import evaluate_model_version
from core.project.splits import assign_splits
from core.settings import Settings
from db.engine import session_scope
from db.models import Image, ModelVersion, Project
from tests.core.evaluation_factory import fake_model_version

PAGE = "pages/evaluate.py"


def _open(make_app: Callable[[], AppTest]) -> AppTest:
    at = make_app().run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _texts(at: AppTest) -> str:
    return " ".join([*(m.value for m in at.markdown), *(c.value for c in at.caption), *(w.value for w in at.warning)])


@pytest.fixture
def evaluated_env(app_env: Path) -> tuple[Path, int]:
    """The demo project with splits and an evaluated fake model version."""
    settings = Settings.resolve(f"sqlite:///{app_env / 'tagrack.db'}", app_env)
    engine = open_database(settings)
    with session_scope(engine) as session:
        pid = session.scalar(select(Project.id))
        assign_splits(session, pid)
    version_id = fake_model_version(engine, pid, name="demo fake")
    evaluate_model_version(engine, settings, version_id)
    engine.dispose()
    return app_env, version_id


def test_page_without_models_shows_dataset_health(make_app: Callable[[], AppTest]) -> None:
    at = _open(make_app)
    assert any("No detector version yet" in i.value for i in at.info)
    assert any("only" in w.value and "training boxes" in w.value for w in at.warning)  # demo: unassigned boxes
    labels = {b.label for b in at.get("download_button")}
    assert "Download boxes per class (CSV)" in labels and "Download box geometry per class (CSV)" in labels


def test_page_shows_metrics_curves_confusion_and_errors(make_app: Callable[[], AppTest], evaluated_env) -> None:
    _, version_id = evaluated_env
    at = _open(make_app)
    frames = [d.value for d in at.dataframe]
    versions = next(f for f in frames if "COCO mAP@0.5" in f.columns)
    assert versions["model version"].tolist() == ["demo fake"] and 0 < versions["COCO mAP@0.5"][0] <= 1
    per_class = next(f for f in frames if "AP@0.75" in f.columns)
    assert per_class["AP@0.75"].notna().any()
    confusion = next(f for f in frames if "true \\ predicted" in f.columns)
    assert confusion.columns[-1] == "background" and confusion.iloc[-1, 0] == "background"
    assert any(c.proto.spec and "recall" in c.proto.spec for c in at.get("vega_lite_chart"))
    labels = {b.label for b in at.get("download_button")}
    assert {
        "Download model versions (CSV)",
        "Download per-class metrics (CSV)",
        "Download confusion matrix (CSV)",
    } <= labels
    # A higher threshold changes precision/recall and the matrix without recomputing.
    at.select_slider(key="eval_thr").set_value("0.9").run()
    assert not at.exception, at.exception
    # Error gallery: one click opens the image on the Annotate page.
    opens = [b for b in at.button if b.key and b.key.startswith("open_false_positive_")]
    assert opens
    open_button = opens[0]
    with session_scope(
        open_database(Settings.resolve(f"sqlite:///{evaluated_env[0] / 'tagrack.db'}", evaluated_env[0]))
    ) as s:
        stored = s.get(ModelVersion, version_id).metrics["test"]["coco"]["errors"]["false_positive"][0]
        name = s.get(Image, stored["image_id"]).original_name
    open_button.click().run()
    assert not at.exception, at.exception
    header = next(m.value for m in at.markdown if " · image " in m.value)
    assert header.startswith(f"**{name}**")


def test_results_stored_before_the_tight_box_figures_still_show(make_app: Callable[[], AppTest], evaluated_env) -> None:
    app_env, version_id = evaluated_env
    engine = open_database(Settings.resolve(f"sqlite:///{app_env / 'tagrack.db'}", app_env))
    new_keys = ("map_75", "ap_75", "map_small", "map_medium", "map_large", "ap_small", "review")
    with session_scope(engine) as session:
        version = session.get(ModelVersion, version_id)
        metrics = dict(version.metrics)
        coco = {k: v for k, v in metrics["test"]["coco"].items() if k not in new_keys}
        assert len(coco) == len(metrics["test"]["coco"]) - len(new_keys)
        version.metrics = {**metrics, "test": {**metrics["test"], "coco": coco}}
    engine.dispose()
    at = _open(make_app)
    per_class = next(d.value for d in at.dataframe if "AP@0.75" in d.value.columns)
    assert per_class["AP@0.75"].isna().all() and per_class["AP@0.5"].notna().any()


def test_page_after_a_real_tiny_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.demo.project import create_demo_project
    from core.jobs import create_job, run_job
    from core.model.training import JOB_KIND, train_params
    from db.models import Job, JobStatus
    from ui.context import reset_context

    data = tmp_path / "data"
    settings = Settings.resolve(f"sqlite:///{data / 'tagrack.db'}", data)
    engine = open_database(settings)
    pid = create_demo_project(engine, settings, name="Demo", count=20, labelled_fraction=1.0)
    tiny = dict(
        image_height=96,
        image_width=128,
        alpha=0.35,
        weights="none",
        batch_size=4,
        epochs=1,
        eval_every=5,
        score_threshold=0.0,
    )
    with session_scope(engine) as session:
        assign_splits(session, pid, (0.7, 0.0, 0.3))  # a few test images; no val split (one evaluation less)
        job_id = create_job(session, JOB_KIND, train_params(pid, **tiny), pid).id
    t0 = time.monotonic()
    assert run_job(settings, engine, job_id) is JobStatus.SUCCEEDED
    with session_scope(engine) as session:
        version_id = int(session.get(Job, job_id).result["model_version_id"])
    t1 = time.monotonic()
    result = evaluate_model_version(engine, settings, version_id)  # predicts the test split for real
    print(f"tiny training {t1 - t0:.0f} s, evaluation {time.monotonic() - t1:.0f} s")  # no timed assertion
    assert result["newly_predicted"] == result["images"] > 0 and result["predictions"] > 0
    engine.dispose()

    monkeypatch.setenv("TAGRACK_DATA_DIR", str(data))
    monkeypatch.setenv("TAGRACK_DB_URL", settings.db_url)
    reset_context()
    try:
        at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=90).run()
        at.switch_page(PAGE).run()
        assert not at.exception, at.exception
        versions = next(d.value for d in at.dataframe if "COCO mAP@0.5" in d.value.columns)
        assert versions["model version"].tolist() == ["Demo v1"]
        assert 0.0 <= versions["COCO mAP@0.5"][0] <= 1.0
        assert any(c.proto.spec and "recall" in c.proto.spec for c in at.get("vega_lite_chart"))
    finally:
        reset_context()
