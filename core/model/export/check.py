"""The export check: an exported artefact against the Keras model on the same images.

Figures (all on the project's test split, boxes in original-image pixels):

* ``map50_keras`` / ``map50_export`` and their ``map50_delta`` (export minus Keras, VOC
  all-point AP at IoU 0.5, :mod:`core.model.metrics.voc`); ``passed`` when the drop is within
  :data:`core.model.export.formats.MAP_BOUND` for the format's precision;
* ``matched_iou``: mean IoU of each Keras box (score >= ``display_threshold``) with the best
  export box of the same class, over the Keras boxes that have one at IoU >= 0.5, and
  ``matched_share``: the share of those Keras boxes that have one;
* ``top_class_agreement``: share of images whose highest-scoring box has the same class in
  both (images where neither has a box count as agreeing).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from core.model.detector.predict import Detection as Predicted
from core.model.export.formats import MAP_BOUND
from core.model.metrics import voc
from core.model.metrics.iou import as_array, iou_matrix
from core.model.metrics.types import Detection, GroundTruth

DISPLAY_THRESHOLD = 0.3  # boxes a user would act on; lower ones barely move mAP and jitter most


def _as_metric(image: Hashable, dets: Sequence[Predicted]) -> list[Detection]:
    return [Detection(image, d.label, d.box, d.score) for d in dets]


def compare(
    ground_truths: Sequence[GroundTruth],
    image_ids: Sequence[Hashable],
    keras_dets: Sequence[Sequence[Predicted]],
    export_dets: Sequence[Sequence[Predicted]],
    labels: Sequence[str],
    precision: str,
    display_threshold: float = DISPLAY_THRESHOLD,
) -> dict[str, Any]:
    """The check's figures (see the module doc); JSON-able."""
    k_all = [d for i, dets in zip(image_ids, keras_dets, strict=True) for d in _as_metric(i, dets)]
    e_all = [d for i, dets in zip(image_ids, export_dets, strict=True) for d in _as_metric(i, dets)]
    map_k = voc.evaluate(ground_truths, k_all, labels).map
    map_e = voc.evaluate(ground_truths, e_all, labels).map
    ious: list[float] = []
    wanted = 0
    agree = 0
    for k, e in zip(keras_dets, export_dets, strict=True):
        top_k = max(k, key=lambda d: d.score).label if k else None
        top_e = max(e, key=lambda d: d.score).label if e else None
        agree += top_k == top_e
        for name in {d.label for d in k if d.score >= display_threshold}:
            kb = [d.box for d in k if d.label == name and d.score >= display_threshold]
            eb = [d.box for d in e if d.label == name]
            wanted += len(kb)
            if not eb:
                continue
            best = iou_matrix(as_array(kb), as_array(eb)).max(axis=1)
            ious.extend(float(v) for v in best if v >= 0.5)
    delta = map_e - map_k
    bound = MAP_BOUND[precision]
    return {
        "images": len(image_ids),
        "map50_keras": round(map_k, 4),
        "map50_export": round(map_e, 4),
        "map50_delta": round(delta, 4),
        "map50_bound": bound,
        "matched_iou": round(float(np.mean(ious)), 4) if ious else None,
        "matched_share": round(len(ious) / wanted, 4) if wanted else None,
        "display_threshold": display_threshold,
        "top_class_agreement": round(agree / len(image_ids), 4) if image_ids else None,
        "passed": bool(-delta <= bound + 1e-9),
    }
