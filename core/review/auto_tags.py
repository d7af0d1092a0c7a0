"""Auto-tags: image-level attributes (main class, garment type...) derived from a version's predictions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.annotate.attributes import MACHINE_ATTRIBUTE_PREFIX
from core.boxes import Box
from core.review.errors import ReviewError
from db.models import Image, Label, ModelVersion, Prediction

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
            select(Prediction, Label.name)
            .join(Label, Label.id == Prediction.label_id)
            .where(Prediction.model_version_id == model_version_id, Prediction.image_id.in_(chunk))
        ):
            per_image[p.image_id].append((name, Box.from_row(p), p.score))
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
