"""Synthetic clothing scenes with exact ground-truth boxes.

The demo project and the tests need labelled photos without shipping a data set, so this
module draws them: flat-lay garments in nine classes on plain, gradient or textured
backgrounds. Classes differ by *silhouette* (sleeve length, collar, legs, lenses...), while
colours and patterns are drawn from the same distribution for every class, so a detector
trained on these scenes has to learn shape rather than colour.

Every scene is a pure function of ``(seed, index)``: its random generator is derived from
that pair alone, so scene 17 is the same whether it is generated first, last or on its
own. Each garment is first drawn as a binary silhouette mask plus a map of detail codes
(seams, buttons, lenses, soles); its box is the bounding box of that mask placed in the
image, computed with numpy, and painting never touches a pixel outside the mask. The box
therefore covers exactly the garment's pixels, including any parts hidden by garments
drawn later.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.boxes import Box
from core.demo.canvas import ACCENT, LENS, PLAIN, SEAM, SHINE, SOLE, Canvas, Point, both_sides, curve, mirror
from core.project.labels import CLOTHING_LABELS

# The demo uses the clothing label set every new project starts with.
DEMO_LABELS: tuple[str, ...] = CLOTHING_LABELS

DEFAULT_SIZE = (512, 384)

# Below this the smallest garments (sunglasses) shrink to a few pixels and lose their shape.
_MIN_SIDE = 64

# Placement: how much of a garment may fall off the image edge, how much of an earlier
# garment must stay visible, and how often a garment is re-placed before it is dropped.
_MIN_INSIDE = 0.85
_MIN_VISIBLE = 0.4
_PLACEMENT_TRIES = 8

# Objects per scene: 1..4, most often 2 or 3.
_COUNT_WEIGHTS = (0.2, 0.3, 0.3, 0.2)

# A garment colour must be at least this far (RGB Euclidean) from the background under it,
# otherwise its silhouette would be invisible, which no annotator would have labelled.
_MIN_CONTRAST = 70.0


@dataclass(frozen=True)
class DemoObject:
    """One labelled garment of a scene.

    Attributes:
        label: One of :data:`DEMO_LABELS`.
        box: Exact pixel extent of the garment's silhouette (visible and occluded parts),
            clipped to the image.
    """

    label: str
    box: Box


@dataclass(frozen=True)
class DemoScene:
    """A generated photo and its ground truth.

    Attributes:
        name: File name to store the image under, e.g. ``demo-0007.jpg``.
        image: The RGB image.
        objects: Garments in drawing order (later ones may occlude earlier ones).
    """

    name: str
    image: Image.Image
    objects: tuple[DemoObject, ...]


@dataclass(frozen=True)
class GarmentShape:
    """A garment drawn on its own, before colouring and placement.

    Attributes:
        mask: Boolean silhouette, cropped to its bounding box (every edge row and column
            holds at least one ``True``).
        detail: Detail code per pixel (seams, accents, lenses, soles); only meaningful
            where ``mask`` is true.
    """

    mask: np.ndarray
    detail: np.ndarray


# ---------------------------------------------------------------------------------------
# Garment silhouettes, one function per variant. Each draws in unit coordinates and takes
# its proportions from the generator, so no two garments of a class are identical.
# ---------------------------------------------------------------------------------------


def _draw_tshirt(c: Canvas, rng: np.random.Generator) -> None:
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


def _draw_shirt(c: Canvas, rng: np.random.Generator) -> None:
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


def _draw_blazer(c: Canvas, rng: np.random.Generator) -> None:
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


def _draw_hooded(c: Canvas, rng: np.random.Generator) -> None:
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


def _draw_top(c: Canvas, rng: np.random.Generator) -> None:
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


def _draw_skirt(c: Canvas, rng: np.random.Generator) -> None:
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


def _draw_jeans(c: Canvas, rng: np.random.Generator) -> None:
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
    c.shape([(0.5 - waist, 0.0)] + right + [(0.5, crotch)] + mirror(right)[::-1][:-1])
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


def _draw_trousers(c: Canvas, rng: np.random.Generator) -> None:
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
    c.shape([(0.5 - waist, 0.0)] + right + [(0.5, crotch)] + mirror(right)[::-1][:-1])
    c.mark_shape([(0.5 - waist, 0.0), (0.5 + waist, 0.0), (0.5 + waist, band), (0.5 - waist, band)], SEAM)
    for x in (0.5 - waist * 0.7, 0.5 - waist * 0.2, 0.5 + waist * 0.2, 0.5 + waist * 0.7):
        c.mark([(x, 0.0), (x, band + 0.015)], c.px(0.02), SHINE)
    leg_centre = 0.5 + (waist + gap) / 2
    both_sides(c, [(0.5 + waist / 2, band), (leg_centre + flare / 2, 1.0)], c.px(0.01))
    both_sides(c, [(0.5 + waist - 0.12, band), (0.5 + waist + 0.02, 0.18)], c.px(0.012))
    c.mark([(0.0, 0.96), (1.0, 0.96)], c.px(0.01))


def _draw_sneaker(c: Canvas, rng: np.random.Generator) -> None:
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


def _draw_boot(c: Canvas, rng: np.random.Generator) -> None:
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


def _draw_shoe_pair(c: Canvas, rng: np.random.Generator) -> None:
    """Two sneakers, one slightly behind and above the other."""
    c.set_frame(0.2, 0.0, 0.8, 0.78)
    _draw_sneaker(c, rng)
    c.set_frame(0.0, 0.22, 0.8, 0.78)
    _draw_sneaker(c, rng)
    c.set_frame(0.0, 0.0, 1.0, 1.0)


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


def _draw_sunglasses(c: Canvas, rng: np.random.Generator) -> None:
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


@dataclass(frozen=True)
class _Variant:
    """One way to draw a class, with its proportions.

    Attributes:
        draw: Draws the silhouette and details in unit coordinates.
        aspect: Range of width over height.
        height: Range of the garment's height as a fraction of the image height.
    """

    draw: Callable[[Canvas, np.random.Generator], None]
    aspect: tuple[float, float]
    height: tuple[float, float]


_VARIANTS: dict[str, tuple[_Variant, ...]] = {
    "Jackets": (
        _Variant(_draw_blazer, (0.95, 1.15), (0.45, 0.8)),
        _Variant(_draw_hooded, (0.8, 0.95), (0.5, 0.85)),
    ),
    "Jeans": (_Variant(_draw_jeans, (0.42, 0.55), (0.55, 0.9)),),
    "Shirts": (_Variant(_draw_shirt, (0.85, 1.0), (0.4, 0.75)),),
    "Shoes": (
        _Variant(_draw_sneaker, (2.0, 2.6), (0.14, 0.26)),
        _Variant(_draw_boot, (1.0, 1.3), (0.25, 0.4)),
        _Variant(_draw_shoe_pair, (1.8, 2.3), (0.2, 0.34)),
    ),
    "Skirts": (_Variant(_draw_skirt, (0.95, 1.3), (0.3, 0.6)),),
    "Sunglasses": (_Variant(_draw_sunglasses, (2.6, 3.3), (0.09, 0.16)),),
    "Tops": (
        _Variant(_draw_top, (0.6, 0.78), (0.35, 0.65)),  # tank top
        _Variant(_draw_top, (0.8, 1.0), (0.28, 0.45)),  # crop top
    ),
    "Trousers": (_Variant(_draw_trousers, (0.48, 0.6), (0.55, 0.9)),),
    "Tshirts": (_Variant(_draw_tshirt, (1.0, 1.2), (0.35, 0.7)),),
}


def draw_garment(
    label: str,
    rng: np.random.Generator,
    image_size: tuple[int, int] = DEFAULT_SIZE,
    scale: float = 1.0,
) -> GarmentShape:
    """Draws one garment's silhouette and details at a size suited to ``image_size``.

    The garment gets a random variant of its class, random proportions, and sometimes a
    small rotation and a mirror flip. Colours are applied later, at placement.

    Args:
        label: One of :data:`DEMO_LABELS`.
        rng: Source of all randomness.
        image_size: (width, height) of the scene the garment is meant for.
        scale: Extra size factor (placement shrinks garments that do not fit).

    Returns:
        The shape, cropped tightly to its silhouette.

    Raises:
        ValueError: When ``label`` is not a demo class.
    """
    variants = _VARIANTS.get(label)
    if variants is None:
        raise ValueError(f"unknown demo label {label!r}; expected one of {', '.join(DEMO_LABELS)}")
    variant = variants[int(rng.integers(len(variants)))]
    image_w, image_h = image_size
    height = rng.uniform(*variant.height) * image_h * scale
    width = height * rng.uniform(*variant.aspect)
    fit = min(1.0, 0.95 * image_w / width, 0.95 * image_h / height)
    canvas = Canvas(max(8, round(width * fit)), max(8, round(height * fit)))
    variant.draw(canvas, rng)
    mask, detail = canvas.mask, canvas.detail
    if rng.random() < 0.4:
        # Flat-lay photos are rarely perfectly square to the camera.
        angle = float(rng.uniform(-7.0, 7.0))
        mask = mask.rotate(angle, resample=Image.Resampling.NEAREST, expand=True, fillcolor=0)
        detail = detail.rotate(angle, resample=Image.Resampling.NEAREST, expand=True, fillcolor=PLAIN)
    if rng.random() < 0.5:
        mask = mask.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        detail = detail.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    bbox = mask.getbbox()
    if bbox is None:  # cannot happen for the shapes above; guards against a broken variant
        raise ValueError(f"{label} drew an empty silhouette")
    return GarmentShape(mask=np.asarray(mask.crop(bbox)) > 0, detail=np.asarray(detail.crop(bbox)))


# ---------------------------------------------------------------------------------------
# Colour
# ---------------------------------------------------------------------------------------


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour (0..255 floats) from hue, saturation and value in 0..1."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255.0


def _garment_colour(rng: np.random.Generator, avoid: np.ndarray, denim: bool = False) -> np.ndarray:
    """A colour that stands out against ``avoid`` (the background under the garment)."""
    for _ in range(12):
        if denim:
            colour = _hsv(rng.uniform(0.56, 0.64), rng.uniform(0.35, 0.75), rng.uniform(0.25, 0.7))
        else:
            # A third of garments are near-neutral (white, grey, black), as in real wardrobes.
            saturation = rng.uniform(0.0, 0.15) if rng.random() < 0.33 else rng.uniform(0.3, 0.95)
            colour = _hsv(rng.random(), saturation, rng.uniform(0.15, 0.95))
        if np.linalg.norm(colour - avoid) >= _MIN_CONTRAST:
            return colour
    # Black or white, whichever is farther, always contrasts.
    return np.zeros(3, np.float32) if avoid.mean() > 127 else np.full(3, 255.0, np.float32)


def _paint(shape: GarmentShape, label: str, rng: np.random.Generator, avoid: np.ndarray) -> np.ndarray:
    """Colours a garment: base colour with an optional pattern, shading and details.

    Args:
        shape: The garment's silhouette and detail codes.
        label: Its class; only jeans get a (frequent, not certain) denim blue.
        rng: Source of all randomness.
        avoid: Mean background colour under the garment, to keep the garment visible.

    Returns:
        ``(h, w, 3)`` uint8 pixels; only those under ``shape.mask`` are meaningful.
    """
    h, w = shape.mask.shape
    code = shape.detail
    present = np.bincount(code.ravel(), minlength=SHINE + 1) > 0
    base = _garment_colour(rng, avoid, denim=label == "Jeans" and rng.random() < 0.5)
    # Brightness factor per pixel: soft light from the upper left gives the flat shapes
    # some volume, seams are darker, and so is the outermost ring of pixels, which keeps
    # light garments readable on light floors. One multiply then applies all three.
    ys = np.arange(h, dtype=np.float32)[:, None] * np.float32(0.112 / h)
    xs = np.arange(w, dtype=np.float32)[None, :] * np.float32(0.048 / w)
    factor = np.float32(1.08) - ys - xs
    if present[SEAM]:
        factor[code == SEAM] *= np.float32(0.62)
    padded = np.pad(shape.mask, 1)
    interior = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    factor[shape.mask & ~interior] *= np.float32(0.55)
    kind = rng.choice(4, p=(0.5, 0.25, 0.15, 0.1))
    if kind == 0:
        rgb = factor[..., None] * base
    else:
        second = _garment_colour(rng, avoid)
        period = float(rng.uniform(6.0, 20.0))
        yy, xx = np.ogrid[:h, :w]
        if kind == 1:  # stripes: horizontal, vertical or diagonal
            dx, dy = ((0, 1), (1, 0), (1, 1), (1, -1))[int(rng.integers(4))]
            phase = (xx * dx + yy * dy + rng.uniform(0, period)) % period
            on = phase < period * rng.uniform(0.3, 0.6)
        elif kind == 2:  # dots on a square grid
            fx, fy = xx % period - period / 2, yy % period - period / 2
            on = fx * fx + fy * fy < (period * rng.uniform(0.2, 0.35)) ** 2
        else:  # checks
            on = ((xx // period).astype(int) + (yy // period).astype(int)) % 2 == 0
        rgb = np.where(on[..., None], second, base) * factor[..., None]
    pixels = np.minimum(rgb, 255.0).astype(np.uint8)
    # Details with a colour of their own are flat: the pattern does not run over them.
    if present[SHINE]:
        shine = code == SHINE
        pixels[shine] = pixels[shine] // 2 + 120
    if present[ACCENT]:
        lighter = base * 0.45 + 140.0 if base.mean() < 128 else base * 0.45
        accent = _hsv(rng.uniform(0.1, 0.14), 0.7, 0.85) if rng.random() < 0.3 else lighter
        pixels[code == ACCENT] = accent
    if present[LENS]:
        # Mostly dark glass, sometimes a coloured mirror finish.
        if rng.random() < 0.7:
            lens = _hsv(rng.random(), rng.uniform(0.1, 0.6), rng.uniform(0.08, 0.3))
        else:
            lens = _hsv(rng.random(), rng.uniform(0.4, 0.9), rng.uniform(0.35, 0.75))
        pixels[code == LENS] = lens
    if present[SOLE]:
        if rng.random() < 0.6:
            sole = _hsv(0.0, rng.uniform(0.0, 0.06), rng.uniform(0.85, 0.97))
        else:
            sole = _hsv(rng.uniform(0.06, 0.1), rng.uniform(0.3, 0.6), rng.uniform(0.12, 0.6))
        pixels[code == SOLE] = sole
    return pixels


def _background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A floor or backdrop: plain or gradient, sometimes with a light texture."""
    if rng.random() < 0.75:
        first = _hsv(rng.random(), rng.uniform(0.0, 0.35), rng.uniform(0.55, 0.97))
    else:
        first = _hsv(rng.random(), rng.uniform(0.0, 0.8), rng.uniform(0.2, 0.9))
    gradient = rng.random() < 0.5
    textured = rng.random() < 0.4
    if not (gradient or textured):
        return Image.new("RGB", (width, height), tuple(int(v) for v in first.round()))
    # Gradients and blotches vary slowly, so they are computed on a grid 16 times coarser
    # and upscaled by Pillow: a per-pixel float image would cost more than a whole scene.
    grid_h, grid_w = height // 16 + 2, width // 16 + 2
    small = np.broadcast_to(first, (grid_h, grid_w, 3)).astype(np.float32)
    if gradient:
        second = np.clip(first + rng.uniform(-60.0, 60.0, 3), 0, 255).astype(np.float32)
        angle = rng.uniform(0.0, 2 * np.pi)
        yy, xx = np.ogrid[:grid_h, :grid_w]
        t = (xx / grid_w - 0.5) * np.cos(angle) + (yy / grid_h - 0.5) * np.sin(angle) + 0.5
        small = small + (second - first) * np.clip(t, 0.0, 1.0)[..., None].astype(np.float32)
    if textured:
        blotches = rng.normal(0.0, rng.uniform(4.0, 12.0), (grid_h, grid_w, 1)).astype(np.float32)
        small = small + blotches
    small_image = Image.fromarray(np.clip(small, 0, 255).astype(np.uint8))
    image = small_image.resize((width, height), Image.Resampling.BILINEAR)
    if textured:
        grain = rng.integers(-5, 6, (height, width, 1), dtype=np.int16)
        image = Image.fromarray(np.clip(np.asarray(image, dtype=np.int16) + grain, 0, 255).astype(np.uint8))
    return image


# ---------------------------------------------------------------------------------------
# Scenes
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placement:
    """A garment as placed in a scene: its shape and the image position of its patch."""

    label: str
    shape: GarmentShape
    x0: int
    y0: int


@dataclass(frozen=True)
class _Window:
    """Where a garment's patch overlaps the image, as slices into both."""

    image: tuple[slice, slice]
    patch: tuple[slice, slice]

    @classmethod
    def of(cls, x0: int, y0: int, shape: GarmentShape, width: int, height: int) -> _Window | None:
        """The overlap of ``shape``'s patch at (x0, y0) with the image; None if none."""
        h, w = shape.mask.shape
        ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
        if ix0 >= ix1 or iy0 >= iy1:
            return None
        return cls(
            image=(slice(iy0, iy1), slice(ix0, ix1)),
            patch=(slice(iy0 - y0, iy1 - y0), slice(ix0 - x0, ix1 - x0)),
        )


@dataclass
class _Layers:
    """Everything a scene is made of, kept apart so tests can check the composition."""

    size: tuple[int, int]
    background: Image.Image
    image: Image.Image
    placements: list[_Placement]

    def mask(self, k: int) -> np.ndarray:
        """Full-image boolean silhouette of object ``k``."""
        placement = self.placements[k]
        width, height = self.size
        full = np.zeros((height, width), dtype=bool)
        window = _Window.of(placement.x0, placement.y0, placement.shape, width, height)
        full[window.image] = placement.shape.mask[window.patch]
        return full

    def box(self, k: int) -> Box:
        """Bounding box of object ``k``'s silhouette as clipped to the image."""
        placement = self.placements[k]
        window = _Window.of(placement.x0, placement.y0, placement.shape, *self.size)
        clipped = placement.shape.mask[window.patch]
        rows = np.flatnonzero(clipped.any(axis=1))
        cols = np.flatnonzero(clipped.any(axis=0))
        # Window offsets bring patch rows and columns back to image pixels.
        x_off, y_off = window.image[1].start, window.image[0].start
        return Box(
            float(x_off + cols[0]),
            float(y_off + rows[0]),
            float(x_off + cols[-1] + 1),
            float(y_off + rows[-1] + 1),
        )


def _place(
    label: str,
    rng: np.random.Generator,
    size: tuple[int, int],
    visible: list[tuple[np.ndarray, int]],
) -> tuple[_Placement, _Window] | None:
    """Draws a garment and finds a spot for it that keeps earlier garments visible.

    Args:
        label: The garment's class.
        rng: Source of all randomness.
        size: Scene (width, height).
        visible: For each garment placed so far, a full-image mask of its still-visible
            pixels and its whole area within the image.

    Returns:
        The placement and its window, or None when no spot was found in a few tries
        (each try draws the garment a little smaller).
    """
    width, height = size
    for attempt in range(_PLACEMENT_TRIES):
        shape = draw_garment(label, rng, size, scale=0.9**attempt)
        h, w = shape.mask.shape
        # A garment may hang up to 8% over an edge, as in a loosely framed photo.
        x0 = int(rng.integers(-int(0.08 * w), max(width - int(0.92 * w), -int(0.08 * w)) + 1))
        y0 = int(rng.integers(-int(0.08 * h), max(height - int(0.92 * h), -int(0.08 * h)) + 1))
        window = _Window.of(x0, y0, shape, width, height)
        if window is None:
            continue
        inside = shape.mask[window.patch]
        if np.count_nonzero(inside) < _MIN_INSIDE * np.count_nonzero(shape.mask):
            continue
        # Only the window can change what is visible of earlier garments.
        if any(
            np.count_nonzero(seen) - np.count_nonzero(seen[window.image] & inside) < _MIN_VISIBLE * area
            for seen, area in visible
        ):
            continue
        return _Placement(label, shape, x0, y0), window
    return None


def _compose(seed: int, index: int, size: tuple[int, int]) -> _Layers:
    """Builds one scene from its seed and index alone."""
    width, height = size
    if min(width, height) < _MIN_SIDE:
        raise ValueError(f"scene size must be at least {_MIN_SIDE}x{_MIN_SIDE}, got {width}x{height}")
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be non-negative, got seed={seed}, index={index}")
    rng = np.random.default_rng([seed, index])
    background = _background(rng, width, height)
    image = background.copy()
    count = 1 + int(rng.choice(len(_COUNT_WEIGHTS), p=_COUNT_WEIGHTS))
    # Cycling the first class by index keeps the classes balanced over any run of scenes.
    wanted = [DEMO_LABELS[index % len(DEMO_LABELS)]]
    wanted += [DEMO_LABELS[int(i)] for i in rng.integers(0, len(DEMO_LABELS), count - 1)]
    placements: list[_Placement] = []
    visible: list[tuple[np.ndarray, int]] = []
    background_pixels = np.asarray(background)
    for k in rng.permutation(count):
        placed = _place(wanted[int(k)], rng, size, visible)
        if placed is None:
            continue
        placement, window = placed
        inside = placement.shape.mask[window.patch]
        avoid = background_pixels[window.image][inside].mean(axis=0)
        pixels = _paint(placement.shape, placement.label, rng, avoid)
        # A binary mask makes paste replace exactly the silhouette's pixels, no blending.
        image.paste(
            Image.fromarray(pixels),
            (placement.x0, placement.y0),
            Image.fromarray(placement.shape.mask.astype(np.uint8) * 255),
        )
        for seen, _ in visible:
            seen[window.image] &= ~inside
        full = np.zeros((height, width), dtype=bool)
        full[window.image] = inside
        placements.append(placement)
        visible.append((full, int(np.count_nonzero(inside))))
    return _Layers(size=(width, height), background=background, image=image, placements=placements)


def generate_scene(seed: int, index: int, size: tuple[int, int] = DEFAULT_SIZE) -> DemoScene:
    """Generates scene ``index`` of the demo set ``seed``.

    Args:
        seed: Demo set seed (non-negative).
        index: Scene number within the set (non-negative); also names the file.
        size: (width, height) in pixels, at least 64 each way.

    Returns:
        The scene, with one to four garments and their exact boxes.

    Raises:
        ValueError: On a negative seed or index, or a too small size.
    """
    layers = _compose(seed, index, size)
    objects = tuple(DemoObject(p.label, layers.box(k)) for k, p in enumerate(layers.placements))
    return DemoScene(name=f"demo-{index:04d}.jpg", image=layers.image, objects=objects)


def generate_scenes(count: int = 300, seed: int = 0, size: tuple[int, int] = DEFAULT_SIZE) -> Iterator[DemoScene]:
    """Yields scenes ``0 .. count-1`` of the demo set ``seed`` (see :func:`generate_scene`)."""
    for index in range(count):
        yield generate_scene(seed, index, size)


def render_object_masks(seed: int, index: int, size: tuple[int, int] = DEFAULT_SIZE) -> tuple[np.ndarray, ...]:
    """Full-image boolean silhouettes of a scene's objects, in the order of its objects.

    Each mask includes the parts hidden by later garments; the object's box is exactly
    the mask's bounding box.

    Args:
        seed: Demo set seed, as for :func:`generate_scene`.
        index: Scene number.
        size: (width, height) in pixels.

    Returns:
        One ``(height, width)`` boolean array per object.
    """
    layers = _compose(seed, index, size)
    return tuple(layers.mask(k) for k in range(len(layers.placements)))


def render_background(seed: int, index: int, size: tuple[int, int] = DEFAULT_SIZE) -> Image.Image:
    """The scene's background alone, exactly as it is under the garments."""
    return _compose(seed, index, size).background
