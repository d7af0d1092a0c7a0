"""Bottoms: skirts, jeans and trousers, one drawing function per variant (the table is in garments/__init__.py)."""

from __future__ import annotations

import numpy as np

from core.demo.canvas import ACCENT, SEAM, SHINE, Canvas, Point, both_sides, curve, mirror


def draw_skirt(c: Canvas, rng: np.random.Generator) -> None:
    """An A-line trapezoid: narrow waistband, wide curved hem, sometimes pleats."""
    top = rng.uniform(0.18, 0.28)
    bottom = rng.uniform(0.44, 0.5)
    band = rng.uniform(0.06, 0.1)
    side = rng.uniform(0.9, 0.96)
    if rng.random() < 0.4:
        # Flared: the sides bow outwards instead of running straight.
        right = curve((0.5 + top, band), (0.5 + bottom, band + 0.25), (0.5 + bottom, side))
    else:
        right = [(0.5 + top, band), (0.5 + bottom, side)]
    hem = curve((0.5 + bottom, side), (0.5, 2.0 - side), (0.5 - bottom, side))
    c.shape([(0.5 - top, 0.0), (0.5 + top, 0.0)] + right + hem[1:-1] + mirror(right)[::-1])
    c.mark([(0.5 - top, band), (0.5 + top, band)], c.px(0.015))
    if rng.random() < 0.5:
        for t in np.linspace(-0.75, 0.75, int(rng.integers(4, 8))):
            c.mark([(0.5 + t * top, band), (0.5 + t * bottom, 0.97)], c.px(0.012))
    if rng.random() < 0.5:
        c.dot(0.5 + top * 0.6, band / 2, 0.025)


def _two_legs(right: list[Point], waist: float, crotch: float) -> list[Point]:
    """Outline of jeans or trousers: the right leg (``right``, waist corner to inner hem),
    its mirror image, joined at the crotch.

    The left waist corner is written out rather than taken from the mirror, whose last
    point it replaces: ``1.0 - (0.5 + waist)`` may differ from ``0.5 - waist`` in the last
    bit, and the demo's pixels must not move.
    """
    return [(0.5 - waist, 0.0)] + right + [(0.5, crotch)] + mirror(right)[::-1][:-1]


def draw_jeans(c: Canvas, rng: np.random.Generator) -> None:
    """Two legs that taper to narrow ankles, with stitched pockets, fly and rivets."""
    waist = rng.uniform(0.40, 0.45)
    hip = rng.uniform(0.46, 0.5)
    crotch = rng.uniform(0.32, 0.38)
    taper = rng.uniform(0.08, 0.15)
    ankle = rng.uniform(0.18, 0.24)
    right = [
        (0.5 + waist, 0.0),
        (0.5 + hip, 0.22),
        (0.5 + hip - taper, 1.0),
        (0.5 + hip - taper - ankle, 1.0),
    ]
    c.shape(_two_legs(right, waist, crotch))
    stitch = c.px(0.008)
    c.mark([(0.5 - waist, 0.05), (0.5 + waist, 0.05)], c.px(0.01), ACCENT)
    c.mark(
        curve((0.5 - 0.03, 0.05), (0.5 - 0.03, crotch - 0.04), (0.5, crotch - 0.02)),
        stitch,
        ACCENT,
    )
    pocket = curve((0.5 + waist - 0.14, 0.05), (0.5 + waist - 0.1, 0.17), (0.5 + hip - 0.01, 0.19))
    both_sides(c, pocket, stitch, ACCENT)
    for x, y in (pocket[0], pocket[-1]):
        c.dot(x, y, 0.006)
        c.dot(1 - x, y, 0.006)
    c.dot(0.5, 0.025, 0.012)
    both_sides(c, [(0.5 + hip - 0.01, 0.24), (0.5 + hip - taper - 0.01, 0.99)], stitch, SEAM)
    if rng.random() < 0.3:
        # Faded knees.
        both_sides(c, [(0.5 + 0.1, 0.5), (0.5 + hip - 0.07, 0.62)], c.px(0.04), SHINE)


def draw_trousers(c: Canvas, rng: np.random.Generator) -> None:
    """Two straight wide legs, a thick waistband with belt loops and pressed creases."""
    waist = rng.uniform(0.42, 0.46)
    band = rng.uniform(0.06, 0.08)
    crotch = rng.uniform(0.28, 0.33)
    flare = rng.uniform(0.0, 0.05)
    gap = rng.uniform(0.02, 0.05)
    right = [
        (0.5 + waist, 0.0),
        (0.5 + waist + 0.03, 0.2),
        (0.5 + waist + flare, 1.0),
        (0.5 + gap, 1.0),
    ]
    c.shape(_two_legs(right, waist, crotch))
    c.mark_shape([(0.5 - waist, 0.0), (0.5 + waist, 0.0), (0.5 + waist, band), (0.5 - waist, band)], SEAM)
    for x in (0.5 - waist * 0.7, 0.5 - waist * 0.2, 0.5 + waist * 0.2, 0.5 + waist * 0.7):
        c.mark([(x, 0.0), (x, band + 0.015)], c.px(0.02), SHINE)
    leg_centre = 0.5 + (waist + gap) / 2
    both_sides(c, [(0.5 + waist / 2, band), (leg_centre + flare / 2, 1.0)], c.px(0.01))
    both_sides(c, [(0.5 + waist - 0.12, band), (0.5 + waist + 0.02, 0.18)], c.px(0.012))
    c.mark([(0.0, 0.96), (1.0, 0.96)], c.px(0.01))
