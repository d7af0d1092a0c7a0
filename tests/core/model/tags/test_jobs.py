"""The train-tags and predict-tags jobs end to end on a tiny Pillow-made project (real SQLite, real Keras)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from core.database import open_database
from core.jobs import create_job, run_job
from core.model.tags.jobs import PREDICT_KIND
from core.model.tags.model import Tagger
from core.model.tags.stored import latest_tags_version, tag_probabilities
from core.model.training import model_file
from db.engine import session_scope
from db.models import Image, JobStatus, ModelKind, ModelVersion, TagPrediction
from tests.core.model.tags.conftest import SCHEMA, copy_of


def test_training_registers_a_calibrated_tags_version(tags_trained, tmp_path: Path) -> None:
    settings = copy_of(tags_trained, tmp_path)
    _, pid, _, version_id = tags_trained
    engine = open_database(settings)
    with session_scope(engine) as session:
        version = session.get(ModelVersion, version_id)
        assert version.kind is ModelKind.TAGS
        assert version.params["heads"] == SCHEMA
        assert set(version.params["temperatures"]) == {"category", "colour"}
        assert all(t > 0 for t in version.params["temperatures"].values())
        assert version.metrics["history"] and version.metrics["evaluated_on"] in ("test", "val")
        assert latest_tags_version(session, pid).id == version_id
        # Every tagged image got a split and it is stored; the untagged ones got none.
        splits = dict(session.execute(select(Image.original_name, Image.split)).all())
        assert splits["img8.jpg"] is None and splits["img0.jpg"] is not None
        path = model_file(settings, version)
    tagger = Tagger.load(path)
    assert tagger.spec.heads == SCHEMA and tagger.spec.temperatures == version.params["temperatures"]
    engine.dispose()


def test_predict_job_writes_one_row_per_image_and_tag(tags_trained, tmp_path: Path) -> None:
    settings = copy_of(tags_trained, tmp_path)
    _, pid, _, version_id = tags_trained
    engine = open_database(settings)
    with session_scope(engine) as session:
        job_id = create_job(session, PREDICT_KIND, {"model_version_id": version_id, "images": "all"}, pid).id
    assert run_job(settings, engine, job_id) is JobStatus.SUCCEEDED
    with session_scope(engine) as session:
        images = session.scalar(select(func.count()).select_from(Image))
        rows = session.scalars(select(TagPrediction)).all()
        assert len(rows) == images * 2
        for row in rows:
            assert row.value in SCHEMA[row.tag]
            assert abs(sum(row.probabilities.values()) - 1) < 1e-4
            assert row.confidence == max(row.probabilities.values())
        ids = list(session.scalars(select(Image.id)))
        probs = tag_probabilities(session, version_id, ids)
        assert set(probs) == set(ids)
    # Running it again replaces the rows instead of adding more.
    with session_scope(engine) as session:
        job_id = create_job(session, PREDICT_KIND, {"model_version_id": version_id, "images": "all"}, pid).id
    assert run_job(settings, engine, job_id) is JobStatus.SUCCEEDED
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(TagPrediction)) == images * 2
    engine.dispose()
