"""Reviewing predictions: the uncertainty queue, accept / correct / reject, auto-accept, decisions, auto-tags.

All boxes are in **original-image pixels**. A review saves through
:func:`core.annotate.annotations.save_boxes` (optimistic locking, validation, box history), so a
reviewed image is ground truth exactly like a hand-annotated one: status ``done``, its
boxes ``human`` (drawn or changed by the reviewer) or ``model`` with the score kept (a
prediction accepted unchanged). The export takes it like any other done image.

Every prediction shown to a reviewer leaves a :class:`db.models.ReviewDecision` naming the
model version: ``accepted`` (unchanged), ``moved`` (box moved or resized; details hold the
IoU between the predicted and the saved box), ``relabelled`` (details: from, to, IoU),
``deleted`` (a false positive) or ``rejected`` (the whole image was rejected); a box the
reviewer added is an ``added`` row (a missed object). Auto-accept writes
``auto_accepted`` rows, and ``audit`` marks an image auto-accept would have taken but left
for people, so that the share of audited predictions accepted unchanged measures the real
error rate of the thresholds.

A rejected image keeps no boxes and stays ``new``: it leaves the review queue of that
model version and goes back to the Annotate queue.

The detector's NMS is per class (core/model/detector/model.py), so one garment often comes back
as near-identical boxes of two classes. A review item shows one box per object: of such a
group only the best-scored prediction is shown, the others are kept on the item as
alternatives (the page hints "also: Jackets 0.32"), and they leave no decision, like the
predictions under the threshold.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, exists, func, select, text
from sqlalchemy.orm import Session

from core.annotate.annotations import (
    MACHINE_ATTRIBUTE_PREFIX,
    DraftBox,
    ImageState,
    StoredBox,
    load_image,
    match_boxes,
    save_boxes,
)
from core.boxes import Box
from db.models import BoxSource, Image, ImageStatus, Label, ModelVersion, Prediction, ReviewDecision

ORDERS = {
    "top_score": "lowest top score first",
    "margin": "smallest margin between the two best classes first",
    "below": "most boxes under the threshold first",
}
DEFAULT_THRESHOLD = 0.5
DEFAULT_AUDIT_FRACTION = 0.05
AUTO_ACCEPT_USER = "auto-accept"
# Predictions overlapping more than this are one object (class-agnostic): the reviewer sees one
# box. Near-identical on screen (corners within about 2.5% of the box's side); a jacket over a
# shirt stays below it. Under core.annotate.annotations.SAME_BOX_IOU, which a save refuses outright.
SAME_OBJECT_IOU = 0.9

# Image-level attributes a garment class implies, for the auto-tags (only attributes and
# values the project's schema has are written). Flat-lay demo classes and the default
# schema of core/project/projects.py.
GARMENT_ATTRIBUTES: dict[str, dict[str, str]] = {
    "Jackets": {"type": "upper wear", "sleeve_length": "full"},
    "Shirts": {"type": "upper wear", "sleeve_length": "full"},
    "Tshirts": {"type": "upper wear", "sleeve_length": "half"},
    "Tops": {"type": "upper wear", "sleeve_length": "half"},
    "Jeans": {"type": "bottom wear"},
    "Trousers": {"type": "bottom wear"},
    "Skirts": {"type": "bottom wear"},
}


class ReviewError(ValueError):
    """A review action that cannot be done; nothing was changed."""


class NothingShownError(ReviewError):
    """Accept or save of an item that had nothing on the canvas and still has nothing.

    Saving it would mark the image "no garments", and it is ground truth from then on.
    The least-confident-first queue puts exactly such items first (every prediction under
    the threshold, hidden), so one key press would teach the next model that the garment
    is background. It takes the explicit "no garments" action instead.
    """


@dataclass(frozen=True)
class QueueItem:
    """One image in the review queue, with the uncertainty figures it is ordered by.

    Attributes:
        image_id: The image.
        name: Its original name.
        top_score: Highest prediction score on the image.
        top_label: Label of that prediction.
        margin: Best score minus the best score of another class (1 when only one class).
        below: Predictions under the threshold.
        audit: Auto-accept left this image for people (audit sample).
    """

    image_id: int
    name: str
    top_score: float
    top_label: str
    margin: float
    below: int
    audit: bool


@dataclass(frozen=True)
class QueueFilter:
    """Which queue items to show; empty means any."""

    label_ids: tuple[int, ...] = ()
    min_score: float = 0.0
    max_score: float = 1.0
    main_labels: tuple[str, ...] = ()


def latest_version_with_predictions(session: Session, project_id: int) -> int | None:
    """The newest model version of the project that has predictions."""
    return session.scalar(
        select(ModelVersion.id)
        .where(ModelVersion.project_id == project_id, exists().where(Prediction.model_version_id == ModelVersion.id))
        .order_by(ModelVersion.id.desc())
        .limit(1)
    )


def has_predictions(session: Session, model_version_id: int) -> bool:
    """Whether the model version has been run over any image (it has stored predictions)."""
    return bool(session.scalar(select(exists().where(Prediction.model_version_id == model_version_id))))


# Per image: best score per label, ranked; top, second-best class, and boxes under the threshold.
# Window functions (SQLite >= 3.25, PostgreSQL) over the covering index ix_prediction_model_image_score.
_QUEUE_SQL = """
WITH per_label AS (
    SELECT p.image_id, p.label_id, MAX(p.score) AS s,
           SUM(CASE WHEN p.score < :threshold THEN 1 ELSE 0 END) AS below
    FROM prediction p JOIN image i ON i.id = p.image_id
    WHERE p.model_version_id = :version AND i.project_id = :project AND i.status = 'new'
    GROUP BY p.image_id, p.label_id
), ranked AS (
    SELECT image_id, label_id, s, below,
           ROW_NUMBER() OVER (PARTITION BY image_id ORDER BY s DESC, label_id) AS rn
    FROM per_label
)
SELECT r.image_id, i.original_name,
       MAX(CASE WHEN r.rn = 1 THEN r.s END) AS top,
       MAX(CASE WHEN r.rn = 1 THEN r.label_id END) AS top_label,
       MAX(CASE WHEN r.rn = 2 THEN r.s END) AS second,
       SUM(r.below) AS below
FROM ranked r JOIN image i ON i.id = r.image_id
WHERE NOT EXISTS (SELECT 1 FROM review_decision d
                  WHERE d.model_version_id = :version AND d.image_id = r.image_id AND d.decision = 'rejected')
GROUP BY r.image_id, i.original_name
"""


def review_queue(
    session: Session,
    project_id: int,
    model_version_id: int,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    order: str = "top_score",
    flt: QueueFilter = QueueFilter(),
) -> list[QueueItem]:
    """The new images with predictions of a model version, most uncertain first.

    Audit-sample images come first whatever the order (the error-rate measurement needs
    them reviewed). Images rejected for this version are left out.

    Args:
        session: Open session.
        project_id: The project.
        model_version_id: Whose predictions are reviewed.
        threshold: Confidence threshold (boxes below it are not shown; ``below`` counts them).
        order: A key of :data:`ORDERS`.
        flt: Label (any prediction of the label at or above the threshold), top-score range
            and main class (the top prediction's label).
    """
    if order not in ORDERS:
        raise ReviewError(f"Unknown order {order!r}; use one of: {', '.join(ORDERS)}.")
    params = {"threshold": threshold, "version": model_version_id, "project": project_id}
    rows = session.execute(text(_QUEUE_SQL), params).all()
    names = dict(session.execute(select(Label.id, Label.name).where(Label.project_id == project_id)).all())
    audit = set(
        session.scalars(
            select(ReviewDecision.image_id).where(
                ReviewDecision.model_version_id == model_version_id, ReviewDecision.decision == "audit"
            )
        )
    )
    with_label: set[int] | None = None
    if flt.label_ids:
        with_label = set(
            session.scalars(
                select(Prediction.image_id).where(
                    Prediction.model_version_id == model_version_id,
                    Prediction.label_id.in_(flt.label_ids),
                    Prediction.score >= threshold,
                )
            )
        )
    items = []
    for image_id, name, top, top_label, second, below in rows:
        if not flt.min_score <= top <= flt.max_score:
            continue
        if with_label is not None and image_id not in with_label:
            continue
        label = names.get(top_label, "?")
        if flt.main_labels and label not in flt.main_labels:
            continue
        margin = top - second if second is not None else 1.0
        items.append(QueueItem(image_id, name, float(top), label, float(margin), int(below), image_id in audit))
    keys = {
        "top_score": lambda q: (not q.audit, q.top_score, q.image_id),
        "margin": lambda q: (not q.audit, q.margin, q.image_id),
        "below": lambda q: (not q.audit, -q.below, q.top_score, q.image_id),
    }
    return sorted(items, key=keys[order])


def first_open(session: Session, model_version_id: int, image_ids: Sequence[int], chunk: int = 50) -> int | None:
    """The first of ``image_ids`` (a queue's order) still to review: status new and not rejected.

    Checks a chunk at a time, so taking the next item from a cached queue costs one small
    query however many predictions the database holds.
    """
    for start in range(0, len(image_ids), chunk):
        part = list(image_ids[start : start + chunk])
        rejected = select(ReviewDecision.image_id).where(
            ReviewDecision.model_version_id == model_version_id, ReviewDecision.decision == "rejected",
            ReviewDecision.image_id.in_(part),
        )  # fmt: skip
        open_ids = set(
            session.scalars(
                select(Image.id).where(Image.id.in_(part), Image.status == ImageStatus.NEW, Image.id.not_in(rejected))
            )
        )
        for image_id in part:
            if image_id in open_ids:
                return image_id
    return None


@dataclass(frozen=True)
class ReviewItem:
    """An image to review: its stored state and the predictions shown (at or above the threshold).

    Attributes:
        predictions: One per object, best first.
        hidden: Objects whose best prediction is under the threshold.
        alternatives: Prediction id -> the other predictions of the same object (IoU above
            :data:`SAME_OBJECT_IOU`, any label), best first; they are not shown as boxes.
    """

    state: ImageState
    model_version_id: int
    threshold: float
    predictions: tuple[StoredBox, ...]
    hidden: int
    alternatives: Mapping[int, tuple[StoredBox, ...]] = field(default_factory=dict)

    @property
    def revision(self) -> int:
        """The image revision the review was loaded at."""
        return self.state.revision


def one_per_object(predictions: Sequence[StoredBox]) -> tuple[list[StoredBox], dict[int, list[StoredBox]]]:
    """Class-agnostic suppression: keeps the best of each group of near-identical boxes.

    Args:
        predictions: Best first.

    Returns:
        The kept predictions (best first) and, per kept id, the ones it suppressed (best first).
    """
    kept: list[StoredBox] = []
    others: dict[int, list[StoredBox]] = {}
    for p in predictions:
        same = [(k.box.iou(p.box), n) for n, k in enumerate(kept)]
        best = max(same, default=(0.0, -1))
        if best[0] > SAME_OBJECT_IOU:
            others.setdefault(kept[best[1]].id, []).append(p)
        else:
            kept.append(p)
    return kept, others


def load_review_item(session: Session, image_id: int, model_version_id: int, threshold: float) -> ReviewItem:
    """Reads an image with the version's predictions at or above ``threshold``, one per object, best first.

    Predictions are returned as :class:`core.annotate.annotations.StoredBox` whose ``id`` is the
    prediction id, so :func:`core.annotate.annotations.match_boxes` can tell which one a canvas box continues.
    Near-identical boxes (:func:`one_per_object`, before the threshold) are one object: the
    best is shown, the rest are its ``alternatives``.
    """
    state = load_image(session, image_id)
    rows = session.execute(
        select(Prediction, Label.name).join(Label, Label.id == Prediction.label_id)
        .where(Prediction.image_id == image_id, Prediction.model_version_id == model_version_id)
        .order_by(Prediction.score.desc(), Prediction.id)
    ).all()  # fmt: skip
    kept, others = one_per_object(
        [
            StoredBox(p.id, name, Box(p.x_min, p.y_min, p.x_max, p.y_max), BoxSource.MODEL, p.score, None, None, None)
            for p, name in rows
        ]
    )
    shown = tuple(p for p in kept if p.score >= threshold)
    alternatives = {p.id: tuple(others[p.id]) for p in shown if p.id in others}
    return ReviewItem(state, model_version_id, threshold, shown, len(kept) - len(shown), alternatives)


@dataclass
class ReviewResult:
    """What a review did: the decision counts and the save's summary."""

    decisions: dict[str, int] = field(default_factory=dict)
    summary: str = ""
    status: ImageStatus | None = None


def _decision(
    session: Session, item: ReviewItem, decision: str, who: str, prediction_id: int | None = None,
    box_id: int | None = None, **details: Any,
) -> None:  # fmt: skip
    session.add(
        ReviewDecision(
            image_id=item.state.id, prediction_id=prediction_id, box_id=box_id, model_version_id=item.model_version_id,
            decision=decision, details=details, who=who,
        )
    )  # fmt: skip


def accept(session: Session, item: ReviewItem, who: str, *, auto: bool = False) -> ReviewResult:
    """Accept as is: every shown prediction becomes a model box with its score.

    Raises:
        NothingShownError: No prediction was shown (all under the threshold) and the image
            has no boxes: use :func:`no_garments` to say so explicitly.
    """
    return correct(session, item, [(p.label, p.box) for p in item.predictions], who, tolerance=0.0, auto=auto)


def no_garments(session: Session, item: ReviewItem, who: str) -> ReviewResult:
    """The reviewer's explicit "no garments in this image": every prediction shown is recorded deleted."""
    return correct(session, item, [], who, tolerance=0.0, allow_empty=True)


def match_predictions(
    predictions: Sequence[StoredBox], edited: Sequence[tuple[str, Box]], tolerance: float
) -> list[DraftBox]:
    """Which prediction each canvas box continues: :func:`core.annotate.annotations.match_boxes`, same label first.

    Detectors often put near-identical boxes of two classes on one garment; a moved box
    must continue the prediction of its own label when one overlaps it, not the other class's.
    """
    drafts = match_boxes(predictions, edited, tolerance)
    by_id = {p.id: p for p in predictions}
    taken = {d.box_id for d in drafts if d.box_id is not None}
    for i, (d, (label, box)) in enumerate(zip(drafts, edited, strict=True)):
        p = by_id.get(d.box_id) if d.box_id is not None else None
        if p is None or p.label == label:
            continue
        same = [q for q in predictions if q.label == label and q.id not in taken and box.iou(q.box) > 0.3]
        if same:
            best = max(same, key=lambda q: box.iou(q.box))
            taken.discard(p.id)
            taken.add(best.id)
            drafts[i] = DraftBox(label, box, best.id)
    return drafts


def correct(
    session: Session,
    item: ReviewItem,
    edited: Sequence[tuple[str, Box]],
    who: str,
    *,
    tolerance: float,
    auto: bool = False,
    allow_empty: bool = False,
) -> ReviewResult:
    """Saves the reviewer's boxes (what the canvas holds) and records a decision per prediction.

    A canvas box that continues a prediction unchanged is saved as a ``model`` box with
    its score; a moved, resized or relabelled one and a new one are ``human`` boxes. Boxes
    the image already had (someone annotated it meanwhile) are kept as they are.

    Args:
        session: Open session; the caller commits.
        item: What was shown (from :func:`load_review_item`).
        edited: (label, box) pairs from the canvas, in original pixels.
        who: The reviewer.
        tolerance: Per-edge difference in original pixels that still counts as unchanged.
        auto: Recorded as ``auto_accepted`` (auto-accept) instead of the reviewer's decisions.
        allow_empty: Save "no garments" even when nothing was shown and nothing drawn.

    Raises:
        core.annotate.annotations.StaleRevisionError: The image was saved by someone after it was loaded.
        core.annotate.annotations.AnnotationError: Invalid boxes or labels (nothing saved).
        NothingShownError: Nothing was on the canvas, nothing is, and ``allow_empty`` is False.
    """
    if not allow_empty and not edited and not item.predictions and not item.state.boxes:
        hidden = (
            f"{item.hidden} prediction(s) are under the threshold {item.threshold:.2f}: lower it to see them, "
            if item.hidden
            else ""
        )
        raise NothingShownError(
            f"{item.state.name}: nothing on the canvas, so saving would mark it as having no garments. "
            f"{hidden}draw the garments, press X to send it back to Annotate, or choose 'No garments' "
            "if it really has none."
        )
    drafts = match_predictions(item.predictions, edited, tolerance)
    by_id = {p.id: p for p in item.predictions}
    new_drafts = []
    for d in drafts:
        p = by_id.get(d.box_id) if d.box_id is not None else None
        if p is not None and p.label == d.label and p.box == d.box:
            new_drafts.append(DraftBox(d.label, d.box, None, BoxSource.MODEL, p.score))
        else:
            new_drafts.append(DraftBox(d.label, d.box))
    existing = [DraftBox(b.label, b.box, b.id) for b in item.state.boxes]
    all_drafts = existing + new_drafts
    saved = save_boxes(session, item.state.id, item.revision, all_drafts, who, no_objects=not all_drafts)
    # save_boxes creates new boxes in draft order; the existing ones are kept, not created.
    box_ids = saved.created_ids
    result = ReviewResult(summary=saved.summary, status=saved.status)

    def count(name: str) -> None:
        result.decisions[name] = result.decisions.get(name, 0) + 1

    used: set[int] = set()
    for d, box_id in zip(drafts, box_ids, strict=False):
        p = by_id.get(d.box_id) if d.box_id is not None else None
        if p is None:
            _decision(session, item, "added", who, None, box_id, label=d.label)
            count("added")
            continue
        used.add(p.id)
        iou = round(p.box.iou(d.box), 4)
        if auto:
            name, details = "auto_accepted", {"score": p.score, "label": p.label}
        elif p.label != d.label:
            name, details = "relabelled", {"from": p.label, "to": d.label, "iou": iou, "score": p.score}
        elif p.box != d.box:
            name, details = "moved", {"label": p.label, "iou": iou, "score": p.score}
        else:
            name, details = "accepted", {"label": p.label, "score": p.score}
        _decision(session, item, name, who, p.id, box_id, **details)
        count(name)
    for p in item.predictions:
        if p.id not in used:
            _decision(session, item, "deleted", who, p.id, None, label=p.label, score=p.score)
            count("deleted")
    session.flush()
    return result


def reject(session: Session, item: ReviewItem, who: str, reason: str = "") -> ReviewResult:
    """Rejects the image's predictions: nothing is saved, the image goes back to the Annotate queue.

    Raises:
        ReviewError: The image was saved by someone after it was loaded.
    """
    image = session.get(Image, item.state.id)
    if image is None or image.revision != item.revision:
        raise ReviewError(f"{item.state.name!r} changed after it was opened; reload it before rejecting.")
    for p in item.predictions:
        _decision(session, item, "rejected", who, p.id, None, label=p.label, score=p.score)
    _decision(session, item, "rejected", who, None, None, reason=reason, image=True)
    session.flush()
    return ReviewResult(decisions={"rejected": len(item.predictions)}, summary="Rejected; sent back to Annotate.")


# ----------------------------------------------------------------------------- auto-accept


@dataclass
class AutoAcceptResult:
    """What an auto-accept run did."""

    accepted: int = 0
    audit: int = 0
    left: int = 0


def _in_audit(image_id: int, seed: int, fraction: float) -> bool:
    # A hash, not random(): the same image lands in the same sample on every run.
    digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def auto_accept(
    session: Session,
    project_id: int,
    model_version_id: int,
    thresholds: Mapping[str, float],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    audit_fraction: float = DEFAULT_AUDIT_FRACTION,
    seed: int = 0,
) -> AutoAcceptResult:
    """Accepts, without review, images whose every shown prediction clears its class's threshold.

    Args:
        session: Open session; the caller commits.
        project_id: The project.
        model_version_id: The model version.
        thresholds: Label name -> score at or above which its predictions are accepted;
            a class not listed is never auto-accepted.
        threshold: The review threshold (predictions below it are not shown, so not saved).
        audit_fraction: Share of the eligible images left for people (``audit`` decision).
        seed: Audit sample seed.
    """
    if not 0.0 <= audit_fraction <= 1.0:
        raise ReviewError("The audit share must be between 0 and 1.")
    result = AutoAcceptResult()
    for q in review_queue(session, project_id, model_version_id, threshold=threshold):
        if q.audit:
            continue
        item = load_review_item(session, q.image_id, model_version_id, threshold)
        if not item.predictions or any(p.score < thresholds.get(p.label, 2.0) for p in item.predictions):
            result.left += 1
            continue
        if _in_audit(q.image_id, seed, audit_fraction):
            _decision(session, item, "audit", AUTO_ACCEPT_USER)
            result.audit += 1
            continue
        accept(session, item, AUTO_ACCEPT_USER, auto=True)
        result.accepted += 1
    session.flush()
    return result


# ----------------------------------------------------------------------------- summaries


def decision_summary(session: Session, project_id: int) -> list[dict[str, Any]]:
    """Decisions per model version and predicted class, with the share accepted unchanged.

    Rows: version, class, one count per decision, ``reviewed`` (predictions people decided on)
    and ``accepted_share`` (accepted / reviewed). ``added`` rows count under the class the
    reviewer drew. The image-level reject row is not a prediction and is left out.
    """
    rows = session.execute(
        select(ModelVersion.id, ModelVersion.name, ReviewDecision.decision, ReviewDecision.details, Label.name,
               ReviewDecision.prediction_id)
        .join(ModelVersion, ModelVersion.id == ReviewDecision.model_version_id)
        .outerjoin(Prediction, Prediction.id == ReviewDecision.prediction_id)
        .outerjoin(Label, Label.id == Prediction.label_id)
        .where(ModelVersion.project_id == project_id)
    ).all()  # fmt: skip
    table: dict[tuple[int, str, str], dict[str, Any]] = {}
    for vid, vname, decision, details, label, pred_id in rows:
        if decision == "audit" or (decision == "rejected" and pred_id is None):
            continue
        cls = label or (details or {}).get("label") or "?"
        row = table.setdefault((vid, vname, cls), {"version": vname, "version_id": vid, "class": cls})
        row[decision] = row.get(decision, 0) + 1
    out = []
    for row in table.values():
        reviewed = sum(row.get(k, 0) for k in ("accepted", "moved", "relabelled", "deleted", "rejected"))
        row["reviewed"] = reviewed
        row["accepted_share"] = round(row.get("accepted", 0) / reviewed, 3) if reviewed else None
        out.append(row)
    return sorted(out, key=lambda r: (-r["version_id"], r["class"]))


def audit_error_rate(session: Session, model_version_id: int) -> tuple[int, float | None]:
    """Audited predictions reviewed by people and the share of them not accepted unchanged."""
    audited = select(ReviewDecision.image_id).where(
        ReviewDecision.model_version_id == model_version_id, ReviewDecision.decision == "audit"
    )
    rows = session.execute(
        select(ReviewDecision.decision).where(
            ReviewDecision.model_version_id == model_version_id,
            ReviewDecision.image_id.in_(audited),
            ReviewDecision.prediction_id.is_not(None),
            ReviewDecision.decision.in_(("accepted", "moved", "relabelled", "deleted", "rejected")),
        )
    ).scalars().all()  # fmt: skip
    if not rows:
        return 0, None
    return len(rows), round(sum(d != "accepted" for d in rows) / len(rows), 3)


def reviewed_since(session: Session, project_id: int, since: Any) -> int:
    """Images people or auto-accept reviewed into ground truth after ``since`` (None: ever)."""
    cond = [ReviewDecision.decision.in_(("accepted", "moved", "relabelled", "added", "deleted", "auto_accepted"))]
    if since is not None:
        cond.append(ReviewDecision.created_at > since)
    return int(
        session.scalar(
            select(func.count(func.distinct(ReviewDecision.image_id)))
            .join(Image, and_(Image.id == ReviewDecision.image_id, Image.project_id == project_id))
            .where(*cond, Image.status.in_((ImageStatus.DONE, ImageStatus.NO_OBJECTS)))
        )
        or 0
    )


# ----------------------------------------------------------------------------- auto-tags

AUTO_MAIN_CLASS = MACHINE_ATTRIBUTE_PREFIX + "main_class"
AUTO_CONFIDENCE = MACHINE_ATTRIBUTE_PREFIX + "main_class_confidence"
AUTO_VERSION = MACHINE_ATTRIBUTE_PREFIX + "model_version"


def image_tags(
    predictions: Sequence[tuple[str, Box, float]], schema: Mapping[str, Sequence[str]], min_score: float = 0.05
) -> dict[str, str]:
    """Image-level auto-tags from an image's predictions.

    The main garment class is the one with the largest score-weighted box area; its
    confidence is its best score. Each schema attribute a class implies
    (:data:`GARMENT_ATTRIBUTES`) gets the value with the most score behind it, and as
    confidence that score's share. Values are strings (every exporter writes them as text)
    under ``auto_`` keys, e.g. ``auto_main_class``, ``auto_type``, ``auto_type_confidence``.
    """
    weight: dict[str, float] = {}
    best: dict[str, float] = {}
    for label, box, score in predictions:
        if score < min_score:
            continue
        weight[label] = weight.get(label, 0.0) + score * box.area
        best[label] = max(best.get(label, 0.0), score)
    if not weight:
        return {}
    main = max(weight, key=lambda k: (weight[k], k))
    tags = {AUTO_MAIN_CLASS: main, AUTO_CONFIDENCE: f"{best[main]:.3f}"}
    for attr, values in schema.items():
        votes: dict[str, float] = {}
        for label, score in best.items():
            value = GARMENT_ATTRIBUTES.get(label, {}).get(attr)
            if value is not None and value in values:
                votes[value] = votes.get(value, 0.0) + score
        if votes:
            value = max(votes, key=lambda k: (votes[k], k))
            tags[MACHINE_ATTRIBUTE_PREFIX + attr] = value
            tags[MACHINE_ATTRIBUTE_PREFIX + attr + "_confidence"] = f"{votes[value] / sum(votes.values()):.3f}"
    return tags


def update_auto_tags(session: Session, model_version_id: int, image_ids: Sequence[int]) -> int:
    """Writes each image's auto-tags from this version's predictions into ``Image.attributes``.

    Earlier ``auto_`` keys are replaced; the schema's attributes are untouched. Returns the
    number of images tagged.
    """
    from db.models import Project

    version = session.get(ModelVersion, model_version_id)
    if version is None:
        raise ReviewError(f"No model version #{model_version_id}.")
    schema = session.scalar(select(Project.attribute_schema).where(Project.id == version.project_id)) or {}
    per_image: dict[int, list[tuple[str, Box, float]]] = {i: [] for i in image_ids}
    for chunk_start in range(0, len(image_ids), 500):
        chunk = list(image_ids[chunk_start : chunk_start + 500])
        for p, name in session.execute(
            select(Prediction, Label.name).join(Label, Label.id == Prediction.label_id)
            .where(Prediction.model_version_id == model_version_id, Prediction.image_id.in_(chunk))
        ):  # fmt: skip
            per_image[p.image_id].append((name, Box(p.x_min, p.y_min, p.x_max, p.y_max), p.score))
    tagged = 0
    for image in session.scalars(select(Image).where(Image.id.in_(list(image_ids)))):
        tags = image_tags(per_image.get(image.id, []), schema)
        kept = {k: v for k, v in (image.attributes or {}).items() if not str(k).startswith(MACHINE_ATTRIBUTE_PREFIX)}
        if tags:
            tags[AUTO_VERSION] = str(model_version_id)
            tagged += 1
        image.attributes = {**kept, **tags}
    session.flush()
    return tagged


def reviewed_since_last_model(session: Session, project_id: int) -> int:
    """Reviewed images that became ground truth after the project's newest model version was made."""
    since = session.scalar(select(func.max(ModelVersion.created_at)).where(ModelVersion.project_id == project_id))
    return reviewed_since(session, project_id, since)
