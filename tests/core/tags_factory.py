"""Tags model versions with predictions as fixture data: real ModelVersion and TagPrediction rows, no model file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session

from db.models import ModelKind, ModelVersion, TagPrediction


def add_tags_version(
    session: Session,
    project_id: int,
    heads: Mapping[str, Sequence[str]],
    predictions: Sequence[tuple[int, str, str, float]],
    name: str = "tags inserted",
) -> int:
    """A tags version and its predictions, (image id, tag, top value, calibrated confidence) each.

    The rest of each head's probability is spread evenly over its other values.
    """
    version = ModelVersion(
        project_id=project_id,
        kind=ModelKind.TAGS,
        name=name,
        path="models/none/tags.keras",
        params={"heads": {t: list(v) for t, v in heads.items()}, "temperatures": {t: 1.2 for t in heads}},
    )
    session.add(version)
    session.flush()
    for image_id, tag, value, confidence in predictions:
        rest = round((1.0 - confidence) / (len(heads[tag]) - 1), 4)
        session.add(
            TagPrediction(
                model_version_id=version.id,
                image_id=image_id,
                tag=tag,
                value=value,
                confidence=confidence,
                probabilities={v: (confidence if v == value else rest) for v in heads[tag]},
            )
        )
    session.flush()
    return version.id
