"""Training data from the database, per the tags convention (real database, both engines)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select

from core.model.tags.data import TagsDataError, assign_missing_splits, load_tags_data
from core.project.projects import create_project
from db.engine import session_scope
from db.models import BoxRow, BoxSource, Image, Label, Split

pytestmark = pytest.mark.both_databases

SCHEMA = {"category": ["Shirt", "Dress"], "colour": ["red", "blue", "green"], "pattern": ["plain", "striped"]}


def _image(session, pid: int, n: int, attributes: dict, split: Split | None = Split.TRAIN) -> Image:
    image = Image(
        project_id=pid,
        sha256=f"{n:064x}",
        stored_path=f"blobs/{n}.jpg",
        display_path=f"blobs/{n}.jpg",
        width=100,
        height=100,
        original_name=f"{n}.jpg",
        attributes=attributes,
        split=split,
    )
    session.add(image)
    session.flush()
    return image


def test_stored_schema_tags_are_ground_truth_and_nothing_else(engine: Engine, tmp_path: Path) -> None:
    with session_scope(engine) as session:
        pid = create_project(session, "P", labels=("Shirt", "Trousers"), attribute_schema=SCHEMA).id
        _image(session, pid, 1, {"category": "Shirt", "colour": "red"})
        _image(session, pid, 2, {"category": "Dress", "colour": "blue", "auto_pattern": "striped"})
        _image(session, pid, 3, {"colour": "purple", "note": "x", "category": "Dress"})  # purple: not in the schema
        # No stored category: the largest human box's label (Trousers) stands in; the model box is ignored.
        boxed = _image(session, pid, 4, {"colour": "green"})
        labels = {lab.name: lab.id for lab in session.scalars(select(Label).where(Label.project_id == pid))}
        session.add_all(
            [
                BoxRow(image_id=boxed.id, label_id=labels["Shirt"], x_min=0, y_min=0, x_max=10, y_max=10),
                BoxRow(image_id=boxed.id, label_id=labels["Trousers"], x_min=0, y_min=0, x_max=50, y_max=60),
                BoxRow(
                    image_id=boxed.id,
                    label_id=labels["Shirt"],
                    x_min=0,
                    y_min=0,
                    x_max=100,
                    y_max=100,
                    source=BoxSource.MODEL,
                    score=0.9,
                ),
            ]
        )
        _image(session, pid, 5, {})  # untagged: not a training image
        session.flush()
        data = load_tags_data(session, pid, tmp_path)
    assert data.heads == {"category": ["Shirt", "Dress", "Trousers"], "colour": ["red", "blue", "green"]}
    assert data.left_out == {"pattern": "0 values seen in the train split (a head needs 2)"}
    assert len(data.image_ids) == 4
    np.testing.assert_array_equal(data.labels, [[0, 0], [1, 1], [1, -1], [2, 2]])
    assert data.paths[0] == tmp_path / "blobs/1.jpg"
    assert data.known_per_head() == {"category": 4, "colour": 3}


def test_images_without_a_split_get_one_and_keep_it(engine: Engine, tmp_path: Path) -> None:
    with session_scope(engine) as session:
        pid = create_project(session, "P", labels=(), attribute_schema=SCHEMA).id
        for n in range(40):
            _image(session, pid, n, {"category": SCHEMA["category"][n % 2]}, split=None)
        load_tags_data(session, pid, tmp_path)
    with session_scope(engine) as session:
        splits = dict(session.execute(select(Image.id, Image.split)).all())
        assert None not in splits.values()
        counts = {s: list(splits.values()).count(s) for s in Split}
        assert counts == {Split.TRAIN: 32, Split.VAL: 4, Split.TEST: 4}
        again = load_tags_data(session, pid, tmp_path)
        assert again.counts() == {"train": 32, "val": 4, "test": 4}
    with session_scope(engine) as session:
        assert dict(session.execute(select(Image.id, Image.split)).all()) == splits


def test_a_project_without_tags_is_refused_with_what_to_do(engine: Engine, tmp_path: Path) -> None:
    with session_scope(engine) as session:
        pid = create_project(session, "P", labels=(), attribute_schema=SCHEMA).id
        _image(session, pid, 1, {"auto_category": "Shirt"})
        with pytest.raises(TagsDataError, match="No image of this project has a stored tag"):
            load_tags_data(session, pid, tmp_path)
        _image(session, pid, 2, {"category": "Shirt"})
        with pytest.raises(TagsDataError, match="two different values"):
            load_tags_data(session, pid, tmp_path)


def test_split_assignment_is_independent_of_row_order() -> None:
    rows = [(i, f"{i:064x}", None, "A" if i % 3 else "B") for i in range(30)]
    assert assign_missing_splits(rows) == assign_missing_splits(list(reversed(rows)))
