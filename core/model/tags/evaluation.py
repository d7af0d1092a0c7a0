"""Evaluating a tags model per head: accuracy, per-class precision/recall, confusion, curves, calibration.

Everything here works on numpy logits and labels (the evaluation job and the training job get them
from the model; tests give hand-made ones). Curves are one-vs-rest per value, thinned to a bounded
number of points so they fit in the model version's JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.model.tags.calibration import reliability
from core.model.tags.model import softmax

CURVE_POINTS = 101  # per class and curve
CONFUSED_PAIRS = 8
EXAMPLES_PER_PAIR = 6
LABELS_TO_CHECK = 12


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float | None:
    """Share of rows whose label is among the ``k`` highest probabilities (None for no rows)."""
    if len(labels) == 0:
        return None
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, n: int) -> np.ndarray:
    """``m[true, predicted]`` counts."""
    m = np.zeros((n, n), dtype=np.int64)
    np.add.at(m, (labels, predicted), 1)
    return m


def precision_recall_per_class(matrix: np.ndarray) -> tuple[list[float | None], list[float | None], list[int]]:
    """Per class precision (None when never predicted), recall (None when absent) and support."""
    tp = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = [float(tp[i] / predicted[i]) if predicted[i] else None for i in range(len(tp))]
    recall = [float(tp[i] / support[i]) if support[i] else None for i in range(len(tp))]
    return precision, recall, [int(s) for s in support]


def _thin(xs: np.ndarray, ys: np.ndarray, points: int = CURVE_POINTS) -> tuple[list[float], list[float]]:
    if len(xs) > points:
        idx = np.unique(np.linspace(0, len(xs) - 1, points).round().astype(int))
        xs, ys = xs[idx], ys[idx]
    return [round(float(x), 5) for x in xs], [round(float(y), 5) for y in ys]


def roc_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | None]:
    """False- and true-positive rates over descending score thresholds, and the area under them.

    Tied scores move together (one point per distinct score). None area when one class is absent.
    """
    p, n = int(positive.sum()), int((~positive).sum())
    if p == 0 or n == 0:
        return np.zeros(0), np.zeros(0), None
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], positive[order]
    last = np.r_[np.diff(s) != 0, True]  # the last index of each run of equal scores
    tps, fps = np.cumsum(y)[last], np.cumsum(~y)[last]
    tpr, fpr = np.r_[0.0, tps / p], np.r_[0.0, fps / n]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def pr_curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Recall and precision over descending thresholds, and average precision (step-wise, as scikit-learn)."""
    p = int(positive.sum())
    if p == 0:
        return np.zeros(0), np.zeros(0), None
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], positive[order]
    last = np.r_[np.diff(s) != 0, True]
    tps, fps = np.cumsum(y)[last], np.cumsum(~y)[last]
    precision, recall = tps / (tps + fps), tps / p
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return recall, precision, ap


def worst_confused(
    matrix: np.ndarray,
    values: Sequence[str],
    labels: np.ndarray,
    predicted: np.ndarray,
    confidence: np.ndarray,
    image_ids: Sequence[int],
) -> list[dict[str, Any]]:
    """The most frequent (true, predicted) mistakes with example images, most confident mistakes first."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    pairs = [(int(off[i, j]), i, j) for i in range(len(values)) for j in range(len(values)) if off[i, j]]
    pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
    out = []
    for count, i, j in pairs[:CONFUSED_PAIRS]:
        rows = np.flatnonzero((labels == i) & (predicted == j))
        rows = rows[np.argsort(-confidence[rows], kind="stable")][:EXAMPLES_PER_PAIR]
        out.append(
            {
                "true": values[i],
                "predicted": values[j],
                "count": count,
                "share_of_true": round(count / max(int(matrix[i].sum()), 1), 4),
                "examples": [int(image_ids[r]) for r in rows],
            }
        )
    return out


def labels_to_check(
    cal: np.ndarray, labels: np.ndarray, values: Sequence[str], image_ids: Sequence[int], limit: int = LABELS_TO_CHECK
) -> list[dict[str, Any]]:
    """The wrongly predicted images whose stored value the model finds least likely, least likely first.

    These are where a wrong or inconsistent label is likeliest (the mistakenness idea of FiftyOne's
    brain and of confident learning): on clothing-catalogue's test split, 15 of the 87 errors were
    labels that look wrong and 25 sat between two classes (docs/benchmarks.md), and they lead this
    list, since the model contradicts them with confidence. Each item: ``image_id``, ``label``,
    ``predicted``, ``confidence`` (calibrated, of the predicted value) and ``label_probability``.
    """
    if not len(cal):
        return []
    predicted = cal.argmax(axis=1)
    p_label = cal[np.arange(len(labels)), labels]
    rows = np.flatnonzero(predicted != labels)
    rows = rows[np.argsort(p_label[rows], kind="stable")][:limit]
    return [
        {
            "image_id": int(image_ids[r]),
            "label": values[int(labels[r])],
            "predicted": values[int(predicted[r])],
            "confidence": round(float(cal[r, predicted[r]]), 4),
            "label_probability": round(float(p_label[r]), 4),
        }
        for r in rows
    ]


def evaluate_head(
    logits: np.ndarray,
    labels: np.ndarray,
    values: Sequence[str],
    image_ids: Sequence[int],
    temperature: float = 1.0,
) -> dict[str, Any]:
    """All metrics of one head on its known labels (rows with label -1 are left out).

    Accuracy, precision and recall do not depend on the temperature (it keeps the order);
    the reliability diagrams and ECE are given before (T = 1) and after calibration.
    """
    labels = np.asarray(labels)
    known = labels >= 0
    logits, labels = np.asarray(logits)[known], labels[known]
    ids = [int(i) for i, k in zip(image_ids, known, strict=True) if k]
    n = len(values)
    raw = softmax(logits) if len(logits) else np.zeros((0, n))
    cal = softmax(logits, temperature) if len(logits) else np.zeros((0, n))
    predicted = cal.argmax(axis=1) if len(cal) else np.zeros(0, dtype=int)
    matrix = confusion_matrix(labels, predicted, n)
    precision, recall, support = precision_recall_per_class(matrix)
    classes = []
    for c, value in enumerate(values):
        positive = labels == c
        fpr, tpr, auc = roc_curve(cal[:, c], positive)
        rec, prec, ap = pr_curve(cal[:, c], positive)
        classes.append(
            {
                "value": value,
                "precision": precision[c],
                "recall": recall[c],
                "support": support[c],
                "roc_auc": auc,
                "average_precision": ap,
                "roc": dict(zip(("fpr", "tpr"), _thin(fpr, tpr), strict=True)),
                "pr": dict(zip(("recall", "precision"), _thin(rec, prec), strict=True)),
            }
        )
    before, after = reliability(raw, labels), reliability(cal, labels)
    recalls = [r for r in recall if r is not None]
    return {
        "images": int(len(labels)),
        "top1": top_k_accuracy(cal, labels, 1),
        "top5": top_k_accuracy(cal, labels, 5) if n > 5 else None,
        "balanced_accuracy": float(np.mean(recalls)) if recalls else None,
        "values": list(values),
        "classes": classes,
        "confusion": matrix.tolist(),
        "temperature": float(temperature),
        "ece_before": before.ece,
        "ece_after": after.ece,
        "reliability_before": before.to_dict(),
        "reliability_after": after.to_dict(),
        "confused_pairs": worst_confused(
            matrix, values, labels, predicted, cal.max(axis=1) if len(cal) else np.zeros(0), ids
        ),
        "labels_to_check": labels_to_check(cal, labels, values, ids),
    }


def evaluate_heads(
    logits: Sequence[np.ndarray],
    labels: np.ndarray,
    heads: dict[str, list[str]],
    image_ids: Sequence[int],
    temperatures: dict[str, float],
) -> dict[str, Any]:
    """``{tag: evaluate_head(...)}`` for every head, labels as the ``(images, heads)`` matrix."""
    return {
        tag: evaluate_head(logits[j], labels[:, j], values, image_ids, temperatures.get(tag, 1.0))
        for j, (tag, values) in enumerate(heads.items())
    }


def headline(per_head: dict[str, Any]) -> dict[str, Any]:
    """The figures a version lists: category (or first head) top-1/top-5, ECE after, mean top-1 over heads."""
    if not per_head:
        return {}
    main = per_head.get("category") or next(iter(per_head.values()))
    top1s = [h["top1"] for h in per_head.values() if h["top1"] is not None]
    return {
        "top1": main["top1"],
        "top5": main["top5"],
        "ece_before": main["ece_before"],
        "ece_after": main["ece_after"],
        "mean_top1": float(np.mean(top1s)) if top1s else None,
    }
