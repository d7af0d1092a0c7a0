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
        stopped_early: Whether early stopping ended the run before its budget was spent (its
            held-out score had stopped improving): a longer budget would have stopped there too.
    """

    epochs: float
    map50: float
    map50_95: float
    run: str
    stopped_early: bool = False


# ccp-detection, the offline ImageNet start, the fit of its day (448x288, heads from level 3),
# the defaults (Huber + CIoU box loss, one conv per head), on two kinds of 2-core machine: a Xeon
# (AVX-512) on 2026-12-03/04 and an AMD EPYC (AVX2) on 2026-12-04/05; docs/benchmarks.md "The
# budget curve with one conv per head", "The 120-minute point" and "The budget curve with 128
# channels". Epochs are the passes each run made, the last (cut by the budget) counted by its
# share. The first runs had keras-hub's 256-channel pyramid and heads (3.2-4.0 img/s on the Xeon,
# 2.2-2.5 on the EPYC); today's default of 128 channels (session 20) trains 2.3-2.5x the images per
# second, and its runs (5.6-6.0 img/s on the EPYC) lie on the same curve read by epochs: the same
# minutes buy more passes, and a pass is worth about the same. That is why epochs, not minutes, are
# the axis. The 128-channel 120-minute run stopped early at 40 epochs (89 minutes, best epoch 32):
# past it the page says more minutes bought nothing more there.
CCP_CURVE: tuple[CurvePoint, ...] = (
    CurvePoint(3.54, 0.332, 0.143, "15 min, seed 0, Xeon, pyramid width 256"),
    CurvePoint(4.87, 0.374, 0.180, "30 min, seed 1, EPYC, pyramid width 256"),
    CurvePoint(5.64, 0.424, 0.217, "30 min, seed 0, EPYC, pyramid width 256"),
    CurvePoint(6.29, 0.408, 0.199, "15 min, seed 0, EPYC, pyramid width 128"),
    CurvePoint(7.01, 0.429, 0.218, "30 min, seed 1, Xeon, pyramid width 256"),
    CurvePoint(7.28, 0.447, 0.225, "30 min, seed 0, Xeon, pyramid width 256"),
    CurvePoint(12.6, 0.484, 0.251, "30 min, seed 0, EPYC, pyramid width 128"),
    CurvePoint(13.36, 0.495, 0.266, "30 min, seed 1, EPYC, pyramid width 128"),
    CurvePoint(18.0, 0.496, 0.269, "60 min, seed 0, Xeon, pyramid width 256"),
    CurvePoint(26.90, 0.532, 0.297, "60 min, seed 0, EPYC, pyramid width 128"),
    CurvePoint(22.66, 0.517, 0.292, "120 min, seed 0, EPYC, pyramid width 256"),
    CurvePoint(40.0, 0.533, 0.295, "120 min, seed 0, EPYC, pyramid width 128", stopped_early=True),
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

    Runs of one length are averaged, and the averages are made non-decreasing in epochs before
    interpolating (``_monotone``): seeds and machines scatter a run's score by ±0.02-0.05, and a
    15-minute run that scored under a shorter 30-minute one does not mean a few more passes cost
    accuracy, which a raw line through the points would tell the page's reader.

    Args:
        epochs: Epochs a budget gives (minutes x images/s x 60 / training images).
        curve: Measured runs, any order.
    """
    xs = sorted({p.epochs for p in curve})
    runs = [[p for p in curve if p.epochs == x] for x in xs]
    counts = [len(r) for r in runs]
    m50 = _monotone([float(np.mean([p.map50 for p in r])) for r in runs], counts)
    m95 = _monotone([float(np.mean([p.map50_95 for p in r])) for r in runs], counts)
    inside = xs[0] <= epochs <= xs[-1]
    # np.interp holds the end values outside the range: the caller is told via measured_range.
    return Expected(epochs, float(np.interp(epochs, xs, m50)), float(np.interp(epochs, xs, m95)), inside)


def _monotone(ys: list[float], weights: list[int]) -> list[float]:
    """The closest non-decreasing sequence to ``ys`` in weighted least squares (isotonic regression).

    Pool-adjacent-violators, written here because it is a dozen lines and the only reason to add
    scikit-learn (``sklearn.isotonic``) to the app's dependencies: neighbours that fall are merged
    into their weighted mean until nothing falls.
    """
    blocks: list[list[float]] = []  # [mean, weight, length]
    for y, w in zip(ys, weights, strict=True):
        blocks.append([y, float(w), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return [m for m, _, n in blocks for _ in range(int(n))]
