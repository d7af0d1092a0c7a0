"""Deployment exports side by side: size on disk, CPU latency and test mAP@0.5 of each format beside Keras.

``python benchmarks/export_model.py [--ccp-minutes M] [--skip-ccp] [--runs 50] [--data-dir DIR]``

With ``--data-dir`` the projects and trained versions stay in DIR: ``--train-only`` trains and
stops, and a later run with ``--ccp-version ID`` (or ``--demo-version ID``) measures that version
again instead of training one more (a training is the long part; the exports are what this measures).

Two models, each exported to every format through the product's ``export-model`` path
(:func:`core.model.export.job.export_model_version`: the artefact, its check against Keras on the
project's test split, the zip):

* **demo**: the synthetic demo project (120 scenes, splits assigned), a small detector (MobileNetV2
  alpha 0.35, 128x96 input, random weights) trained for 3 epochs: the kind of tiny model the tests
  use, a little better trained;
* **ccp**: ``../shared/data/ccp-detection`` imported with our VOC import (its fixed 804/200 split),
  trained with the product's defaults and the offline ImageNet weights for a *short* budget
  (``--ccp-minutes``, default 8: this measures the exports, not the detector).

Per format: the model file (or SavedModel folder) size, the zip size, the median CPU latency of 50
single-image calls in the format's own runtime (after 3 warm-up calls; the fixed-size formats'
letterbox excluded, the SavedModel's decode and letterbox included since they are in its graph),
and the test mAP@0.5 of the artefact and of the Keras model (VOC all-point, the check's figures).
The Keras latency is one ``predict_on_batch``-style forward plus decoding of a batch of one.
Prints JSON; the figures go into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from sqlalchemy import select  # noqa: E402

from core.database import open_database  # noqa: E402
from core.model.export.formats import FORMATS, deploy_format  # noqa: E402
from core.model.export.job import export_model_version  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.engine import session_scope  # noqa: E402
from db.models import Image, ModelVersion, Split  # noqa: E402


def _median_ms(fn, runs: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 2)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def measure(engine, settings: Settings, version_id: int, runs: int) -> dict:
    """Exports the version to every format and measures each beside Keras."""
    from PIL import Image as PILImage

    from core.model.detector.predict import Detector
    from core.model.export.detector import letterbox_uint8, load_runner
    from core.model.training import model_file

    with session_scope(engine) as session:
        version = session.get(ModelVersion, version_id)
        path = model_file(settings, version)
        stored = session.scalars(select(Image.stored_path).where(Image.split == Split.TEST).order_by(Image.id)).first()
    data = (settings.data_dir / stored).read_bytes()
    with PILImage.open(settings.data_dir / stored) as im:
        array = np.asarray(im.convert("RGB"))
    keras_detector = Detector.load(path, batch_size=1)
    spec = keras_detector.spec
    boxed = letterbox_uint8(array, spec)[0].astype(np.float32)[None]
    rows = {
        "keras": {
            "model_bytes": path.stat().st_size,
            "latency_ms": _median_ms(lambda: keras_detector._forward(boxed), runs),
        }
    }
    cache: dict = {}  # the Keras model's test-split detections, computed once for the five checks
    for name in FORMATS:
        fmt = deploy_format(name)
        t0 = time.perf_counter()
        result = export_model_version(engine, settings, version_id, name, keras_cache=cache)
        export_s = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(result["zip"]) as zf:
            zf.extractall(tmp)
            artefact = Path(tmp) / fmt.model_name
            runner = load_runner(fmt, artefact, spec)
            if name == "savedmodel":
                import tensorflow as tf

                call = lambda r=runner: r.serve(image_bytes=tf.constant([data]))  # noqa: E731
            else:
                x = letterbox_uint8(array, spec)[0][None]
                call = lambda r=runner, x=x: r.run(x)  # noqa: E731
            latency = _median_ms(call, runs)
            size = _size(artefact)
        check = result["check"]
        rows["keras"]["test_map50"] = check["map50_keras"]
        rows[name] = {
            "model_bytes": size,
            "zip_bytes": result["bytes"],
            "latency_ms": latency,
            "test_map50": check["map50_export"],
            "map50_delta": check["map50_delta"],
            "matched_iou": check["matched_iou"],
            "top_class_agreement": check["top_class_agreement"],
            "passed": check["passed"],
            "export_and_check_s": round(export_s, 1),
        }
        print(json.dumps({name: rows[name]}), file=sys.stderr, flush=True)
    fp32, int8 = rows["tflite-fp32"], rows["tflite-int8"]
    rows["int8_vs_fp32"] = {
        "size_ratio": round(int8["model_bytes"] / fp32["model_bytes"], 3),
        "speedup": round(fp32["latency_ms"] / int8["latency_ms"], 2),
    }
    return {"spec": spec.to_dict() | {"test_images": check["images"]}, "formats": rows}


def demo_model(engine, settings: Settings) -> int:
    from core.demo.project import create_demo_project
    from core.jobs import create_job, run_job
    from core.model.training import JOB_KIND, train_params
    from core.project.splits import assign_splits
    from db.models import Job

    pid = create_demo_project(engine, settings, name="Demo", count=120)
    with session_scope(engine) as session:
        assign_splits(session, pid, (0.6, 0.1, 0.3))
    params = train_params(
        pid, image_height=96, image_width=128, alpha=0.35, weights="none", batch_size=8, epochs=3, budget_minutes=0
    )
    with session_scope(engine) as session:
        job_id = create_job(session, JOB_KIND, params, pid).id
    run_job(settings, engine, job_id)
    with session_scope(engine) as session:
        return int(session.get(Job, job_id).result["model_version_id"])


def ccp_model(engine, settings: Settings, minutes: float) -> int:
    from benchmarks.accuracy import DATASET, import_dataset, prepare_weights
    from benchmarks.train import run_train_job

    prepare_weights(settings, None)
    project_id, _ = import_dataset(engine, settings, DATASET)
    result, _ = run_train_job(
        engine, settings, project_id, weights="imagenet-offline", budget_minutes=minutes, name=f"ccp {minutes:g} min"
    )
    return int(result["model_version_id"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=50)
    p.add_argument("--ccp-minutes", type=float, default=8.0)
    p.add_argument("--skip-ccp", action="store_true")
    p.add_argument("--skip-demo", action="store_true")
    p.add_argument("--data-dir", type=Path, help="keep the projects and models here (default: a temporary folder)")
    p.add_argument("--train-only", action="store_true", help="train the model(s), print their version ids, stop")
    p.add_argument("--demo-version", type=int, help="measure this trained version in DIR/demo.db instead of training")
    p.add_argument("--ccp-version", type=int, help="measure this trained version in DIR/ccp.db instead of training")
    args = p.parse_args()
    if (args.demo_version or args.ccp_version or args.train_only) and args.data_dir is None:
        p.error("--train-only, --demo-version and --ccp-version need --data-dir")
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load_at_start": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data_dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for name, make, reuse in (
            ("demo", None if args.skip_demo else demo_model, args.demo_version),
            ("ccp", None if args.skip_ccp else lambda e, s: ccp_model(e, s, args.ccp_minutes), args.ccp_version),
        ):
            if make is None:
                continue
            settings = Settings.resolve(db_url=f"sqlite:///{root}/{name}.db", data_dir=Path(root) / name)
            engine = open_database(settings)
            version_id = reuse or make(engine, settings)
            if args.train_only:
                report[f"{name}_version"] = version_id
                continue
            report[name] = measure(engine, settings, version_id, args.runs)
            report[f"load_after_{name}"] = os.getloadavg()
            print(json.dumps({name: report[name]}), file=sys.stderr, flush=True)
    report["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
