"""Eyewear: sunglasses seen from the front, with round, wayfarer or aviator lenses."""

from __future__ import annotations

import numpy as np

from core.demo.canvas import LENS, SHINE, Canvas, Point, curve, mirror


def _lens(style: int, cx: float, half: float, top: float, bottom: float, inward: float) -> list[Point]:
    """Outline of one lens; ``inward`` is +1 when the nose is to the right of it."""
    if style == 0:  # round
        t = np.linspace(0.0, 2 * np.pi, 28, endpoint=False)
        cy, ry = (top + bottom) / 2, (bottom - top) / 2
        return list(zip((cx + half * np.cos(t)).tolist(), (cy + ry * np.sin(t)).tolist(), strict=True))
    if style == 1:  # wayfarer: wider at the top
        return [
            (cx - half, top),
            (cx + half, top),
            (cx + half * 0.85, bottom - 0.1),
            (cx + half * 0.7, bottom),
            (cx - half * 0.7, bottom),
            (cx - half * 0.85, bottom - 0.1),
        ]
    # aviator: a teardrop hanging towards the nose
    s = inward
    return (
        [(cx - s * half, top), (cx + s * half, top)]
        + curve((cx + s * half, top), (cx + s * half, bottom), (cx + s * half * 0.1, bottom))[1:]
        + curve(
            (cx + s * half * 0.1, bottom),
            (cx - s * half, bottom),
            (cx - s * half, top + (bottom - top) * 0.3),
        )[1:]
    )


def draw_sunglasses(c: Canvas, rng: np.random.Generator) -> None:
    """Front view: two framed dark lenses, a bridge, and the temples running outwards."""
    style = int(rng.integers(3))
    half = rng.uniform(0.14, 0.17)
    gap = rng.uniform(0.035, 0.06)
    top = rng.uniform(0.08, 0.18)
    bottom = rng.uniform(0.85, 1.0)
    rim = rng.uniform(0.08, 0.14)
    rim_x = rim / c.aspect
    for cx, inward in ((0.5 - gap - half, 1.0), (0.5 + gap + half, -1.0)):
        c.shape(_lens(style, cx, half, top, bottom, inward))
        c.mark_shape(_lens(style, cx, half - rim_x, top + rim, bottom - rim, inward), LENS)
        c.mark(
            [(cx - half * 0.5, top + 0.35), (cx - half * 0.15, top + rim + 0.05)],
            c.px(0.07),
            SHINE,
        )
    c.stroke(
        curve((0.5 - gap - rim_x, top + 0.2), (0.5, top - 0.05), (0.5 + gap + rim_x, top + 0.2)),
        c.px(rim * 1.2),
    )
    outer = 0.5 - gap - 2 * half
    temple = [(outer + rim_x, top + 0.12), (0.0, top + 0.06)]
    c.stroke(temple, c.px(rim * 1.1))
    c.stroke(mirror(temple), c.px(rim * 1.1))
