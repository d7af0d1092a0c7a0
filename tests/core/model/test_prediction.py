"""Prediction store and the review loop end to end on a real SQLite file with a tiny trained model.

One tiny model (96x128 inputs, MobileNetV2 alpha 0.35, random weights, one epoch) is trained
on a small demo project once per module; the suite runs on 2 CPU cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from core.boxes import Box
from core.database import open_database
from core.demo import DEMO_LABELS as TINY_CLASSES
from core.demo.project import create_demo_project
from core.jobs import create_job, run_job
from core.model.prediction import JOB_KIND, PredictionError, predict_images, predict_params, select_images
from core.model.training import JOB_KIND as TRAIN_KIND
from core.model.training import train_params
from core.settings import Settings
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
    import sqlite3

    settings, pid, version_id = trained
    db_file = Path(str(settings.db_url).removeprefix("sqlite:///"))
    copy = tmp_path / "tagrack.db"
    # SQLite's backup API, not a file copy: rows still in the write-ahead log (any connection
    # of this process left open keeps it from being checkpointed) would be missing from a copy
    # of the main file alone. CI saw exactly that once: the copy had no model version.
    with sqlite3.connect(db_file) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    local = Settings.resolve(db_url=f"sqlite:///{copy}", data_dir=settings.data_dir)
    engine = open_database(local)
    yield engine, local, pid, version_id
    engine.dispose()


def test_predict_job_stores_every_prediction_and_keeps_earlier_versions(db, capsys: pytest.CaptureFixture[str]) -> None:
    engine, settings, pid, version_id = db
    with session_scope(engine) as session:
        unlabelled = select_images(session, pid, "unlabelled")
        assert len(unlabelled) == 6
        with pytest.raises(PredictionError, match="Unknown split"):
            select_images(session, pid, "split:nope")
    from core.cli import main

    common = ["--model-version", str(version_id), "--db", settings.db_url, "--data-dir", str(settings.data_dir)]
    assert main(["predict", "--images", "split:nope", *common]) == 1
    assert "Unknown split" in capsys.readouterr().err
    # The CLI queues a predict job and runs it here; 6 images with batch 4: the partial last batch is padded.
    assert main(["predict", "--images", "unlabelled", "--batch-size", "4", *common]) == 0
    text = capsys.readouterr().out  # Keras may print progress before the JSON
    out = json.loads(text[text.index('{\n  "job_id"') :])
    assert out["status"] == "succeeded", out
    job_id = out["job_id"]
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
            session.execute(
                select(Prediction.model_version_id, func.count()).group_by(Prediction.model_version_id)
            ).all()
        )
        first_two = session.scalar(
            select(func.count()).where(
                Prediction.model_version_id == version_id, Prediction.image_id.in_(unlabelled[:2])
            )
        )
    assert per_version[version_id] == n and per_version[v2] == first_two
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Image).where(Image.status == ImageStatus.NEW)) == 6


def test_review_loop_accept_correct_reject_then_export_carries_the_reviewed_images(db, tmp_path: Path) -> None:
    import json

    from core.annotate.errors import StaleRevisionError
    from core.dataset.exporter import export_dataset
    from core.review.decisions import accept, correct, reject
    from core.review.item import load_review_item
    from core.review.queue import review_queue
    from core.review.summaries import decision_summary, reviewed_since
    from db.models import BoxRow, BoxSource, ReviewDecision

    engine, settings, pid, version_id = db
    with session_scope(engine) as session:
        job_id = create_job(session, JOB_KIND, predict_params(version_id, "unlabelled", batch_size=4), pid).id
    assert run_job(settings, engine, job_id) is JobStatus.SUCCEEDED

    threshold = 0.0  # one epoch from random weights: scores are low, show every box
    with session_scope(engine) as session:
        queue = review_queue(session, pid, version_id, threshold=threshold)
        assert len(queue) == 6
        tops = [q.top_score for q in queue]
        assert tops == sorted(tops)  # lowest top score first
        margins = [q.margin for q in review_queue(session, pid, version_id, threshold=threshold, order="margin")]
        assert margins == sorted(margins)
        first, second, third = (load_review_item(session, q.image_id, version_id, threshold) for q in queue[:3])
        assert first.predictions and second.predictions and third.predictions

    # 1. accepted as is
    with session_scope(engine) as session:
        r1 = accept(session, first, "rev")
    assert r1.decisions == {"accepted": len(first.predictions)}
    # 2. corrected: the best box moved by a few pixels, everything else deleted, one box added
    moved_pred = second.predictions[0]
    b = moved_pred.box
    moved = Box(b.x_min + 3, b.y_min + 2, b.x_max + 3, b.y_max + 2).clip(second.state.width, second.state.height)
    # The added box must overlap no prediction (IoU <= 0.3), or it would count as one moved:
    # an early model's boxes land anywhere, so pick the free spot instead of assuming a corner.
    w, h = second.state.width, second.state.height
    candidates = [Box(x, y, x + 40, y + 30) for x in range(1, w - 40, 20) for y in range(1, h - 30, 15)]
    added = min(candidates, key=lambda c: max(c.iou(p.box) for p in second.predictions))
    assert max(added.iou(p.box) for p in second.predictions) <= 0.3
    with session_scope(engine) as session:
        r2 = correct(session, second, [(moved_pred.label, moved), ("Shoes", added)], "rev", tolerance=0.01)
    assert r2.decisions["moved"] == 1 and r2.decisions["added"] == 1
    assert r2.decisions.get("deleted", 0) == len(second.predictions) - 1
    # A second save of the same loaded copy is refused (optimistic locking through save_boxes).
    with session_scope(engine) as session, pytest.raises(StaleRevisionError):
        accept(session, second, "someone-else")
    # 3. rejected
    with session_scope(engine) as session:
        reject(session, third, "rev", reason="wrong garments")

    with session_scope(engine) as session:
        img1, img2, img3 = (session.get(Image, i.state.id) for i in (first, second, third))
        assert img1.status is ImageStatus.DONE and img2.status is ImageStatus.DONE
        assert img3.status is ImageStatus.NEW  # back to Annotate
        boxes1 = session.scalars(select(BoxRow).where(BoxRow.image_id == img1.id)).all()
        assert len(boxes1) == len(first.predictions)
        assert all(b.source is BoxSource.MODEL and b.score is not None for b in boxes1)
        scores = sorted(b.score for b in boxes1)
        assert scores == sorted(p.score for p in first.predictions)
        boxes2 = session.scalars(select(BoxRow).where(BoxRow.image_id == img2.id).order_by(BoxRow.id)).all()
        assert [(b.source, b.x_min) for b in boxes2] == [
            (BoxSource.HUMAN, pytest.approx(moved.x_min)),
            (BoxSource.HUMAN, added.x_min),
        ]
        assert not session.scalars(select(BoxRow).where(BoxRow.image_id == img3.id)).all()
        decisions = session.scalars(select(ReviewDecision).where(ReviewDecision.image_id == img2.id)).all()
        moved_rows = [d for d in decisions if d.decision == "moved"]
        # The moved box continues the prediction it overlaps most (the reviewer's, or a near-duplicate).
        assert moved_rows[0].prediction_id in {p.id for p in second.predictions}
        assert moved_rows[0].box_id == boxes2[0].id
        assert 0 < moved_rows[0].details["iou"] < 1 and moved_rows[0].model_version_id == version_id
        assert [d.box_id for d in decisions if d.decision == "added"] == [boxes2[1].id]
        rejected = session.scalars(
            select(ReviewDecision).where(ReviewDecision.image_id == img3.id, ReviewDecision.decision == "rejected")
        ).all()
        assert len(rejected) == len(third.predictions) + 1
        # Reviewed and rejected images leave the queue.
        left = {q.image_id for q in review_queue(session, pid, version_id, threshold=threshold)}
        assert left.isdisjoint({img1.id, img2.id, img3.id}) and len(left) == 3
        summary = decision_summary(session, pid)
        assert sum(r.get("accepted", 0) for r in summary) == len(first.predictions)
        assert reviewed_since(session, pid, None) == 2
        names = {img1.id: img1.original_name, img2.id: img2.original_name}

    out = tmp_path / "voc"
    result = export_dataset(engine, settings, pid, "voc", out)
    assert result["images"] == 12 + 2
    xml = {p.stem: p.read_text() for p in out.rglob("*.xml")}
    for name in names.values():
        stem = Path(name).stem
        assert stem in xml, (stem, sorted(xml))
    coco = tmp_path / "coco"
    export_dataset(engine, settings, pid, "coco", coco)
    files = [json.loads(p.read_text()) for p in coco.rglob("*.json")]
    exported = {img["file_name"] for f in files for img in f.get("images", [])}
    assert set(names.values()) <= exported


def test_auto_accept_takes_confident_images_and_leaves_an_audit_sample(db) -> None:
    from core.review.auto_accept import auto_accept
    from core.review.decisions import accept
    from core.review.item import load_review_item
    from core.review.queue import review_queue
    from core.review.summaries import audit_error_rate
    from db.models import ReviewDecision

    engine, settings, pid, version_id = db
    predict_images(engine, settings, version_id, select_images_ids(engine, pid), batch_size=4)
    everyone = {name: 0.0 for name in TINY_CLASSES}
    with session_scope(engine) as session:
        # Audit share 0.5: some images go to people, the rest are accepted without review.
        result = auto_accept(session, pid, version_id, everyone, threshold=0.0, audit_fraction=0.5, seed=1)
    assert result.accepted + result.audit == 6 and result.accepted > 0 and result.audit > 0
    with session_scope(engine) as session:
        queue = review_queue(session, pid, version_id, threshold=0.0)
        assert len(queue) == result.audit and all(q.audit for q in queue)
        auto_rows = session.scalars(select(ReviewDecision).where(ReviewDecision.decision == "auto_accepted")).all()
        assert auto_rows and all(r.who == "auto-accept" for r in auto_rows)
        item = load_review_item(session, queue[0].image_id, version_id, 0.0)
        accept(session, item, "rev")
    with session_scope(engine) as session:
        n, rate = audit_error_rate(session, version_id)
    assert n == len(item.predictions) and rate == 0.0
    with session_scope(engine) as session:
        # A class without a threshold is never auto-accepted.
        again = auto_accept(session, pid, version_id, {}, threshold=0.0)
    assert again.accepted == 0


def select_images_ids(engine: Engine, pid: int) -> list[int]:
    with session_scope(engine) as session:
        return select_images(session, pid, "unlabelled")


def test_a_version_with_test_time_flip_stores_the_fused_boxes(db) -> None:
    # The accuracy benchmark's sibling: same weights, flip on in its spec. The predict job must
    # honour the spec (the stored boxes are the flipped detector's, not the plain one's).
    from benchmarks.accuracy import flipped_sibling
    from core.model.detector.predict import Detector
    from core.model.training import model_file
    from core.project.imagestore import ImageStore

    engine, settings, pid, version_id = db
    sibling = flipped_sibling(engine, settings, version_id)
    with session_scope(engine) as session:
        image_ids = select_images(session, pid, "unlabelled")[:3]
        path = model_file(settings, session.get(ModelVersion, sibling))
        stored_paths = [session.get(Image, i).stored_path for i in image_ids]
        assert session.get(ModelVersion, sibling).params["test_time_flip"] is True
        assert path.parent != model_file(settings, session.get(ModelVersion, version_id)).parent
    predict_images(engine, settings, sibling, image_ids, batch_size=4)
    store = ImageStore(settings.data_dir)
    pictures = []
    for p in stored_paths:
        with store.open(p) as im:
            pictures.append(im.convert("RGB"))
    flipped = Detector.load(path, batch_size=4).predict(pictures)
    plain = Detector.load(path, batch_size=4, flip=False).predict(pictures)
    with session_scope(engine) as session:
        rows = session.scalars(select(Prediction).where(Prediction.model_version_id == sibling)).all()
        for image_id, expected, single in zip(image_ids, flipped, plain, strict=True):
            mine = sorted(round(r.score, 4) for r in rows if r.image_id == image_id)
            assert mine == sorted(round(d.score, 4) for d in expected)
            assert mine != sorted(round(d.score, 4) for d in single)
