"""Input size and anchors fitted to a project's boxes (core.model.detector.input_fit)."""

from __future__ import annotations

import keras_hub
import numpy as np

from core.model.detector.input_fit import anchor_coverage, anchor_shapes, fit_input, input_size, offset_iou


def test_anchor_shapes_are_the_ones_keras_hub_generates() -> None:
    # The fit is only worth anything if it scores the anchors the model really has.
    gen = keras_hub.layers.AnchorGenerator(
        bounding_box_format="xyxy",
        min_level=3,
        max_level=7,
        num_scales=3,
        aspect_ratios=[0.5, 1.0, 2.0],
        anchor_size=3.0,
    )
    anchors = gen(np.zeros((1, 256, 256, 3), "float32"))
    real = set()
    for level in range(3, 8):
        a = np.asarray(anchors[f"P{level}"])
        real |= {(round(w), round(h)) for w, h in zip(a[:, 2] - a[:, 0], a[:, 3] - a[:, 1], strict=True)}
    ours = {(round(w), round(h)) for w, h, _ in anchor_shapes(3, 3.0)}
    # keras-hub rounds the half-sides, so a side can differ by one pixel.
    for w, h in ours:
        assert any(abs(w - rw) <= 1 and abs(h - rh) <= 1 for rw, rh in real), (w, h)
    assert len(ours) == len(real)


def test_offset_iou_is_one_for_an_identical_box_at_no_offset_and_drops_with_it() -> None:
    anchors = np.array([[32.0, 32.0, 0.0], [32.0, 32.0, 16.0]])
    iou = offset_iou(np.array([[32.0, 32.0]]), anchors)[0]
    assert iou[0] == 1.0
    # Quarter stride = 4 px in x and y: overlap 28 x 28.
    assert np.isclose(iou[1], 28 * 28 / (2 * 32 * 32 - 28 * 28))


def test_coverage_counts_boxes_an_anchor_matches() -> None:
    big = np.array([[100.0, 100.0], [150.0, 75.0]])
    tiny = np.array([[6.0, 6.0]])
    assert anchor_coverage(big, 4, 3.0) == 1.0
    assert anchor_coverage(tiny, 3, 2.0) == 0.0
    assert anchor_coverage(np.concatenate([big, tiny]), 4, 3.0) == 2 / 3
    assert anchor_coverage(np.zeros((0, 2)), 3, 4.0) == 1.0


def test_input_size_follows_the_aspect_and_rounds_to_32() -> None:
    assert input_size(4 / 3, 256) == (192, 256)  # landscape: (height, width)
    assert input_size(550 / 832, 448) == (448, 288)  # portrait street photos
    assert input_size(1.0, 320) == (320, 320)


def test_large_boxes_get_a_small_input_and_level_4() -> None:
    sizes = [(512, 384)] * 20
    boxes = [(i, 120.0 + i, 140.0) for i in range(20)] + [(i, 200.0, 90.0) for i in range(20)]
    fit = fit_input(sizes, boxes)
    assert (fit.image_height, fit.image_width, fit.min_level) == (192, 256, 4)
    assert fit.coverage >= 0.95 and fit.boxes == 40


def test_small_boxes_raise_the_resolution_and_bring_level_3_back() -> None:
    # Portrait photos with sunglasses-sized boxes (40 x 20 px in 550 x 832 images).
    sizes = [(550, 832)] * 10
    boxes = [(i, 40.0, 20.0) for i in range(10)] + [(i, 200.0, 400.0) for i in range(10)]
    fit = fit_input(sizes, boxes)
    assert fit.image_height > fit.image_width  # portrait input
    assert fit.image_height >= 384
    assert fit.min_level == 3
    assert fit.small_side_px >= 14


def test_no_images_gives_the_demo_geometry() -> None:
    fit = fit_input([], [])
    assert fit.params() == {"image_height": 192, "image_width": 256, "min_level": 4, "anchor_size": 3.0}
