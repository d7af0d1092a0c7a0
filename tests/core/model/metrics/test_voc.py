"""VOC mAP: hand-worked cases and the devkit's matching rules."""

import numpy as np
import pytest

from core.boxes import Box
from core.model.metrics.types import Detection, GroundTruth
from core.model.metrics.voc import average_precision, class_ap, evaluate

A = Box(0, 0, 10, 10)
B = Box(20, 20, 40, 40)


def test_perfect_detections_give_ap_one():
    gts = [GroundTruth("i1", "shirt", A), GroundTruth("i2", "shirt", B)]
    dets = [Detection("i1", "shirt", A, 0.9), Detection("i2", "shirt", B, 0.8)]
    assert class_ap(gts, dets) == pytest.approx(1.0)


def test_all_point_interpolation_hand_worked():
    # 3 GT; ranked detections: TP, FP, TP -> recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3.
    # Envelope: precision 1 up to recall 1/3, 2/3 up to 2/3, then nothing: AP = 1/3 + 1/3 * 2/3.
    gts = [GroundTruth("a", "shirt", A), GroundTruth("b", "shirt", A), GroundTruth("c", "shirt", A)]
    dets = [Detection("a", "shirt", A, 0.9), Detection("a", "shirt", B, 0.8), Detection("b", "shirt", A, 0.7)]
    assert class_ap(gts, dets) == pytest.approx(1 / 3 + (1 / 3) * (2 / 3))


def test_average_precision_envelope():
    assert average_precision(np.array([0.5, 1.0]), np.array([0.5, 1.0])) == pytest.approx(1.0)


def test_duplicate_detection_is_a_false_positive_and_iou_threshold_applies():
    gts = [GroundTruth("a", "shirt", A)]
    dup = [Detection("a", "shirt", A, 0.9), Detection("a", "shirt", A, 0.8)]
    assert class_ap(gts, dup) == pytest.approx(1.0)  # the FP comes after full recall
    dup_first = [Detection("a", "shirt", Box(0, 0, 10, 4), 0.95), Detection("a", "shirt", A, 0.8)]  # IoU 0.4 < 0.5
    assert class_ap(gts, dup_first) == pytest.approx(0.5)


def test_wrong_class_or_image_does_not_match():
    gts = [GroundTruth("a", "x", A)]
    assert evaluate(gts, [Detection("a", "y", A, 0.9)], ["x", "y"]).ap["x"] == 0.0
    assert class_ap(gts, [Detection("b", "x", A, 0.9)]) == 0.0


def test_evaluate_per_class_and_mean_skip_classes_without_ground_truth():
    gts = [GroundTruth("a", "shirt", A), GroundTruth("a", "dress", B)]
    dets = [Detection("a", "shirt", A, 0.9), Detection("a", "dress", A, 0.9), Detection("a", "shoe", A, 0.5)]
    m = evaluate(gts, dets, ["shirt", "dress", "shoe"])
    assert m.ap == {"shirt": 1.0, "dress": 0.0, "shoe": None}
    assert m.map == pytest.approx(0.5)
    assert m.to_dict()["ground_truths"] == {"shirt": 1, "dress": 1, "shoe": 0}
