"""The train job end to end on a real SQLite file: export -> TFRecords -> train -> model version -> predict.

Tiny on purpose (96x128 inputs, MobileNetV2 alpha 0.35, random initial weights, a few
steps): the suite runs on 2 CPU cores. No network: weights are "none".
"""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from core.jobs import JobError, create_job, launch, reap_stale, run_job
from core.model.detector.model import DetectorSpec
from core.model.training import DEFAULTS, JOB_KIND, model_file, resume_params, train_params
from core.project.projects import create_project
from core.settings import Settings
from db.engine import session_scope
from db.models import Job, JobStatus, ModelVersion, utcnow
from tests.core.model.detector.scenes import CLASSES, make_scene, store_scenes

TINY = {
    "image_height": 96,
    "image_width": 128,
    "alpha": 0.35,
    "weights": "none",
    "batch_size": 4,
    "learning_rate": 1e-3,
    "eval_every": 3,  # validate after the last epoch only: each evaluation traces the predict graph
    "score_threshold": 0.0,  # a few steps from random weights: keep every box so there is something to check
}


@pytest.fixture
def scenes_project(engine: Engine, settings: Settings) -> int:
    # "Unused" has no box: training must leave it out rather than build a head for a class it never saw.
    with session_scope(engine) as session:
        pid = create_project(session, "Scenes", labels=[*CLASSES, "Unused"]).id
    store_scenes(engine, settings, pid, n=30)
    return pid


def _job(engine: Engine, job_id: int) -> Job:
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def test_tiny_training_saves_a_model_version_that_predicts_in_original_pixels(
    engine: Engine, settings: Settings, scenes_project: int, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = time.monotonic()
    with session_scope(engine) as session:
        job_id = create_job(session, JOB_KIND, train_params(scenes_project, epochs=3, **TINY), scenes_project).id
    assert run_job(settings, engine, job_id) is JobStatus.SUCCEEDED, _job(engine, job_id).error
    elapsed = time.monotonic() - t0
    job = _job(engine, job_id)
    assert job.result is not None
    # Progress carried epoch, step, loss, images/s and the loss curve.
    assert {"epoch", "step", "loss", "images_per_s", "eta_s", "curve"} <= set(job.progress)
    history = job.result and _version(engine, job.result["model_version_id"]).metrics["history"]
    assert len(history) == 3
    assert history[-1]["loss"] < history[0]["loss"], history  # the loss falls

    version = _version(engine, job.result["model_version_id"])
    assert version.job_id == job_id and len(version.dataset_hash) == 64
    assert version.params["class_names"] == list(CLASSES) and version.params["alpha"] == 0.35
    assert version.params["head_convs"] == DEFAULTS["head_convs"] == 1  # the job's default, not the spec's
    assert version.params["pyramid_width"] == DEFAULTS["pyramid_width"] == 128
    assert version.params["box_loss"] == DEFAULTS["box_loss"] == "huber+ciou"  # compiled, trained, saved with CIoU
    assert version.params["classes_left_out"] == ["Unused"]
    assert "left out (no box in the train split): Unused" in capsys.readouterr().err  # the job's log (stderr)
    assert 0.0 <= version.metrics["map50"] <= 1.0
    assert set(version.metrics["ap50"]) == set(CLASSES)
    assert version.params["images"]["train"] >= 20
    path = model_file(settings, version)
    assert path.is_file() and path.is_relative_to(settings.models_dir)

    from core.model.detector.predict import Detector

    detector = Detector.load(path, batch_size=4)
    scene, _ = make_scene(999, width=300, height=150)  # another size and aspect than training
    big = scene.resize((600, 300))
    # 5 images with batch 4: the partial last batch must work (keras-hub crashes on it unpadded).
    results = detector.predict([scene, big, scene, scene, np.asarray(scene)])
    assert len(results) == 5
    for (w, h), dets in zip([(300, 150), (600, 300), (300, 150), (300, 150), (300, 150)], results, strict=True):
        assert dets, "score_threshold 0 keeps boxes"
        for d in dets:
            assert 0.0 <= d.score <= 1.0
            assert 0 <= d.box.x_min < d.box.x_max <= w and 0 <= d.box.y_min < d.box.y_max <= h
            assert d.label in CLASSES
    # Same picture at twice the size: the same boxes, twice as large (original-image pixels).
    top_small, top_big = results[0][0], results[1][0]
    assert top_big.box.iou(top_small.box.scaled(2, 2)) > 0.8
    assert results[0] == results[2]
    print(f"tiny training job: {elapsed:.0f} s")  # no timed assertion (shared CI cores); see docs/benchmarks.md


def _version(engine: Engine, version_id: int) -> ModelVersion:
    with session_scope(engine) as session:
        v = session.get(ModelVersion, version_id)
        assert v is not None
        session.expunge(v)
        return v


def test_second_training_for_the_same_project_is_refused(engine: Engine, scenes_project: int) -> None:
    with session_scope(engine) as session:
        create_job(session, JOB_KIND, train_params(scenes_project), scenes_project, exclusive=True)
    with session_scope(engine) as session, pytest.raises(JobError, match="already queued"):
        create_job(session, JOB_KIND, train_params(scenes_project), scenes_project, exclusive=True)


def test_killed_worker_fails_by_heartbeat_and_resume_continues_from_the_checkpoint(
    engine: Engine, settings: Settings, scenes_project: int
) -> None:
    with session_scope(engine) as session:
        job_id = create_job(session, JOB_KIND, train_params(scenes_project, epochs=2, **TINY), scenes_project).id
    pid = launch(settings, job_id, engine)
    state = settings.jobs_dir / f"train-{job_id}" / "backup" / "training_metadata.json"
    deadline = time.monotonic() + 150
    while not state.exists():  # wait for the first epoch's checkpoint
        assert time.monotonic() < deadline, (settings.jobs_dir / f"job-{job_id}.log").read_text()[-3000:]
        assert _job(engine, job_id).status in (JobStatus.QUEUED, JobStatus.RUNNING), _job(engine, job_id).error
        time.sleep(0.5)
    os.killpg(pid, signal.SIGKILL)  # a crash: no chance to write a final state
    for _ in range(100):
        try:
            os.waitpid(pid, os.WNOHANG)
            os.kill(pid, 0)
        except (ChildProcessError, ProcessLookupError):
            break
        time.sleep(0.1)
    assert _job(engine, job_id).status is JobStatus.RUNNING  # nobody has noticed yet
    # The heartbeat goes stale: look 61 s into the future rather than sleeping.
    with session_scope(engine) as session:
        assert reap_stale(session, now_fn=lambda: utcnow() + timedelta(seconds=61)) == [job_id]
    failed = _job(engine, job_id)
    assert failed.status is JobStatus.FAILED and "stopped answering" in (failed.error or "")
    done_epochs = json.loads(state.read_text())["epoch"]
    assert done_epochs >= 1

    with session_scope(engine) as session:
        params = resume_params(session, job_id)
        resumed = create_job(session, JOB_KIND, params, scenes_project, exclusive=True).id
    assert run_job(settings, engine, resumed) is JobStatus.SUCCEEDED, _job(engine, resumed).error
    result = _job(engine, resumed).result
    assert result is not None and result["resumed_from_epoch"] == done_epochs
    version = _version(engine, result["model_version_id"])
    assert [h["epoch"] for h in version.metrics["history"]] == [1, 2]  # history continues, not restarts
    assert version.params["resumed_job"] == job_id
    assert Path(_job(engine, resumed).params["work_dir"]) == settings.jobs_dir / f"train-{job_id}"
    with session_scope(engine) as session:
        assert len(list(session.scalars(select(ModelVersion)))) == 1
        with pytest.raises(JobError, match="nothing to resume"):
            resume_params(session, resumed)


@pytest.mark.parametrize(("setting", "as_trained"), [("head_convs", 2), ("pyramid_width", 256)])
def test_a_job_saved_before_a_setting_existed_resumes_with_the_model_it_trained(
    engine: Engine, scenes_project: int, setting: str, as_trained: int
) -> None:
    # Jobs started before these settings stored neither; their checkpoints hold two convs per head
    # and keras-hub's 256-channel pyramid, so a resume must build the spec's own defaults, not
    # today's job defaults (1 and 128).
    old = {k: v for k, v in train_params(scenes_project, **TINY).items() if k != setting}
    with session_scope(engine) as session:
        job = create_job(session, JOB_KIND, old, scenes_project)
        job.status = JobStatus.FAILED
        job_id = job.id
    with session_scope(engine) as session:
        params = resume_params(session, job_id)
    assert setting not in params and params["resume_job"] == job_id
    assert getattr(DetectorSpec(class_names=("a",)), setting) == as_trained != DEFAULTS[setting]


def test_missing_weights_file_fails_the_job_with_a_clear_message_never_random_init(
    engine: Engine, settings: Settings, scenes_project: int, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.weights.h5"
    with session_scope(engine) as session:
        params = train_params(scenes_project, epochs=1, **{**TINY, "weights": str(missing)})
        job_id = create_job(session, JOB_KIND, params, scenes_project).id
    assert run_job(settings, engine, job_id) is JobStatus.FAILED
    job = _job(engine, job_id)
    assert "WeightsUnavailableError" in (job.error or "") and "does not exist" in (job.error or "")
    with session_scope(engine) as session:
        assert session.scalars(select(ModelVersion)).first() is None


def test_cli_train_and_predict_report_user_errors_without_traceback(settings: Settings, engine: Engine) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "core", *args, "--db", settings.db_url, "--data-dir", str(settings.data_dir)],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
        )

    run = cli("train", "--resume", "999")
    assert run.returncode == 1 and "No training job #999" in run.stderr and "Traceback" not in run.stderr
    run = cli("train", "--project", "Nope")
    assert run.returncode == 1 and "No project 'Nope'" in run.stderr
    run = cli("predict", "--model-version", "7", str(root / "README.md"))
    assert run.returncode == 1 and "No model version #7" in run.stderr


def test_train_params_zero_budget_or_patience_switch_them_off() -> None:
    from core.model.training import DEFAULTS

    params = train_params(3, budget_minutes=0, patience=0, epochs=12)
    assert params["budget_minutes"] is None and params["patience"] is None and params["epochs"] == 12
    assert train_params(3, budget_minutes=-1)["budget_minutes"] is None
    # None still means "the default", so an unset option keeps the minutes budget.
    default = train_params(3, budget_minutes=None, patience=None)
    assert default["budget_minutes"] == DEFAULTS["budget_minutes"] and default["patience"] == DEFAULTS["patience"]
    assert train_params(3, budget_minutes=2.5, patience=3)["budget_minutes"] == 2.5


def test_classes_are_the_labels_with_boxes_in_the_train_split(engine: Engine, settings: Settings) -> None:
    """The class list and the records' class indices, from a real export of a real database."""
    from core.dataset.exporter import export_dataset
    from core.model.detector.data import tfrecord_dataset, tfrecord_files, train_classes
    from core.project.projects import set_labels
    from db.models import BoxRow, Image, Label, Project, Split

    with session_scope(engine) as session:
        pid = create_project(session, "Classes", labels=list(CLASSES)).id
    store_scenes(engine, settings, pid, n=12)
    with session_scope(engine) as session:
        project = session.get(Project, pid)
        # Kept labels after left-out ones, so class index != label-map id - 1.
        set_labels(session, project, ["Unused", CLASSES[0], "Only in test", CLASSES[1]])
        only_in_test = session.scalar(select(Label.id).where(Label.project_id == pid, Label.name == "Only in test"))
        images = list(session.scalars(select(Image).where(Image.project_id == pid).order_by(Image.id)))
        for n, image in enumerate(images):
            image.split = Split.TRAIN if n < 8 else (Split.VAL if n < 10 else Split.TEST)
        session.add(BoxRow(image_id=images[-1].id, label_id=only_in_test, x_min=1, y_min=1, x_max=30, y_max=30))
        test_boxes = {  # label name -> boxes on test images, from the database
            name: n
            for name, n in session.execute(
                select(Label.name, func.count())
                .select_from(BoxRow)
                .join(Label)
                .join(Image)
                .where(Image.project_id == pid, Image.split == Split.TEST)
                .group_by(Label.name)
            )
        }
    out = settings.data_dir / "export"
    export_dataset(engine, settings, pid, "tfrecord", out)

    plan = train_classes(out)
    assert plan.names == CLASSES and plan.ids == (2, 4)  # label-map ids of the kept labels
    assert plan.left_out == ("Unused", "Only in test")
    assert plan.not_evaluated == 1  # the "Only in test" box of the test split
    assert "left out (no box in the train split): Unused, Only in test" in plan.message()

    labels = [
        lab
        for ex in tfrecord_dataset(tfrecord_files(out, "test"), class_ids=plan.ids).as_numpy_iterator()
        for lab in ex["labels"].tolist()
    ]
    assert sorted(labels) == sorted([0] * test_boxes.get(CLASSES[0], 0) + [1] * test_boxes.get(CLASSES[1], 0))
