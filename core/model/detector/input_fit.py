"""Input size and anchors fitted to a project's own images and boxes.

A detector's input size and anchors decide which boxes it can learn at all: a box much
smaller than every anchor is never matched (IoU under 0.5 with all of them) and never
trained on, and an input that halves a small garment leaves a few pixels of it. These
settings are therefore chosen from the project's labelled boxes, in *model-input
pixels* (original-image pixels times the letterbox scale of :mod:`core.model.detector.data`):

* **Input size**: the images' median aspect ratio (portrait photos get a portrait
  input), with the long side the smallest of :data:`LONG_SIDES` at which the small
  boxes (10th percentile of their side, ``sqrt(w * h)``) keep at least
  :data:`MIN_SMALL_SIDE_PX` pixels. The demo's large garments stay at 256 px; street
  photos with sunglasses and shoes get more.
* **Anchors** (keras-hub's ``AnchorGenerator``: sides ``2**level * anchor_size *
  2**(i/3)`` for ``i`` in 0..2, aspect ratios ``h/w`` of 0.5, 1 and 2): the cheapest
  ``(min_level, anchor_size)`` whose anchors reach IoU 0.5 with at least
  :data:`TARGET_COVERAGE` of the boxes by shape (as YOLOv5's autoanchor check does,
  but with the anchor's centre a quarter stride off in x and y, the mean distance to
  the nearest anchor centre on the level's grid, so that small anchors on a coarse grid
  are not over-rated), level 4 before level 3 (level 3 holds 3/4 of the head's
  positions and costs about half of a training step); failing that, the best coverage.

Both figures are over all boxes, so a rare small class can drown in them: street photos
with a few pairs of sunglasses among many coats fit 224x320 with 96 % coverage while the
sunglasses shrink to 19x16 px (issue #20). The fit therefore also reports, per class with
at least :data:`MIN_CLASS_BOXES` boxes, the 10th-percentile *short* side and the anchor
coverage, and names the smallest class. With ``rule="classes"`` it also protects that
class: the input grows until every such class keeps :data:`MIN_CLASS_SHORT_SIDE_PX` (up to
the largest candidate), and the anchors must match :data:`MIN_CLASS_COVERAGE` of each
class's boxes. ``"boxes"`` (today's rule) stays the default until the accuracy benchmark
measures the other (docs/benchmarks.md).

Nothing here is in a library we use: keras-hub takes anchor settings but does not fit
them, so this is written here, small and tested.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

LONG_SIDES = (256, 320, 384, 448, 512)
MIN_SMALL_SIDE_PX = 24.0
SMALL_BOX_PERCENTILE = 10.0
TARGET_COVERAGE = 0.95
MATCH_IOU = 0.5
ASPECT_RATIOS = (0.5, 1.0, 2.0)  # h / w, keras-hub's convention
NUM_SCALES = 3
MAX_LEVEL = 7
# Tried cheapest first: (min_level, anchor_size).
ANCHOR_CANDIDATES = ((4, 3.0), (4, 2.0), (4, 1.5), (3, 4.0), (3, 3.0), (3, 2.0))
# Per-class protection (rule "classes"): classes with fewer boxes give no stable percentile.
MIN_CLASS_BOXES = 10
# A short side of 20 px is about the smallest level-3 anchor's (16-32 px at sizes 2-4).
MIN_CLASS_SHORT_SIDE_PX = 20.0
MIN_CLASS_COVERAGE = 0.9
FIT_RULES = ("boxes", "classes")


@dataclass(frozen=True)
class InputFit:
    """A fitted input size and anchor setting, with the figures it was chosen on.

    Attributes:
        image_height: Model input height (multiple of 32).
        image_width: Model input width (multiple of 32).
        min_level: Finest pyramid level with a head.
        anchor_size: keras-hub's ``anchor_size``.
        coverage: Share of the boxes an anchor matches at IoU 0.5 (by shape).
        small_side_px: 10th percentile box side in model-input pixels.
        boxes: Number of boxes the fit used.
        rule: ``"boxes"`` or ``"classes"`` (module docstring).
        smallest_class: The class with the smallest 10th-percentile short side (None without
            class names or without a class of :data:`MIN_CLASS_BOXES` boxes); under rule
            ``"classes"`` the one that set the size.
        class_short_side_px: Per class, the 10th-percentile short side in model-input pixels.
        class_coverage: Per class, the chosen anchors' coverage.
    """

    image_height: int
    image_width: int
    min_level: int
    anchor_size: float
    coverage: float
    small_side_px: float
    boxes: int
    rule: str = "boxes"
    smallest_class: str | None = None
    class_short_side_px: dict[str, float] = field(default_factory=dict)
    class_coverage: dict[str, float] = field(default_factory=dict)

    def describe_smallest(self) -> str:
        """One line for the job log about the smallest class, or "" when there is none."""
        c = self.smallest_class
        if c is None:
            return ""
        return (
            f"smallest class {c}: 10th-percentile short side {self.class_short_side_px[c]:.0f} px, "
            f"anchors cover {self.class_coverage[c]:.0%} of its boxes"
            + (" (it set the size)" if self.rule == "classes" else "")
        )

    def params(self) -> dict[str, float | int]:
        """The fit as train-job parameters."""
        return {
            "image_height": self.image_height,
            "image_width": self.image_width,
            "min_level": self.min_level,
            "anchor_size": self.anchor_size,
        }


def anchor_shapes(min_level: int, anchor_size: float, max_level: int = MAX_LEVEL) -> np.ndarray:
    """Width, height and stride of every anchor shape (N x 3), as keras-hub's AnchorGenerator makes them."""
    shapes = []
    for level in range(min_level, max_level + 1):
        for scale in range(NUM_SCALES):
            side = int(2**level * anchor_size * 2 ** (scale / NUM_SCALES))
            for ratio in ASPECT_RATIOS:
                shapes.append((round(side / np.sqrt(ratio)), round(side * np.sqrt(ratio)), 2**level))
    return np.asarray(shapes, dtype=np.float64)


def offset_iou(boxes_wh: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """IoU of boxes and anchors (B x A) whose centres are a quarter of the anchor's stride apart in x and y.

    Args:
        boxes_wh: B x 2 widths and heights.
        anchors: A x 3 widths, heights and strides (:func:`anchor_shapes`).
    """
    d = anchors[None, :, 2] / 4
    overlap = []
    for k in (0, 1):
        b, a = boxes_wh[:, None, k], anchors[None, :, k]
        overlap.append(np.clip(np.minimum(np.minimum(b, a), (a + b) / 2 - d), 0, None))
    inter = overlap[0] * overlap[1]
    union = boxes_wh[:, None].prod(-1) + anchors[None, :, :2].prod(-1) - inter
    return inter / np.maximum(union, 1e-9)


def anchor_coverage(boxes_wh: np.ndarray, min_level: int, anchor_size: float) -> float:
    """Share of boxes (widths, heights in model-input pixels) with an anchor at IoU >= 0.5 (see :func:`offset_iou`)."""
    if len(boxes_wh) == 0:
        return 1.0
    best = offset_iou(np.asarray(boxes_wh, dtype=np.float64), anchor_shapes(min_level, anchor_size)).max(axis=1)
    return float((best >= MATCH_IOU).mean())


def input_size(aspect: float, long_side: int) -> tuple[int, int]:
    """(height, width), multiples of 32, with ``long_side`` along the images' longer axis.

    Args:
        aspect: Median image width / height.
        long_side: Pixels along the longer axis.
    """
    short = max(32, int(round(long_side * min(aspect, 1 / aspect) / 32)) * 32)
    return (long_side, short) if aspect < 1 else (short, long_side)


def fit_input(
    image_sizes: Sequence[tuple[int, int]],
    boxes: Sequence[tuple[int, float, float] | tuple[int, float, float, str]],
    long_sides: Sequence[int] = LONG_SIDES,
    rule: str = "boxes",
) -> InputFit:
    """Fits input size and anchors to a project's labelled data.

    Args:
        image_sizes: (width, height) of each labelled image, in original pixels.
        boxes: (image index into ``image_sizes``, box width, box height[, class name]) in
            original pixels; without class names there are no per-class figures.
        long_sides: Candidate long sides, smallest first.
        rule: ``"boxes"`` or ``"classes"`` (see the module docstring).

    Returns:
        The fit; with no images, the demo defaults' geometry (256x192, level 4, size 3).

    Raises:
        ValueError: An unknown rule.
    """
    if rule not in FIT_RULES:
        raise ValueError(f"Unknown fit rule {rule!r}: choose one of {', '.join(FIT_RULES)}.")
    if not image_sizes:
        return InputFit(192, 256, 4, 3.0, 1.0, 0.0, 0, rule)
    sizes = np.asarray(image_sizes, dtype=np.float64)
    aspect = float(np.median(sizes[:, 0] / sizes[:, 1]))
    b = np.asarray([t[:3] for t in boxes], dtype=np.float64).reshape(-1, 3)
    names = np.asarray([t[3] if len(t) > 3 else "" for t in boxes], dtype=object)
    classes = {
        str(c): names == c for c in sorted(set(names.tolist()) - {""}) if int((names == c).sum()) >= MIN_CLASS_BOXES
    }
    idx = b[:, 0].astype(int)
    chosen = None
    for long_side in long_sides:
        height, width = input_size(aspect, long_side)
        # The letterbox scale of core.model.detector.data.letterbox, per box's image.
        scale = np.minimum(height / sizes[idx, 1], width / sizes[idx, 0])
        wh = b[:, 1:3] * scale[:, None]
        small = float(np.percentile(np.sqrt(wh.prod(-1)), SMALL_BOX_PERCENTILE)) if len(wh) else 0.0
        short = {c: float(np.percentile(wh[m].min(axis=1), SMALL_BOX_PERCENTILE)) for c, m in classes.items()}
        chosen = (height, width, wh, small, short)
        enough = small >= MIN_SMALL_SIDE_PX
        if rule == "classes":
            enough = enough and all(v >= MIN_CLASS_SHORT_SIDE_PX for v in short.values())
        if enough:
            break
    assert chosen is not None
    height, width, wh, small, short = chosen

    def per_class(level: int, size: float) -> dict[str, float]:
        return {c: anchor_coverage(wh[m], level, size) for c, m in classes.items()}

    scored = [
        (anchor_coverage(wh, level, size), per_class(level, size), level, size) for level, size in ANCHOR_CANDIDATES
    ]

    def acceptable(s: tuple) -> bool:
        worst = min(s[1].values(), default=1.0)
        return s[0] >= TARGET_COVERAGE and (rule == "boxes" or worst >= MIN_CLASS_COVERAGE)

    good = [s for s in scored if acceptable(s)]
    if good:
        coverage, by_class, level, size = good[0]
    elif rule == "classes":
        # Protect the worst-served class first, then the boxes overall; on a tie max() keeps the
        # cheapest candidate, so anchors no class gains from are not paid for.
        coverage, by_class, level, size = max(scored, key=lambda s: (min(s[1].values(), default=1.0), s[0]))
    else:
        coverage, by_class, level, size = max(scored, key=lambda s: s[0])
    return InputFit(
        height,
        width,
        level,
        size,
        round(coverage, 4),
        round(small, 1),
        len(b),
        rule,
        min(short, key=short.__getitem__) if short else None,
        {c: round(v, 1) for c, v in short.items()},
        {c: round(v, 4) for c, v in by_class.items()},
    )
