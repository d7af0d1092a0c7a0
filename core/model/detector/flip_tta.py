"""Test-time flip: predict on an image and on its mirror image, and fuse the two sets of boxes.

Street and product photos have no left/right (training flips them too), so the mirrored
image is as good an input as the original: a second, slightly different look at every
garment. Fusing the two predictions with weighted box fusion (Solovyev et al., 2019;
the ``ensemble-boxes`` package) averages the coordinates of boxes that the two passes agree
on (IoU above ``iou_threshold``), weighted by score, which tightens boxes rather than
merely picking one of them as NMS would. A box only one pass found keeps half its score.

It costs a second forward pass per image, so prediction runs at about half the speed.

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
    """Weighted box fusion of two passes' detections of one image (``size`` = original height, width)."""
    from ensemble_boxes import weighted_boxes_fusion

    h, w = float(size[0]), float(size[1])
    boxes, scores, labels = [], [], []
    for dets in (first, second):
        boxes.append(
            [[d.box.x_min / w, d.box.y_min / h, d.box.x_max / w, d.box.y_max / h] for d in dets] or np.zeros((0, 4))
        )
        scores.append([d.score for d in dets])
        labels.append([d.label_index for d in dets])
    if not any(len(s) for s in scores):
        return []
    fused, fused_scores, fused_labels = weighted_boxes_fusion(
        [np.clip(np.asarray(b, float), 0.0, 1.0) for b in boxes],
        scores,
        labels,
        iou_thr=iou_threshold,
        skip_box_thr=0.0,
        conf_type="avg",
    )
    out = []
    for b, s, lab in sorted(zip(fused, fused_scores, fused_labels, strict=True), key=lambda t: -t[1]):
        box = Box(float(b[0]) * w, float(b[1]) * h, float(b[2]) * w, float(b[3]) * h)
        if box.area > 0:
            out.append(Detection(box, int(lab), class_names[int(lab)], float(np.clip(s, 0.0, 1.0))))
    return out


__all__ = ["FUSE_IOU", "content_widths", "fuse", "mirror_content", "unmirror"]
