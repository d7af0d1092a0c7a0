"""Loading and saving an image's boxes: locking, validation, history, model boxes, queue, progress."""

from __future__ import annotations

import io
import zlib
from datetime import timedelta

import pytest
from PIL import Image as PILImage
from sqlalchemy import Engine, select

from core.annotate.attributes import default_attributes, effective_attributes
from core.annotate.errors import AnnotationError, StaleRevisionError
from core.annotate.matching import has_changes, match_boxes
from core.annotate.queue import UNASSIGNED, AnnotationQueueFilter, find_by_name, first_to_do, progress, queue
from core.annotate.save import SaveResult, copy_boxes, save_boxes
from core.annotate.state import DraftBox, StoredBox, load_image, project_labels, resolve_label
from core.boxes import Box
from core.project.imagestore import ImageStore
from core.project.ingest import ingest_one
from core.settings import Settings
from db.engine import session_scope
from db.models import BoxChange, BoxRow, BoxSource, Image, ImageStatus, Split, utcnow

pytestmark = pytest.mark.both_databases  # the SQL of this module runs on SQLite and PostgreSQL


def _jpeg(width: int, height: int, colour: tuple[int, int, int] = (120, 80, 40)) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(buf, format="JPEG")
    return buf.getvalue()


def add_image(engine: Engine, settings: Settings, project_id: int, name: str, size: tuple[int, int] = (64, 48)) -> int:
    """Ingests a real JPEG of ``size`` (distinct bytes per name) and returns its id."""
    digest = zlib.crc32(name.encode())
    colour = (digest & 0xFF, (digest >> 8) & 0xFF, (digest >> 16) & 0xFF)  # distinct bytes per name
    with session_scope(engine) as session:
        out = ingest_one(session, ImageStore(settings.data_dir), project_id, name, _jpeg(*size, colour=colour))
        assert out.image_id is not None, out
        return out.image_id


@pytest.fixture
def image_id(engine: Engine, settings: Settings, project_id: int) -> int:
    return add_image(engine, settings, project_id, "a.jpg", (640, 480))


def save(
    engine: Engine, image_id: int, revision: int, drafts: list[DraftBox], who: str = "ann", **kw: object
) -> SaveResult:
    with session_scope(engine) as session:
        return save_boxes(session, image_id, revision, drafts, who, **kw)  # type: ignore[arg-type]


def load(engine: Engine, image_id: int):  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        return load_image(session, image_id)


def test_save_new_boxes_records_who_when_and_history(engine: Engine, image_id: int) -> None:
    result = save(engine, image_id, 0, [DraftBox("Shirts", Box(10.25, 20.5, 100, 200))], who="alice")
    assert (result.created, result.revision, result.status) == (1, 1, ImageStatus.DONE)
    state = load(engine, image_id)
    assert state.revision == 1 and state.status is ImageStatus.DONE and state.updated_by == "alice"
    (b,) = state.boxes
    assert b.box == Box(10.25, 20.5, 100, 200) and b.label == "Shirts" and b.created_by == "alice"
    assert b.source is BoxSource.HUMAN and b.updated_at is not None
    with session_scope(engine) as session:
        (change,) = session.scalars(select(BoxChange)).all()
        assert (change.action, change.who, change.box_id, change.revision) == ("created", "alice", b.id, 1)
        assert change.after["label"] == "Shirts" and change.before is None


def test_second_save_with_old_revision_is_refused_and_changes_nothing(engine: Engine, image_id: int) -> None:
    save(engine, image_id, 0, [DraftBox("Shirts", Box(10, 10, 50, 50))], who="tab-one")
    with pytest.raises(StaleRevisionError) as err:
        save(engine, image_id, 0, [DraftBox("Jeans", Box(1, 1, 30, 30))], who="tab-two")
    assert "tab-one" in str(err.value) and "not written" in str(err.value) and err.value.current_revision == 1
    state = load(engine, image_id)
    assert state.revision == 1 and [b.label for b in state.boxes] == ["Shirts"]


def test_boxes_are_clipped_and_bad_ones_refused_with_a_message(engine: Engine, image_id: int) -> None:
    result = save(engine, image_id, 0, [DraftBox("Shirts", Box(-20, -5, 700, 100))])
    assert result.clipped == 1
    assert load(engine, image_id).boxes[0].box == Box(0, 0, 640, 100)

    for bad, words in [
        (DraftBox("Shirts", Box(10, 10, 10, 50)), "zero or negative area"),
        (DraftBox("Shirts", Box(50, 10, 10, 50)), "zero or negative area"),
        (DraftBox("Shirts", Box(700, 10, 800, 50)), "outside"),
        (DraftBox("Shirts", Box(float("nan"), 10, 20, 50)), "non-finite"),
        (DraftBox("Hats", Box(10, 10, 50, 50)), "'Hats', which this project does not have"),
    ]:
        with pytest.raises(AnnotationError, match=words):
            save(engine, image_id, 1, [DraftBox("Jeans", Box(1, 1, 5, 5)), bad])
    state = load(engine, image_id)  # refused saves bump nothing and keep the boxes
    assert state.revision == 1 and [b.label for b in state.boxes] == ["Shirts"]


def test_one_box_with_two_labels_is_refused_with_a_message(engine: Engine, image_id: int) -> None:
    """Two boxes of different labels on (nearly) the same place are one garment stored twice (issue 13)."""
    shirt, jacket = Box(100, 100, 300, 400), Box(101, 100, 300, 402)  # IoU 0.99
    assert shirt.iou(jacket) > 0.95
    with pytest.raises(AnnotationError, match=r"box 1 \(Shirts\) and box 2 \(Jackets\) are the same box") as err:
        save(engine, image_id, 0, [DraftBox("Shirts", shirt), DraftBox("Jackets", jacket)])
    assert "Delete" in str(err.value)
    state = load(engine, image_id)
    assert (state.revision, state.boxes) == (0, ())  # nothing written
    # A jacket over a shirt overlaps a lot but is two garments: saved.
    over = Box(90, 90, 310, 440)
    assert 0.7 < shirt.iou(over) < 0.95
    save(engine, image_id, 0, [DraftBox("Shirts", shirt), DraftBox("Jackets", over)])
    assert [b.label for b in load(engine, image_id).boxes] == ["Shirts", "Jackets"]


def test_a_stored_pair_must_be_resolved_before_the_next_save(engine: Engine, image_id: int) -> None:
    """Such a pair already in the database (an old review) is refused on the next save until one goes."""
    with session_scope(engine) as session:
        labels = {lab.name: lab.id for lab in project_labels(session, session.get(Image, image_id).project_id)}
        for name in ("Shirts", "Jackets"):
            session.add(
                BoxRow(
                    image_id=image_id,
                    label_id=labels[name],
                    x_min=10,
                    y_min=10,
                    x_max=200,
                    y_max=300,
                    source=BoxSource.MODEL,
                    score=0.32,
                )
            )
    shirt, jacket = load(engine, image_id).boxes
    with pytest.raises(AnnotationError, match="same box"):
        save(engine, image_id, 0, [DraftBox(b.label, b.box, b.id) for b in (shirt, jacket)])
    save(engine, image_id, 0, [DraftBox(jacket.label, jacket.box, jacket.id)])
    assert [b.label for b in load(engine, image_id).boxes] == ["Jackets"]


def test_labels_resolve_by_case_and_number(engine: Engine, project_id: int) -> None:
    with session_scope(engine) as session:
        labels = project_labels(session, project_id)
    assert resolve_label("Shirts", labels).name == "Shirts"  # type: ignore[union-attr]
    assert resolve_label(" shirts ", labels).name == "Shirts"  # type: ignore[union-attr]
    assert resolve_label("2", labels).name == labels[1].name  # type: ignore[union-attr]
    assert resolve_label("0", labels) is None and resolve_label("Hats", labels) is None


def test_move_relabel_delete_keep_ids_and_record_history(engine: Engine, image_id: int) -> None:
    save(engine, image_id, 0, [DraftBox("Shirts", Box(10, 10, 100, 100)), DraftBox("Jeans", Box(200, 200, 300, 300))])
    a, b = load(engine, image_id).boxes
    result = save(engine, image_id, 1, [DraftBox("Tops", Box(15, 12, 110, 105), a.id)], who="bob")
    assert (result.edited, result.deleted, result.created) == (1, 1, 0)
    (kept,) = load(engine, image_id).boxes
    assert kept.id == a.id and kept.label == "Tops" and kept.box == Box(15, 12, 110, 105) and kept.updated_by == "bob"
    with session_scope(engine) as session:
        actions = {(c.action, c.box_id) for c in session.scalars(select(BoxChange).where(BoxChange.revision == 2))}
        deleted = session.scalar(select(BoxChange).where(BoxChange.action == "deleted"))
        assert deleted is not None and deleted.before["label"] == "Jeans" and deleted.who == "bob"
    assert actions == {("edited", a.id), ("deleted", b.id)}


def test_model_box_keeps_score_until_edited_then_becomes_human(engine: Engine, image_id: int) -> None:
    with session_scope(engine) as session:
        label_id = project_labels(session, session.get(Image, image_id).project_id)[0].id  # type: ignore[union-attr]
        session.add(
            BoxRow(
                image_id=image_id,
                label_id=label_id,
                x_min=5,
                y_min=5,
                x_max=60,
                y_max=60,
                source=BoxSource.MODEL,
                score=0.42,
            )
        )
    (m,) = load(engine, image_id).boxes
    assert m.source is BoxSource.MODEL and m.score == 0.42
    save(engine, image_id, 0, [DraftBox(m.label, m.box, m.id)])  # untouched: still the model's
    (m2,) = load(engine, image_id).boxes
    assert m2.source is BoxSource.MODEL and m2.score == 0.42
    save(engine, image_id, 1, [DraftBox(m.label, Box(5, 5, 80, 60), m.id)], who="carol")
    (h,) = load(engine, image_id).boxes
    assert h.id == m.id and h.source is BoxSource.HUMAN and h.score is None and h.updated_by == "carol"
    with session_scope(engine) as session:
        change = session.scalar(select(BoxChange).where(BoxChange.action == "edited"))
        assert change is not None and change.before["source"] == "model" and change.before["score"] == 0.42
        assert change.after["source"] == "human"


def test_no_garments_is_done_with_zero_boxes_and_differs_from_new(engine: Engine, image_id: int) -> None:
    assert load(engine, image_id).status is ImageStatus.NEW
    with pytest.raises(AnnotationError, match="without boxes"):
        save(engine, image_id, 0, [DraftBox("Shirts", Box(1, 1, 9, 9))], no_objects=True)
    save(engine, image_id, 0, [], no_objects=True)
    state = load(engine, image_id)
    assert state.status is ImageStatus.NO_OBJECTS and state.boxes == ()
    save(engine, image_id, 1, [])  # emptied without the flag: opened but not finished
    assert load(engine, image_id).status is ImageStatus.IN_PROGRESS


def test_attributes_are_validated_and_stored(engine: Engine, image_id: int) -> None:
    save(engine, image_id, 0, [], attributes={"type": "bottom wear", "pattern": "printed"})
    assert load(engine, image_id).attributes == {"type": "bottom wear", "pattern": "printed"}
    with pytest.raises(AnnotationError, match="not allowed"):
        save(engine, image_id, 1, [], attributes={"type": "hat"})
    with pytest.raises(AnnotationError, match="Unknown attribute"):
        save(engine, image_id, 1, [], attributes={"fabric": "silk"})
    schema = {"type": ["upper wear", "bottom wear"], "colour": ["single", "multi"]}
    assert default_attributes(schema) == {"type": "upper wear", "colour": "single"}
    assert effective_attributes(schema, {"type": "bottom wear", "colour": "gone"}) == {
        "type": "bottom wear",
        "colour": "single",
    }


def test_copy_boxes_scales_to_the_target_size(engine: Engine, settings: Settings, project_id: int) -> None:
    small = add_image(engine, settings, project_id, "small.jpg", (400, 300))
    add_image(engine, settings, project_id, "big.jpg", (800, 900))  # the target image of that size
    save(engine, small, 0, [DraftBox("Shirts", Box(100, 30, 200, 150))])
    with session_scope(engine) as session:
        (copied,) = copy_boxes(session, small, 800, 900)
    assert copied.label == "Shirts" and copied.box_id is None
    assert copied.box == Box(200, 90, 400, 450)


def test_match_boxes_recognises_unchanged_moved_new_and_deleted() -> None:
    t = utcnow()
    stored = [
        StoredBox(1, "Shirts", Box(10, 10, 50, 50), BoxSource.HUMAN, None, "a", "a", t),
        StoredBox(2, "Jeans", Box(100, 100, 200, 220), BoxSource.MODEL, 0.7, None, None, t),
        StoredBox(3, "Tops", Box(300, 10, 350, 60), BoxSource.HUMAN, None, "a", "a", t),
    ]
    edited = [
        ("Shirts", Box(10.01, 9.99, 50.02, 50)),  # round-trip noise: unchanged, stored coordinates kept
        ("Jeans", Box(105, 100, 205, 220)),  # moved
        ("Shoes", Box(500, 400, 540, 450)),  # new; Tops (3) was deleted
    ]
    drafts = match_boxes(stored, edited, tolerance=0.05)
    assert drafts[0] == DraftBox("Shirts", Box(10, 10, 50, 50), 1)
    assert drafts[1] == DraftBox("Jeans", Box(105, 100, 205, 220), 2)
    assert drafts[2] == DraftBox("Shoes", Box(500, 400, 540, 450), None)
    assert has_changes(stored, drafts)
    assert not has_changes(stored, match_boxes(stored, [(s.label, s.box) for s in stored], 0.05))


def test_queue_order_filters_first_to_do_and_find(engine: Engine, settings: Settings, project_id: int) -> None:
    ids = {n: add_image(engine, settings, project_id, n) for n in ["c.jpg", "a.jpg", "b.jpg", "d.jpg"]}
    save(engine, ids["a.jpg"], 0, [DraftBox("Jeans", Box(1, 1, 20, 20))])
    save(engine, ids["c.jpg"], 0, [], no_objects=True)
    with session_scope(engine) as session:
        session.get(Image, ids["b.jpg"]).split = Split.VAL  # type: ignore[union-attr]
        jeans = next(lab.id for lab in project_labels(session, project_id) if lab.name == "Jeans")
        every = queue(session, project_id)
        assert [e.name for e in every] == ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
        assert first_to_do(every).name == "b.jpg"  # type: ignore[union-attr]
        assert first_to_do(every, after=1).name == "d.jpg"  # type: ignore[union-attr]
        assert first_to_do(every, after=3).name == "b.jpg"  # type: ignore[union-attr]  (wraps)
        assert [e.name for e in queue(session, project_id, AnnotationQueueFilter(statuses=(ImageStatus.NEW,)))] == [
            "b.jpg",
            "d.jpg",
        ]
        assert [e.name for e in queue(session, project_id, AnnotationQueueFilter(label_ids=(jeans,)))] == ["a.jpg"]
        assert [e.name for e in queue(session, project_id, AnnotationQueueFilter(splits=("val",)))] == ["b.jpg"]
        assert len(queue(session, project_id, AnnotationQueueFilter(splits=(UNASSIGNED,)))) == 3
    assert find_by_name(every, "C.JPG").name == "c.jpg"  # type: ignore[union-attr]
    assert find_by_name(every, "d.j").name == "d.jpg"  # type: ignore[union-attr]
    assert find_by_name(every, "zzz") is None and find_by_name(every, " ") is None


def test_progress_counts_done_and_mine_today(engine: Engine, settings: Settings, project_id: int) -> None:
    a, b, c = (add_image(engine, settings, project_id, n) for n in ["a.jpg", "b.jpg", "c.jpg"])
    save(engine, a, 0, [DraftBox("Jeans", Box(1, 1, 20, 20))], who="me")
    save(engine, b, 0, [], no_objects=True, who="someone")
    save(engine, c, 0, [], who="me")  # in progress: not done
    with session_scope(engine) as session:
        p = progress(session, project_id, "me")
        assert (p.done, p.total, p.mine_today) == (2, 3, 1)
        assert progress(session, project_id, "me", now=utcnow() + timedelta(days=1)).mine_today == 0


def test_concurrent_saves_of_one_revision_let_exactly_one_win(engine: Engine, image_id: int) -> None:
    """Two saves racing on the same revision (two tabs pressing Save at once): one wins, one is refused."""
    import threading

    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def attempt(who: str, x: float) -> None:
        barrier.wait()
        try:
            save(engine, image_id, 0, [DraftBox("Shirts", Box(x, 10, x + 40, 60))], who=who)
            outcomes.append("saved")
        except StaleRevisionError:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(f"tab-{i}", 10.0 + 100 * i)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "saved"]
    state = load(engine, image_id)
    assert state.revision == 1 and len(state.boxes) == 1
