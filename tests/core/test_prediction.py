"""Prediction store and the review loop end to end on a real SQLite file with a tiny trained model.

One tiny model (96x128 inputs, MobileNetV2 alpha 0.35, random weights, one epoch) is trained
on a small demo project once per module; the suite runs on 2 CPU cores.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from core.database import open_database
from core.demo_project import create_demo_project
from core.jobs import create_job, run_job
from core.prediction import JOB_KIND, PredictionError, predict_images, predict_params, select_images
from core.settings import Settings
from core.training import JOB_KIND as TRAIN_KIND
from core.training import train_params
from db.engine import session_scope
from db.models import Image, ImageStatus, Job, JobStatus, ModelVersion, Prediction

TINY = {
    "image_height": 96,
    "image_width": 128,
    "alpha": 0.35,
    "weights": "none",
    "batch_size": 4,
    "epochs": 1,
    "eval_every": 5,
    "score_threshold": 0.0,  # one epoch from random weights: keep every box so there is something to review
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, int, int]:
    """A demo project (18 scenes, 12 labelled, 6 new) and a tiny model version trained on it."""
    root = tmp_path_factory.mktemp("review")
    settings = Settings.resolve(db_url=f"sqlite:///{root / 'tagrack.db'}", data_dir=root / "data")
    engine = open_database(settings)
    pid = create_demo_project(engine, settings, name="Demo", count=18)
    with session_scope(engine) as session:
        job_id = create_job(session, TRAIN_KIND, train_params(pid, **TINY), pid).id
    assert run_job(settings, engine, job_id) is JobStatus.SUCCEEDED
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.result is not None
        version_id = int(job.result["model_version_id"])
    engine.dispose()
    return settings, pid, version_id


@pytest.fixture
def db(trained: tuple[Settings, int, int], tmp_path: Path) -> tuple[Engine, Settings, int, int]:
    """A fresh copy of the trained module database for each test (tests change it)."""
    import shutil

    settings, pid, version_id = trained
    db_file = Path(str(settings.db_url).removeprefix("sqlite:///"))
    copy = tmp_path / "tagrack.db"
    shutil.copy(db_file, copy)
    local = Settings.resolve(db_url=f"sqlite:///{copy}", data_dir=settings.data_dir)
    engine = open_database(local)
    yield engine, local, pid, version_id
    engine.dispose()


def test_predict_job_stores_every_prediction_and_keeps_earlier_versions(db) -> None:
    engine, settings, pid, version_id = db
    with session_scope(engine) as session:
        unlabelled = select_images(session, pid, "unlabelled")
        assert len(unlabelled) == 6
        with pytest.raises(PredictionError, match="Unknown split"):
            select_images(session, pid, "split:nope")
        job_id = create_job(session, JOB_KIND, predict_params(version_id, "unlabelled", batch_size=4), pid).id
    # 6 images with batch 4: the partial last batch is padded.
    assert run_job(settings, engine, job_id) is JobStatus.SUCCEEDED
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job.result["images"] == 6 and job.progress["done"] == 6
        n = job.result["predictions"]
        rows = session.scalars(select(Prediction).where(Prediction.model_version_id == version_id)).all()
        assert len(rows) == n > 0
        assert {r.image_id for r in rows} <= set(unlabelled)
        sizes = {i.id: (i.width, i.height) for i in session.scalars(select(Image))}
        for r in rows:
            w, h = sizes[r.image_id]
            assert 0 <= r.x_min < r.x_max <= w and 0 <= r.y_min < r.y_max <= h and 0 <= r.score <= 1
        # A second version: the first version's predictions stay; re-running a version replaces its own.
        v1 = session.get(ModelVersion, version_id)
        session.add(ModelVersion(project_id=pid, name="copy", path=v1.path, params=v1.params))
        session.flush()
        v2 = session.scalar(select(func.max(ModelVersion.id)))
    assert predict_images(engine, settings, v2, unlabelled[:2], batch_size=4) > 0
    assert predict_images(engine, settings, v2, unlabelled[:2], batch_size=4) > 0
    with session_scope(engine) as session:
        per_version = dict(
            session.execute(select(Prediction.model_version_id, func.count()).group_by(Prediction.model_version_id)).tuples().all()
        )
        first_two = session.scalar(
            select(func.count()).where(Prediction.model_version_id == version_id, Prediction.image_id.in_(unlabelled[:2]))
        )
    assert per_version[version_id] == n and per_version[v2] == first_two
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Image).where(Image.status == ImageStatus.NEW)) == 6
