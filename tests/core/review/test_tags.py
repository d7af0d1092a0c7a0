"""Reviewing tag suggestions of a tags model version: queue order and filters, decisions, summaries, auto-accept."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.project.imagestore import ImageStore
from core.project.ingest import ingest_one
from core.project.projects import create_project
from core.review.errors import ReviewError
from core.review.summaries import decision_summary, reviewed_since
from core.review.tags import (
    auto_accept_tags,
    decide_tag,
    latest_tags_version_id,
    tag_decision_summary,
    tags_queue,
)
from db.engine import session_scope
from db.models import Image, ModelVersion, ReviewDecision
from tests.core.dataset_factory import jpeg_bytes
from tests.core.tags_factory import add_tags_version

pytestmark = pytest.mark.both_databases

HEADS = {"category": ["Shoes", "Shirt", "Polo"], "colour": ["red", "blue"]}


def _add_version(session, project_id: int, predictions: dict[str, dict[str, tuple[str, float]]]) -> int:
    """Image name -> tag -> (value, calibrated confidence), as a tags version's predictions."""
    ids = dict(session.execute(select(Image.original_name, Image.id).where(Image.project_id == project_id)).all())
    rows = [(ids[name], tag, v, c) for name, tags in predictions.items() for tag, (v, c) in tags.items()]
    return add_tags_version(session, project_id, HEADS, rows, name="tags v1")


PREDICTIONS = {
    "a.jpg": {"category": ("Shirt", 0.55), "colour": ("red", 0.97)},
    "b.jpg": {"category": ("Polo", 0.41), "colour": ("blue", 0.62)},
    "c.jpg": {"category": ("Shoes", 0.99), "colour": ("red", 0.90)},
    "d.jpg": {"category": ("Shirt", 0.80)},
}


@pytest.fixture
def tagged(engine, settings) -> tuple[int, int]:
    with session_scope(engine) as session:
        pid = create_project(session, "tags", labels=["Shirts"], attribute_schema=HEADS).id
        for seed, name in enumerate(PREDICTIONS):
            ingest_one(session, ImageStore(settings.data_dir), pid, name, jpeg_bytes(40, 30, seed))
        # d already stores its category (ground truth): its suggestion is not open.
        d = session.scalar(select(Image).where(Image.original_name == "d.jpg"))
        d.attributes = {"category": "Polo"}
        vid = _add_version(session, pid, PREDICTIONS)
    return pid, vid


def _attrs(session, name: str) -> dict:
    return dict(session.scalar(select(Image.attributes).where(Image.original_name == name)) or {})


def test_queue_lowest_confidence_first_with_filters(engine, tagged) -> None:
    pid, vid = tagged
    with session_scope(engine) as session:
        assert latest_tags_version_id(session, pid) == vid
        queue = tags_queue(session, pid, vid)
        assert [(s.image_name, s.tag, s.confidence) for s in queue] == [
            ("b.jpg", "category", 0.41),
            ("a.jpg", "category", 0.55),
            ("b.jpg", "colour", 0.62),
            ("c.jpg", "colour", 0.90),
            ("a.jpg", "colour", 0.97),
            ("c.jpg", "category", 0.99),
        ]
        assert [s.image_name for s in tags_queue(session, pid, vid, tags=["colour"])] == ["b.jpg", "c.jpg", "a.jpg"]
        assert [(s.image_name, s.tag) for s in tags_queue(session, pid, vid, values=["red"])] == [
            ("c.jpg", "colour"),
            ("a.jpg", "colour"),
        ]
        assert [s.image_name for s in tags_queue(session, pid, vid, tags=["category"], values=["Shirt"])] == ["a.jpg"]
        assert queue[0].probabilities["Polo"] == pytest.approx(0.41)


def test_accept_change_skip_store_ground_truth_and_are_summarised(engine, tagged) -> None:
    pid, vid = tagged
    with session_scope(engine) as session:
        rev = session.scalar(select(Image.revision).where(Image.original_name == "a.jpg"))
        assert decide_tag(session, pid, vid, _id(session, "a.jpg"), "category", "accept", "ann") == (
            "a.jpg: category = Shirt accepted."
        )
        decide_tag(session, pid, vid, _id(session, "b.jpg"), "category", "change", "ann", chosen="Shirt")
        decide_tag(session, pid, vid, _id(session, "b.jpg"), "colour", "skip", "ann")
        with pytest.raises(ReviewError, match="not a value of 'colour'"):
            decide_tag(session, pid, vid, _id(session, "a.jpg"), "colour", "change", "ann", chosen="green")
        with pytest.raises(ReviewError, match="already decided"):
            decide_tag(session, pid, vid, _id(session, "a.jpg"), "category", "accept", "ann")
    with session_scope(engine) as session:
        assert _attrs(session, "a.jpg") == {"category": "Shirt"}
        assert session.scalar(select(Image.revision).where(Image.original_name == "a.jpg")) == rev + 1
        assert _attrs(session, "b.jpg") == {"category": "Shirt"}  # changed; colour skipped: nothing stored
        rows = session.scalars(select(ReviewDecision).order_by(ReviewDecision.id)).all()
        assert [(r.decision, r.details, r.who) for r in rows] == [
            ("accepted", {"tag": "category", "suggested": "Shirt", "chosen": "Shirt", "confidence": 0.55}, "ann"),
            ("changed", {"tag": "category", "suggested": "Polo", "chosen": "Shirt", "confidence": 0.41}, "ann"),
            ("skipped", {"tag": "colour", "suggested": "blue", "chosen": None, "confidence": 0.62}, "ann"),
        ]
        assert [(s.image_name, s.tag) for s in tags_queue(session, pid, vid)] == [
            ("c.jpg", "colour"),
            ("a.jpg", "colour"),
            ("c.jpg", "category"),
        ]
        summary = {r["tag"]: r for r in tag_decision_summary(session, pid)}
        assert summary["category"]["accepted"] == 1 and summary["category"]["changed"] == 1
        assert summary["category"]["accepted_share"] == 0.5
        assert summary["colour"]["skipped"] == 1 and summary["colour"]["accepted_share"] is None
        # Tag decisions stay out of the box summaries.
        assert decision_summary(session, pid) == []
        assert reviewed_since(session, pid, None) == 0


def test_a_tag_stored_meanwhile_is_not_overwritten(engine, tagged) -> None:
    pid, vid = tagged
    with session_scope(engine) as session:
        image = session.scalar(select(Image).where(Image.original_name == "a.jpg"))
        queue_before = tags_queue(session, pid, vid)
        image.attributes = {"colour": "blue"}
        image.updated_by = "someone"
        session.flush()
        assert ("a.jpg", "colour") in {(s.image_name, s.tag) for s in queue_before}
        with pytest.raises(ReviewError, match="colour was set to 'blue' meanwhile"):
            decide_tag(session, pid, vid, image.id, "colour", "accept", "ann")
        assert ("a.jpg", "colour") not in {(s.image_name, s.tag) for s in tags_queue(session, pid, vid)}


def test_auto_accept_by_tag_value_with_an_audit_sample(engine, tagged) -> None:
    pid, vid = tagged
    thresholds = {"colour": {"red": 0.9}, "category": {"Shoes": 0.95}}
    with session_scope(engine) as session:
        result = auto_accept_tags(session, pid, vid, thresholds, audit_fraction=0.0)
        # c colour 0.90, a colour 0.97, c category 0.99 clear; b's and a's category do not.
        assert (result.accepted, result.audit, result.left) == (3, 0, 3)
        assert _attrs(session, "c.jpg") == {"colour": "red", "category": "Shoes"}
        auto = session.scalars(select(ReviewDecision).where(ReviewDecision.decision == "auto_accepted")).all()
        assert {r.who for r in auto} == {"auto-accept"} and len(auto) == 3
        again = auto_accept_tags(session, pid, vid, thresholds, audit_fraction=0.0)
        assert (again.accepted, again.left) == (0, 3)


def test_audit_sample_is_left_for_people_first_in_the_queue_and_measures_the_error(engine, tagged) -> None:
    pid, vid = tagged
    thresholds = {"colour": {"red": 0.5, "blue": 0.5}, "category": {"Shoes": 0.5, "Shirt": 0.5, "Polo": 0.3}}
    with session_scope(engine) as session:
        result = auto_accept_tags(session, pid, vid, thresholds, audit_fraction=1.0, seed=3)
        assert (result.accepted, result.audit) == (0, 6)
        queue = tags_queue(session, pid, vid)
        assert all(s.audit for s in queue) and len(queue) == 6
        # Run again: the audited ones are not audited twice.
        assert auto_accept_tags(session, pid, vid, thresholds, audit_fraction=1.0, seed=3).audit == 0
        decide_tag(session, pid, vid, _id(session, "a.jpg"), "category", "accept", "ann")
        decide_tag(session, pid, vid, _id(session, "b.jpg"), "category", "change", "ann", chosen="Shoes")
        summary = {r["tag"]: r for r in tag_decision_summary(session, pid)}
        assert summary["category"]["audit"] == 3 and summary["category"]["audit_error"] == 0.5


def test_the_audit_sample_is_the_same_on_every_run(engine, tagged) -> None:
    pid, vid = tagged
    thresholds = {"colour": {"red": 0.5, "blue": 0.5}, "category": {"Shoes": 0.5, "Shirt": 0.5, "Polo": 0.3}}
    picks = []
    with session_scope(engine) as session:
        for _ in range(2):
            with session.begin_nested() as sp:
                result = auto_accept_tags(session, pid, vid, thresholds, audit_fraction=0.5, seed=7)
                audited = sorted(
                    (r.image_id, r.details["tag"])
                    for r in session.scalars(select(ReviewDecision).where(ReviewDecision.decision == "audit"))
                )
                picks.append((result.accepted, audited))
                # The audited suggestions were stored nowhere.
                for image_id, tag in audited:
                    assert tag not in (session.get(Image, image_id).attributes or {})
                sp.rollback()
    assert picks[0] == picks[1]
    assert 0 < len(picks[0][1]) < 6 and picks[0][0] + len(picks[0][1]) == 6


def test_a_detector_version_is_refused(engine, tagged) -> None:
    pid, _vid = tagged
    with session_scope(engine) as session:
        det = ModelVersion(project_id=pid, name="det", path="m.keras")
        session.add(det)
        session.flush()
        with pytest.raises(ReviewError, match="not a tags model"):
            tags_queue(session, pid, det.id)


def _id(session, name: str) -> int:
    return session.scalar(select(Image.id).where(Image.original_name == name))
