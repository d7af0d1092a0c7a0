"""Input size and anchors fitted to a project's boxes (core.model.detector.input_fit)."""

from __future__ import annotations

import keras_hub
import numpy as np
import pytest

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


def _street_photos() -> tuple[list[tuple[int, int]], list[tuple[int, float, float, str]]]:
    """400x600 portrait photos: many coats, a few pairs of sunglasses of about 35x30 px (issue #20's case)."""
    sizes = [(400, 600)] * 60
    boxes = [(i, 180.0 + i, 300.0, "Coats") for i in range(60)]
    boxes += [(i, 160.0, 90.0 + i, "Trousers") for i in range(60)]
    boxes += [(i, 35.0, 30.0, "Sunglasses") for i in range(10)]  # 8 % of the boxes: under the 10th percentile
    return sizes, boxes


def test_the_boxes_rule_names_the_smallest_class_but_lets_the_many_large_boxes_set_the_size() -> None:
    sizes, boxes = _street_photos()
    fit = fit_input(sizes, boxes)
    assert fit.rule == "boxes"
    assert fit.image_height == 256  # the 10th percentile of all boxes is a coat or trousers
    assert fit.smallest_class == "Sunglasses"
    assert fit.class_short_side_px["Sunglasses"] < 20  # 30 px * 256/600: about 13 px
    assert "smallest class Sunglasses" in fit.describe_smallest()
    assert "set the size" not in fit.describe_smallest()


def test_the_classes_rule_grows_the_input_until_the_small_class_keeps_20_px() -> None:
    sizes, boxes = _street_photos()
    fit = fit_input(sizes, boxes, rule="classes")
    # 30 px short side keeps 20 px from a scale of 2/3 on, a 400-px long side: the first candidate is 448.
    assert fit.image_height == 448
    assert fit.class_short_side_px["Sunglasses"] >= 20
    assert fit.class_coverage["Sunglasses"] >= 0.9
    assert fit.describe_smallest().endswith("(it set the size)")


def test_a_class_with_too_few_boxes_gives_no_percentile_and_sets_nothing() -> None:
    sizes = [(400, 600)] * 40
    boxes = [(i, 180.0, 300.0, "Coats") for i in range(40)] + [(0, 10.0, 8.0, "Rings")]
    fit = fit_input(sizes, boxes, rule="classes")
    assert "Rings" not in fit.class_short_side_px
    assert fit.smallest_class == "Coats"
    assert fit.image_height == 256


def test_a_class_no_candidate_can_protect_gets_the_largest_input_and_its_best_anchors() -> None:
    sizes = [(400, 600)] * 20
    boxes = [(i, 180.0, 300.0, "Coats") for i in range(20)] + [(i, 8.0, 6.0, "Earrings") for i in range(20)]
    fit = fit_input(sizes, boxes, rule="classes")
    assert max(fit.image_height, fit.image_width) == 512
    # No anchor reaches them at all, so paying for finer ones would buy nothing: the cheapest stays.
    assert fit.class_coverage["Earrings"] == 0.0
    assert (fit.min_level, fit.anchor_size) == (4, 3.0)


def test_boxes_without_class_names_keep_todays_fit_and_an_unknown_rule_is_refused() -> None:
    sizes, boxes = _street_photos()
    plain = fit_input(sizes, [b[:3] for b in boxes])
    assert plain.smallest_class is None and plain.describe_smallest() == ""
    assert plain.params() == fit_input(sizes, boxes).params()
    with pytest.raises(ValueError, match="Unknown fit rule"):
        fit_input(sizes, boxes, rule="biggest")
