"""Dataset health tables and warnings on a real database."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from core.project.health import dataset_health
from db.engine import session_scope
from db.models import BoxRow, Image, ImageStatus, Label, Split

pytestmark = pytest.mark.both_databases  # the SQL of this module runs on SQLite and PostgreSQL


def add_image(
    session, project_id: int, n: int, status: ImageStatus, split: Split | None, boxes: list[tuple[int, str]]
) -> None:
    labels = {lab.name: lab.id for lab in session.scalars(select(Label).where(Label.project_id == project_id))}
    image = Image(
        project_id=project_id,
        sha256=f"{n:064d}",
        stored_path="x",
        display_path="x",
        width=400,
        height=200,
        original_name=f"{n}.jpg",
        status=status,
        split=split,
    )
    session.add(image)
    session.flush()
    for w, name in boxes:
        session.add(
            BoxRow(image_id=image.id, label_id=labels[name], x_min=0, y_min=0, x_max=w, y_max=50, created_by="ann")
        )


def test_counts_geometry_throughput_and_warnings(engine: Engine, project_id: int) -> None:
    with session_scope(engine) as session:
        n = 0
        for _ in range(60):
            n += 1
            add_image(session, project_id, n, ImageStatus.DONE, Split.TRAIN, [(100, "Shoes"), (100, "Shoes")])
        n += 1
        add_image(session, project_id, n, ImageStatus.DONE, Split.TEST, [(25, "Jeans")])
        n += 1
        add_image(session, project_id, n, ImageStatus.NEW, None, [(10, "Jeans")])  # not ground truth yet
        n += 1
        add_image(session, project_id, n, ImageStatus.NO_OBJECTS, Split.VAL, [])
    with session_scope(engine) as session:
        health = dataset_health(session, project_id)
    assert health.per_class.loc["Shoes", "boxes"] == 120
    assert health.per_class.loc["Shoes", "train boxes"] == 120
    assert health.per_class.loc["Shoes", "images"] == 60
    assert health.per_class.loc["Jeans", "test boxes"] == 1
    assert health.per_class.loc["Jeans", "boxes"] == 1  # the box on the new image does not count
    assert health.per_class.loc["Tops", "boxes"] == 0
    jeans = health.box_geometry[health.box_geometry.label == "Jeans"].iloc[0]
    assert (jeans.width, jeans.height, jeans.aspect) == (25, 50, 0.5)
    status = dict(zip(health.by_status.status, health.by_status.images, strict=True))
    assert status == {"new": 1, "in_progress": 0, "done": 61, "no_objects": 1, "skipped": 0}
    assert health.throughput.boxes.sum() == 122 and set(health.throughput.who) == {"ann"}
    assert health.warnings[0].startswith("Strong imbalance: Shoes has 120 boxes, Jeans only 1")
    assert any(w.startswith("Jeans: only 0 training boxes") for w in health.warnings)
    assert not any(w.startswith("Shoes:") for w in health.warnings)


def test_empty_project_warns_to_annotate(engine: Engine, project_id: int) -> None:
    with session_scope(engine) as session:
        health = dataset_health(session, project_id)
    assert health.warnings == ["No annotated boxes yet: annotate or import some before training."]
    assert health.box_geometry.empty
