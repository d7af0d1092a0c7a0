"""What a reviewer sees of one image: its stored state and the predictions shown, one per object.

The detector's NMS is per class (core/model/detector/model.py), so one garment often comes back
as near-identical boxes of two classes. A review item shows one box per object: of such a
group only the best-scored prediction is shown, the others are kept on the item as
alternatives (the page hints "also: Jackets 0.32"), and they leave no decision, like the
predictions under the threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.annotate.state import ImageState, StoredBox, load_image
from core.boxes import Box
from db.models import BoxSource, Label, Prediction

# Predictions overlapping more than this are one object (class-agnostic): the reviewer sees one
# box. Near-identical on screen (corners within about 2.5% of the box's side); a jacket over a
# shirt stays below it. Under core.annotate.save.SAME_BOX_IOU, which a save refuses outright.
SAME_OBJECT_IOU = 0.9


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


def object_leaders(boxes: Sequence[Box]) -> list[int]:
    """Which box each of ``boxes`` (best first) is shown as: its own index when kept, else the kept one it duplicates.

    Class-agnostic: a box overlapping a kept one by more than :data:`SAME_OBJECT_IOU` is the
    same object. Boxes only, so the Review page and the evaluation's reviewer figures
    (:mod:`core.model.metrics.review`) apply the one rule.
    """
    kept: list[int] = []
    leaders: list[int] = []
    for i, box in enumerate(boxes):
        best_iou, best = max(((boxes[k].iou(box), k) for k in kept), default=(0.0, -1))
        if best_iou > SAME_OBJECT_IOU:
            leaders.append(best)
        else:
            kept.append(i)
            leaders.append(i)
    return leaders


def one_per_object(predictions: Sequence[StoredBox]) -> tuple[list[StoredBox], dict[int, list[StoredBox]]]:
    """Class-agnostic suppression: keeps the best of each group of near-identical boxes.

    Args:
        predictions: Best first.

    Returns:
        The kept predictions (best first) and, per kept id, the ones it suppressed (best first).
    """
    leaders = object_leaders([p.box for p in predictions])
    kept: list[StoredBox] = []
    others: dict[int, list[StoredBox]] = {}
    for i, (p, leader) in enumerate(zip(predictions, leaders, strict=True)):
        if leader == i:
            kept.append(p)
        else:
            others.setdefault(predictions[leader].id, []).append(p)
    return kept, others


def load_review_item(session: Session, image_id: int, model_version_id: int, threshold: float) -> ReviewItem:
    """Reads an image with the version's predictions at or above ``threshold``, one per object, best first.

    Predictions are returned as :class:`core.annotate.state.StoredBox` whose ``id`` is the
    prediction id, so :func:`core.annotate.matching.match_boxes` can tell which one a canvas box continues.
    Near-identical boxes (:func:`one_per_object`, before the threshold) are one object: the
    best is shown, the rest are its ``alternatives``.
    """
    state = load_image(session, image_id)
    rows = session.execute(
        select(Prediction, Label.name)
        .join(Label, Label.id == Prediction.label_id)
        .where(Prediction.image_id == image_id, Prediction.model_version_id == model_version_id)
        .order_by(Prediction.score.desc(), Prediction.id)
    ).all()
    kept, others = one_per_object(
        [StoredBox(p.id, name, Box.from_row(p), BoxSource.MODEL, p.score, None, None, None) for p, name in rows]
    )
    shown = tuple(p for p in kept if p.score >= threshold)
    alternatives = {p.id: tuple(others[p.id]) for p in shown if p.id in others}
    return ReviewItem(state, model_version_id, threshold, shown, len(kept) - len(shown), alternatives)
