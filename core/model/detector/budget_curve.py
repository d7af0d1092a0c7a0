"""What more training buys: the detector's measured accuracy against the epochs a budget gave.

The Train page turns a budget in minutes into epochs over the project's training images at
the project's last measured speed (ui/train_panels.py). This module turns epochs into what
runs of that many epochs scored on the one real-photo benchmark we have,
``benchmarks/accuracy.py`` on ccp-detection (723 training street photos, 11 classes, the
defaults, the pretrained start), so a team deciding between 15 minutes and an overnight run
sees what the extra time bought there.

Epochs, not minutes, are the axis because minutes depend on the machine (the same code
trained 2.7x slower on 2026-12-02's two AVX2 cores than on 2026-11-21's, docs/benchmarks.md)
and on the project's size, while a run's accuracy follows how many passes it made with the
learning rate decaying over the whole budget. Each point is a whole run of that length, not
a checkpoint of a longer one. It is an estimate for other projects: other photos and classes
learn at other rates, so the page labels it as the benchmark's figure, not a promise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CurvePoint:
    """One benchmark run: its epochs and its test accuracy.

    Attributes:
        epochs: Passes over the training images the run made in its budget, the last one
            (cut short by the budget) counted by its share.
        map50: Test mAP@0.5 (COCO definition).
        map50_95: Test mAP@[.5:.95].
        run: Where the figure comes from (docs/benchmarks.md).
    """

    epochs: float
    map50: float
    map50_95: float
    run: str


# ccp-detection, the offline ImageNet start, the fit of its day (448x288, heads from level 3),
# today's defaults (Huber + CIoU box loss, one conv per head), on two kinds of 2-core machine:
# a Xeon (AVX-512) on 2026-12-03/04 at 3.2-4.0 img/s, and an AMD EPYC (AVX2) on 2026-12-04 at
# 2.2-2.5 img/s; docs/benchmarks.md "The budget curve with one conv per head" and "The
# 120-minute point". Epochs are the passes each run made, the last (cut by the budget) counted by
# its share. The slower machine's 30-minute runs made 4.9 and 5.6 epochs and scored between the
# Xeon's 15- and 30-minute runs: read by epochs, both machines' runs lie on one curve, which is
# why epochs, not minutes, are the axis. Past the 120-minute run's 22.7 epochs the page says so.
# The runs above had keras-hub's 256-channel pyramid and heads. Today's default of 128 channels
# (session 20) trains about 2.3-2.5x the images per second, and its two 30-minute runs on the EPYC
# (12.6 and 13.4 epochs) scored a little above the 256-channel runs' line at those epochs (0.484 /
# 0.251 and 0.495 / 0.266 against an interpolated 0.471 / 0.247 and 0.475 / 0.250): an epoch is
# worth about the same, so the curve still reads by epochs; its 15-, 60- and 120-minute points at
# 128 channels are not measured yet.
CCP_CURVE: tuple[CurvePoint, ...] = (
    CurvePoint(3.54, 0.332, 0.143, "15 min, seed 0, Xeon"),
    CurvePoint(4.87, 0.374, 0.180, "30 min, seed 1, EPYC"),
    CurvePoint(5.64, 0.424, 0.217, "30 min, seed 0, EPYC"),
    CurvePoint(7.01, 0.429, 0.218, "30 min, seed 1, Xeon"),
    CurvePoint(7.28, 0.447, 0.225, "30 min, seed 0, Xeon"),
    CurvePoint(18.0, 0.496, 0.269, "60 min, seed 0, Xeon"),
    CurvePoint(12.6, 0.484, 0.251, "30 min, seed 0, EPYC, pyramid width 128"),
    CurvePoint(13.36, 0.495, 0.266, "30 min, seed 1, EPYC, pyramid width 128"),
    CurvePoint(22.66, 0.517, 0.292, "120 min, seed 0, EPYC"),
)
CCP_TRAIN_IMAGES = 723


@dataclass(frozen=True)
class Expected:
    """The benchmark's accuracy at some number of epochs.

    Attributes:
        epochs: The epochs asked about.
        map50: Interpolated test mAP@0.5 (the nearest measured run's beyond the measured range).
        map50_95: Likewise for mAP@[.5:.95].
        measured_range: Whether ``epochs`` lies within the measured runs (else the figure is the
            end of the curve: fewer epochs score lower, more were not measured).
    """

    epochs: float
    map50: float
    map50_95: float
    measured_range: bool


def expected_at(epochs: float, curve: tuple[CurvePoint, ...] = CCP_CURVE) -> Expected:
    """What runs of ``epochs`` epochs scored on the benchmark (linear between measured runs).

    Args:
        epochs: Epochs a budget gives (minutes x images/s x 60 / training images).
        curve: Measured runs, any order; runs of equal length are averaged.
    """
    xs = sorted({p.epochs for p in curve})
    m50 = [float(np.mean([p.map50 for p in curve if p.epochs == x])) for x in xs]
    m95 = [float(np.mean([p.map50_95 for p in curve if p.epochs == x])) for x in xs]
    inside = xs[0] <= epochs <= xs[-1]
    # np.interp holds the end values outside the range: the caller is told via measured_range.
    return Expected(epochs, float(np.interp(epochs, xs, m50)), float(np.interp(epochs, xs, m95)), inside)
