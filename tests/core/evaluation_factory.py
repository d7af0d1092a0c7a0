"""Model versions with made-up predictions, for Evaluate tests and the benchmark (no TensorFlow).

The predictions are derived from the stored ground truth: most boxes found (jittered, the
right class, high score), some with the wrong class, some missed, plus a few confident
false positives, so every part of the page has something to show.
"""

from __future__ import annotations

import random

from sqlalchemy import Engine, insert, select

from db.engine import session_scope
from db.models import BoxRow, Image, Label, ModelVersion, Prediction, Split


def fake_model_version(
    engine: Engine, project_id: int, name: str = "fake v1", seed: int = 0, extra_per_image: int = 1
) -> int:
    """A model version row (no model file) with predictions on every test image; returns its id."""
    rng = random.Random(seed)
    with session_scope(engine) as session:
        version = ModelVersion(project_id=project_id, name=name, path="missing/model.keras", params={}, metrics={})
        session.add(version)
        session.flush()
        version_id = version.id
        label_ids = list(session.scalars(select(Label.id).where(Label.project_id == project_id).order_by(Label.order)))
        images = session.execute(
            select(Image.id, Image.width, Image.height).where(Image.project_id == project_id, Image.split == Split.TEST)
        ).all()
        boxes = session.execute(
            select(BoxRow.image_id, BoxRow.label_id, BoxRow.x_min, BoxRow.y_min, BoxRow.x_max, BoxRow.y_max)
            .join(Image, BoxRow.image_id == Image.id)
            .where(Image.project_id == project_id, Image.split == Split.TEST)
        ).all()
        rows = []
        for image_id, label_id, x0, y0, x1, y1 in boxes:
            roll = rng.random()
            if roll < 0.15:
                continue  # missed
            label = label_id if roll < 0.9 else rng.choice([i for i in label_ids if i != label_id] or [label_id])
            j = 0.04 * (x1 - x0)
            rows.append(
                dict(
                    model_version_id=version_id,
                    image_id=image_id,
                    label_id=label,
                    score=rng.uniform(0.4, 0.99),
                    x_min=x0 + rng.uniform(-j, j),
                    y_min=y0 + rng.uniform(-j, j),
                    x_max=x1 + rng.uniform(-j, j),
                    y_max=y1 + rng.uniform(-j, j),
                )
            )
        for image_id, w, h in images:
            for _ in range(
                extra_per_image
            ):  # a background false positive per image (and an empty image still predicted)
                x0, y0 = rng.uniform(0, w * 0.7), rng.uniform(0, h * 0.7)
                rows.append(
                    dict(
                        model_version_id=version_id,
                        image_id=image_id,
                        label_id=rng.choice(label_ids),
                        score=rng.uniform(0.05, 0.95),
                        x_min=x0,
                        y_min=y0,
                        x_max=x0 + w * 0.2,
                        y_max=y0 + h * 0.2,
                    )
                )
        if rows:
            session.execute(insert(Prediction), rows)
    return version_id
