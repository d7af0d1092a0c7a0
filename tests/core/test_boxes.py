"""The canonical box type."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.boxes import Box, InvalidBoxError


def test_geometry() -> None:
    b = Box.from_xywh(10, 20, 30, 40)
    assert (b.x_max, b.y_max, b.width, b.height, b.area) == (40, 60, 30, 40, 1200)
    assert b.scaled(2, 0.5) == Box(20, 10, 80, 30)
    assert Box(0, 0, 10, 10).iou(Box(5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert Box(0, 0, 1, 1).iou(Box(2, 2, 3, 3)) == 0


def test_validated_clips_and_reports() -> None:
    clipped, changed = Box(-5, 10, 120, 50).validated(100, 80)
    assert clipped == Box(0, 10, 100, 50) and changed
    same, changed = Box(1, 1, 2, 2).validated(100, 80)
    assert same == Box(1, 1, 2, 2) and not changed


@pytest.mark.parametrize(
    ("box", "message"),
    [
        (Box(10, 10, 10, 20), "zero or negative area"),
        (Box(10, 30, 20, 20), "zero or negative area"),
        (Box(200, 200, 300, 300), "outside"),
        (Box(math.nan, 0, 1, 1), "non-finite"),
    ],
)
def test_validated_refuses(box: Box, message: str) -> None:
    with pytest.raises(InvalidBoxError, match=message):
        box.validated(100, 80)


coord = st.floats(-1000, 1000, allow_nan=False)


@given(coord, coord, coord, coord)
def test_clip_stays_inside(x0: float, y0: float, x1: float, y1: float) -> None:
    c = Box(x0, y0, x1, y1).clip(640, 480)
    assert c.is_inside(640, 480)
    assert 0 <= c.iou(c) <= 1


def test_row_round_trip() -> None:
    from db.models import BoxRow, Prediction

    box = Box(1.5, 2.25, 30.0, 40.75)
    row = BoxRow(image_id=1, label_id=2, **box.as_columns())
    assert (row.x_min, row.y_min, row.x_max, row.y_max) == (1.5, 2.25, 30.0, 40.75)
    assert Box.from_row(row) == box
    assert Box.from_row(Prediction(**box.as_columns(), score=0.5)) == box
