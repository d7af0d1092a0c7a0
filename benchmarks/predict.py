"""Predict and review benchmarks, side by side in one run (these machines are noisy).

1. Prediction throughput on CPU: the default model (core.model.training.DEFAULTS: MobileNetV2
   alpha 1.0, 256x192 letterbox, heads from P4; random weights, which cost the same as
   trained ones) on 640x480 JPEG photos: the bare ``Detector.predict`` on decoded arrays
   against the whole ``predict_images`` (read and decode from the blob store, predict,
   store every box in SQLite), images/s for each.
2. Review page, server side: with 100,000 predictions in the database (10,000 new images x
   10 boxes), the time to show the next item: the queue (core.review.queue.review_queue,
   ordered by uncertainty) plus loading the item (load_review_item), median of repeated
   runs; and an accept followed by the next item, recomputing the queue vs taking the next
   open image from the cached order (what the page does between refreshes). Target < 200 ms.
   Streamlit's own rendering and the image transfer are not included.

Usage::

    python benchmarks/predict.py                      # both
    python benchmarks/predict.py --part predict --geometry 288x448/3/3   # the fit for real street photos
    python benchmarks/predict.py --part review --predictions 100000

Prints a JSON report; copy the figures into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, select  # noqa: E402

from core.database import open_database  # noqa: E402
from core.project.projects import create_project  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.engine import session_scope  # noqa: E402
from db.models import Image, Label, ModelVersion, Prediction  # noqa: E402


def _settings(root: Path) -> Settings:
    return Settings.resolve(db_url=f"sqlite:///{root / 'tagrack.db'}", data_dir=root / "data")


def bench_predict(n_images: int, batch_size: int, geometry: dict | None = None) -> dict:
    """Images/s of the default model on 640x480 photos: bare predict vs the stored-prediction run.

    Args:
        n_images: Photos to predict.
        batch_size: Prediction batch.
        geometry: Input size and anchors (``image_width``, ``image_height``, ``min_level``,
            ``anchor_size``) instead of the demo project's fit, e.g. what the fit picks for
            real street photos.
    """
    import numpy as np
    from PIL import Image as PILImage

    from core.demo.scenes import generate_scenes
    from core.model.detector.model import DetectorSpec, build_detector
    from core.model.detector.predict import Detector, save_model_version
    from core.model.prediction import predict_images
    from core.model.training import AUTO, DEFAULTS, SPEC_KEYS
    from core.project.imagestore import ImageStore
    from core.project.ingest import ingest_one

    root = Path(tempfile.mkdtemp(prefix="bench-predict-"))
    settings = _settings(root)
    engine = open_database(settings)
    scenes = [s.image.resize((640, 480)) for s in generate_scenes(n_images, seed=3)]
    with session_scope(engine) as session:
        project = create_project(session, "bench")
        pid = project.id
        taken: set[str] = set()
        for i, im in enumerate(scenes):
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=90)
            ingest_one(session, ImageStore(settings.data_dir), pid, f"p{i:04d}.jpg", buf.getvalue(), taken)
        labels = [lab.name for lab in session.scalars(select(Label).where(Label.project_id == pid))]
        image_ids = list(session.scalars(select(Image.id).where(Image.project_id == pid).order_by(Image.id)))
    # The demo project's defaults: "auto" geometry as fitted to the demo scenes (no image
    # has boxes here, which gives the same 256x192 / level 4 fit), random weights.
    from core.model.detector.input_fit import fit_input

    fixed = {k: v for k, v in DEFAULTS.items() if k in SPEC_KEYS and v != AUTO}
    fit = {**fit_input([], []).params(), **(geometry or {})}
    spec = DetectorSpec(class_names=tuple(labels), **{**fixed, **fit, "weights": "none"})
    model = build_detector(spec)
    folder = settings.models_dir / "bench"
    path = save_model_version(model, spec, folder)
    with session_scope(engine) as session:
        version = ModelVersion(project_id=pid, name="bench", path=str(path.relative_to(settings.data_dir)))
        session.add(version)
        session.flush()
        version_id = version.id

    detector = Detector.load(folder, batch_size=batch_size)
    arrays = [np.asarray(im) for im in scenes]
    detector.predict(arrays[:batch_size])  # trace once
    t0 = time.perf_counter()
    detector.predict(arrays)
    bare = n_images / (time.perf_counter() - t0)

    predict_images(engine, settings, version_id, image_ids[:batch_size], batch_size=batch_size)  # load + trace
    t0 = time.perf_counter()
    stored = predict_images(engine, settings, version_id, image_ids, batch_size=batch_size)
    full = n_images / (time.perf_counter() - t0)
    del PILImage
    return {
        "images": n_images,
        "image_size": "640x480",
        "model_input": f"{spec.image_width}x{spec.image_height}",
        "min_level": spec.min_level,
        "anchor_size": spec.anchor_size,
        "batch_size": batch_size,
        "bare_predict_images_per_s": round(bare, 2),
        "predict_images_images_per_s": round(full, 2),
        "ratio_full_over_bare": round(full / bare, 3),
        "predictions_stored": stored,
        "note": "predict_images includes loading the model and tracing predict (once per job, a few seconds), JPEG decode and DB writes; random weights leave no box over the 0.05 floor, so DB writes are not exercised",
    }


def bench_review(n_predictions: int, per_image: int, repeats: int) -> dict:
    """Server-side time to show the next review item with ``n_predictions`` in the database."""
    import random

    from core.review.decisions import accept
    from core.review.item import load_review_item
    from core.review.queue import first_open, review_queue

    root = Path(tempfile.mkdtemp(prefix="bench-review-"))
    settings = _settings(root)
    engine = open_database(settings)
    n_images = n_predictions // per_image
    rng = random.Random(0)
    with session_scope(engine) as session:
        pid = create_project(session, "bench").id
        label_ids = list(session.scalars(select(Label.id).where(Label.project_id == pid)))
        version = ModelVersion(project_id=pid, name="bench", path="none")
        session.add(version)
        session.flush()
        vid = version.id
        session.execute(
            insert(Image),
            [
                {
                    "project_id": pid,
                    "sha256": f"{i:064x}",
                    "stored_path": f"x/{i}.jpg",
                    "display_path": f"x/{i}.jpg",
                    "width": 640,
                    "height": 480,
                    "original_name": f"img{i:06d}.jpg",
                    "attributes": {},
                }
                for i in range(n_images)
            ],
        )
        first = session.scalar(select(Image.id).where(Image.project_id == pid).order_by(Image.id))
        rows = []
        for i in range(n_images):
            for _ in range(per_image):
                x, y = rng.uniform(0, 500), rng.uniform(0, 350)
                rows.append(
                    {
                        "model_version_id": vid,
                        "image_id": first + i,
                        "label_id": rng.choice(label_ids),
                        "x_min": x,
                        "y_min": y,
                        "x_max": x + rng.uniform(20, 140),
                        "y_max": y + rng.uniform(20, 130),
                        "score": rng.random(),
                    }
                )
        session.execute(insert(Prediction), rows)
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")

    def next_item(order: str) -> float:
        t0 = time.perf_counter()
        with session_scope(engine) as session:
            q = review_queue(session, pid, vid, threshold=0.5, order=order)
            load_review_item(session, q[0].image_id, vid, 0.5)
        return (time.perf_counter() - t0) * 1000

    figures = {}
    for order in ("top_score", "margin", "below"):
        next_item(order)
        figures[f"next_item_ms_{order}"] = round(statistics.median(next_item(order) for _ in range(repeats)), 1)
    after_accept = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with session_scope(engine) as session:
            q = review_queue(session, pid, vid, threshold=0.5)
            item = load_review_item(session, q[0].image_id, vid, 0.5)
            accept(session, item, "bench")
        with session_scope(engine) as session:
            q = review_queue(session, pid, vid, threshold=0.5)
            load_review_item(session, q[0].image_id, vid, 0.5)
        after_accept.append((time.perf_counter() - t0) * 1000)
    # What the page does: the queue order is cached; a decision then takes the next open image from it.
    with session_scope(engine) as session:
        order = [q.image_id for q in review_queue(session, pid, vid, threshold=0.5)]
    cached = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with session_scope(engine) as session:
            item = load_review_item(session, first_open(session, vid, order), vid, 0.5)
            accept(session, item, "bench")
        with session_scope(engine) as session:
            load_review_item(session, first_open(session, vid, order), vid, 0.5)
        cached.append((time.perf_counter() - t0) * 1000)
    return {
        "predictions": n_predictions,
        "images": n_images,
        **figures,
        "accept_then_next_item_ms_full_queue": round(statistics.median(after_accept), 1),
        "accept_then_next_item_ms_cached_order": round(statistics.median(cached), 1),
        "target_ms": 200,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["all", "predict", "review"], default="all")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--geometry",
        metavar="WxH/LEVEL/ANCHOR",
        help="model input and anchors instead of the demo fit, e.g. 288x448/3/3 (the fit for ccp-detection's photos)",
    )
    parser.add_argument("--predictions", type=int, default=100_000)
    parser.add_argument("--per-image", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    report: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs visible, {platform.python_version()}"}
    if args.part in ("all", "review"):
        report["review"] = bench_review(args.predictions, args.per_image, args.repeats)
        print(json.dumps(report, indent=2), flush=True)
    if args.part in ("all", "predict"):
        geometry = None
        if args.geometry:
            size, level, anchor = args.geometry.split("/")
            width, height = (int(v) for v in size.split("x"))
            geometry = {
                "image_width": width,
                "image_height": height,
                "min_level": int(level),
                "anchor_size": float(anchor),
            }
        report["predict"] = bench_predict(args.images, args.batch_size, geometry)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
