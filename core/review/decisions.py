"""The decisions a reviewer takes on an image: accept, correct, no garments, reject, each recorded.

All boxes are in **original-image pixels**. A review saves through
:func:`core.annotate.save.save_boxes` (optimistic locking, validation, box history), so a
reviewed image is ground truth exactly like a hand-annotated one: status ``done``, its
boxes ``human`` (drawn or changed by the reviewer) or ``model`` with the score kept (a
prediction accepted unchanged). The export takes it like any other done image.

Every prediction shown to a reviewer leaves a :class:`db.models.ReviewDecision` naming the
model version: ``accepted`` (unchanged), ``moved`` (box moved or resized; details hold the
IoU between the predicted and the saved box), ``relabelled`` (details: from, to, IoU),
``deleted`` (a false positive) or ``rejected`` (the whole image was rejected); a box the
reviewer added is an ``added`` row (a missed object). Auto-accept (core/review/auto_accept.py)
writes ``auto_accepted`` rows, and ``audit`` marks an image auto-accept would have taken but
left for people, so that the share of audited predictions accepted unchanged measures the real
error rate of the thresholds.

A rejected image keeps no boxes and stays ``new``: it leaves the review queue of that
model version and goes back to the Annotate queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from core.annotate.matching import match_boxes
from core.annotate.save import save_boxes
from core.annotate.state import DraftBox, StoredBox
from core.boxes import Box
from core.review.errors import NothingShownError, ReviewError
from core.review.item import ReviewItem
from db.models import BoxSource, Image, ImageStatus, ReviewDecision


@dataclass
class ReviewResult:
    """What a review did: the decision counts and the save's summary."""

    decisions: dict[str, int] = field(default_factory=dict)
    summary: str = ""
    status: ImageStatus | None = None


def record_decision(
    session: Session,
    item: ReviewItem,
    decision: str,
    who: str,
    prediction_id: int | None = None,
    box_id: int | None = None,
    **details: Any,
) -> None:
    """Records one decision on ``item`` (a prediction's, with ``prediction_id``, or the image's), by ``who``."""
    session.add(
        ReviewDecision(
            image_id=item.state.id,
            prediction_id=prediction_id,
            box_id=box_id,
            model_version_id=item.model_version_id,
            decision=decision,
            details=details,
            who=who,
        )
    )


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
    """Which prediction each canvas box continues: :func:`core.annotate.matching.match_boxes`, same label first.

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
        core.annotate.errors.StaleRevisionError: The image was saved by someone after it was loaded.
        core.annotate.errors.AnnotationError: Invalid boxes or labels (nothing saved).
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
            record_decision(session, item, "added", who, None, box_id, label=d.label)
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
        record_decision(session, item, name, who, p.id, box_id, **details)
        count(name)
    for p in item.predictions:
        if p.id not in used:
            record_decision(session, item, "deleted", who, p.id, None, label=p.label, score=p.score)
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
        record_decision(session, item, "rejected", who, p.id, None, label=p.label, score=p.score)
    record_decision(session, item, "rejected", who, None, None, reason=reason, image=True)
    session.flush()
    return ReviewResult(decisions={"rejected": len(item.predictions)}, summary="Rejected; sent back to Annotate.")
