"""Intersection over union of many boxes at once, the one IoU both metrics use."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from core.boxes import Box


def as_array(boxes: Iterable[Box]) -> np.ndarray:
    """An (N, 4) float64 array of x_min, y_min, x_max, y_max."""
    return np.array([[b.x_min, b.y_min, b.x_max, b.y_max] for b in boxes], dtype=np.float64).reshape(-1, 4)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two (N, 4) and (M, 4) arrays of x_min, y_min, x_max, y_max.

    Continuous pixel coordinates (no +1 on widths), as pycocotools does; the same
    operations as :meth:`core.boxes.Box.iou`, so a pair gets the same number either way.
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    ix = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    iy = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)
