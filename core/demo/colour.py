"""Colour for the demo painter: garment colours, patterns and details, and the backgrounds.

Colours and patterns are drawn from the same distribution for every class (only jeans are
often denim blue), so a detector trained on the scenes has to learn shape, not colour.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image

from core.demo.canvas import ACCENT, LENS, SEAM, SHINE, SOLE
from core.demo.garments import GarmentShape

# A garment colour must be at least this far (RGB Euclidean) from the background under it,
# otherwise its silhouette would be invisible, which no annotator would have labelled.
_MIN_CONTRAST = 70.0


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


def paint_garment(shape: GarmentShape, label: str, rng: np.random.Generator, avoid: np.ndarray) -> np.ndarray:
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


def paint_background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
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
