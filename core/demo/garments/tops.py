"""Tops and jackets: T-shirts, shirts, blazers, hooded jackets and sleeveless tops.

One function per variant, as for every garment family: each draws in unit coordinates and takes
its proportions from the generator, so no two garments of a class are identical.
"""

from __future__ import annotations

import numpy as np

from core.demo.canvas import ACCENT, SEAM, Canvas, both_sides, curve, mirror


def draw_tshirt(c: Canvas, rng: np.random.Generator) -> None:
    """T silhouette: straight body and short sleeves that end well above the waist."""
    neck = rng.uniform(0.10, 0.14)
    half = rng.uniform(0.22, 0.27)
    left, right = 0.5 - half, 0.5 + half
    sleeve_end = rng.uniform(0.22, 0.32)
    cuff = rng.uniform(0.12, 0.16)
    armpit = sleeve_end + rng.uniform(0.03, 0.08)
    flare = rng.uniform(0.0, 0.03)
    right_side = [
        (0.5 + neck, 0.0),
        (right + 0.05, 0.04),
        (1.0, sleeve_end),
        (1.0 - cuff * 0.8, sleeve_end + cuff),
        (right, armpit),
        (right + flare, 1.0),
    ]
    c.shape(right_side + mirror(right_side)[::-1])
    depth = rng.uniform(0.05, 0.10)
    c.cut_oval(0.5 - neck, -depth, 0.5 + neck, depth)
    c.mark_oval(0.5 - neck - 0.03, -depth - 0.04, 0.5 + neck + 0.03, depth + 0.04, SEAM, c.px(0.025))
    # Sleeve hems run parallel to the cuff edge, a little inside it.
    inset = 0.04
    both_sides(
        c,
        [
            (1.0 - inset, sleeve_end + inset * 0.6),
            (1.0 - cuff * 0.8 - inset, sleeve_end + cuff - inset * 0.3),
        ],
        c.px(0.012),
    )
    c.mark([(left - flare, 0.95), (right + flare, 0.95)], c.px(0.012))
    if rng.random() < 0.3:
        # A chest print: common on T-shirts, and one more thing that is not the class.
        size = rng.uniform(0.07, 0.12)
        cy = rng.uniform(0.35, 0.5)
        if rng.random() < 0.5:
            c.mark_oval(0.5 - size, cy - size, 0.5 + size, cy + size, ACCENT)
        else:
            c.mark_shape(
                [
                    (0.5 - size, cy - size),
                    (0.5 + size, cy - size),
                    (0.5 + size, cy + size),
                    (0.5 - size, cy + size),
                ],
                ACCENT,
            )


def draw_shirt(c: Canvas, rng: np.random.Generator) -> None:
    """Long sleeves to the hips, a pointed collar, a buttoned placket and a curved tail."""
    neck = rng.uniform(0.08, 0.10)
    half = rng.uniform(0.23, 0.27)
    right = 0.5 + half
    wrist = rng.uniform(0.78, 0.88)
    cuff = rng.uniform(0.12, 0.15)
    armpit = rng.uniform(0.26, 0.32)
    tail = rng.uniform(0.86, 0.92)
    right_side = [
        (0.5 + neck, 0.0),
        (right + 0.04, 0.05),
        (1.0, wrist),
        (1.0 - cuff, wrist + 0.06),
        (right, armpit),
    ] + curve((right, tail), (right - 0.02, 1.0), (0.5, 1.0))
    c.shape(right_side + mirror(right_side)[::-1])
    # The collar: a small notch at the throat and two pointed wings.
    c.cut([(0.5 - neck * 0.5, 0.0), (0.5 + neck * 0.5, 0.0), (0.5, 0.06)])
    wing = [(0.5 - neck, 0.0), (0.5 - neck - 0.04, 0.1), (0.5 - 0.01, 0.15), (0.5, 0.06)]
    c.mark_shape(wing, SEAM, c.px(0.015))
    c.mark_shape(mirror(wing), SEAM, c.px(0.015))
    c.mark([(0.5 + 0.02, 0.12), (0.5 + 0.02, 1.0)], c.px(0.012))
    for y in np.linspace(0.2, 0.88, int(rng.integers(5, 8))):
        c.dot(0.5, float(y), 0.012)
    # Cuffs: a band across each sleeve just above the wrist.
    both_sides(c, [(1.0, wrist - 0.08), (1.0 - cuff, wrist - 0.02)], c.px(0.015))
    if rng.random() < 0.5:
        c.mark_shape([(0.3, 0.28), (0.42, 0.28), (0.42, 0.41), (0.36, 0.44), (0.3, 0.41)], SEAM, c.px(0.012))


def draw_blazer(c: Canvas, rng: np.random.Generator) -> None:
    """Wide square shoulders, straight long sleeves, a deep open V with lapels."""
    neck = rng.uniform(0.10, 0.13)
    half = rng.uniform(0.27, 0.31)
    left, right = 0.5 - half, 0.5 + half
    shoulder = rng.uniform(0.02, 0.05)
    wrist = rng.uniform(0.84, 0.95)
    cuff = rng.uniform(0.15, 0.19)
    armpit = rng.uniform(0.24, 0.3)
    right_side = [
        (0.5 + neck, 0.0),
        (0.97, shoulder),
        (1.0, wrist),
        (1.0 - cuff, wrist + 0.03),
        (right, armpit),
        (right, 1.0),
    ]
    c.shape(right_side + mirror(right_side)[::-1])
    depth = rng.uniform(0.35, 0.5)
    c.cut([(0.5 - neck, -0.01), (0.5 + neck, -0.01), (0.5, depth)])
    # The front opens at the hem too: a small inverted V.
    c.cut([(0.5 - 0.05, 1.01), (0.5 + 0.05, 1.01), (0.5, 0.92)])
    lapel = [
        (0.5 - neck, 0.0),
        (0.5 - neck - 0.08, 0.12),
        (0.5 - neck - 0.04, 0.17),
        (0.5 - 0.01, depth),
    ]
    c.mark(lapel, c.px(0.018))
    c.mark(mirror(lapel), c.px(0.018))
    c.mark([(0.5, depth), (0.5, 0.93)], c.px(0.012))
    for k in range(int(rng.integers(1, 4))):
        c.dot(0.5 + 0.025, depth + 0.06 + 0.1 * k, 0.018)
    both_sides(c, [(left + 0.04, 0.7), (left + 0.2, 0.7)], c.px(0.018))
    both_sides(c, [(1.0 - 0.01, wrist - 0.06), (1.0 - cuff, wrist - 0.03)], c.px(0.012))


def draw_hooded(c: Canvas, rng: np.random.Generator) -> None:
    """A zip jacket with a hood above the shoulders, long sleeves and ribbed hem and cuffs."""
    top = rng.uniform(0.16, 0.2)
    hood = rng.uniform(0.15, 0.19)
    half = rng.uniform(0.26, 0.3)
    left, right = 0.5 - half, 0.5 + half
    wrist = rng.uniform(0.85, 0.95)
    cuff = rng.uniform(0.15, 0.19)
    armpit = top + rng.uniform(0.12, 0.17)
    right_side = [
        (0.5 + hood * 0.6, top),
        (0.96, top + 0.04),
        (1.0, wrist),
        (1.0 - cuff, wrist + 0.03),
        (right, armpit),
        (right, 1.0),
    ]
    c.shape(right_side + mirror(right_side)[::-1])
    c.oval(0.5 - hood, 0.0, 0.5 + hood, top + 0.2)
    c.mark_oval(0.5 - hood * 0.6, 0.05, 0.5 + hood * 0.6, top + 0.14, SEAM)
    c.mark([(0.5, top + 0.16), (0.5, 1.0)], c.px(0.02), ACCENT)
    both_sides(c, [(0.5 - 0.05, top + 0.17), (0.5 - 0.06, top + 0.3)], c.px(0.01), ACCENT)
    c.mark_shape([(left, 0.93), (right, 0.93), (right, 1.0), (left, 1.0)], SEAM)
    both_sides(c, [(left + 0.06, 0.55), (left + 0.12, 0.75)], c.px(0.015))
    both_sides(c, [(1.0, wrist - 0.05), (1.0 - cuff, wrist - 0.02)], c.px(0.03))


def draw_top(c: Canvas, rng: np.random.Generator) -> None:
    """A sleeveless top: two straps, a scooped neckline and curved armholes."""
    strap = rng.uniform(0.03, 0.05) if rng.random() < 0.5 else rng.uniform(0.08, 0.13)
    centre = rng.uniform(0.27, 0.34)
    neck = rng.uniform(0.22, 0.38)
    arm = rng.uniform(0.32, 0.42)
    side = rng.uniform(0.06, 0.12)
    flare = rng.uniform(0.0, 0.05)
    outer, inner = centre - strap / 2, centre + strap / 2
    neckline = curve((inner, 0.0), (0.5, 2 * neck), (1 - inner, 0.0))
    points = (
        [(outer, 0.0)]
        + neckline
        + [(1 - outer, 0.0)]
        + curve((1 - outer, 0.0), (1 - outer, arm), (1 - side, arm))[1:]
        + [(1 - side + flare, 1.0), (side - flare, 1.0)]
        + curve((side, arm), (outer, arm), (outer, 0.0))[:-1]
    )
    c.shape(points)
    c.mark(neckline, c.px(0.02))
    c.mark([(side - flare, 0.95), (1 - side + flare, 0.95)], c.px(0.012))
    if rng.random() < 0.25:
        c.dot(0.5, neck + 0.02, 0.03)
