"""Footwear in profile: sneakers, ankle boots and pairs of sneakers, one drawing function per variant."""

from __future__ import annotations

import numpy as np

from core.demo.canvas import ACCENT, SEAM, SOLE, Canvas, curve


def draw_sneaker(c: Canvas, rng: np.random.Generator) -> None:
    """A shoe in profile, toe to the right: heel, low collar, sloping vamp, thick sole."""
    collar = rng.uniform(0.18, 0.3)
    toe = rng.uniform(0.55, 0.66)
    sole = rng.uniform(0.74, 0.8)
    tongue = collar - rng.uniform(0.05, 0.12)
    upper = (
        [
            (0.03, sole + 0.02),
            (0.0, 0.5),
            (0.04, collar),
            (0.14, collar - 0.02),
            (0.3, collar + 0.08),
            (0.36, tongue),
        ]
        + curve((0.44, tongue + 0.02), (0.6, toe - 0.05), (0.88, toe))
        + curve((0.88, toe), (1.0, toe + 0.03), (0.99, sole + 0.02))[1:]
    )
    c.shape(upper)
    c.shape(
        [
            (0.0, sole),
            (0.97, sole),
            (1.0, sole + 0.06),
            (1.0, 0.94),
            (0.96, 1.0),
            (0.03, 1.0),
            (0.0, 0.95),
        ],
        SOLE,
    )
    start, end = np.array([0.38, tongue + 0.08]), np.array([0.6, toe - 0.06])
    for t in np.linspace(0.0, 1.0, int(rng.integers(3, 6))):
        x, y = start + t * (end - start)
        c.mark([(x - 0.04, y - 0.03), (x + 0.04, y + 0.03)], c.px(0.04), ACCENT)
    if rng.random() < 0.4:
        c.mark(curve((0.25, sole - 0.05), (0.45, sole - 0.1), (0.7, toe - 0.02)), c.px(0.07), ACCENT)
    c.mark(curve((0.78, sole), (0.8, toe + 0.02), (0.9, toe + 0.01)), c.px(0.025))


def draw_boot(c: Canvas, rng: np.random.Generator) -> None:
    """An ankle boot in profile: upright shaft, foot to the right, sole with a heel block."""
    shaft = rng.uniform(0.36, 0.44)
    ankle = rng.uniform(0.42, 0.52)
    toe = rng.uniform(0.66, 0.74)
    upper = (
        [(0.02, 0.87), (0.03, 0.0), (shaft, 0.0)]
        + curve((shaft + 0.02, ankle), (shaft + 0.25, ankle + 0.08), (0.88, toe))
        + curve((0.88, toe), (1.0, toe + 0.03), (0.99, 0.87))[1:]
    )
    c.shape(upper)
    c.shape([(0.0, 0.86), (0.98, 0.86), (1.0, 0.9), (0.98, 0.94), (0.0, 0.94)], SOLE)
    c.shape([(0.02, 0.9), (0.24, 0.9), (0.22, 1.0), (0.03, 1.0)], SOLE)
    c.mark_shape([(0.03, 0.0), (shaft, 0.0), (shaft, 0.07), (0.03, 0.07)], SEAM)
    if rng.random() < 0.5:
        c.mark([(shaft - 0.04, 0.08), (shaft - 0.02, ankle + 0.05)], c.px(0.025), ACCENT)


def draw_shoe_pair(c: Canvas, rng: np.random.Generator) -> None:
    """Two sneakers, one slightly behind and above the other."""
    c.set_frame(0.2, 0.0, 0.8, 0.78)
    draw_sneaker(c, rng)
    c.set_frame(0.0, 0.22, 0.8, 0.78)
    draw_sneaker(c, rng)
    c.set_frame(0.0, 0.0, 1.0, 1.0)
