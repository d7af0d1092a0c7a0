"""Garments of the demo painter: each class's variants and :func:`draw_garment`, which draws one.

Classes differ by silhouette only. Each family module (tops, bottoms, footwear, eyewear) holds
one drawing function per variant; this module holds the table of variants and their
proportions and draws a garment as a cropped silhouette mask plus a detail map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.demo import DEFAULT_SIZE, DEMO_LABELS
from core.demo.canvas import PLAIN, Canvas
from core.demo.garments.bottoms import draw_jeans, draw_skirt, draw_trousers
from core.demo.garments.eyewear import draw_sunglasses
from core.demo.garments.footwear import draw_boot, draw_shoe_pair, draw_sneaker
from core.demo.garments.tops import draw_blazer, draw_hooded, draw_shirt, draw_top, draw_tshirt


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
        _Variant(draw_blazer, (0.95, 1.15), (0.45, 0.8)),
        _Variant(draw_hooded, (0.8, 0.95), (0.5, 0.85)),
    ),
    "Jeans": (_Variant(draw_jeans, (0.42, 0.55), (0.55, 0.9)),),
    "Shirts": (_Variant(draw_shirt, (0.85, 1.0), (0.4, 0.75)),),
    "Shoes": (
        _Variant(draw_sneaker, (2.0, 2.6), (0.14, 0.26)),
        _Variant(draw_boot, (1.0, 1.3), (0.25, 0.4)),
        _Variant(draw_shoe_pair, (1.8, 2.3), (0.2, 0.34)),
    ),
    "Skirts": (_Variant(draw_skirt, (0.95, 1.3), (0.3, 0.6)),),
    "Sunglasses": (_Variant(draw_sunglasses, (2.6, 3.3), (0.09, 0.16)),),
    "Tops": (
        _Variant(draw_top, (0.6, 0.78), (0.35, 0.65)),  # tank top
        _Variant(draw_top, (0.8, 1.0), (0.28, 0.45)),  # crop top
    ),
    "Trousers": (_Variant(draw_trousers, (0.48, 0.6), (0.55, 0.9)),),
    "Tshirts": (_Variant(draw_tshirt, (1.0, 1.2), (0.35, 0.7)),),
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
