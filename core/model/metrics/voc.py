"""Detection metrics: average precision per class and its mean (Pascal VOC style).

All boxes are :class:`core.boxes.Box` in original-image pixels. Matching follows the
VOC 2010+ devkit (``voc_eval``): detections of a class are taken in order of decreasing
score; each is matched to the ground-truth box of the same class and image with the
highest IoU; it is a true positive when that IoU reaches the threshold and the box was
not matched before, otherwise a false positive. AP is the area under the precision/
recall curve with all-point interpolation (precision made monotonically decreasing).
One deliberate difference from the devkit: IoU is computed on continuous pixel
coordinates (no "+1" of integer pixel boxes), the space every Tagrack box lives in.

Classes with no ground truth have no AP (None) and are left out of the mean, as in VOC.
COCO-style AP over IoU thresholds is :mod:`core.model.metrics.coco`; both read the
boxes of :mod:`core.model.metrics.types` and share :func:`core.model.metrics.iou.iou_matrix`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.model.metrics.iou import as_array, iou_matrix
from core.model.metrics.types import Detection, GroundTruth


@dataclass
class VocMetrics:
    """What :func:`evaluate` returns.

    Attributes:
        map: Mean of the per-class APs that are defined (0.0 when none is).
        ap: Per-class AP by class name; None for classes without ground truth.
        ground_truths: Ground-truth boxes per class name.
        detections: Detections per class name.
        iou_threshold: The IoU a detection needs to count as a hit.
    """

    map: float
    ap: dict[str, float | None]
    ground_truths: dict[str, int]
    detections: dict[str, int]
    iou_threshold: float = 0.5
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """JSON-able form (stored on the model version)."""
        return {
            "map50": self.map,
            "ap50": self.ap,
            "ground_truths": self.ground_truths,
            "detections": self.detections,
            "iou_threshold": self.iou_threshold,
            **self.extra,
        }


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under a precision/recall curve with VOC all-point interpolation.

    Args:
        recall: Recall after each detection (non-decreasing).
        precision: Precision after each detection.
    """
    mrec = np.concatenate(([0.0], np.asarray(recall, float), [1.0]))
    mpre = np.concatenate(([0.0], np.asarray(precision, float), [0.0]))
    # Make precision monotonically decreasing from the right (the envelope).
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    idx = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1]))


def match_class(
    ground_truths: Sequence[GroundTruth], detections: Sequence[Detection], iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Greedy VOC matching of one class's detections to its ground truth.

    Returns:
        True-positive flags and scores of the detections in decreasing-score order, and
        the number of ground-truth boxes.
    """
    by_image: dict[Hashable, list[GroundTruth]] = {}
    for gt in ground_truths:
        by_image.setdefault(gt.image, []).append(gt)
    boxes = {img: as_array(g.box for g in gts) for img, gts in by_image.items()}
    used = {img: np.zeros(len(gts), bool) for img, gts in by_image.items()}
    order = sorted(detections, key=lambda d: -d.score)
    tp = np.zeros(len(order), bool)
    for i, det in enumerate(order):
        if det.image not in boxes:
            continue
        ious = iou_matrix(as_array([det.box]), boxes[det.image])[0]
        j = int(np.argmax(ious))
        if ious[j] >= iou_threshold and not used[det.image][j]:
            used[det.image][j] = True
            tp[i] = True
    return tp, np.array([d.score for d in order], float), len(ground_truths)


def class_ap(
    ground_truths: Sequence[GroundTruth], detections: Sequence[Detection], iou_threshold: float = 0.5
) -> float | None:
    """AP of one class (None when it has no ground truth)."""
    tp, _scores, n_gt = match_class(ground_truths, detections, iou_threshold)
    if n_gt == 0:
        return None
    if len(tp) == 0:
        return 0.0
    ctp = np.cumsum(tp)
    cfp = np.cumsum(~tp)
    recall = ctp / n_gt
    precision = ctp / np.maximum(ctp + cfp, np.finfo(float).eps)
    return average_precision(recall, precision)


def evaluate(
    ground_truths: Sequence[GroundTruth],
    detections: Sequence[Detection],
    labels: Sequence[str],
    iou_threshold: float = 0.5,
) -> VocMetrics:
    """mAP and per-class AP at one IoU threshold (VOC all-point).

    Args:
        ground_truths: Every ground-truth box of the evaluated images.
        detections: Every detection on those images.
        labels: The classes; boxes of other classes are ignored.
        iou_threshold: Minimum IoU for a hit (0.5 for mAP@0.5).
    """
    ap: dict[str, float | None] = {}
    n_gt: dict[str, int] = {}
    n_det: dict[str, int] = {}
    for name in labels:
        gts = [g for g in ground_truths if g.label == name]
        dets = [d for d in detections if d.label == name]
        ap[name] = class_ap(gts, dets, iou_threshold)
        n_gt[name], n_det[name] = len(gts), len(dets)
    defined = [v for v in ap.values() if v is not None]
    return VocMetrics(
        map=float(np.mean(defined)) if defined else 0.0,
        ap=ap,
        ground_truths=n_gt,
        detections=n_det,
        iou_threshold=iou_threshold,
    )
