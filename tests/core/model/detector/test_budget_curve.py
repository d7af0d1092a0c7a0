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


def test_a_run_that_scored_under_a_shorter_one_is_pooled_with_it_not_drawn_as_a_dip() -> None:
    # Seed and machine scatter: a 6-epoch run under a 5-epoch one does not mean a pass costs accuracy.
    curve = (
        CurvePoint(4, 0.30, 0.10, "a"),
        CurvePoint(5, 0.42, 0.22, "b"),
        CurvePoint(6, 0.40, 0.20, "c"),
        CurvePoint(12, 0.50, 0.26, "d"),
    )
    assert expected_at(5, curve).map50 == pytest.approx(0.41) == expected_at(6, curve).map50
    assert expected_at(5.5, curve).map50_95 == pytest.approx(0.21)
    assert expected_at(4, curve).map50 == pytest.approx(0.30) and expected_at(12, curve).map50 == pytest.approx(0.50)
    # Runs of one length count with their number when pooled: two at 6 epochs weigh twice one at 5.
    two_at_6 = (*curve, CurvePoint(6, 0.40, 0.20, "c, seed 1"))
    assert expected_at(5, two_at_6).map50 == pytest.approx((0.42 + 2 * 0.40) / 3)


def test_the_shipped_curve_ends_with_a_run_that_stopped_early() -> None:
    # The 120-minute run of today's defaults stopped early: past it, more minutes bought nothing there.
    longest = max(CCP_CURVE, key=lambda p: p.epochs)
    assert longest.stopped_early and sum(p.stopped_early for p in CCP_CURVE) < len(CCP_CURVE) / 2
