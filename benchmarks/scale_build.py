"""Builds a big project fast for ``benchmarks/scale.py``: bulk inserts of the rows the write paths make.

Shape at ``images=N`` (the issue's 100,000 gives 500,000 boxes and 1,000,000 predictions):

* N image rows, each pointing at a real small JPEG (96x72, photo-like) in the data dir's blob
  store. Only ``DISTINCT_FILES`` files are written (writing 100,000 files would measure the
  disk, not Tagrack); image ``i`` uses file ``i % DISTINCT_FILES``. Each row still has its own
  ``sha256`` (the file's hash with ``:i`` appended, hashed again) because the table keeps one
  row per content hash per project; every row's ``stored_path``/``display_path`` opens a real
  JPEG of the stored width and height, as ``core.project.ingest.add_prepared`` writes them
  (a JPEG no larger than the display size is its own display copy).
* statuses as a project half way through: 70% done, 5% no objects, 5% in progress, 20% new;
  splits 80/10/10 on done images (as the export assigns them), none on the others.
* 5 boxes per image on average: 7 per done image, 2 per in-progress one (human, with
  ``created_by`` one of 20 annotators), the rows an import or a save writes.
* two detector model versions with N*5 predictions each (every image, 5 boxes, scores
  spread 0.05-1), the rows ``core.model.prediction`` writes; 1,000 activity rows.

On PostgreSQL the rows go in with COPY, then ANALYZE (autovacuum would do so within a minute
of such a load); on SQLite with executemany and no ANALYZE (the app never runs one, so the
planner works as it does for users: from the indexes alone).
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import Engine, insert, select, text

from core.project.imagestore import ImageStore
from core.project.projects import create_project
from core.settings import Settings
from db.counts import fold
from db.engine import session_scope
from db.models import Activity, BoxRow, BoxSource, Image, ImageStatus, Label, ModelVersion, Prediction, Split, utcnow

DISTINCT_FILES = 300
WIDTH, HEIGHT = 96, 72
ANNOTATORS = 20
CHUNK = 50_000


def _jpeg(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    base = np.stack([xx / WIDTH * 200, yy / HEIGHT * 180, (xx + yy) / (WIDTH + HEIGHT) * 160], axis=-1)
    base += rng.uniform(0, 60, 3)
    noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    PILImage.fromarray(noisy).save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _status(i: int) -> ImageStatus:
    k = i % 20
    if k < 14:
        return ImageStatus.DONE
    if k == 14:
        return ImageStatus.NO_OBJECTS
    if k == 15:
        return ImageStatus.IN_PROGRESS
    return ImageStatus.NEW


def _copy(engine: Engine, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]) -> None:
    """COPY rows into a PostgreSQL table (JSON and enum values already as text)."""
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def _bulk(engine: Engine, model: Any, rows: Iterator[dict[str, Any]]) -> None:
    """Inserts dict rows in chunks: COPY on PostgreSQL, executemany on SQLite."""
    if engine.dialect.name == "postgresql":
        first = next(rows, None)
        if first is None:
            return
        columns = list(first)

        def as_text(v: Any) -> Any:
            if isinstance(v, dict | list):
                return json.dumps(v)
            return getattr(v, "value", v)

        def gen() -> Iterator[tuple[Any, ...]]:
            yield tuple(as_text(first[c]) for c in columns)
            for r in rows:
                yield tuple(as_text(r[c]) for c in columns)

        _copy(engine, model.__tablename__, columns, gen())
        return
    chunk: list[dict[str, Any]] = []
    for r in rows:
        chunk.append(r)
        if len(chunk) >= CHUNK:
            with session_scope(engine) as session:
                session.execute(insert(model), chunk)
            chunk = []
    if chunk:
        with session_scope(engine) as session:
            session.execute(insert(model), chunk)


def build(engine: Engine, settings: Settings, images: int, seed: int = 0) -> dict[str, Any]:
    """Creates project "Scale" with ``images`` images and their boxes and predictions; returns ids and counts."""
    rng = random.Random(seed)
    store = ImageStore(settings.data_dir)
    files = []
    for f in range(DISTINCT_FILES):
        data = _jpeg(seed * 1000 + f)
        sha = hashlib.sha256(data).hexdigest()
        files.append((sha, store.put_original(sha, data, ".jpg")))
    with session_scope(engine) as session:
        pid = create_project(session, "Scale").id
    with session_scope(engine) as session:
        label_ids = list(session.scalars(select(Label.id).where(Label.project_id == pid).order_by(Label.order)))
    now = utcnow()
    splits = [Split.TRAIN] * 8 + [Split.VAL, Split.TEST]

    def image_rows() -> Iterator[dict[str, Any]]:
        for i in range(images):
            sha, path = files[i % DISTINCT_FILES]
            status = _status(i)
            who = f"annotator{i % ANNOTATORS:02d}" if status is not ImageStatus.NEW else None
            yield dict(
                project_id=pid,
                sha256=hashlib.sha256(f"{sha}:{i}".encode()).hexdigest(),
                stored_path=path,
                display_path=path,
                width=WIDTH,
                height=HEIGHT,
                original_name=f"shoot_{i // 1000:03d}/img_{i:06d}.jpg",
                status=status,
                split=splits[i % 10] if status in (ImageStatus.DONE, ImageStatus.NO_OBJECTS) else None,
                revision=0 if status is ImageStatus.NEW else 1,
                attributes={},
                created_at=now - timedelta(days=30),
                updated_at=now - timedelta(days=1 + i % 29),
                updated_by=who,
                import_note=None,
            )

    _bulk(engine, Image, image_rows())
    with session_scope(engine) as session:
        ids = list(session.scalars(select(Image.id).where(Image.project_id == pid).order_by(Image.id)))

    def box(image_id: int) -> tuple[float, float, float, float]:
        w, h = rng.uniform(10, 50), rng.uniform(10, 40)
        x, y = rng.uniform(0, WIDTH - w), rng.uniform(0, HEIGHT - h)
        return x, y, x + w, y + h

    n_boxes = 0

    def box_rows() -> Iterator[dict[str, Any]]:
        nonlocal n_boxes
        for i, image_id in enumerate(ids):
            status = _status(i)
            count = 7 if status is ImageStatus.DONE else 2 if status is ImageStatus.IN_PROGRESS else 0
            who = f"annotator{i % ANNOTATORS:02d}"
            for _ in range(count):
                x0, y0, x1, y1 = box(image_id)
                n_boxes += 1
                yield dict(
                    image_id=image_id,
                    label_id=label_ids[rng.randrange(len(label_ids))],
                    x_min=x0,
                    y_min=y0,
                    x_max=x1,
                    y_max=y1,
                    source=BoxSource.HUMAN,
                    score=None,
                    created_by=who,
                    created_at=now - timedelta(days=1 + i % 29),
                    updated_by=who,
                    updated_at=now - timedelta(days=1 + i % 29),
                )

    _bulk(engine, BoxRow, box_rows())
    versions = []
    for v in range(2):
        with session_scope(engine) as session:
            version = ModelVersion(
                project_id=pid, name=f"scale v{v + 1}", path="models/missing.keras", params={}, metrics={}
            )
            session.add(version)
            session.flush()
            versions.append(version.id)

        def pred_rows(vid: int = version.id) -> Iterator[dict[str, Any]]:
            for image_id in ids:
                for _ in range(5):
                    x0, y0, x1, y1 = box(image_id)
                    yield dict(
                        model_version_id=vid,
                        image_id=image_id,
                        label_id=label_ids[rng.randrange(len(label_ids))],
                        x_min=x0,
                        y_min=y0,
                        x_max=x1,
                        y_max=y1,
                        score=rng.uniform(0.05, 1.0),
                        created_at=now,
                    )

        _bulk(engine, Prediction, pred_rows())
    _bulk(
        engine,
        Activity,
        (
            dict(
                project_id=pid,
                who=f"annotator{k % ANNOTATORS:02d}",
                action="save",
                message=f"img_{k:06d}.jpg saved",
                created_at=now - timedelta(minutes=k),
            )
            for k in range(1000)
        ),
    )
    # The triggers of migration 0011 wrote a count delta per row (SQLite) or per statement and key
    # (PostgreSQL); fold them as the first reader would, so that no measured run pays for it.
    fold(engine, pid, wait_ms=60_000)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
    return {
        "project_id": pid,
        "images": len(ids),
        "boxes": n_boxes,
        "predictions": 2 * 5 * len(ids),
        "versions": versions,
        "labels": label_ids,
    }
