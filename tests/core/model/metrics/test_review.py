"""The reviewer's figures on hand-made boxes: one image per case, each case's count checked."""

from __future__ import annotations

import math

import pytest

from core.boxes import Box
from core.model.metrics.review import ReviewFigures, review_figures, shown_boxes
from core.model.metrics.types import Detection, GroundTruth

JACKET = Box(100, 100, 200, 300)  # 100 x 200
SHOE = Box(400, 500, 440, 530)
# Same height, 100 -> 100/0.6 wide, sharing JACKET's left edge: IoU exactly 0.6.
LOOSE_JACKET = Box(100, 100, 100 + 100 / 0.6, 300)


def figures(gts: list[GroundTruth], dts: list[Detection], n_images: int = 1, **kw: float) -> ReviewFigures:
    return review_figures(gts, dts, n_images, score_threshold=0.5, **kw)


def test_loose_box_is_one_iou_0_6() -> None:
    assert JACKET.iou(LOOSE_JACKET) == pytest.approx(0.6)


def test_perfect_image_is_acceptable() -> None:
    gts = [GroundTruth(1, "Jackets", JACKET), GroundTruth(1, "Shoes", SHOE)]
    dts = [Detection(1, "Jackets", JACKET, 0.9), Detection(1, "Shoes", Box(401, 501, 441, 531), 0.6)]
    f = figures(gts, dts)
    assert (f.acceptable, f.shown, f.matched, f.ground_truth) == (1, 2, 2, 2)
    assert f.acceptable_share == 1.0 and f.precision == 1.0 and f.recall == 1.0


def test_loose_box_fails_at_0_7_and_passes_at_0_5() -> None:
    gts = [GroundTruth(1, "Jackets", JACKET)]
    dts = [Detection(1, "Jackets", LOOSE_JACKET, 0.9)]
    tight = figures(gts, dts)
    assert (tight.acceptable, tight.matched, tight.precision, tight.recall) == (0, 0, 0.0, 0.0)
    loose = figures(gts, dts, iou_threshold=0.5)
    assert (loose.acceptable, loose.matched) == (1, 1)


def test_wrong_label_is_an_extra_box_and_a_missed_one() -> None:
    f = figures([GroundTruth(1, "Jackets", JACKET)], [Detection(1, "Coats", JACKET, 0.9)])
    assert (f.acceptable, f.shown, f.matched, f.ground_truth) == (0, 1, 0, 1)


def test_missed_box() -> None:
    gts = [GroundTruth(1, "Jackets", JACKET), GroundTruth(1, "Shoes", SHOE)]
    f = figures(gts, [Detection(1, "Jackets", JACKET, 0.9)])
    assert (f.acceptable, f.precision, f.recall) == (0, 1.0, 0.5)


def test_extra_box_below_the_threshold_is_not_shown() -> None:
    gts = [GroundTruth(1, "Jackets", JACKET)]
    dts = [Detection(1, "Jackets", JACKET, 0.9), Detection(1, "Shoes", SHOE, 0.49)]
    f = figures(gts, dts)
    assert (f.acceptable, f.shown, f.precision) == (1, 1, 1.0)


def test_extra_box_above_the_threshold_spoils_the_image() -> None:
    gts = [GroundTruth(1, "Jackets", JACKET)]
    dts = [Detection(1, "Jackets", JACKET, 0.9), Detection(1, "Shoes", SHOE, 0.5)]
    f = figures(gts, dts)
    assert (f.acceptable, f.shown, f.matched, f.precision, f.recall) == (0, 2, 1, 0.5, 1.0)


def test_a_duplicate_of_another_class_is_one_object_as_on_the_review_page() -> None:
    # The per-class NMS leaves a near-identical Coats box (IoU > 0.9): the page shows the Jackets one only.
    dts = [Detection(1, "Coats", Box(101, 101, 201, 301), 0.6), Detection(1, "Jackets", JACKET, 0.9)]
    assert [d.label for d in shown_boxes(dts, 0.5)] == ["Jackets"]
    assert figures([GroundTruth(1, "Jackets", JACKET)], dts).acceptable == 1


def test_each_truth_box_takes_one_detection() -> None:
    # Two jackets side by side, three jacket boxes shown: one is extra even though it overlaps.
    other = Box(210, 100, 310, 300)
    gts = [GroundTruth(1, "Jackets", JACKET), GroundTruth(1, "Jackets", other)]
    dts = [
        Detection(1, "Jackets", JACKET, 0.9),
        Detection(1, "Jackets", other, 0.8),
        Detection(1, "Jackets", Box(100, 100, 185, 300), 0.7),  # IoU 0.85 with JACKET, but it is taken
    ]
    f = figures(gts, dts)
    assert (f.acceptable, f.shown, f.matched) == (0, 3, 2)


def test_empty_images_count_as_acceptable() -> None:
    # Image 1 perfect, image 2 an unshown low-score box only, images 3 and 4 empty.
    gts = [GroundTruth(1, "Jackets", JACKET)]
    dts = [Detection(1, "Jackets", JACKET, 0.9), Detection(2, "Shoes", SHOE, 0.1)]
    f = figures(gts, dts, n_images=4)
    assert (f.images, f.acceptable, f.acceptable_share) == (4, 4, 1.0)


def test_nothing_at_all() -> None:
    f = figures([], [], n_images=3)
    assert f.acceptable_share == 1.0 and math.isnan(f.precision) and math.isnan(f.recall)
    assert f.to_dict() == {
        "score_threshold": 0.5,
        "iou_threshold": 0.7,
        "images": 3,
        "acceptable": 3,
        "acceptable_share": 1.0,
        "shown": 0,
        "matched": 0,
        "ground_truth": 0,
        "precision": None,
        "recall": None,
    }


def test_more_images_in_the_boxes_than_reviewed_is_refused() -> None:
    with pytest.raises(ValueError, match="2 images, more than the 1"):
        figures([GroundTruth(1, "Jackets", JACKET)], [Detection(2, "Shoes", SHOE, 0.9)], n_images=1)


def test_shares_over_several_images() -> None:
    gts = [GroundTruth(1, "Jackets", JACKET), GroundTruth(2, "Jackets", JACKET), GroundTruth(2, "Shoes", SHOE)]
    dts = [Detection(1, "Jackets", JACKET, 0.9), Detection(2, "Jackets", LOOSE_JACKET, 0.8)]
    f = figures(gts, dts, n_images=2)
    assert f.to_dict()["acceptable_share"] == 0.5
    assert (f.precision, f.recall) == (0.5, pytest.approx(1 / 3))
