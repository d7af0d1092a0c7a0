"""Temperature scaling and calibration error on logits with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from core.model.tags.calibration import ece, fit_temperature, nll, reliability
from core.model.tags.model import softmax


def test_temperature_recovers_the_scale_that_made_overconfident_logits() -> None:
    # Labels drawn from softmax(z); the model reports 3 * z, so T = 3 undoes it.
    rng = np.random.default_rng(0)
    z = rng.normal(0, 1.5, (6000, 4))
    p = softmax(z)
    labels = np.array([rng.choice(4, p=row) for row in p])
    t = fit_temperature(3 * z, labels)
    assert t == pytest.approx(3.0, rel=0.08)
    assert nll(3 * z, labels, t) < nll(3 * z, labels, 1.0)


def test_temperature_never_changes_the_top_choice() -> None:
    z = np.array([[2.0, 1.0, 0.0], [0.0, 0.5, 3.0]])
    for t in (0.1, 1.0, 7.0):
        assert (softmax(z, t).argmax(axis=1) == z.argmax(axis=1)).all()


def test_fit_temperature_with_nothing_to_fit_is_one() -> None:
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 1.0


def test_ece_by_hand() -> None:
    # Two bins used: 0.9 confident (right 1 of 2 -> gap 0.4) and 0.6 confident (right 2 of 2 -> gap 0.4).
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    labels = np.array([0, 1, 0, 1])
    r = reliability(probs, labels, bins=10)
    assert r.ece == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert r.count[8] == 2 and r.accuracy[8] == 0.5 and r.confidence[8] == pytest.approx(0.9)
    assert r.count[5] == 2 and r.accuracy[5] == 1.0
    assert sum(r.count) == 4


def test_perfectly_calibrated_predictions_have_zero_ece() -> None:
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert ece(probs, np.array([0, 1])) == 0.0
