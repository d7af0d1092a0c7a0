"""The detector's budget curve: measured runs by epochs (core.model.detector.budget_curve)."""

from __future__ import annotations

import pytest

from core.model.detector.budget_curve import CCP_CURVE, CurvePoint, expected_at

CURVE = (
    CurvePoint(4, 0.30, 0.10, "a"),
    CurvePoint(10, 0.50, 0.20, "b"),
    CurvePoint(10, 0.54, 0.24, "b, seed 1"),
    CurvePoint(20, 0.60, 0.30, "c"),
)


def test_between_runs_it_interpolates_and_runs_of_one_length_are_averaged() -> None:
    at10 = expected_at(10, CURVE)
    assert at10.map50 == pytest.approx(0.52) and at10.map50_95 == pytest.approx(0.22) and at10.measured_range
    at15 = expected_at(15, CURVE)
    assert at15.map50 == pytest.approx(0.56) and at15.map50_95 == pytest.approx(0.26)
    assert expected_at(7, CURVE).map50 == pytest.approx(0.41)


def test_outside_the_measured_runs_it_holds_the_end_and_says_so() -> None:
    short, long = expected_at(1, CURVE), expected_at(40, CURVE)
    assert (short.map50, short.measured_range) == (0.30, False)
    assert (long.map50, long.measured_range) == (0.60, False)


def test_the_shipped_curve_rises_with_epochs() -> None:
    # Each point is a whole run of the defaults on ccp-detection (docs/benchmarks.md); more epochs never scored less.
    xs = sorted({p.epochs for p in CCP_CURVE})
    maps = [expected_at(x).map50 for x in xs]
    assert len(xs) >= 3 and maps == sorted(maps)
