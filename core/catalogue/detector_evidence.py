"""Detector evidence for the catalogue check: the main garment a detector version found on each photo.

The main garment is the photo's largest predicted box scoring at least ``MIN_SCORE``. Where its
class is a value the listing's category words may mean (the default vocabulary maps its words
onto the detector's labels too: "tee" -> T-Shirt and Tshirts), it agrees; where it is another
garment the vocabulary knows, the reasons say so ("detector finds Jeans on the photo (0.87)").
It is shown as evidence beside the tags model and does not change the mismatch score: how much
it should weigh has not been measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.catalogue.claims import CATEGORY_TAG
from core.catalogue.vocabulary import Vocabulary, normalise_value
from db.models import Label, ModelKind, ModelVersion, Prediction

MIN_SCORE = 0.5


class DetectorEvidenceError(ValueError):
    """A detector version that cannot be used (not a detector of this project)."""


def main_garments(
    session: Session, project_id: int, detector_version_id: int, image_ids: Sequence[int]
) -> dict[int, tuple[str, float]]:
    """image id -> (class, score) of its largest predicted box scoring at least MIN_SCORE.

    Raises:
        DetectorEvidenceError: The version is not a detector of the project.
    """
    version = session.get(ModelVersion, detector_version_id)
    if version is None or version.project_id != project_id or version.kind is not ModelKind.DETECTOR:
        raise DetectorEvidenceError(f"Model version {detector_version_id} is not a detector of this project.")
    best: dict[int, tuple[float, str, float]] = {}
    ids = list(image_ids)
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(
                Prediction.image_id,
                Label.name,
                Prediction.score,
                Prediction.x_min,
                Prediction.y_min,
                Prediction.x_max,
                Prediction.y_max,
            )
            .join(Label, Label.id == Prediction.label_id)
            .where(
                Prediction.model_version_id == detector_version_id,
                Prediction.image_id.in_(ids[start : start + 500]),
                Prediction.score >= MIN_SCORE,
            )
        )
        for image_id, label, score, x0, y0, x1, y1 in rows:
            area = (x1 - x0) * (y1 - y0)
            if image_id not in best or area > best[image_id][0]:
                best[image_id] = (area, label, score)
    return {i: (label, score) for i, (_, label, score) in best.items()}


def add_evidence(details: dict[str, Any], garments: dict[int, tuple[str, float]], vocabulary: Vocabulary) -> None:
    """Adds ``details["detector"]`` (per photo: class, score, agrees) and a reason per contradicting photo."""
    claim = next((c for c in details["claims"] if c["tag"] == CATEGORY_TAG), None)
    known = {normalise_value(v) for v in vocabulary.values(CATEGORY_TAG)}
    evidence = []
    for n, photo in enumerate(details["predictions"]):
        found = garments.get(photo["image_id"])
        if found is None:
            continue
        label, score = found
        agrees = None
        if claim is not None:
            claimed = {normalise_value(v) for v in claim.get("claimed_values") or claim["values"]}
            if normalise_value(label) in claimed:
                agrees = True
            elif normalise_value(label) in known:
                agrees = False
                where = "the photo" if len(details["predictions"]) == 1 else f"photo {n + 1}"
                details["reasons"].append(f"detector finds {label} on {where} ({score:.2f})")
        evidence.append({"photo": n, "label": label, "score": round(score, 4), "agrees": agrees})
    details["detector"] = evidence
