"""Coordinate conversions between canvas, display-copy and original pixels (ui/canvas.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from core.annotate.matching import match_boxes
from core.annotate.state import StoredBox
from core.boxes import Box
from db.models import BoxSource
from ui.canvas import CanvasGeometry, Fit, canvas_size


def _display_size(w: int, h: int, long_side: int = 1280) -> tuple[int, int]:
    """What Pillow's thumbnail makes of a w x h original (as ImageStore.put_display does)."""
    from PIL import Image

    im = Image.new("L", (w, h))
    im.thumbnail((long_side, long_side))
    return im.size


def test_contain_fit_matches_the_frontend_formula() -> None:
    assert Fit.contain(640, 480, 1280, 960) == Fit(0.5, 0.5, 0.0, 0.0)
    # Wider canvas: margins left and right, image centred.
    assert Fit.contain(800, 480, 1280, 960) == Fit(0.5, 0.5, 80.0, 0.0)
    # Taller canvas: margins top and bottom.
    assert Fit.contain(640, 600, 1280, 960) == Fit(0.5, 0.5, 0.0, 60.0)
    # A small image is scaled up.
    assert Fit.contain(640, 480, 320, 240) == Fit(2.0, 2.0, 0.0, 0.0)


def test_known_box_on_a_12_megapixel_photo() -> None:
    geo = CanvasGeometry.for_image(4000, 3000, 1280, 960, max_w=640, max_h=576)
    assert (geo.canvas_w, geo.canvas_h) == (640, 480)
    rect = {"left": 150, "top": 120, "width": 180, "height": 180}
    assert geo.canvas_to_box(rect) == Box(937.5, 750.0, 2062.5, 1875.0)
    assert geo.box_to_canvas(Box(937.5, 750.0, 2062.5, 1875.0)) == pytest.approx(rect)
    # The same rect as the library's boxes_in_image_space reports it (display pixels).
    assert geo.display_to_box({"left": 300, "top": 240, "width": 360, "height": 360}) == Box(937.5, 750, 2062.5, 1875)


def test_display_copy_scales_each_axis_separately() -> None:
    # 4001x3001 thumbnails to 1280x960 after rounding: x and y factors differ slightly.
    dw, dh = _display_size(4001, 3001)
    geo = CanvasGeometry.for_image(4001, 3001, dw, dh)
    fx, fy = geo.display_to_original
    assert fx == 4001 / dw and fy == 3001 / dh and fx != fy
    full = geo.display_to_box({"left": 0, "top": 0, "width": dw, "height": dh})
    assert full == Box(0, 0, 4001, 3001)


def test_margins_are_not_part_of_the_image() -> None:
    geo = CanvasGeometry(800, 600, 800, 600, 1000, 600)  # 100 px margins left and right
    assert geo.fit.offset_x == 100
    assert geo.canvas_to_box({"left": 100, "top": 0, "width": 800, "height": 600}) == Box(0, 0, 800, 600)
    # A box drawn partly in the margin maps outside the image (clipped later, on save).
    assert geo.canvas_to_box({"left": 50, "top": 0, "width": 100, "height": 10}).x_min == -50


def test_reported_fit_is_used_when_given() -> None:
    geo = CanvasGeometry(1000, 500, 1000, 500, 500, 250)
    reported = Fit.from_background_fit({"scale_x": 0.5, "scale_y": 0.5, "offset_x": 0, "offset_y": 0})
    assert reported == geo.fit
    assert geo.canvas_to_box({"left": 10, "top": 10, "width": 20, "height": 20}, reported) == Box(20, 20, 60, 60)


sizes = st.integers(min_value=16, max_value=12000)
canvas_sides = st.integers(min_value=320, max_value=1600)


@st.composite
def geometries(draw: st.DrawFn) -> CanvasGeometry:
    w, h = draw(sizes), draw(sizes)
    assume(max(w, h) / min(w, h) <= 20)
    # A display copy of about the size ImageStore makes (Pillow rounds each side on its own).
    s = min(1.0, 1280 / max(w, h))
    dw, dh = max(1, round(w * s)), max(1, round(h * s))
    return CanvasGeometry.for_image(w, h, dw, dh, max_w=draw(canvas_sides), max_h=draw(canvas_sides))


@st.composite
def boxes_in(draw: st.DrawFn, geo: CanvasGeometry) -> Box:
    fr = st.floats(min_value=0, max_value=1, allow_nan=False)
    x0, x1 = sorted((draw(fr) * geo.original_w, draw(fr) * geo.original_w))
    y0, y1 = sorted((draw(fr) * geo.original_h, draw(fr) * geo.original_h))
    return Box(x0, y0, x1, y1)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_original_to_canvas_and_back_is_the_identity(data: st.DataObject) -> None:
    geo = data.draw(geometries())
    box = data.draw(boxes_in(geo))
    back = geo.canvas_to_box(geo.box_to_canvas(box))
    for a, b in zip(
        (back.x_min, back.y_min, back.x_max, back.y_max), (box.x_min, box.y_min, box.x_max, box.y_max), strict=True
    ):
        assert a == pytest.approx(b, abs=1e-6 * max(geo.original_w, geo.original_h))


@settings(max_examples=300, deadline=None)
@given(geo=geometries())
def test_contain_fit_keeps_aspect_fits_inside_and_centres(geo: CanvasGeometry) -> None:
    f = geo.fit
    assert f.scale_x == f.scale_y
    shown_w, shown_h = geo.display_w * f.scale_x, geo.display_h * f.scale_y
    assert shown_w <= geo.canvas_w + 1e-9 and shown_h <= geo.canvas_h + 1e-9
    assert f.offset_x >= -1e-9 and f.offset_y >= -1e-9
    assert f.offset_x == pytest.approx((geo.canvas_w - shown_w) / 2)
    # The image fills the canvas along at least one axis (no needless margins).
    assert min(geo.canvas_w - shown_w, geo.canvas_h - shown_h) <= 1e-6
    # The whole image maps to the whole original.
    full = geo.canvas_to_box({"left": f.offset_x, "top": f.offset_y, "width": shown_w, "height": shown_h})
    assert full.x_max == pytest.approx(geo.original_w) and full.y_max == pytest.approx(geo.original_h)
    assert abs(full.x_min) < 1e-6 and abs(full.y_min) < 1e-6


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_fabric_two_decimal_rounding_stays_within_one_original_pixel(data: st.DataObject) -> None:
    """Fabric serialises two decimals of a canvas pixel; that must cost far less than a pixel of the original."""
    geo = data.draw(geometries())
    assume(min(geo.canvas_w, geo.canvas_h) >= 240)
    box = data.draw(boxes_in(geo))
    rect = {k: round(v, 2) for k, v in geo.box_to_canvas(box).items()}
    back = geo.canvas_to_box(rect)
    errors = [
        abs(a - b)
        for a, b in zip(
            (back.x_min, back.y_min, back.x_max, back.y_max), (box.x_min, box.y_min, box.x_max, box.y_max), strict=True
        )
    ]
    assert max(errors) < 1.0
    # ...and the page still recognises the untouched box, keeping its stored coordinates.
    stored = [StoredBox(1, "Shirts", box, BoxSource.HUMAN, None, None, None, None)]
    (draft,) = match_boxes(stored, [("Shirts", back)], geo.unchanged_tolerance)
    assert draft.box_id == 1 and draft.box == box


@settings(max_examples=200, deadline=None)
@given(dw=sizes, dh=sizes, mw=canvas_sides, mh=canvas_sides)
def test_canvas_size_keeps_the_aspect_ratio(dw: int, dh: int, mw: int, mh: int) -> None:
    assume(max(dw, dh) / min(dw, dh) <= 20)
    cw, ch = canvas_size(dw, dh, mw, mh)
    assert cw <= mw and ch <= mh and (cw == mw or ch == mh)
    assert abs(cw / ch - dw / dh) <= (1 / min(cw, ch)) * (dw / dh) * 2 + 1e-9


def _library_conversions() -> None:
    """Runs inside AppTest: the library's CanvasResult applies scaleX/scaleY and origin offsets."""
    import json as _json

    import streamlit as _st
    from streamlit_drawable_canvas import CanvasResult, boxes_to_drawing

    from ui.canvas import CanvasGeometry as Geo
    from ui.canvas import Fit as F

    geo = Geo(4000, 3000, 1280, 960, 640, 480)
    fit = {"natural_width": 1280, "natural_height": 960, "scale_x": 0.5, "scale_y": 0.5, "offset_x": 0, "offset_y": 0}
    # A box resized with the edit toggle: Fabric keeps width/height and stores the scale.
    resized = {
        "type": "LabeledRect",
        "label": "Shirts",
        "left": 150,
        "top": 120,
        "width": 90,
        "height": 120,
        "scaleX": 2,
        "scaleY": 1.5,
        "originX": "left",
        "originY": "top",
    }
    centred = dict(resized, originX="center", originY="center", left=240, top=210)
    result = CanvasResult({"objects": [resized, centred]}, None, False, fit)
    out = {
        "from_boxes": [
            list(vars_)
            for vars_ in ((b.x_min, b.y_min, b.x_max, b.y_max) for b in (geo.canvas_to_box(r) for r in result.boxes))
        ],
        "from_image_space": [
            list(vars_)
            for vars_ in (
                (b.x_min, b.y_min, b.x_max, b.y_max)
                for b in (geo.display_to_box(r) for r in result.boxes_in_image_space or [])
            )
        ],
        "reported_fit_equal": F.from_background_fit(fit) == geo.fit,
        "drawing_roundtrip": CanvasResult(boxes_to_drawing(result.boxes), None, False, fit).boxes == result.boxes,
    }
    _st.code(_json.dumps(out))


def test_library_applies_scale_after_resize_and_agrees_with_our_fit() -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_library_conversions).run(timeout=30)
    assert not at.exception, at.exception
    out = json.loads(at.code[0].value)
    expected = [937.5, 750.0, 2062.5, 1875.0]  # 150..330 x 120..300 canvas px
    assert out["from_boxes"] == [expected, expected]
    assert out["from_image_space"] == [expected, expected]
    assert out["reported_fit_equal"] and out["drawing_roundtrip"]
