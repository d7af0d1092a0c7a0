"""Reading stored tag predictions: what the catalogue check, Review and Annotate read.

A tags model version's predictions are :class:`db.models.TagPrediction` rows, one per
(version, image, tag), with calibrated probabilities over the whole head.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ModelKind, ModelVersion, TagPrediction

# SQLite caps bound parameters per statement; chunks keep big id lists under the cap.
_CHUNK = 500


def tag_probabilities(
    session: Session, model_version_id: int, image_ids: Iterable[int]
) -> dict[int, dict[str, dict[str, float]]]:
    """``{image_id: {tag: {value: calibrated probability}}}`` of one version for the given images.

    Images the version made no prediction for are absent from the result.
    """
    ids = sorted({int(i) for i in image_ids})
    out: dict[int, dict[str, dict[str, float]]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = session.execute(
            select(
                TagPrediction.image_id,
                TagPrediction.tag,
                TagPrediction.value,
                TagPrediction.confidence,
                TagPrediction.probabilities,
            ).where(TagPrediction.model_version_id == model_version_id, TagPrediction.image_id.in_(chunk))
        ).all()
        for image_id, tag, value, confidence, probabilities in rows:
            probs = {str(k): float(v) for k, v in (probabilities or {}).items()}
            # A row always scores its own top value, even if a writer left the map empty.
            probs.setdefault(value, float(confidence))
            out.setdefault(image_id, {})[tag] = probs
    return out


def latest_tags_version(session: Session, project_id: int) -> ModelVersion | None:
    """The project's newest tags model version (by creation, then id), or None when it has none."""
    return session.scalars(
        select(ModelVersion)
        .where(ModelVersion.project_id == project_id, ModelVersion.kind == ModelKind.TAGS)
        .order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
        .limit(1)
    ).first()
