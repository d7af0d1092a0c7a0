"""Temperature scaling (Guo et al., 2017) and calibration error, per head, in numpy.

One scalar ``T`` per head divides its logits before the softmax; it is fitted on the validation
split by minimising the negative log-likelihood, which keeps the top-1 choice (dividing by a
positive number keeps the order) and makes "0.9" right about 9 times in 10.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.model.tags.model import softmax

T_MIN, T_MAX = 0.05, 20.0
BINS = 15


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits / temperature)``."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [0.05, 20] minimising the NLL (golden-section search on log T).

    The NLL is convex in 1/T, so it is unimodal in log T and the search finds the minimum.
    Returns 1.0 when there is nothing to fit on.
    """
    logits, labels = np.asarray(logits), np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return 1.0
    lo, hi = np.log(T_MIN), np.log(T_MAX)
    g = (np.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = nll(logits, labels, np.exp(a)), nll(logits, labels, np.exp(b))
    for _ in range(80):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = nll(logits, labels, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = nll(logits, labels, np.exp(b))
    return float(np.exp((lo + hi) / 2))


@dataclass
class Reliability:
    """A reliability diagram: per confidence bin, the mean confidence, the accuracy and the count."""

    edges: list[float]
    confidence: list[float | None]
    accuracy: list[float | None]
    count: list[int]
    ece: float

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {
            "edges": self.edges,
            "confidence": self.confidence,
            "accuracy": self.accuracy,
            "count": self.count,
            "ece": self.ece,
        }


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> Reliability:
    """Reliability diagram and expected calibration error of top-1 confidences (equal-width bins).

    ECE = sum over bins of (bin count / n) * |accuracy - mean confidence|.
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    conf = probs.max(axis=1) if len(probs) else np.zeros(0)
    right = (probs.argmax(axis=1) == labels) if len(probs) else np.zeros(0, dtype=bool)
    # Bin i holds (edges[i], edges[i+1]]; a confidence of exactly 0 goes to the first bin.
    which = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, bins - 1)
    confidence: list[float | None] = []
    accuracy: list[float | None] = []
    count: list[int] = []
    ece = 0.0
    for i in range(bins):
        m = which == i
        n = int(m.sum())
        count.append(n)
        if n:
            c, a = float(conf[m].mean()), float(right[m].mean())
            confidence.append(round(c, 6))
            accuracy.append(round(a, 6))
            ece += n / len(conf) * abs(a - c)
        else:
            confidence.append(None)
            accuracy.append(None)
    return Reliability([round(float(e), 6) for e in edges], confidence, accuracy, count, float(ece))


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = BINS) -> float:
    """Expected calibration error of top-1 confidences."""
    return reliability(probs, labels, bins).ece


def calibrate_heads(logits: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> dict[str, float]:
    """``{tag: T}`` fitted per head on the known labels of each."""
    return {tag: round(fit_temperature(logits[tag], labels[tag]), 6) for tag in logits}


__all__ = ["Reliability", "calibrate_heads", "ece", "fit_temperature", "nll", "reliability", "softmax"]
