"""Test-time flip: predict on an image and on its mirror image, and fuse the two sets of boxes.

Street and product photos have no left/right (training flips them too), so the mirrored
image is as good an input as the original: a second, slightly different look at every
garment. Fusing the two predictions with weighted box fusion (Solovyev et al., 2019, as
the ``ensemble-boxes`` package implements it) averages the coordinates of boxes that the two passes agree
on (IoU above ``iou_threshold``), weighted by score, which tightens boxes rather than
merely picking one of them as NMS would. A box only one pass found keeps half its score.

It costs a second forward pass per image, so prediction runs at about half the speed. It
belongs to Tagrack's own prediction (Review, the predict job, evaluation); the deployment
exports carry the plain model, as other runtimes apply their own test-time augmentation.

Coordinate spaces: the letterboxed model input holds the image's content at the top left
(``content_width = round(width * scale)`` model pixels wide, padding to the right); the
mirror flips the content only, so the padding stays where training put it. Detections go
in and out in original-image pixels (:class:`core.boxes.Box`, ``xyxy``); weighted box fusion
itself works in coordinates normalised to [0, 1] by the image's width and height.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.boxes import Box
from core.model.detector.predict import Detection

# Boxes of the two passes with at least this IoU (same class) are one object: the value the
# ensemble-boxes authors use for fusing the passes of one model.
FUSE_IOU = 0.55


def content_widths(scales: Sequence[float], sizes: Sequence[tuple[float, float]], input_width: int) -> list[int]:
    """Width in model pixels of each letterboxed image's content (as :func:`core.model.detector.data.letterbox` rounds it)."""
    return [int(min(max(round(w * s), 1), input_width)) for s, (_, w) in zip(scales, sizes, strict=True)]


def mirror_content(images: np.ndarray, widths: Sequence[int]) -> np.ndarray:
    """A copy of a letterboxed batch with each image's content mirrored left-right, padding left in place."""
    out = images.copy()
    for i, cw in enumerate(widths):
        out[i, :, :cw] = images[i, :, :cw][:, ::-1]
    return out


def unmirror(detections: Sequence[Detection], width: float) -> list[Detection]:
    """Detections made on the mirrored image, mapped back onto the original (original pixels)."""
    out = []
    for d in detections:
        b = d.box
        out.append(Detection(Box(width - b.x_max, b.y_min, width - b.x_min, b.y_max), d.label_index, d.label, d.score))
    return out


def fuse(
    first: Sequence[Detection],
    second: Sequence[Detection],
    class_names: Sequence[str],
    size: tuple[float, float],
    iou_threshold: float = FUSE_IOU,
) -> list[Detection]:
    """Weighted box fusion of two passes' detections of one image (``size`` = original height, width).

    Written here rather than imported: the reference implementation (the ``ensemble-boxes``
    package, ``weighted_boxes_fusion(..., conf_type="avg")``) installs numba and llvmlite
    (about 210 MB) for its other fusers, and numba holds numpy back at its own pace; the
    fusion itself is the loop below. tests/core/model/detector/test_flip_tta.py checks it
    against that package (a dev requirement, as pycocotools is for the COCO metrics).

    Per class, boxes are taken by falling score; each joins the fused box it overlaps most
    if that IoU exceeds ``iou_threshold`` (else it starts its own); a fused box is the
    score-weighted mean of its members' coordinates with their mean score, scaled by the
    share of the two passes it holds (a box one pass alone found keeps half its score).
    """
    h, w = float(size[0]), float(size[1])
    passes = 2
    fused_all: list[tuple[float, int, np.ndarray]] = []
    candidates = [
        (
            d.score,
            d.label_index,
            np.clip(np.array([d.box.x_min, d.box.y_min, d.box.x_max, d.box.y_max], float), 0.0, [w, h, w, h]),
        )
        for d in (*first, *second)
    ]
    for label in sorted({c[1] for c in candidates}):
        mine = sorted(
            ((score, box) for score, lab, box in candidates if lab == label and _area(box) > 0), key=lambda t: -t[0]
        )
        members: list[list[tuple[float, np.ndarray]]] = []
        fused = np.zeros((0, 4))
        for score, box in mine:
            best = -1
            if len(fused):
                ious = _ious(fused, box)
                best = int(np.argmax(ious))
                if ious[best] <= iou_threshold:
                    best = -1
            if best < 0:
                members.append([(score, box)])
                fused = np.vstack([fused, box])
            else:
                members[best].append((score, box))
                weights = np.array([m[0] for m in members[best]])
                fused[best] = (weights[:, None] * np.array([m[1] for m in members[best]])).sum(0) / weights.sum()
        for group, box in zip(members, fused, strict=True):
            mean = float(np.mean([m[0] for m in group]))
            fused_all.append((mean * min(passes, len(group)) / passes, label, box))
    fused_all.sort(key=lambda t: -t[0])
    return [
        Detection(Box(*(float(v) for v in box)), label, class_names[label], float(np.clip(score, 0.0, 1.0)))
        for score, label, box in fused_all
    ]


def _area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0))


def _ious(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """IoU of each row of ``boxes`` (N x 4, xyxy) with ``box``."""
    iw = np.maximum(np.minimum(boxes[:, 2], box[2]) - np.maximum(boxes[:, 0], box[0]), 0.0)
    ih = np.maximum(np.minimum(boxes[:, 3], box[3]) - np.maximum(boxes[:, 1], box[1]), 0.0)
    inter = iw * ih
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (areas + _area(box) - inter)


__all__ = ["FUSE_IOU", "content_widths", "fuse", "mirror_content", "unmirror"]
