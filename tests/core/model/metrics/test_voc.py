"""VOC mAP: hand-worked cases and the devkit's matching rules."""

import numpy as np
import pytest

from core.boxes import Box
from core.model.metrics.voc import Detection, GroundTruth, average_precision, class_ap, evaluate

A = Box(0, 0, 10, 10)
B = Box(20, 20, 40, 40)


def test_perfect_detections_give_ap_one():
    gts = [GroundTruth("i1", 0, A), GroundTruth("i2", 0, B)]
    dets = [Detection("i1", 0, A, 0.9), Detection("i2", 0, B, 0.8)]
    assert class_ap(gts, dets) == pytest.approx(1.0)


def test_all_point_interpolation_hand_worked():
    # 3 GT; ranked detections: TP, FP, TP -> recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3.
    # Envelope: precision 1 up to recall 1/3, 2/3 up to 2/3, then nothing: AP = 1/3 + 1/3 * 2/3.
    gts = [GroundTruth("a", 0, A), GroundTruth("b", 0, A), GroundTruth("c", 0, A)]
    dets = [Detection("a", 0, A, 0.9), Detection("a", 0, B, 0.8), Detection("b", 0, A, 0.7)]
    assert class_ap(gts, dets) == pytest.approx(1 / 3 + (1 / 3) * (2 / 3))


def test_average_precision_envelope():
    assert average_precision(np.array([0.5, 1.0]), np.array([0.5, 1.0])) == pytest.approx(1.0)


def test_duplicate_detection_is_a_false_positive_and_iou_threshold_applies():
    gts = [GroundTruth("a", 0, A)]
    dup = [Detection("a", 0, A, 0.9), Detection("a", 0, A, 0.8)]
    assert class_ap(gts, dup) == pytest.approx(1.0)  # the FP comes after full recall
    dup_first = [Detection("a", 0, Box(0, 0, 10, 4), 0.95), Detection("a", 0, A, 0.8)]  # IoU 0.4 < 0.5
    assert class_ap(gts, dup_first) == pytest.approx(0.5)


def test_wrong_class_or_image_does_not_match():
    gts = [GroundTruth("a", 0, A)]
    assert evaluate(gts, [Detection("a", 1, A, 0.9)], ["x", "y"]).ap["x"] == 0.0
    assert class_ap(gts, [Detection("b", 0, A, 0.9)]) == 0.0


def test_evaluate_per_class_and_mean_skip_classes_without_ground_truth():
    gts = [GroundTruth("a", 0, A), GroundTruth("a", 1, B)]
    dets = [Detection("a", 0, A, 0.9), Detection("a", 1, A, 0.9), Detection("a", 2, A, 0.5)]
    m = evaluate(gts, dets, ["shirt", "dress", "shoe"])
    assert m.ap == {"shirt": 1.0, "dress": 0.0, "shoe": None}
    assert m.map == pytest.approx(0.5)
    assert m.to_dict()["ground_truths"] == {"shirt": 1, "dress": 1, "shoe": 0}
