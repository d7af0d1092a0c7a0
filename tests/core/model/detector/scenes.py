"""Tiny learnable scenes for detector tests: coloured shapes on a noisy background.

Class 0 is a red rectangle, class 1 a blue ellipse: easy enough that a tiny detector
trained for a few dozen steps shows a falling loss. Stored through the real ingest so
the training job reads them back from the real TFRecord export.
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageDraw
from sqlalchemy import Engine, select

from core.project.imagestore import ImageStore
from core.project.ingest import ingest_one
from core.settings import Settings
from db.engine import session_scope
from db.models import BoxRow, ImageStatus, Label

CLASSES = ("red box", "blue ellipse")


def make_scene(
    seed: int, width: int = 160, height: int = 120
) -> tuple[Image.Image, list[tuple[int, tuple[float, float, float, float]]]]:
    """One scene: a PIL image and [(class index, (x0, y0, x1, y1) pixels)]."""
    rng = random.Random(seed)
    noise = np.random.default_rng(seed).integers(90, 160, (height, width, 3), dtype=np.uint8)
    im = Image.fromarray(noise)
    draw = ImageDraw.Draw(im)
    objects = []
    for _ in range(rng.randint(1, 2)):
        cls = rng.randrange(2)
        w, h = rng.uniform(0.25, 0.45) * width, rng.uniform(0.3, 0.5) * height
        x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
        box = (x0, y0, x0 + w, y0 + h)
        if cls == 0:
            draw.rectangle(box, fill=(220, 30, 30))
        else:
            draw.ellipse(box, fill=(30, 40, 220))
        objects.append((cls, box))
    return im, objects


def memory_scenes(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """``n`` scenes as arrays: images, boxes (original pixels) and class indices."""
    images, boxes, labels = [], [], []
    for i in range(n):
        im, objs = make_scene(seed * 10_000 + i)
        images.append(np.asarray(im))
        boxes.append(np.array([b for _, b in objs], np.float32))
        labels.append(np.array([c for c, _ in objs], np.int32))
    return images, boxes, labels


def store_scenes(engine: Engine, settings: Settings, project_id: int, n: int, seed: int = 0) -> None:
    """Ingests ``n`` scenes into a project whose first two labels are the scene classes, marked done."""
    store = ImageStore(settings.data_dir)
    with session_scope(engine) as session:
        labels = list(session.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.order)))
        for i in range(n):
            im, objs = make_scene(seed * 10_000 + i)
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=90)
            out = ingest_one(session, store, project_id, f"scene_{seed}_{i:04d}.jpg", buf.getvalue())
            assert out.outcome == "imported", out
            for cls, (x0, y0, x1, y1) in objs:
                session.add(
                    BoxRow(image_id=out.image_id, label_id=labels[cls].id, x_min=x0, y_min=y0, x_max=x1, y_max=y1)
                )
            from db.models import Image as ImageRow

            session.get(ImageRow, out.image_id).status = ImageStatus.DONE
