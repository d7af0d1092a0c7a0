"""COCO-style detection metrics that agree with pycocotools' ``COCOeval`` (bbox).

Why not call pycocotools itself: it is a C extension with a JSON-shaped API built for
files, it prints as it goes, and it has no confusion matrix or per-threshold precision
and recall. We follow its definitions exactly — greedy matching by descending score to
the best-IoU unmatched ground truth, 101-point interpolated precision, ``maxDets=100``
per image and class, the "all" area range for every figure but the area-range APs, which follow
COCOeval's area rules (see :data:`AREA_RANGES`) — and ``tests/core/model/metrics/test_coco.py``
checks the numbers against pycocotools on the same data to 0.001.

All boxes are :class:`core.boxes.Box` in original-image pixels. IoU uses the continuous
definition (no +1 on widths), as pycocotools does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from core.boxes import Box
from core.model.metrics.iou import as_array, iou_matrix
from core.model.metrics.types import Detection, GroundTruth

IOU_THRESHOLDS = np.round(np.linspace(0.5, 0.95, 10), 2)
RECALL_POINTS = np.round(np.linspace(0.0, 1.0, 101), 2)
MAX_DETS = 100
IOU_75 = int(np.flatnonzero(IOU_THRESHOLDS == 0.75)[0])
# COCO's area ranges, in squared original-image pixels (the box's width times height). As in
# COCOeval, a range's AP ignores ground truth outside it (a detection matched to such a box is
# neither right nor wrong) and the unmatched detections outside it, so a model is judged on the
# small garments without being charged for what it found of the large ones. Both ends inclusive.
AREA_RANGES = {"small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e10)}


@dataclass
class ClassCurve:
    """Precision and recall along a class's detections sorted by score, at IoU 0.5."""

    scores: np.ndarray
    precision: np.ndarray
    recall: np.ndarray


@dataclass
class CocoMetrics:
    """What :func:`evaluate` returns.

    Attributes:
        labels: Classes in the order given.
        map_50: mAP at IoU 0.5 (COCO's AP50), over classes with ground truth.
        map_50_95: mAP averaged over IoU 0.50:0.05:0.95 (COCO's AP).
        map_75: mAP at IoU 0.75 (COCO's AP75): how tight the boxes are.
        map_small: mAP@[.5:.95] of the small area range (COCO's APsmall), over classes with
            small ground truth; NaN when no class has any. ``map_medium``, ``map_large`` likewise.
        ap_50: Per-class AP at IoU 0.5 (NaN for a class with no ground truth).
        ap_50_95: Per-class AP over IoU 0.50:0.95 (NaN likewise).
        ap_75: Per-class AP at IoU 0.75 (NaN likewise).
        ap_small: Per-class AP@[.5:.95] of the small area range (NaN for a class without small
            ground truth).
        precision: Per-class precision at ``score_threshold`` and IoU 0.5.
        recall: Per-class recall at ``score_threshold`` and IoU 0.5.
        gt_counts: Ground-truth boxes per class.
        curves: Per-class precision-recall curves at IoU 0.5.
        confusion: (N+1)x(N+1) counts at ``score_threshold`` and IoU 0.5; rows are the
            true class, columns the predicted one, the last row and column "background":
            row ``background`` = false positives, column ``background`` = missed boxes.
        score_threshold: The threshold used for precision, recall and the matrix.
    """

    labels: list[str]
    map_50: float
    map_50_95: float
    ap_50: dict[str, float]
    ap_50_95: dict[str, float]
    map_75: float
    ap_75: dict[str, float]
    map_small: float
    map_medium: float
    map_large: float
    ap_small: dict[str, float]
    precision: dict[str, float]
    recall: dict[str, float]
    gt_counts: dict[str, int]
    curves: dict[str, ClassCurve] = field(repr=False)
    confusion: np.ndarray = field(repr=False)
    score_threshold: float = 0.5


def _greedy_match(ious: np.ndarray, threshold: float, gt_ignored: np.ndarray | None = None) -> np.ndarray:
    """pycocotools' matching: each detection, best first, takes the unmatched ground
    truth with the highest IoU at or above ``threshold``; returns the matched gt index
    per detection, or -1.

    ``gt_ignored`` (per ground truth; none by default) is COCOeval's rule for boxes outside
    an area range: a detection takes an ignored box only when no other box qualifies
    (COCOeval sorts them last and stops at them once it holds a match).
    """
    n_det, n_gt = ious.shape
    ignored = np.zeros(n_gt, dtype=bool) if gt_ignored is None else gt_ignored
    order = np.argsort(ignored, kind="mergesort")  # kept boxes first, each group in input order
    taken = np.zeros(n_gt, dtype=bool)
    matched = np.full(n_det, -1)
    limit = min(threshold, 1 - 1e-10)
    for d in range(n_det):
        best, best_iou = -1, limit
        for g in order:
            if best >= 0 and not ignored[best] and ignored[g]:
                break
            if taken[g] or ious[d, g] < best_iou:
                continue
            best, best_iou = g, ious[d, g]
        if best >= 0:
            taken[best] = True
            matched[d] = best
    return matched


def _interpolated_ap(tp: np.ndarray, fp: np.ndarray, n_gt: int) -> tuple[float, np.ndarray, np.ndarray]:
    """101-point interpolated AP from cumulative tp/fp flags already sorted by score."""
    tps, fps = np.cumsum(tp), np.cumsum(fp)
    recall = tps / n_gt
    precision = tps / (tps + fps + np.spacing(1))
    # Make precision monotonically decreasing from the right, as COCOeval does.
    envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    q = np.zeros(len(RECALL_POINTS))
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    valid = idx < len(envelope)
    q[valid] = envelope[idx[valid]]
    return float(q.mean()), precision, recall


def evaluate(
    ground_truth: Sequence[GroundTruth],
    detections: Sequence[Detection],
    labels: Sequence[str],
    score_threshold: float = 0.5,
) -> CocoMetrics:
    """Evaluates detections against ground truth, COCO style.

    Args:
        ground_truth: Every ground-truth box of the evaluated images.
        detections: Every detection on those images (any score).
        labels: The classes; boxes of other classes are ignored.
        score_threshold: Confidence threshold for precision, recall and the confusion matrix.

    Returns:
        The metrics (see :class:`CocoMetrics`).
    """
    labels = list(labels)
    index = {name: i for i, name in enumerate(labels)}
    gts: dict[tuple[Hashable, str], list[Box]] = defaultdict(list)
    dts: dict[tuple[Hashable, str], list[tuple[float, Box]]] = defaultdict(list)
    for g in ground_truth:
        if g.label in index:
            gts[(g.image, g.label)].append(g.box)
    for d in detections:
        if d.label in index:
            dts[(d.image, d.label)].append((d.score, d.box))

    # Per class and IoU threshold: the scores and tp flags of all kept detections.
    per_class: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in labels}
    gt_counts = {name: 0 for name in labels}
    for (_, name), boxes in gts.items():
        gt_counts[name] += len(boxes)
    # The same per area range: scores, tp flags and ignored flags, and the boxes in range.
    per_area: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]] = {
        area: {name: [] for name in labels} for area in AREA_RANGES
    }
    area_counts = {area: {name: 0 for name in labels} for area in AREA_RANGES}
    # Image order matters for score ties across images: COCOeval concatenates by image id.
    for key in sorted(set(gts) | set(dts)):
        name = key[1]
        # Stable sort by descending score, then keep the best MAX_DETS (COCOeval's order).
        dets = sorted(dts.get(key, []), key=lambda sd: -sd[0])[:MAX_DETS]
        gt_areas = np.array([b.area for b in gts.get(key, [])], dtype=np.float64)
        for area, (lo, hi) in AREA_RANGES.items():
            area_counts[area][name] += int(((gt_areas >= lo) & (gt_areas <= hi)).sum())
        if not dets:
            continue
        scores = np.array([s for s, _ in dets])
        ious = iou_matrix(as_array(b for _, b in dets), as_array(gts.get(key, [])))
        matches = np.stack([_greedy_match(ious, t) for t in IOU_THRESHOLDS])
        per_class[name].append((scores, matches >= 0))
        dt_areas = np.array([b.area for _, b in dets], dtype=np.float64)
        for area, (lo, hi) in AREA_RANGES.items():
            per_area[area][name].append((scores, *_area_flags(ious, matches, gt_areas, dt_areas, lo, hi)))

    ap_50: dict[str, float] = {}
    ap_50_95: dict[str, float] = {}
    ap_75: dict[str, float] = {}
    precision_at: dict[str, float] = {}
    recall_at: dict[str, float] = {}
    curves: dict[str, ClassCurve] = {}
    for name in labels:
        n_gt = gt_counts[name]
        if per_class[name]:
            scores = np.concatenate([s for s, _ in per_class[name]])
            flags = np.concatenate([f for _, f in per_class[name]], axis=1)
        else:
            scores, flags = np.zeros(0), np.zeros((len(IOU_THRESHOLDS), 0), dtype=bool)
        order = np.argsort(-scores, kind="mergesort")
        scores, flags = scores[order], flags[:, order]
        if n_gt == 0:
            ap_50[name] = ap_50_95[name] = ap_75[name] = float("nan")
            kept = scores >= score_threshold
            precision_at[name] = 0.0 if kept.any() else float("nan")
            recall_at[name] = float("nan")
            curves[name] = ClassCurve(scores, np.zeros(len(scores)), np.zeros(len(scores)))
            continue
        aps = []
        for t in range(len(IOU_THRESHOLDS)):
            ap, prec, rec = _interpolated_ap(flags[t], ~flags[t], n_gt)
            aps.append(ap)
            if t == 0:
                curves[name] = ClassCurve(scores, prec, rec)
        ap_50[name], ap_50_95[name], ap_75[name] = aps[0], float(np.mean(aps)), aps[IOU_75]
        kept = scores >= score_threshold
        tp = int(flags[0][kept].sum())
        precision_at[name] = tp / int(kept.sum()) if kept.any() else float("nan")
        recall_at[name] = tp / n_gt

    with_gt = [n for n in labels if gt_counts[n] > 0]
    by_area = {
        area: {name: _area_ap(per_area[area][name], area_counts[area][name]) for name in labels} for area in AREA_RANGES
    }
    return CocoMetrics(
        labels=labels,
        map_50=_mean_defined(ap_50, with_gt),
        map_50_95=_mean_defined(ap_50_95, with_gt),
        ap_50=ap_50,
        ap_50_95=ap_50_95,
        map_75=_mean_defined(ap_75, with_gt),
        ap_75=ap_75,
        map_small=_mean_defined(by_area["small"]),
        map_medium=_mean_defined(by_area["medium"]),
        map_large=_mean_defined(by_area["large"]),
        ap_small=by_area["small"],
        precision=precision_at,
        recall=recall_at,
        gt_counts=gt_counts,
        curves=curves,
        confusion=confusion_matrix(ground_truth, detections, labels, score_threshold),
        score_threshold=score_threshold,
    )


def _area_flags(
    ious: np.ndarray, matches: np.ndarray, gt_areas: np.ndarray, dt_areas: np.ndarray, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval's flags of one image and class in an area range, per IoU threshold: (matched, ignored).

    ``matches`` is the "all" range's matching (per IoU threshold, the gt index or -1). A
    detection is ignored when it matched a ground truth outside the range, or matched
    nothing and is itself outside the range.
    """
    gt_ignored = (gt_areas < lo) | (gt_areas > hi)
    dt_outside = (dt_areas < lo) | (dt_areas > hi)
    if gt_ignored.any() and not gt_ignored.all():
        # Only a mix of boxes in and out of range can change who matches whom (see _greedy_match).
        matches = np.stack([_greedy_match(ious, t, gt_ignored) for t in IOU_THRESHOLDS])
    matched = matches >= 0
    ignored = np.where(matched, gt_ignored[np.clip(matches, 0, None)] if len(gt_areas) else False, dt_outside)
    return matched, ignored


def _area_ap(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_gt: int) -> float:
    """AP@[.5:.95] of one class in an area range from its per-image (scores, matched, ignored); NaN without ground truth."""
    if n_gt == 0:
        return float("nan")
    if not parts:
        return 0.0
    scores = np.concatenate([s for s, _, _ in parts])
    matched = np.concatenate([m for _, m, _ in parts], axis=1)
    ignored = np.concatenate([i for _, _, i in parts], axis=1)
    order = np.argsort(-scores, kind="mergesort")
    matched, ignored = matched[:, order], ignored[:, order]
    # Ignored detections stay in the sequence with neither flag, as in COCOeval's accumulate.
    aps = [_interpolated_ap(m & ~i, ~m & ~i, n_gt)[0] for m, i in zip(matched, ignored, strict=True)]
    return float(np.mean(aps))


def _mean_defined(values: dict[str, float], names: Sequence[str] | None = None) -> float:
    """The mean over ``names`` (default: the classes whose value is defined, not NaN); NaN when none."""
    chosen = [values[n] for n in (names if names is not None else values) if not np.isnan(values[n])]
    return float(np.mean(chosen)) if chosen else float("nan")


def confusion_matrix(
    ground_truth: Sequence[GroundTruth],
    detections: Sequence[Detection],
    labels: Sequence[str],
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> np.ndarray:
    """Detection confusion matrix with a background row and column.

    Per image, detections at or above ``score_threshold`` are matched to ground truth of
    ANY class by IoU (best pairs first, each box used once, IoU >= ``iou_threshold``).
    A matched pair counts at (true class, predicted class); an unmatched ground truth at
    (true class, background) — missed; an unmatched detection at (background, predicted
    class) — a false positive.
    """
    labels = list(labels)
    index = {name: i for i, name in enumerate(labels)}
    bg = len(labels)
    matrix = np.zeros((bg + 1, bg + 1), dtype=np.int64)
    by_image_gt: dict[Hashable, list[GroundTruth]] = defaultdict(list)
    by_image_dt: dict[Hashable, list[Detection]] = defaultdict(list)
    for g in ground_truth:
        if g.label in index:
            by_image_gt[g.image].append(g)
    for d in detections:
        if d.label in index and d.score >= score_threshold:
            by_image_dt[d.image].append(d)
    for image in set(by_image_gt) | set(by_image_dt):
        g_list, d_list = by_image_gt.get(image, []), by_image_dt.get(image, [])
        pairs = confusion_pairs(g_list, d_list, iou_threshold)
        used_d, used_g = {d for d, _ in pairs}, {g for _, g in pairs}
        for di, gi in pairs:
            matrix[index[g_list[gi].label], index[d_list[di].label]] += 1
        for gi, g in enumerate(g_list):
            if gi not in used_g:
                matrix[index[g.label], bg] += 1
        for di, d in enumerate(d_list):
            if di not in used_d:
                matrix[bg, index[d.label]] += 1
    return matrix


def confusion_pairs(
    ground_truth: Sequence[GroundTruth], detections: Sequence[Detection], iou_threshold: float = 0.5
) -> list[tuple[int, int]]:
    """The (detection index, ground-truth index) pairs of ONE image that the confusion matrix counts.

    Boxes of any class are matched by IoU, best pairs first (at equal IoU the more
    confident detection wins), each box used once, IoU >= ``iou_threshold``. The error
    gallery uses the same pairs, so its boxes are exactly the matrix's off-diagonal cells.
    """
    ious = iou_matrix(as_array(d.box for d in detections), as_array(g.box for g in ground_truth))
    if not ious.size:
        return []
    candidates = np.argwhere(ious >= iou_threshold)
    candidates = sorted(candidates.tolist(), key=lambda p: (-ious[p[0], p[1]], -detections[p[0]].score))
    used_d: set[int] = set()
    used_g: set[int] = set()
    pairs = []
    for di, gi in candidates:
        if di in used_d or gi in used_g:
            continue
        used_d.add(di)
        used_g.add(gi)
        pairs.append((di, gi))
    return pairs
