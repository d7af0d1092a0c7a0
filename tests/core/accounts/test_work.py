"""Assigned work and the review stage on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from core.accounts.assignment import assign, may_annotate, order_queue, people_progress, split_evenly, unassign
from core.accounts.review_stage import (
    ReviewStageError,
    accept,
    pending,
    return_to_annotator,
    returned_comment,
    review_counts,
    set_stage,
)
from core.accounts.users import AccountError, add_account, get_account, set_disabled
from core.annotate.queue import AnnotationQueueFilter, QueueViewer, neighbour, next_to_do, queue, queue_page
from core.annotate.save import save_boxes
from core.annotate.state import DraftBox, load_image
from core.boxes import Box
from core.dataset.exporter import export_dataset
from core.project.splits import exportable_per_split
from core.settings import Settings
from db.engine import session_scope
from db.models import AuditEvent, Image, ImageAssignment, ImageStatus
from tests.core.dataset_factory import make_dataset

pytestmark = pytest.mark.both_databases

PEOPLE = ("ann", "bea", "cy")


@pytest.fixture
def people(engine: Engine) -> dict[str, int]:
    with session_scope(engine) as session:
        add_account(session, "boss", "boss-password", "admin")
        add_account(session, "rev", "rev-password", "reviewer")
        return {p: add_account(session, p, f"{p}-password", "annotator").id for p in PEOPLE}


def _all_new(engine: Engine, settings: Settings, project_id: int, n: int) -> list[int]:
    make_dataset(engine, settings, project_id, n=n)
    with session_scope(engine) as session:
        session.execute(update(Image).where(Image.project_id == project_id).values(status=ImageStatus.NEW))
        return list(session.scalars(select(Image.id).order_by(Image.original_name, Image.id)))


def _owned(engine: Engine) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    with session_scope(engine) as session:
        for image_id, account_id in session.execute(select(ImageAssignment.image_id, ImageAssignment.account_id)):
            out.setdefault(account_id, []).append(image_id)
    return {k: sorted(v) for k, v in out.items()}


def test_split_evenly_gives_runs_of_neighbours_differing_by_at_most_one(
    engine: Engine, settings: Settings, project_id: int, people: dict[str, int]
) -> None:
    ids = _all_new(engine, settings, project_id, 11)
    with session_scope(engine) as session:
        assert split_evenly(session, project_id, list(PEOPLE), by="boss") == {"ann": 4, "bea": 4, "cy": 3}
    owned = _owned(engine)
    assert owned[people["ann"]] == sorted(ids[:4]) and owned[people["bea"]] == sorted(ids[4:8])
    assert owned[people["cy"]] == sorted(ids[8:])
    # Nothing unassigned is left, so a second split hands out nothing.
    with session_scope(engine) as session:
        assert split_evenly(session, project_id, ["ann"], by="boss") == {"ann": 0}
        assert unassign(session, project_id, "cy", by="boss") == 3
        assert split_evenly(session, project_id, ["ann", "bea"], by="boss") == {"ann": 2, "bea": 1}


def test_assign_by_count_among_a_filter_and_refusals(
    engine: Engine, settings: Settings, project_id: int, people: dict[str, int]
) -> None:
    ids = _all_new(engine, settings, project_id, 8)
    with session_scope(engine) as session:
        assert assign(session, project_id, "ann", 3, image_ids=ids[4:], by="boss") == 3
        assert assign(session, project_id, "bea", 10, by="boss") == 5  # only five are left unassigned
        with pytest.raises(AccountError, match="at least one"):
            assign(session, project_id, "cy", 0)
        with pytest.raises(AccountError, match="not an enabled account"):
            assign(session, project_id, "nobody", 1)
        set_disabled(session, "cy", True, by="boss")
        with pytest.raises(AccountError, match="not an enabled account"):
            split_evenly(session, project_id, ["cy"])
    assert _owned(engine)[people["ann"]] == sorted(ids[4:7])
    with session_scope(engine) as session:
        assert may_annotate(session, ids[4], people["ann"]) and not may_annotate(session, ids[4], people["bea"])
        entries = queue(session, project_id)
        mine_first = order_queue(session, entries, people["ann"], "ann", hide_others=True)
        assert [e.id for e in mine_first] == ids[4:7]  # bea has the rest; annotators do not see others' images
        everyone = order_queue(session, entries, people["ann"], "ann", hide_others=False)
        assert [e.id for e in everyone][:3] == ids[4:7] and len(everyone) == 8
        # The page's SQL (keyset) queue in the person's order is the same as the reference order.
        assert _sql_queue(session, project_id, QueueViewer(people["ann"], "ann", True)) == [e.id for e in mine_first]
        assert _sql_queue(session, project_id, QueueViewer(people["ann"], "ann", False)) == [e.id for e in everyone]
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "images_assigned")).all()
        assert [e.detail["to"] for e in events] == [{"ann": 3}, {"bea": 5}]


def _sql_queue(session: Session, project_id: int, viewer: QueueViewer) -> list[int]:
    """The Annotate page's queue for ``viewer`` as it reads it: by keyset, one neighbour at a time."""
    flt = AnnotationQueueFilter(viewer=viewer)
    whole = [e.id for e in queue(session, project_id, flt)]
    first = queue_page(session, project_id, flt, limit=1)
    walked, entry = [], first[0] if first else None
    while entry is not None:
        walked.append(entry.id)
        entry = neighbour(session, project_id, flt, entry, 1)
    assert walked == whole  # keyset steps agree with the whole ordered queue
    return whole


def _save(engine: Engine, image_id: int, who: str, n_boxes: int = 1) -> None:
    with session_scope(engine) as session:
        state = load_image(session, image_id)
        drafts = [DraftBox(label="Jeans", box=Box(2 + 10 * k, 2, 9 + 10 * k, 20)) for k in range(n_boxes)]
        save_boxes(session, image_id, state.revision, drafts, who)


def _ground_truth(engine: Engine, project_id: int) -> int:
    with session_scope(engine) as session:
        return sum(exportable_per_split(session, project_id).values())


def test_review_stage_return_with_comment_fix_accept(
    engine: Engine, settings: Settings, project_id: int, people: dict[str, int], tmp_path: Path
) -> None:
    make_dataset(engine, settings, project_id, n=6)
    with session_scope(engine) as session:
        new_id = session.scalar(select(Image.id).where(Image.status == ImageStatus.NEW))
    before = _ground_truth(engine, project_id)
    with session_scope(engine) as session:
        assert set_stage(session, project_id, True, by="boss") == before  # finished work stays in the dataset
    _save(engine, new_id, "ann")
    with session_scope(engine) as session:
        assert pending(session, project_id) == [(new_id, session.get(Image, new_id).original_name, "ann")]
    assert _ground_truth(engine, project_id) == before  # pending work is not ground truth yet
    with session_scope(engine) as session:
        with pytest.raises(ReviewStageError, match="needs a comment"):
            return_to_annotator(session, new_id, "rev", "  ")
        return_to_annotator(session, new_id, "rev", "The left jeans box cuts the hem off.")
    with session_scope(engine) as session:
        assert returned_comment(session, new_id) == ("The left jeans box cuts the hem off.", "rev")
        with pytest.raises(ReviewStageError, match="not waiting"):
            accept(session, new_id, "rev")
        # The annotator sees the returned image first.
        ordered = order_queue(session, queue(session, project_id), people["ann"], "ann", hide_others=True)
        assert ordered[0].id == new_id
        viewer = QueueViewer(people["ann"], "ann", True)
        assert _sql_queue(session, project_id, viewer) == [e.id for e in ordered]
        # Returned work is to do again: "Next new image" stops at it.
        to_do = next_to_do(session, project_id, AnnotationQueueFilter(viewer=viewer))
        assert to_do is not None and to_do.id == new_id and to_do.status == ImageStatus.IN_PROGRESS
    _save(engine, new_id, "ann", n_boxes=2)  # the fix
    with session_scope(engine) as session:
        assert returned_comment(session, new_id) is None and [p[0] for p in pending(session, project_id)] == [new_id]
        accept(session, new_id, "rev")
    assert _ground_truth(engine, project_id) == before + 1
    result = export_dataset(engine, settings, project_id, "csv", tmp_path / "out")
    assert result["images"] == before + 1
    with session_scope(engine) as session:
        assert review_counts(session, project_id) == {"accepted": before + 1}
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
        assert [a for a in actions if a.startswith("review")] == ["review_stage", "review_returned", "review_accepted"]


def test_pending_work_counts_again_when_the_stage_is_off(
    engine: Engine, settings: Settings, project_id: int, people: dict[str, int]
) -> None:
    make_dataset(engine, settings, project_id, n=6)
    before = _ground_truth(engine, project_id)
    with session_scope(engine) as session:
        new_id = session.scalar(select(Image.id).where(Image.status == ImageStatus.NEW))
        set_stage(session, project_id, True)
    _save(engine, new_id, "ann")
    assert _ground_truth(engine, project_id) == before
    with session_scope(engine) as session:
        set_stage(session, project_id, False)
    assert _ground_truth(engine, project_id) == before + 1


def test_people_progress_counts_assigned_and_finished(
    engine: Engine, settings: Settings, project_id: int, people: dict[str, int]
) -> None:
    ids = _all_new(engine, settings, project_id, 6)
    with session_scope(engine) as session:
        split_evenly(session, project_id, ["ann", "bea"], by="boss")
    _save(engine, ids[0], "ann")
    _save(engine, ids[1], "ann")
    _save(engine, ids[3], "ann")  # bea's image, saved by ann (an admin could; counts for ann's throughput)
    with session_scope(engine) as session:
        rows = {p.username: p for p in people_progress(session, project_id)}
        assert get_account(session, "ann") is not None
    assert (rows["ann"].assigned, rows["ann"].assigned_done, rows["ann"].finished) == (3, 2, 3)
    assert (rows["bea"].assigned, rows["bea"].assigned_done, rows["bea"].finished) == (3, 1, 0)
    assert rows["ann"].finished_week == 3 and rows["ann"].per_day == round(3 / 7, 1)
