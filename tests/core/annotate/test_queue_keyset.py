"""The annotation queue read a page at a time (keyset on name, id): every image once, whatever is inserted meanwhile."""

from __future__ import annotations

import threading
from itertools import count

import pytest
from sqlalchemy import Engine, insert, select

from core.annotate.queue import (
    AnnotationQueueFilter,
    QueueEntry,
    find_in_queue,
    neighbour,
    next_to_do,
    position,
    queue,
    queue_count,
    queue_entry,
    queue_page,
)
from db.engine import session_scope
from db.models import BoxRow, Image, ImageStatus, Label

pytestmark = pytest.mark.both_databases

_sha = count()


def _add_images(engine: Engine, project_id: int, names: list[str], status: ImageStatus = ImageStatus.NEW) -> None:
    """Image rows as an import writes them (one transaction, committed), without the files: the queue reads none."""
    with session_scope(engine) as session:
        session.execute(
            insert(Image),
            [
                dict(
                    project_id=project_id,
                    sha256=f"{next(_sha):064x}",
                    stored_path="blobs/x.jpg",
                    display_path="blobs/x.jpg",
                    width=64,
                    height=48,
                    original_name=name,
                    status=status,
                    attributes={},
                )
                for name in names
            ],
        )


def _walk(engine: Engine, project_id: int, flt: AnnotationQueueFilter, limit: int, between=None) -> list[QueueEntry]:
    seen: list[QueueEntry] = []
    after = None
    while True:
        with session_scope(engine) as session:
            page = queue_page(session, project_id, flt, after=after, limit=limit)
        if not page:
            return seen
        seen.extend(page)
        after = page[-1]
        if between is not None:
            between(len(seen))


def test_pages_hold_every_image_once_while_others_insert(engine: Engine, project_id: int) -> None:
    # Equal names too: the id breaks the tie, so a page boundary inside a run of equal names loses none.
    _add_images(engine, project_id, [f"img_{i:04d}.jpg" for i in range(0, 600, 2)] + ["same.jpg"] * 25)
    with session_scope(engine) as session:
        before = {e.id for e in queue(session, project_id)}
    inserted: list[str] = []

    def insert_some(seen: int) -> None:
        if len(inserted) >= 60:  # a bounded writer: one that always adds past the cursor never lets a walk end
            return
        # Another person's import commits between two page reads: names before the cursor,
        # after it, and equal to names already read (an OFFSET would shift and repeat or skip).
        names = [f"img_{seen:04d}b.jpg", f"img_{(seen * 7) % 600:04d}.jpg", "same.jpg", f"aaa_{seen}.jpg"]
        inserted.extend(names)
        _add_images(engine, project_id, names)

    seen = _walk(engine, project_id, AnnotationQueueFilter(), limit=17, between=insert_some)
    ids = [e.id for e in seen]
    assert len(ids) == len(set(ids)), "an image came twice"
    assert before <= set(ids), f"{len(before - set(ids))} images that were there all along were skipped"
    keys = [(e.name, e.id) for e in seen]
    assert keys == sorted(keys)
    assert inserted  # the inserts really happened between pages


def test_pages_hold_every_image_once_under_a_concurrent_writer(engine: Engine, project_id: int) -> None:
    _add_images(engine, project_id, [f"p_{i:04d}.jpg" for i in range(400)])
    with session_scope(engine) as session:
        before = {e.id for e in queue(session, project_id)}
    stop = threading.Event()
    written = []

    def writer() -> None:
        n = 0
        while not stop.is_set() and n < 300:
            _add_images(engine, project_id, [f"p_{(n * 37) % 400:04d}.jpg", f"p_{n:04d}x.jpg"])
            written.append(n)
            n += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen = _walk(engine, project_id, AnnotationQueueFilter(), limit=9)
    finally:
        stop.set()
        thread.join()
    ids = [e.id for e in seen]
    assert len(ids) == len(set(ids))
    assert before <= set(ids)
    assert written


def test_navigation_by_keyset_agrees_with_the_whole_queue(engine: Engine, project_id: int) -> None:
    _add_images(engine, project_id, ["c.jpg", "a.jpg", "B_1.jpg", "d%.jpg"])
    _add_images(engine, project_id, ["b.jpg", "e.jpg"], status=ImageStatus.DONE)
    with session_scope(engine) as session:
        label_id = session.scalar(select(Label.id).where(Label.project_id == project_id))
        done_e = session.scalar(select(Image.id).where(Image.original_name == "e.jpg"))
        session.execute(insert(BoxRow), [dict(image_id=done_e, label_id=label_id, x_min=1, y_min=1, x_max=9, y_max=9)])
    flt = AnnotationQueueFilter()
    with session_scope(engine) as session:
        every = queue(session, project_id)
        assert queue_count(session, project_id) == len(every) == 6
        for i, e in enumerate(every):
            assert position(session, project_id, flt, e) == i
            assert neighbour(session, project_id, flt, e, 1) == (every[i + 1] if i + 1 < len(every) else None)
            assert neighbour(session, project_id, flt, e, -1) == (every[i - 1] if i else None)
            assert queue_entry(session, project_id, flt, e.id) == e
        names = [e.name for e in every]
        assert names == sorted(names)
        first = next_to_do(session, project_id, flt)
        assert first is not None and first.status is ImageStatus.NEW and first.name == names[0]
        last_new = [e for e in every if e.status is ImageStatus.NEW][-1]
        assert next_to_do(session, project_id, flt, after=last_new) == first  # wraps to the start
        by_label = AnnotationQueueFilter(label_ids=(label_id,))
        assert [e.name for e in queue_page(session, project_id, by_label)] == ["e.jpg"]
        assert queue_entry(session, project_id, by_label, every[0].id) is None
        assert queue_count(session, project_id, AnnotationQueueFilter(statuses=(ImageStatus.DONE,))) == 2
        # Jump by name: exact, any letter case, then contained; % and _ are literal characters.
        assert find_in_queue(session, project_id, flt, "b.jpg").name == "b.jpg"  # type: ignore[union-attr]
        assert find_in_queue(session, project_id, flt, "B.JPG").name == "b.jpg"  # type: ignore[union-attr]
        assert find_in_queue(session, project_id, flt, "_1").name == "B_1.jpg"  # type: ignore[union-attr]
        assert find_in_queue(session, project_id, flt, "d%").name == "d%.jpg"  # type: ignore[union-attr]
        assert find_in_queue(session, project_id, flt, "%").name == "d%.jpg"  # type: ignore[union-attr]
        assert find_in_queue(session, project_id, flt, "zzz") is None
        assert find_in_queue(session, project_id, flt, "  ") is None
