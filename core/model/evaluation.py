"""The ``evaluate`` step: a model version on the project's stored test split, COCO style.

For a model version it (1) makes sure the version's predictions on the project's test
images exist (predicting the missing ones through :mod:`core.model.prediction`, the one
prediction store), (2) compares them with the ground truth using
:func:`core.model.metrics.coco.evaluate` (pycocotools-compatible numbers), and (3) stores
everything the Evaluate page draws on ``ModelVersion.metrics["test"]["coco"]``, so the
page never recomputes metrics: a few hundred numbers per version, read in one query.

``metrics["test"]`` already holds the train job's VOC all-point mAP@0.5 on the test
TFRecords of the training snapshot (:mod:`core.model.metrics.voc`); those keys are kept, and the
COCO results go beside them under ``"coco"``. The page labels which is which.

The test split is the project's images with ``split == "test"`` whose annotation is
finished (done or no objects), as stored now: an image relabelled after training is
evaluated with its new boxes.

What is stored (``metrics["test"]["coco"]``):
    ``evaluated_at``, ``images``, ``ground_truth``, ``predictions``, ``labels``,
    ``map_50``, ``map_50_95``, ``ap_50``, ``ap_50_95``, ``gt_counts`` (per class),
    ``map_75`` and ``ap_75`` (per class: how tight the boxes are), ``map_small``, ``map_medium``,
    ``map_large`` (COCO's area ranges) and ``ap_small`` (per class: the small garments),
    ``thresholds`` (score thresholds), ``at`` (per threshold, as text: per-class
    ``precision`` and ``recall`` and the ``confusion`` matrix with background last),
    ``curves`` (per class, PR curve at IoU 0.5 thinned to at most ``CURVE_POINTS``
    points: ``recall``, ``precision``, ``score``), ``errors`` (at ``ERROR_THRESHOLD``:
    ``false_positive``, ``missed``, ``wrong_class`` lists of boxes, worst first), ``review``
    (what a reviewer sees at the Review page's default score threshold, per IoU in
    ``REVIEW_IOUS`` as text: :meth:`core.model.metrics.review.ReviewFigures.to_dict`).

Results stored before a key was added lack it: readers use ``.get``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.boxes import Box
from core.jobs import JobContext, JobError
from core.model.metrics import coco
from core.model.metrics.coco import CocoMetrics, confusion_matrix, confusion_pairs
from core.model.metrics.review import review_figures
from core.model.metrics.types import Detection, GroundTruth
from core.review.queue import DEFAULT_THRESHOLD
from core.settings import Settings
from db.engine import session_scope
from db.models import BoxRow, Image, ImageStatus, Label, ModelKind, ModelVersion, Prediction, Split, utcnow

JOB_KIND = "evaluate"
GROUND_TRUTH = (ImageStatus.DONE, ImageStatus.NO_OBJECTS)
# The score thresholds the page offers; P/R and the confusion matrix are stored at each.
THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
ERROR_THRESHOLD = 0.5
CURVE_POINTS = 200
MAX_ERRORS = 100  # per kind: the gallery shows the worst first, nobody reads past a hundred
# A box at IoU 0.7 needs no redrawing; 0.5 is the loose bar mAP@0.5 uses, for comparison.
REVIEW_IOUS = (0.7, 0.5)


class EvaluationError(JobError):
    """An evaluation that cannot run (the message says why)."""


def test_image_ids(session: Session, project_id: int) -> list[int]:
    """The project's test images with finished annotation, by id."""
    return list(
        session.scalars(
            select(Image.id)
            .where(Image.project_id == project_id, Image.split == Split.TEST, Image.status.in_(GROUND_TRUTH))
            .order_by(Image.id)
        )
    )


def images_with_predictions(session: Session, model_version_id: int, image_ids: list[int]) -> set[int]:
    """Which of ``image_ids`` already have predictions of the version (one grouped query)."""
    rows = session.scalars(
        select(Prediction.image_id).where(Prediction.model_version_id == model_version_id).group_by(Prediction.image_id)
    )
    wanted = set(image_ids)
    return {i for i in rows if i in wanted}


def load_boxes(
    session: Session, project_id: int, model_version_id: int, image_ids: list[int]
) -> tuple[list[GroundTruth], list[Detection]]:
    """Ground truth and the version's predictions on ``image_ids`` (two queries)."""
    ids = set(image_ids)
    gt_rows = session.execute(
        select(BoxRow.image_id, Label.name, BoxRow.x_min, BoxRow.y_min, BoxRow.x_max, BoxRow.y_max)
        .join(Label, BoxRow.label_id == Label.id)
        .join(Image, BoxRow.image_id == Image.id)
        .where(Image.project_id == project_id, Image.split == Split.TEST, Image.status.in_(GROUND_TRUTH))
    ).all()
    dt_rows = session.execute(
        select(
            Prediction.image_id,
            Label.name,
            Prediction.x_min,
            Prediction.y_min,
            Prediction.x_max,
            Prediction.y_max,
            Prediction.score,
        )
        .join(Label, Prediction.label_id == Label.id)
        .join(Image, Prediction.image_id == Image.id)
        .where(
            Prediction.model_version_id == model_version_id, Image.split == Split.TEST, Image.status.in_(GROUND_TRUTH)
        )
    ).all()
    gts = [GroundTruth(r.image_id, r.name, Box.from_row(r)) for r in gt_rows if r.image_id in ids]
    dts = [Detection(r.image_id, r.name, Box.from_row(r), r.score) for r in dt_rows if r.image_id in ids]
    return gts, dts


def _num(x: float) -> float | None:
    """JSON-safe float: NaN (undefined, e.g. no ground truth) becomes None."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 6)


def _thin(n: int, limit: int) -> np.ndarray:
    return np.unique(np.linspace(0, n - 1, limit).round().astype(int)) if n > limit else np.arange(n)


def precision_recall_at(metrics: CocoMetrics, threshold: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-class precision and recall at a score threshold, read off the IoU-0.5 curves.

    Same numbers as :func:`core.model.metrics.coco.evaluate` with ``score_threshold=threshold``.
    """
    precision: dict[str, Any] = {}
    recall: dict[str, Any] = {}
    for name in metrics.labels:
        c = metrics.curves[name]
        kept = int((c.scores >= threshold).sum())
        n_gt = metrics.gt_counts[name]
        if kept == 0:
            precision[name], recall[name] = None, (0.0 if n_gt else None)
            continue
        tp = c.recall[kept - 1] * n_gt if n_gt else 0.0
        precision[name] = _num(round(tp) / kept)
        recall[name] = _num(round(tp) / n_gt) if n_gt else None
    return precision, recall


def find_errors(
    gts: list[GroundTruth], dts: list[Detection], threshold: float = ERROR_THRESHOLD, limit: int = MAX_ERRORS
) -> dict[str, list[dict[str, Any]]]:
    """False positives, missed boxes and wrong-class boxes at ``threshold``, worst first.

    The matching is the confusion matrix's (:func:`core.model.metrics.coco.confusion_pairs`), so
    the lists are the boxes behind its background row, background column and off-diagonal
    cells. False positives and wrong classes are ordered by score (most confident first),
    missed boxes by size (largest first: the most glaring misses).
    """
    by_gt: dict[int, list[GroundTruth]] = defaultdict(list)
    by_dt: dict[int, list[Detection]] = defaultdict(list)
    for g in gts:
        by_gt[g.image].append(g)
    for d in dts:
        if d.score >= threshold:
            by_dt[d.image].append(d)
    fp, missed, wrong = [], [], []

    def box(b: Box) -> list[float]:
        return [round(b.x_min, 1), round(b.y_min, 1), round(b.x_max, 1), round(b.y_max, 1)]

    for image_id in set(by_gt) | set(by_dt):
        g_list, d_list = by_gt.get(image_id, []), by_dt.get(image_id, [])
        pairs = confusion_pairs(g_list, d_list)
        used_d, used_g = {d for d, _ in pairs}, {g for _, g in pairs}
        for di, gi in pairs:
            d, g = d_list[di], g_list[gi]
            if d.label != g.label:
                wrong.append(
                    {
                        "image_id": image_id,
                        "label": d.label,
                        "true_label": g.label,
                        "score": round(d.score, 4),
                        "box": box(d.box),
                        "true_box": box(g.box),
                    }
                )
        for di, d in enumerate(d_list):
            if di not in used_d:
                fp.append({"image_id": image_id, "label": d.label, "score": round(d.score, 4), "box": box(d.box)})
        for gi, g in enumerate(g_list):
            if gi not in used_g:
                missed.append({"image_id": image_id, "label": g.label, "box": box(g.box), "area": round(g.box.area)})
    fp.sort(key=lambda e: (-e["score"], e["image_id"]))
    wrong.sort(key=lambda e: (-e["score"], e["image_id"]))
    missed.sort(key=lambda e: (-e["area"], e["image_id"]))
    return {"false_positive": fp[:limit], "missed": missed[:limit], "wrong_class": wrong[:limit]}


def summarise(gts: list[GroundTruth], dts: list[Detection], labels: list[str], n_images: int) -> dict[str, Any]:
    """Everything the Evaluate page draws for one model version (see the module docstring)."""
    metrics = coco.evaluate(gts, dts, labels, score_threshold=ERROR_THRESHOLD)
    at: dict[str, Any] = {}
    for t in THRESHOLDS:
        precision, recall = precision_recall_at(metrics, t)
        matrix = metrics.confusion if t == ERROR_THRESHOLD else confusion_matrix(gts, dts, labels, t)
        at[f"{t:.1f}"] = {"precision": precision, "recall": recall, "confusion": matrix.tolist()}
    curves = {}
    for name, c in metrics.curves.items():
        keep = _thin(len(c.scores), CURVE_POINTS)
        curves[name] = {
            "recall": [round(float(x), 4) for x in c.recall[keep]],
            "precision": [round(float(x), 4) for x in c.precision[keep]],
            "score": [round(float(x), 4) for x in c.scores[keep]],
        }
    return {
        "evaluated_at": utcnow().isoformat(timespec="seconds"),
        "images": n_images,
        "ground_truth": len(gts),
        "predictions": len(dts),
        "labels": labels,
        "map_50": _num(metrics.map_50),
        "map_50_95": _num(metrics.map_50_95),
        "ap_50": {k: _num(v) for k, v in metrics.ap_50.items()},
        "ap_50_95": {k: _num(v) for k, v in metrics.ap_50_95.items()},
        "map_75": _num(metrics.map_75),
        "ap_75": {k: _num(v) for k, v in metrics.ap_75.items()},
        "map_small": _num(metrics.map_small),
        "map_medium": _num(metrics.map_medium),
        "map_large": _num(metrics.map_large),
        "ap_small": {k: _num(v) for k, v in metrics.ap_small.items()},
        "gt_counts": metrics.gt_counts,
        "thresholds": [f"{t:.1f}" for t in THRESHOLDS],
        "at": at,
        "curves": curves,
        "error_threshold": ERROR_THRESHOLD,
        "errors": find_errors(gts, dts),
        "review": {
            f"{iou:.1f}": review_figures(gts, dts, n_images, DEFAULT_THRESHOLD, iou).to_dict() for iou in REVIEW_IOUS
        },
    }


def ensure_predictions(
    engine: Engine,
    settings: Settings,
    model_version_id: int,
    image_ids: list[int],
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Predicts the test images that have no prediction of the version yet; returns how many were predicted.

    An image on which the model found nothing has no prediction rows, so it is predicted
    again on the next evaluation: cheap, and it never leaves a test image unpredicted.
    """
    with session_scope(engine) as session:
        missing = sorted(set(image_ids) - images_with_predictions(session, model_version_id, image_ids))
    if not missing:
        return 0
    from core.model.prediction import predict_images  # TensorFlow only when something must be predicted

    predict_images(engine, settings, model_version_id, missing, progress=progress)
    return len(missing)


def evaluate_model_version(
    engine: Engine,
    settings: Settings,
    model_version_id: int,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Predicts what is missing, evaluates on the test split and stores the results; returns them.

    Raises:
        EvaluationError: No such version, or the project has no finished test image.
    """
    with session_scope(engine) as session:
        version = session.get(ModelVersion, model_version_id)
        if version is None:
            raise EvaluationError(f"No model version #{model_version_id}.")
        project_id = version.project_id
        labels = list(session.scalars(select(Label.name).where(Label.project_id == project_id).order_by(Label.order)))
        image_ids = test_image_ids(session, project_id)
    if not image_ids:
        raise EvaluationError(
            "The project has no finished test images: export or train once (that assigns splits) and finish "
            "annotating some test images."
        )
    predicted = ensure_predictions(engine, settings, model_version_id, image_ids, progress)
    with session_scope(engine) as session:
        gts, dts = load_boxes(session, project_id, model_version_id, image_ids)
    result = summarise(gts, dts, labels, len(image_ids))
    result["newly_predicted"] = predicted
    with session_scope(engine) as session:
        version = session.get(ModelVersion, model_version_id)
        assert version is not None
        metrics = dict(version.metrics or {})
        metrics["test"] = {**(metrics.get("test") or {}), "coco": result}
        version.metrics = metrics  # a new dict: JSON columns do not track in-place changes
    return result


def evaluated_versions(session: Session, project_id: int) -> list[tuple[int, str, dict[str, Any] | None]]:
    """(id, name, stored COCO test results or None) of the project's detector versions, newest first, one query.

    Tags versions have their own tab (ui/tags_evaluate_panels.py): COCO box metrics do not apply to them.
    """
    rows = session.execute(
        select(ModelVersion.id, ModelVersion.name, ModelVersion.metrics)
        .where(ModelVersion.project_id == project_id, ModelVersion.kind == ModelKind.DETECTOR)
        .order_by(ModelVersion.id.desc())
    ).all()
    return [(i, name, ((m or {}).get("test") or {}).get("coco")) for i, name, m in rows]


def count_predictions(session: Session, model_version_id: int) -> int:
    """How many predictions a version has stored."""
    return int(session.scalar(select(func.count()).where(Prediction.model_version_id == model_version_id)) or 0)


def evaluate_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The ``evaluate`` job handler (registered in :data:`core.jobs.HANDLERS`)."""
    version_id = int(params["model_version_id"])
    ctx.progress(0, None, "predicting the test images that have no predictions yet", phase="predict")

    def progress(done: int, total: int) -> None:
        ctx.check_cancelled()
        ctx.progress(done, total, f"predicting test images: {done}/{total}", phase="predict")

    result = evaluate_model_version(ctx.engine, ctx.settings, version_id, progress=progress)
    ctx.log(f"model version #{version_id}: COCO mAP@0.5 {result['map_50']}, mAP@[.5:.95] {result['map_50_95']}")
    return {
        "model_version_id": version_id,
        "map_50": result["map_50"],
        "map_50_95": result["map_50_95"],
        "images": result["images"],
        "predictions": result["predictions"],
        "newly_predicted": result["newly_predicted"],
    }
