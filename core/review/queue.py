"""The review queue: new images with predictions of a model version, most uncertain first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, select, text
from sqlalchemy.orm import Session

from core.review.errors import ReviewError
from db.models import Image, ImageStatus, Label, ModelVersion, Prediction, ReviewDecision

ORDERS = {
    "top_score": "lowest top score first",
    "margin": "smallest margin between the two best classes first",
    "below": "most boxes under the threshold first",
}
DEFAULT_THRESHOLD = 0.5


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
class ReviewQueueFilter:
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
    flt: ReviewQueueFilter = ReviewQueueFilter(),
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
            ReviewDecision.model_version_id == model_version_id,
            ReviewDecision.decision == "rejected",
            ReviewDecision.image_id.in_(part),
        )
        open_ids = set(
            session.scalars(
                select(Image.id).where(Image.id.in_(part), Image.status == ImageStatus.NEW, Image.id.not_in(rejected))
            )
        )
        for image_id in part:
            if image_id in open_ids:
                return image_id
    return None
