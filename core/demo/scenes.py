"""Synthetic clothing scenes with exact ground-truth boxes.

The demo project and the tests need labelled photos without shipping a data set, so this
package draws them: flat-lay garments in nine classes on plain, gradient or textured
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

This module owns placement and composition; garments are drawn by core/demo/garments/ on
core/demo/canvas.py and coloured by core/demo/colour.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.boxes import Box
from core.demo import DEFAULT_SIZE, DEMO_LABELS
from core.demo.colour import paint_background, paint_garment
from core.demo.garments import GarmentShape, draw_garment

# Below this the smallest garments (sunglasses) shrink to a few pixels and lose their shape.
_MIN_SIDE = 64

# Placement: how much of a garment may fall off the image edge, how much of an earlier
# garment must stay visible, and how often a garment is re-placed before it is dropped.
_MIN_INSIDE = 0.85
_MIN_VISIBLE = 0.4
_PLACEMENT_TRIES = 8

# Objects per scene: 1..4, most often 2 or 3.
_COUNT_WEIGHTS = (0.2, 0.3, 0.3, 0.2)


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
    background = paint_background(rng, width, height)
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
        pixels = paint_garment(placement.shape, placement.label, rng, avoid)
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
