"""Counts kept on write (db/counts.py, migration 0011's triggers) equal a fresh count after a mixed workload."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, delete, func, insert, select, update

from core.annotate.save import save_boxes
from core.annotate.state import DraftBox, load_image
from core.boxes import Box
from core.dataset.importer import import_items
from core.dataset.items import ImportItem
from core.project.splits import assign_splits
from core.review.auto_accept import auto_accept
from core.review.decisions import accept, reject
from core.review.item import load_review_item
from core.settings import Settings
from db.counts import FOLD_AT, fold, project_counts
from db.engine import session_scope
from db.models import BoxRow, CountDelta, Image, ImageStatus, Label, ModelVersion, Prediction
from db.queries import project_stats
from tests.core.annotate.test_annotations import _jpeg, add_image

pytestmark = pytest.mark.both_databases


def _fresh(engine: Engine, project_id: int) -> dict:
    """The counts the way they were computed before 0011: GROUP BY over every row."""
    with session_scope(engine) as session:
        status = dict(
            session.execute(
                select(Image.status, func.count()).where(Image.project_id == project_id).group_by(Image.status)
            ).all()
        )
        split = dict(
            session.execute(
                select(Image.split, func.count()).where(Image.project_id == project_id).group_by(Image.split)
            ).all()
        )
        labels = dict(
            session.execute(
                select(Label.name, func.count(BoxRow.id))
                .select_from(Label)
                .outerjoin(BoxRow, BoxRow.label_id == Label.id)
                .where(Label.project_id == project_id)
                .group_by(Label.name)
            ).all()
        )
    return {
        "images_by_status": {s.value: status.get(s, 0) for s in ImageStatus},
        "images_by_split": {(k.value if k else "unassigned"): v for k, v in split.items()},
        "boxes_by_label": labels,
    }


def _kept(engine: Engine, project_id: int) -> dict:
    with session_scope(engine) as session:
        stats = project_stats(session, project_id)
    return {
        "images_by_status": stats["images_by_status"],
        "images_by_split": {k: v for k, v in stats["images_by_split"].items() if v},
        "boxes_by_label": stats["boxes_by_label"],
    }


def _draft(label: str, x: float) -> DraftBox:
    return DraftBox(label=label, box=Box(x, 10, x + 40, 50))


def test_kept_counts_equal_a_fresh_count_after_a_mixed_workload(
    engine: Engine, settings: Settings, project_id: int
) -> None:
    ids = [add_image(engine, settings, project_id, f"img{i}.jpg", (320, 240)) for i in range(12)]
    # An annotation import: new images with boxes, one image refused box and all.
    items = [
        ImportItem(
            source=f"ann/{i}.xml",
            image_name=f"imp{i}.jpg",
            read=lambda i=i: _jpeg(200, 150, colour=(i * 20, 40, 90)),
            objects=[("Shoes", Box(5, 5, 50, 50)), ("Jeans", Box(60, 20, 120, 140))],
        )
        for i in range(4)
    ]
    import_items(engine, settings, project_id, items, who="imp")
    assert _kept(engine, project_id) == _fresh(engine, project_id)

    # Saves: boxes added, then one moved, one relabelled, one deleted; "no garments"; an in-progress save.
    def save(image_id: int, drafts: list[DraftBox], **kw) -> None:
        with session_scope(engine) as session:
            state = load_image(session, image_id)
            save_boxes(session, image_id, state.revision, drafts, "ann", **kw)

    save(ids[0], [_draft("Shoes", 0), _draft("Shirts", 100), _draft("Tops", 200)])
    with session_scope(engine) as session:
        stored = load_image(session, ids[0]).boxes
    save(
        ids[0],
        [
            DraftBox(label="Jackets", box=stored[0].box, box_id=stored[0].id),
            DraftBox("Shirts", Box(110, 10, 150, 60), box_id=stored[1].id),
        ],
    )
    save(ids[1], [], no_objects=True)
    save(ids[2], [])  # nothing drawn: in progress

    # Twenty saves from four threads at once (the write paths under concurrency).
    def worker(k: int) -> None:
        for j in range(5):
            save(ids[3 + k], [_draft(["Shoes", "Jeans", "Tops"][(j + k) % 3], 10 * j)] * 1)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert _kept(engine, project_id) == _fresh(engine, project_id)

    # Predictions (a prediction job's rows), review decisions and auto-accept.
    with session_scope(engine) as session:
        labels = {lab.name: lab.id for lab in session.scalars(select(Label).where(Label.project_id == project_id))}
        version = ModelVersion(project_id=project_id, name="v1", path="models/v1/model.keras")
        session.add(version)
        session.flush()
        for image_id, score in zip(ids[7:12], [0.95, 0.97, 0.4, 0.3, 0.99], strict=True):
            session.add(
                Prediction(
                    model_version_id=version.id,
                    image_id=image_id,
                    label_id=labels["Jeans"],
                    x_min=10,
                    y_min=10,
                    x_max=90,
                    y_max=90,
                    score=score,
                )
            )
        version_id = version.id
    with session_scope(engine) as session:
        accept(session, load_review_item(session, ids[9], version_id, 0.2), "rev")
    with session_scope(engine) as session:
        reject(session, load_review_item(session, ids[10], version_id, 0.2), "rev", reason="wrong")
    with session_scope(engine) as session:
        result = auto_accept(session, project_id, version_id, {"Jeans": 0.9}, audit_fraction=0.0)
    assert result.accepted  # the test would prove nothing if auto-accept wrote no boxes
    assert _kept(engine, project_id) == _fresh(engine, project_id)

    # Splits, a bulk insert and a bulk update in SQL (as benchmarks/scale_build.py and a COPY write),
    # a cascade delete (an image and its boxes), a folded state, then more deltas on top.
    with session_scope(engine) as session:
        assign_splits(session, project_id)
    with session_scope(engine) as session:
        session.execute(
            insert(BoxRow),
            [dict(image_id=ids[2], label_id=labels["Skirts"], x_min=1, y_min=1, x_max=9, y_max=9)] * 3,
        )
        session.execute(update(Image).where(Image.id.in_(ids[5:7])).values(status=ImageStatus.IN_PROGRESS))
        session.execute(update(BoxRow).where(BoxRow.image_id == ids[2]).values(label_id=labels["Tops"]))
    assert fold(engine, project_id)
    with session_scope(engine) as session:
        session.execute(delete(Image).where(Image.id == ids[0]))
    assert _kept(engine, project_id) == _fresh(engine, project_id)
    with session_scope(engine) as session:  # a fold leaves one row per key still counted
        assert session.scalar(select(func.count()).select_from(CountDelta)) < 40


def test_a_rolled_back_write_leaves_the_counts_and_reading_folds_a_pile_of_deltas(
    engine: Engine, settings: Settings, project_id: int
) -> None:
    image_id = add_image(engine, settings, project_id, "a.jpg", (320, 240))
    with session_scope(engine) as session:
        label = session.scalar(select(Label.id).where(Label.project_id == project_id, Label.name == "Shoes"))
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        session.execute(insert(BoxRow), [dict(image_id=image_id, label_id=label, x_min=1, y_min=1, x_max=9, y_max=9)])
        raise RuntimeError("the save fails after its insert")
    assert _kept(engine, project_id) == _fresh(engine, project_id)
    # Many small writes, as a day of saves leaves them: the next read folds them into one row per key.
    for _ in range(FOLD_AT // 2 + 1):
        with session_scope(engine) as session:
            session.execute(
                insert(BoxRow), [dict(image_id=image_id, label_id=label, x_min=1, y_min=1, x_max=9, y_max=9)]
            )
            session.execute(
                delete(BoxRow)
                .where(BoxRow.image_id == image_id, BoxRow.x_min == 1)
                .execution_options(synchronize_session=False)
            )
            session.execute(
                insert(BoxRow), [dict(image_id=image_id, label_id=label, x_min=2, y_min=1, x_max=9, y_max=9)]
            )
    with session_scope(engine) as session:
        assert project_counts(session, project_id).boxes == {label: FOLD_AT // 2 + 1}
    with session_scope(engine) as session:
        assert (
            session.scalar(select(func.count()).select_from(CountDelta).where(CountDelta.project_id == project_id)) <= 3
        )
    assert _kept(engine, project_id) == _fresh(engine, project_id)
