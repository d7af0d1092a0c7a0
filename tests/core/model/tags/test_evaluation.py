"""Tags evaluation metrics on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from core.model.tags.evaluation import evaluate_head, labels_to_check, pr_curve, roc_curve, top_k_accuracy

VALUES = ["a", "b", "c"]


def _logits(rows: list[list[float]]) -> np.ndarray:
    return np.log(np.asarray(rows))  # softmax(log p) = p


def test_top_k_and_confusion_and_per_class_figures() -> None:
    probs = [[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.2, 0.3, 0.5], [0.5, 0.1, 0.4]]
    labels = np.array([0, 1, 1, 2, 2])
    got = evaluate_head(_logits(probs), labels, VALUES, [10, 11, 12, 13, 14])
    assert got["top1"] == pytest.approx(3 / 5)
    assert got["confusion"] == [[1, 0, 0], [1, 1, 0], [1, 0, 1]]
    a, b, c = got["classes"]
    assert a["precision"] == pytest.approx(1 / 3) and a["recall"] == 1.0 and a["support"] == 1
    assert b["precision"] == 1.0 and b["recall"] == 0.5
    assert c["precision"] == 1.0 and c["recall"] == 0.5
    assert got["balanced_accuracy"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    # Worst confusions: b->a and c->a once each, the most confident example first.
    pairs = {(p["true"], p["predicted"]): p for p in got["confused_pairs"]}
    assert set(pairs) == {("b", "a"), ("c", "a")}
    assert pairs[("b", "a")]["examples"] == [11] and pairs[("c", "a")]["examples"] == [14]
    assert got["top5"] is None  # three values: top-5 is always 1 and not reported
    # Labels to check: the wrong ones, the label the model finds least likely first (b at 0.3, then c at 0.4).
    check = got["labels_to_check"]
    assert [c["image_id"] for c in check] == [11, 14]
    assert check[0] == {
        "image_id": 11,
        "label": "b",
        "predicted": "a",
        "confidence": pytest.approx(0.6),
        "label_probability": pytest.approx(0.3),
    }


def test_unknown_labels_are_left_out() -> None:
    probs = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]]
    got = evaluate_head(_logits(probs), np.array([0, -1]), VALUES, [1, 2])
    assert got["images"] == 1 and got["top1"] == 1.0


def test_labels_to_check_orders_by_the_labels_probability_and_stops_at_the_limit() -> None:
    # Image 5: labelled a, the model says c at 0.9 (a at 0.05): the likeliest wrong label, first.
    # Image 3: labelled b, predicted a at 0.5 (b at 0.45): a near miss, last. Correct images never appear.
    cal = np.array([[0.1, 0.8, 0.1], [0.5, 0.45, 0.05], [0.05, 0.05, 0.9], [0.2, 0.1, 0.7]])
    labels = np.array([1, 1, 0, 0])
    got = labels_to_check(cal, labels, VALUES, [2, 3, 5, 7])
    assert [(g["image_id"], g["label"], g["predicted"]) for g in got] == [(5, "a", "c"), (7, "a", "c"), (3, "b", "a")]
    assert got[0]["label_probability"] == pytest.approx(0.05) and got[0]["confidence"] == pytest.approx(0.9)
    assert [g["image_id"] for g in labels_to_check(cal, labels, VALUES, [2, 3, 5, 7], limit=1)] == [5]
    assert labels_to_check(np.zeros((0, 3)), np.zeros(0, dtype=int), VALUES, []) == []


def test_top_k() -> None:
    probs = np.array([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2], [0.5, 0.3, 0.2]])
    labels = np.array([0, 1, 2])
    assert top_k_accuracy(probs, labels, 1) == pytest.approx(1 / 3)
    assert top_k_accuracy(probs, labels, 2) == pytest.approx(2 / 3)
    assert top_k_accuracy(probs, labels, 5) == 1.0


def test_roc_and_pr_by_hand() -> None:
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    positive = np.array([True, False, True, False])
    fpr, tpr, auc = roc_curve(scores, positive)
    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0] and tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert auc == pytest.approx(0.75)  # 3 of the 4 (positive, negative) pairs are ordered right
    recall, precision, ap = pr_curve(scores, positive)
    assert recall.tolist() == [0.5, 0.5, 1.0, 1.0]
    assert precision.tolist() == pytest.approx([1.0, 0.5, 2 / 3, 0.5])
    assert ap == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    assert roc_curve(scores, np.zeros(4, dtype=bool))[2] is None


def test_calibration_changes_ece_not_accuracy() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0, 1, (500, 3))
    labels = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in z])
    hot = evaluate_head(4 * z, labels, VALUES, list(range(500)), temperature=1.0)
    fixed = evaluate_head(4 * z, labels, VALUES, list(range(500)), temperature=4.0)
    assert hot["top1"] == fixed["top1"]
    assert fixed["ece_after"] < hot["ece_after"]
    assert fixed["ece_before"] == hot["ece_before"]
