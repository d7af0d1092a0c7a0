"""Seeded, stratified splits that never move once given."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.project.splits import SplitError, assign_splits, check_fractions
from db.engine import session_scope
from db.models import BoxRow, Image, ImageStatus, Label
from tests.core.dataset_factory import jpeg_bytes

pytestmark = pytest.mark.both_databases  # the SQL of this module runs on SQLite and PostgreSQL


def _populate(engine, settings, project_id, n: int, rare_every: int = 10) -> None:
    from core.project.imagestore import ImageStore
    from core.project.ingest import ingest_one

    store = ImageStore(settings.data_dir)
    with session_scope(engine) as session:
        labels = list(session.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.order)))
        for i in range(n):
            out = ingest_one(session, store, project_id, f"s{i}.jpg", jpeg_bytes(16, 16, 50_000 + i))
            img = session.get(Image, out.image_id)
            img.status = ImageStatus.DONE
            lab = labels[1] if i % rare_every == 0 else labels[0]  # a rare class on every 10th image
            session.add(BoxRow(image_id=img.id, label_id=lab.id, x_min=1, y_min=1, x_max=9, y_max=9))


def _splits(engine, project_id) -> dict[int, str]:
    with session_scope(engine) as session:
        return {
            i: s.value for i, s in session.execute(select(Image.id, Image.split).where(Image.project_id == project_id))
        }


def test_fractions_checked() -> None:
    assert check_fractions((0.7, 0.2, 0.1)) == (0.7, 0.2, 0.1)
    with pytest.raises(SplitError, match="add up to 1"):
        check_fractions((0.5, 0.2, 0.1))
    with pytest.raises(SplitError, match="negative"):
        check_fractions((1.2, -0.2, 0.0))
    with pytest.raises(SplitError, match="three fractions"):
        check_fractions((0.5, 0.5))


def test_split_is_stratified_and_near_target(engine, settings, project_id) -> None:
    _populate(engine, settings, project_id, 100)
    with session_scope(engine) as session:
        placed = assign_splits(session, project_id)
    assert placed == {"train": 80, "val": 10, "test": 10}
    splits = _splits(engine, project_id)
    rare = [splits[i] for i in sorted(splits)[::10]]  # images 0, 10, 20... carry the rare class
    assert rare.count("train") == 8 and rare.count("val") == 1 and rare.count("test") == 1


def test_same_seed_same_split_and_assigned_never_move(engine, settings, project_id, tmp_path) -> None:
    _populate(engine, settings, project_id, 40)
    with session_scope(engine) as session:
        assign_splits(session, project_id, seed=3)
    first = _splits(engine, project_id)
    with session_scope(engine) as session:
        session.execute(Image.__table__.update().values(split=None))
        assign_splits(session, project_id, seed=3)
    assert _splits(engine, project_id) == first  # deterministic
    with session_scope(engine) as session:
        placed = assign_splits(session, project_id, fractions=(0.0, 0.0, 1.0), seed=4)
    assert placed == {"train": 0, "val": 0, "test": 0}
    assert _splits(engine, project_id) == first  # nothing moves


def test_only_ground_truth_is_placed(engine, settings, project_id) -> None:
    _populate(engine, settings, project_id, 5)
    with session_scope(engine) as session:
        session.execute(Image.__table__.update().where(Image.original_name == "s0.jpg").values(status="new"))
        assign_splits(session, project_id)
    with session_scope(engine) as session:
        new = session.scalar(select(Image).where(Image.original_name == "s0.jpg"))
        assert new.split is None
