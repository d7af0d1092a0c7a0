"""Small catalogues for the catalogue tests: real JPEGs made with Pillow, a real tags model version with
hand-made TagPrediction rows (fixture data, the way a tags prediction job stores them)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from sqlalchemy import Engine

from db.engine import session_scope
from db.models import ModelKind, ModelVersion, TagPrediction

CATEGORIES = ["T-Shirt", "Longsleeve", "Hoodie", "Shoes", "Pants", "Dress", "Shirt", "Shorts"]
HEADS = {"category": CATEGORIES, "sleeve_length": ["half", "full"]}


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG")
    return buf.getvalue()


def photo_folder(root: Path, names: list[str]) -> Path:
    """A folder of distinct small JPEGs with these names."""
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        (root / name).write_bytes(jpeg(((i * 37) % 256, (i * 91) % 256, (i * 53 + 20) % 256)))
    return root


def tags_version(engine: Engine, project_id: int, heads: dict[str, list[str]] | None = None) -> int:
    with session_scope(engine) as session:
        version = ModelVersion(
            project_id=project_id,
            kind=ModelKind.TAGS,
            name="tags fixture",
            path="unused.keras",
            params={"heads": heads or HEADS, "temperatures": {t: 1.0 for t in heads or HEADS}},
        )
        session.add(version)
        session.flush()
        return version.id


def predict(engine: Engine, version_id: int, image_id: int, tag: str, probs: dict[str, float]) -> None:
    """Stores one prediction row: the head's probabilities (the rest of the head shares what is left)."""
    head = HEADS.get(tag, list(probs))
    rest = [v for v in head if v not in probs]
    left = max(0.0, 1.0 - sum(probs.values()))
    full = {**probs, **{v: left / len(rest) for v in rest}} if rest else dict(probs)
    top = max(full, key=full.__getitem__)
    with session_scope(engine) as session:
        session.add(
            TagPrediction(
                model_version_id=version_id,
                image_id=image_id,
                tag=tag,
                value=top,
                confidence=full[top],
                probabilities=full,
            )
        )
