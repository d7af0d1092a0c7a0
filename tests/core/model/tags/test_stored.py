"""Reading stored tag predictions (the interface Review, Annotate and the catalogue check read)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine

from core.model.tags.stored import latest_tags_version, tag_probabilities
from db.engine import session_scope
from db.models import Image, ModelKind, ModelVersion, TagPrediction

pytestmark = pytest.mark.both_databases


def _image(session, project_id: int, n: int) -> Image:
    image = Image(
        project_id=project_id,
        sha256=f"{n:064d}",
        stored_path=f"s/{n}.jpg",
        display_path=f"d/{n}.jpg",
        width=10,
        height=10,
        original_name=f"{n}.jpg",
    )
    session.add(image)
    session.flush()
    return image


def test_tag_probabilities_per_image_and_tag_of_one_version(engine: Engine, project_id: int) -> None:
    with session_scope(engine) as session:
        a, b, c = (_image(session, project_id, n) for n in range(3))
        v1 = ModelVersion(project_id=project_id, kind=ModelKind.TAGS, name="t1", path="x")
        v2 = ModelVersion(project_id=project_id, kind=ModelKind.TAGS, name="t2", path="y")
        session.add_all([v1, v2])
        session.flush()
        session.add_all(
            [
                TagPrediction(
                    model_version_id=v1.id,
                    image_id=a.id,
                    tag="category",
                    value="Shirt",
                    confidence=0.7,
                    probabilities={"Shirt": 0.7, "Dress": 0.3},
                ),
                TagPrediction(
                    model_version_id=v1.id,
                    image_id=a.id,
                    tag="colour",
                    value="red",
                    confidence=0.9,
                    probabilities={"red": 0.9, "blue": 0.1},
                ),
                TagPrediction(
                    model_version_id=v2.id,
                    image_id=b.id,
                    tag="category",
                    value="Dress",
                    confidence=0.6,
                    probabilities={"Shirt": 0.4, "Dress": 0.6},
                ),
            ]
        )
        session.flush()
        ids = (a.id, b.id, c.id, v1.id)
    a_id, b_id, c_id, v1_id = ids
    with session_scope(engine) as session:
        got = tag_probabilities(session, v1_id, [a_id, b_id, c_id])
    assert got == {a_id: {"category": {"Shirt": 0.7, "Dress": 0.3}, "colour": {"red": 0.9, "blue": 0.1}}}


def test_latest_tags_version_skips_detectors_and_other_projects(engine: Engine, project_id: int) -> None:
    with session_scope(engine) as session:
        assert latest_tags_version(session, project_id) is None
        old = ModelVersion(
            project_id=project_id, kind=ModelKind.TAGS, name="old", path="a", created_at=datetime(2026, 1, 1)
        )
        new = ModelVersion(
            project_id=project_id, kind=ModelKind.TAGS, name="new", path="b", created_at=datetime(2026, 2, 1)
        )
        detector = ModelVersion(
            project_id=project_id, kind=ModelKind.DETECTOR, name="det", path="c", created_at=datetime(2026, 3, 1)
        )
        session.add_all([old, new, detector])
        session.flush()
        found = latest_tags_version(session, project_id)
        assert found is not None and found.name == "new"
