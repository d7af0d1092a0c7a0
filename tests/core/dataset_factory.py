"""Builds small real projects for export/import tests: Pillow JPEGs ingested, boxes, statuses."""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image as PILImage
from sqlalchemy import Engine, select

from core.project.imagestore import ImageStore
from core.project.ingest import ingest_one
from core.settings import Settings
from db.engine import session_scope
from db.models import BoxRow, Image, ImageStatus, Label


def jpeg_bytes(width: int, height: int, seed: int, fmt: str = "JPEG") -> bytes:
    """A small noisy picture (distinct per seed, so sha256 differs)."""
    rng = random.Random(seed)
    im = PILImage.new("RGB", (width, height), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    for _ in range(6):
        x, y = rng.randrange(width), rng.randrange(height)
        im.paste(
            (rng.randrange(256), rng.randrange(256), rng.randrange(256)), (x, y, min(width, x + 9), min(height, y + 7))
        )
    buf = io.BytesIO()
    im.save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


@dataclass
class Made:
    """What :func:`make_dataset` stored: image id -> (status, [(label name, BoxRow)])."""

    images: dict[int, tuple[ImageStatus, list[tuple[str, tuple[float, float, float, float]]]]]


def make_dataset(engine: Engine, settings: Settings, project_id: int, n: int = 12, seed: int = 0) -> Made:
    """Stores ``n`` images: most done with 1-3 boxes, one done with none, one no_objects, one new, one skipped."""
    rng = random.Random(seed)
    store = ImageStore(settings.data_dir)
    made: dict[int, tuple[ImageStatus, list]] = {}
    with session_scope(engine) as session:
        labels = list(session.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.order)))
        for i in range(n):
            w, h = rng.choice([(64, 48), (48, 64), (80, 60)])
            fmt = "PNG" if i == 3 else "JPEG"
            name = f"img_{i:03d}.{'png' if fmt == 'PNG' else 'jpg'}"
            out = ingest_one(session, store, project_id, name, jpeg_bytes(w, h, seed * 1000 + i, fmt))
            assert out.outcome == "imported", out
            image = session.get(Image, out.image_id)
            status = ImageStatus.DONE
            if i == n - 1:
                status = ImageStatus.NEW
            elif i == n - 2:
                status = ImageStatus.SKIPPED
            elif i == n - 3:
                status = ImageStatus.NO_OBJECTS
            image.status = status
            image.attributes = {"sleeve_length": rng.choice(["half", "full"]), "colour": "single"}
            boxes = []
            nb = 0 if i in (0, n - 3) else rng.randint(1, 3)
            if status in (ImageStatus.NEW, ImageStatus.SKIPPED):
                nb = 1  # boxes on images that are not ground truth must not leave
            for _ in range(nb):
                lab = rng.choice(labels)
                x0, y0 = rng.uniform(0, w / 2), rng.uniform(0, h / 2)
                x1, y1 = rng.uniform(x0 + 4, w), rng.uniform(y0 + 4, h)
                if rng.random() < 0.2:
                    x0, y0, x1, y1 = 0.0, 0.0, float(w), float(h)
                session.add(BoxRow(image_id=image.id, label_id=lab.id, x_min=x0, y_min=y0, x_max=x1, y_max=y1))
                boxes.append((lab.name, (x0, y0, x1, y1)))
            made[image.id] = (status, boxes)
    return Made(made)


def voc_folder(tmp_path: Path, files: dict[str, bytes]) -> Path:
    """Writes ``files`` (relative path -> bytes) below ``tmp_path/vocin`` and returns that folder."""
    root = tmp_path / "vocin"
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def voc_xml(
    filename: str, objects: str, size: str = "<size><width>64</width><height>48</height><depth>3</depth></size>"
) -> bytes:
    """A VOC annotation naming ``filename``, with ``objects`` (from :func:`voc_obj`) and a size."""
    return f"<annotation><folder>x</folder><filename>{filename}</filename>{size}{objects}</annotation>".encode()


def voc_obj(name: str, xmin, ymin, xmax, ymax) -> str:
    """One VOC ``<object>`` with a bndbox."""
    return f"<object><name>{name}</name><bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
