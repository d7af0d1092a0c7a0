"""A tiny tagged project made with Pillow: category from the shape, colour from the fill, a few untagged."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw

from core.database import open_database
from core.jobs import create_job, run_job
from core.model.tags.jobs import TRAIN_KIND, tags_train_params
from core.project.imagestore import ImageStore
from core.project.ingest import ingest_one
from core.project.projects import create_project
from core.settings import Settings
from db.engine import session_scope
from db.models import Image, Job, JobStatus

SCHEMA = {"category": ["Dress", "Shirt", "Shoes"], "colour": ["red", "blue"]}
COLOURS = {"red": (220, 30, 30), "blue": (30, 30, 220)}
# Tiny and quick: a 64 px input, one epoch at most, random weights (the trunk is still frozen).
TINY = {"image_size": 64, "weights": "none", "epochs": 2, "batch_size": 8, "budget_minutes": 0, "views": 2}


def picture(category: str, colour: str, seed: int) -> bytes:
    """A 96x80 JPEG: a shape per category in a colour, on a noisy light background."""
    rng = np.random.default_rng(seed)
    bg = (200 + rng.integers(0, 40, (80, 96, 3))).astype(np.uint8)
    im = PILImage.fromarray(bg)
    draw = ImageDraw.Draw(im)
    fill = COLOURS[colour]
    if category == "Dress":
        draw.polygon([(48, 8), (20, 72), (76, 72)], fill=fill)
    elif category == "Shirt":
        draw.rectangle([24, 16, 72, 64], fill=fill)
    else:
        draw.ellipse([16, 40, 80, 72], fill=fill)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_tagged_project(engine, settings: Settings, count: int = 36) -> int:
    """``count`` images tagged with category and colour, except every 6th has no colour and every 9th nothing."""
    store = ImageStore(settings.data_dir)
    with session_scope(engine) as session:
        pid = create_project(session, "Tags", labels=(), attribute_schema=SCHEMA).id
        for n in range(count):
            category = SCHEMA["category"][n % 3]
            colour = "red" if (n // 3) % 2 else "blue"
            out = ingest_one(session, store, pid, f"img{n}.jpg", picture(category, colour, n))
            image = session.get(Image, out.image_id)
            tags = {"category": category, "colour": colour}
            if n % 6 == 5:
                del tags["colour"]
            if n % 9 == 8:
                tags = {}
            image.attributes = tags
    return pid


@pytest.fixture(scope="package")
def tags_trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, int, int, int]:
    """A tiny tags project and a version trained on it: (settings, project id, job id, version id)."""
    root = tmp_path_factory.mktemp("tags")
    settings = Settings.resolve(db_url=f"sqlite:///{root / 'tagrack.db'}", data_dir=root / "data")
    engine = open_database(settings)
    pid = make_tagged_project(engine, settings)
    with session_scope(engine) as session:
        job_id = create_job(session, TRAIN_KIND, tags_train_params(pid, **TINY), pid).id
    status = run_job(settings, engine, job_id)
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert status is JobStatus.SUCCEEDED, job.error
        version_id = int(job.result["model_version_id"])
    engine.dispose()
    return settings, pid, job_id, version_id


def copy_of(trained: tuple[Settings, int, int, int], tmp_path: Path) -> Settings:
    """A fresh copy of the trained database and data folder (tests change them)."""
    import shutil

    settings = trained[0]
    root = Path(settings.data_dir).parent
    shutil.copytree(root, tmp_path / "copy")
    return Settings.resolve(db_url=f"sqlite:///{tmp_path / 'copy' / 'tagrack.db'}", data_dir=tmp_path / "copy" / "data")
