"""The Train page's estimate text (ui/train_panels.py) against the benchmark's budget curve."""

from __future__ import annotations

from core.model.detector.budget_curve import CCP_CURVE, expected_at
from ui.train_panels import benchmark_text


def test_within_the_curve_it_gives_the_benchmarks_figures_as_an_estimate() -> None:
    text = benchmark_text(10.0)
    x = expected_at(10.0)
    assert "Estimate from the detection benchmark" in text and "not a promise" in text
    assert f"runs of 10 epochs scored mAP@0.5 ≈ {x.map50:.2f} (mAP@[.5:.95] ≈ {x.map50_95:.2f})" in text


def test_past_a_longest_run_that_stopped_early_it_says_more_minutes_bought_nothing_more() -> None:
    longest = max(CCP_CURVE, key=lambda p: p.epochs)
    assert longest.stopped_early
    text = benchmark_text(longest.epochs * 0.75)  # in range; twice that is past the longest run
    assert f"the longest run stopped early at {longest.epochs:.0f} epochs" in text
    assert "more minutes bought nothing more there" in text
    shortest = min(CCP_CURVE, key=lambda p: p.epochs)
    assert f"the shortest, {shortest.epochs:.1f} epochs, scored" in benchmark_text(1.0)
