"""Training the tags model: cached trunk features, a budgeted ``model.fit`` of the top, resumable.

The trunk is frozen, so its output for an image view never changes: :func:`extract_features`
computes it once per view (the image and its mirror, and with ``views=4`` two random resized
crops, one mirrored, seeded per image; no colour change, so colour tags keep their meaning) and the
top trains on those cached features, several times faster per epoch than running the whole network.
A random shift of one feature cell (16 pixels) on top of that adds small crops every epoch. With
``TagsSpec.flip_average`` the validation and test images are cached as the image and its mirror and
their logits averaged, as :class:`core.model.tags.model.Tagger` predicts.

Everything lives in a work folder, so a killed worker resumes: ``features/<split>.npy`` (written
whole, atomically), ``backup/`` (Keras' ``BackupAndRestore``: weights, optimizer, epoch),
``state.json`` (history, curve, best epoch, seconds spent), ``best.weights.h5`` (the top of the
epoch with the best validation accuracy).

Class balancing (``balance``): ``"weights"`` scales each value's loss by
``target / count`` (target: the ``balance_percentile`` of the head's value counts, weights
normalised to mean 1 over the training images); ``"oversample"`` repeats the images of the main
head's rarer values up to that target every epoch; ``"none"``.
"""

from __future__ import annotations

import json
import shutil
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.model.tags.data import TagsData, class_counts, load_image
from core.model.tags.model import TagsSpec, build_base, build_top, build_trunk

Progress = Callable[[dict[str, Any]], None]
CURVE_POINTS = 400
BALANCE_CHOICES = ("weights", "oversample", "none")


@dataclass(frozen=True)
class TagsTrainConfig:
    """How to train the top (the model itself is a :class:`TagsSpec`)."""

    epochs: int = 60
    budget_minutes: float | None = 15.0
    patience: int | None = 6
    batch_size: int = 32
    learning_rate: float = 3e-4
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.1
    balance: str = "weights"
    balance_percentile: float = 50.0
    views: int = 2
    shift: bool = True
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TagsTrainConfig:
        """Inverse of :meth:`to_dict`; ignores unknown keys."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class TagsTrainResult:
    """What :func:`train_tags` returns."""

    spec: TagsSpec
    top: Any
    trunk: Any
    best_epoch: int
    history: list[dict[str, Any]]
    curve: list[list[float]]
    images_per_s: float
    feature_images_per_s: float
    seconds: float
    stopped: str | None
    resumed_from_epoch: int
    val_logits: list[np.ndarray] | None
    test_logits: list[np.ndarray] | None


def random_resized_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop of 55-100 % of the area (aspect 3:4 to 4:3) scaled back to the image's size; colours untouched."""
    from PIL import Image as PILImage

    s = image.shape[0]
    area = rng.uniform(0.55, 1.0)
    ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    w = min(s, int(round(s * np.sqrt(area * ratio))))
    h = min(s, int(round(s * np.sqrt(area / ratio))))
    x, y = int(rng.integers(0, s - w + 1)), int(rng.integers(0, s - h + 1))
    return np.asarray(PILImage.fromarray(image[y : y + h, x : x + w]).resize((s, s), PILImage.BILINEAR))


def _view(image: np.ndarray, view: int, seed: int = 0) -> np.ndarray:
    """View 0: the image; 1: mirrored; 2 and up: a random resized crop (seeded per image and view), odd ones mirrored."""
    if view >= 2:
        image = random_resized_crop(image, np.random.default_rng([seed, view]))
    return image[:, ::-1] if view % 2 else image


def extract_features(
    trunk: Any,
    paths: list[Path],
    size: int,
    views: int,
    batch_size: int = 32,
    on_batch: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Trunk features ``(images, views, ...)`` as float16, images read and letterboxed in threads."""
    from concurrent.futures import ThreadPoolExecutor

    chunks: list[np.ndarray] = []
    per = max(1, batch_size // views)
    with ThreadPoolExecutor(max_workers=2) as pool:
        batches = [paths[i : i + per] for i in range(0, len(paths), per)]
        pending = pool.submit(lambda b: [load_image(p, size) for p in b], batches[0]) if batches else None
        done = 0
        for k in range(len(batches)):
            images = pending.result() if pending else []
            if k + 1 < len(batches):
                pending = pool.submit(lambda b: [load_image(p, size) for p in b], batches[k + 1])
            seeds = [zlib.crc32(Path(p).name.encode()) for p in batches[k]]
            stack = np.stack([_view(im, v, sd) for im, sd in zip(images, seeds, strict=True) for v in range(views)])
            stack = stack.astype(np.float32)
            out = np.asarray(trunk(stack, training=False), dtype=np.float16)
            chunks.append(out.reshape((len(images), views) + out.shape[1:]))
            done += len(images)
            if on_batch is not None:
                on_batch(done, len(paths))
    return np.concatenate(chunks) if chunks else np.zeros((0, views), dtype=np.float16)


def cached_features(
    work_dir: Path, split: str, trunk: Any, data: TagsData, size: int, views: int, on_batch: Any = None
) -> np.ndarray:
    """Features of one split from the work folder, computed and saved (atomically) when absent."""
    folder = work_dir / "features"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}-{size}-{views}.npy"
    if path.exists():
        return np.load(path)
    feats = extract_features(trunk, data.paths, size, views, on_batch=on_batch)
    tmp = folder / f"{split}.tmp.npy"
    np.save(tmp, feats)
    tmp.replace(path)
    return feats


def class_weights(labels: np.ndarray, n_values: int, percentile: float) -> np.ndarray:
    """Per value ``target / count`` (target: the percentile of the nonzero counts), mean 1 over the known images."""
    counts = class_counts(labels, n_values).astype(np.float64)
    present = counts[counts > 0]
    if not len(present):
        return np.ones(n_values, dtype=np.float32)
    target = np.percentile(present, percentile)
    w = np.where(counts > 0, target / np.maximum(counts, 1), 1.0)
    known = labels[labels >= 0]
    w = w / (w[known].mean() if len(known) else 1.0)
    return w.astype(np.float32)


def oversampled_indices(labels: np.ndarray, percentile: float, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one epoch: every row once, plus rarer values' rows redrawn up to the target count.

    Rows whose main-head label is unknown appear once.
    """
    rows = np.arange(len(labels))
    known = labels >= 0
    counts = np.bincount(labels[known]) if known.any() else np.zeros(0, dtype=int)
    present = counts[counts > 0]
    if not len(present):
        return rng.permutation(rows)
    target = int(np.ceil(np.percentile(present, percentile)))
    extra = []
    for value, count in enumerate(counts):
        if 0 < count < target:
            members = rows[known & (labels == value)]
            extra.append(rng.choice(members, size=target - count, replace=True))
    return rng.permutation(np.concatenate([rows, *extra]) if extra else rows)


def masked_loss(n_values: int, weights: np.ndarray | None, smoothing: float) -> Callable[[Any, Any], Any]:
    """Softmax cross-entropy per image that is 0 (no gradient) where the label is -1 (unknown tag)."""
    from keras import ops

    w = None if weights is None else np.asarray(weights, dtype=np.float32)

    def loss(y_true: Any, logits: Any) -> Any:
        y = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        mask = ops.cast(y >= 0, "float32")
        yc = ops.maximum(y, 0)
        target = ops.one_hot(yc, n_values) * (1.0 - smoothing) + smoothing / n_values
        ce = -ops.sum(target * ops.log_softmax(logits, axis=-1), axis=-1)
        if w is not None:
            ce = ce * ops.take(ops.convert_to_tensor(w), yc)
        return ce * mask

    return loss


def _shift(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Moves each feature map by up to one cell in x and y (edge cells repeat): a cheap random crop."""
    if batch.ndim != 4:
        return batch
    out = np.empty_like(batch)
    padded = np.pad(batch, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = batch.shape[1:3]
    for i in range(len(batch)):
        dy, dx = rng.integers(0, 3, size=2)
        out[i] = padded[i, dy : dy + h, dx : dx + w]
    return out


def _batches(
    features: np.ndarray, labels: np.ndarray, config: TagsTrainConfig, main: int, steps: int, seed: int
) -> Any:
    """A Keras PyDataset over cached features: random view, shift, balancing; reshuffled each epoch."""
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self._order()

        def _order(self) -> None:
            rng = np.random.default_rng(seed + 7919 * self.epoch)
            if config.balance == "oversample":
                idx = oversampled_indices(labels[:, main], config.balance_percentile, rng)
            else:
                idx = rng.permutation(len(labels))
            need = steps * config.batch_size
            self.index = np.resize(idx, need) if len(idx) < need else idx[:need]
            self.rng = rng

        def __len__(self) -> int:
            return steps

        def __getitem__(self, i: int) -> Any:
            rows = self.index[i * config.batch_size : (i + 1) * config.batch_size]
            views = self.rng.integers(0, features.shape[1], size=len(rows))
            x = features[rows, views].astype(np.float32)
            if config.shift:
                x = _shift(x, self.rng)
            return x, tuple(labels[rows, j] for j in range(labels.shape[1]))

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self._order()

    return Batches()


def predict_logits(top: Any, features: np.ndarray, views: int = 1, batch_size: int = 256) -> list[np.ndarray]:
    """Top logits per head for cached features ``(images, views, ...)``: of view 0, or averaged over the first ``views``."""
    outs: list[list[np.ndarray]] = []
    for v in range(min(views, features.shape[1])):
        for start in range(0, len(features), batch_size):
            got = top(features[start : start + batch_size, v].astype(np.float32), training=False)
            got = got if isinstance(got, (list, tuple)) else [got]
            if len(outs) < len(got):
                outs = [[] for _ in got]
            for j, g in enumerate(got):
                if v == 0:
                    outs[j].append(np.asarray(g))
                else:
                    outs[j][start // batch_size] = outs[j][start // batch_size] + np.asarray(g)
    n = max(1, min(views, features.shape[1]))
    return [np.concatenate(o) / n for o in outs]


def main_head(spec: TagsSpec) -> int:
    """Index of the head early stopping watches: category when there is one, else the first."""
    tags = list(spec.heads)
    return tags.index("category") if "category" in tags else 0


def val_accuracy(logits: list[np.ndarray], labels: np.ndarray, head: int) -> float | None:
    """Top-1 accuracy of one head on its known labels (None when it has none)."""
    known = labels[:, head] >= 0
    if not known.any():
        return None
    return float((logits[head][known].argmax(axis=1) == labels[known, head]).mean())


def _read_state(work_dir: Path) -> dict[str, Any]:
    path = work_dir / "state.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"history": [], "curve": [], "best": None, "epochs_done": 0, "seconds": 0.0}


def _write_state(work_dir: Path, state: dict[str, Any]) -> None:
    tmp = work_dir / "state.json.tmp"
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(work_dir / "state.json")


def _backup_epoch(work_dir: Path) -> int:
    meta = work_dir / "backup" / "training_metadata.json"
    if meta.exists():
        return int(json.loads(meta.read_text(encoding="utf-8")).get("epoch", 0))
    return 0


def train_tags(
    spec: TagsSpec,
    config: TagsTrainConfig,
    train: TagsData,
    val: TagsData | None,
    work_dir: Path,
    weights_dir: Path | None = None,
    test: TagsData | None = None,
    on_progress: Progress | None = None,
    extra_callbacks: list[Any] | None = None,
) -> TagsTrainResult:
    """Trains (or resumes) the tags model; returns the best top and the validation/test logits.

    With ``spec.members > 1`` the features are computed once and each member top trains in turn
    (seed ``config.seed + k``, its own ``member-<k>/`` folder, so a killed worker resumes inside the
    member it was in) on an equal share of the budget left, a member that stops early leaving its
    time to the next; the returned top averages their logits.

    Raises:
        ValueError: No training image (fewer than one batch is fine: the batch shrinks).
        core.model.detector.model.WeightsUnavailableError: Offline weights asked for but not prepared.
    """
    if spec.members <= 1:
        return _train_one(spec, config, train, val, work_dir, weights_dir, test, on_progress, extra_callbacks)
    return _train_members(spec, config, train, val, Path(work_dir), weights_dir, test, on_progress, extra_callbacks)


def _train_members(
    spec: TagsSpec,
    config: TagsTrainConfig,
    train: TagsData,
    val: TagsData | None,
    work_dir: Path,
    weights_dir: Path | None,
    test: TagsData | None,
    on_progress: Progress | None,
    extra_callbacks: list[Any] | None,
) -> TagsTrainResult:
    """The ensemble: one feature pass, then ``spec.members`` tops one after the other (see :func:`train_tags`)."""
    import os
    from dataclasses import replace

    from core.model.tags.model import average_tops, member_name

    if not len(train.image_ids):
        raise ValueError("No image in the train split has a tag; tag some images first.")
    work_dir.mkdir(parents=True, exist_ok=True)
    meta_path = work_dir / "members.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    budget_s = config.budget_minutes * 60 if config.budget_minutes else None
    eval_views = 2 if spec.flip_average else 1
    parts = [("train", train, config.views), ("val", val, eval_views), ("test", test, eval_views)]
    parts = [(n, p, v) for n, p, v in parts if p is not None and len(p.image_ids)]
    if "feature_seconds" not in meta:
        t0 = time.perf_counter()
        trunk = build_trunk(build_base(spec, weights_dir), spec)
        for name, part, views in parts:

            def on_batch(done: int, total: int, name: str = name) -> None:
                if on_progress is not None:
                    on_progress(
                        {
                            "phase": "features",
                            "elapsed_s": round(time.perf_counter() - t0, 1),
                            "budget_s": budget_s,
                            "curve": [],
                            "history": [],
                            "best": None,
                            "step": done,
                            "steps": total,
                            "message": f"computing {name} features: {done}/{total} images",
                        }
                    )

            cached_features(work_dir, name, trunk, part, spec.image_size, views, on_batch)
        seconds = time.perf_counter() - t0
        views_done = sum(len(p.image_ids) * v for _, p, v in parts)
        meta = {"feature_seconds": round(seconds, 2), "feature_images_per_s": round(views_done / max(seconds, 1e-9), 2)}
        meta_path.write_text(json.dumps(meta), encoding="utf-8")
    used = float(meta["feature_seconds"])
    results: list[TagsTrainResult] = []
    history: list[dict[str, Any]] = []
    curve: list[list[float]] = []
    for k in range(spec.members):
        member_dir = work_dir / f"member-{k + 1}"
        (member_dir / "features").mkdir(parents=True, exist_ok=True)
        for f in (work_dir / "features").glob("*-*-*.npy"):
            if not (member_dir / "features" / f.name).exists():
                try:
                    os.link(f, member_dir / "features" / f.name)
                except OSError:
                    shutil.copy(f, member_dir / "features" / f.name)
        minutes = None if budget_s is None else max((budget_s - used) / (spec.members - k), 30.0) / 60
        epoch_offset = len(history)
        step_offset = curve[-1][0] if curve else 0

        def member_progress(
            p: dict[str, Any],
            k: int = k,
            used: float = used,
            e0: int = epoch_offset,
            s0: float = step_offset,
            before: tuple[list[Any], list[Any]] = (list(history), list(curve)),
        ) -> None:
            if on_progress is None:
                return
            own_history = [{**h, "member": k + 1, "epoch": h["epoch"] + e0} for h in p.get("history") or []]
            own_curve = [[step + s0, loss] for step, loss in p.get("curve") or []]
            extra = {"member": k + 1, "members": spec.members, "budget_s": budget_s}
            if p.get("epoch") is not None:
                extra["epoch"] = p["epoch"] + e0
            on_progress(
                {
                    **p,
                    **extra,
                    "elapsed_s": round(used + float(p.get("elapsed_s") or 0.0), 1),
                    "history": before[0] + own_history,
                    "curve": before[1] + own_curve,
                }
            )

        member_cfg = replace(config, seed=config.seed + k, budget_minutes=minutes)
        r = _train_one(
            spec,
            member_cfg,
            train,
            val,
            member_dir,
            weights_dir,
            test,
            member_progress,
            extra_callbacks,
            top_name=member_name(k),
        )
        used += r.seconds
        results.append(r)
        history += [{**h, "member": k + 1, "epoch": h["epoch"] + epoch_offset} for h in r.history]
        curve += [[step + step_offset, loss] for step, loss in r.curve]
    shape = tuple(results[0].top.input_shape[1:])
    top = average_tops([r.top for r in results], spec, shape)
    feats = {n: np.load(work_dir / "features" / f"{n}-{spec.image_size}-{v}.npy") for n, _, v in parts}
    stopped = "budget" if any(r.stopped == "budget" for r in results) else results[-1].stopped
    return TagsTrainResult(
        spec=spec,
        top=top,
        trunk=results[0].trunk,
        best_epoch=results[0].best_epoch,
        history=history,
        curve=curve,
        images_per_s=float(np.mean([r.images_per_s for r in results])),
        feature_images_per_s=float(meta.get("feature_images_per_s") or 0.0),
        seconds=round(used, 2),
        stopped=stopped,
        resumed_from_epoch=sum(r.resumed_from_epoch for r in results),
        val_logits=predict_logits(top, feats["val"], eval_views) if "val" in feats else None,
        test_logits=predict_logits(top, feats["test"], eval_views) if "test" in feats else None,
    )


def _train_one(
    spec: TagsSpec,
    config: TagsTrainConfig,
    train: TagsData,
    val: TagsData | None,
    work_dir: Path,
    weights_dir: Path | None = None,
    test: TagsData | None = None,
    on_progress: Progress | None = None,
    extra_callbacks: list[Any] | None = None,
    top_name: str = "top",
) -> TagsTrainResult:
    """One top trained (or resumed) in ``work_dir``; features cached there (see :func:`train_tags`)."""
    import keras

    from core.model.detector.train import BudgetCosineDecay, ThroughputMeter, build_before_first_step

    if not len(train.image_ids):
        raise ValueError("No image in the train split has a tag; tag some images first.")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_global_policy("float32")
    state = _read_state(work_dir)
    resumed_from = _backup_epoch(work_dir)
    state["history"] = [h for h in state["history"] if h["epoch"] <= resumed_from]
    if state.get("best") and state["best"]["epoch"] > resumed_from:
        state["best"] = None
    budget_s = config.budget_minutes * 60 if config.budget_minutes else None
    run_start = time.perf_counter()
    seconds_before = float(state.get("seconds", 0.0))

    def elapsed() -> float:
        return seconds_before + time.perf_counter() - run_start

    def emit(phase: str, **extra: Any) -> None:
        if on_progress is not None:
            on_progress(
                {
                    "phase": phase,
                    "elapsed_s": round(elapsed(), 1),
                    "budget_s": budget_s,
                    "curve": state["curve"],
                    "history": state["history"],
                    "best": state.get("best"),
                    **extra,
                }
            )

    # The trunk is not in the checkpoint (it never trains): it always loads the initial weights.
    base = build_base(spec, weights_dir)
    trunk = build_trunk(base, spec)
    t0 = time.perf_counter()
    feats: dict[str, np.ndarray] = {}
    eval_views = 2 if spec.flip_average else 1
    for name, part, views in (("train", train, config.views), ("val", val, eval_views), ("test", test, eval_views)):
        if part is None or not len(part.image_ids):
            continue

        def on_batch(done: int, total: int, name: str = name) -> None:
            emit("features", step=done, steps=total, message=f"computing {name} features: {done}/{total} images")

        feats[name] = cached_features(work_dir, name, trunk, part, spec.image_size, views, on_batch)
    parts = ((train, config.views), (val, eval_views), (test, eval_views))
    fresh = sum(len(p.image_ids) * v for p, v in parts if p is not None)
    feature_ips = fresh / max(time.perf_counter() - t0, 1e-9) if not state.get("feature_seconds") else 0.0
    if not state.get("feature_seconds"):
        state["feature_seconds"] = round(time.perf_counter() - t0, 2)
        state["feature_images_per_s"] = round(feature_ips, 2)
    # The learning rate decays over the part of the budget left for training, not over the whole
    # budget: on 2 shared cores the features took 9 of 15 minutes, and a schedule over the whole
    # budget started training at a third of its peak rate (docs/benchmarks.md, "Tags model").
    state.setdefault("train_start_s", round(elapsed(), 2))

    top = build_top(spec, feats["train"].shape[2:], base, name=top_name)
    labels = train.labels
    main = main_head(spec)
    batch_size = min(config.batch_size, len(labels))
    cfg = TagsTrainConfig.from_dict({**config.to_dict(), "batch_size": batch_size})
    if cfg.balance == "oversample":
        per_epoch = len(oversampled_indices(labels[:, main], cfg.balance_percentile, np.random.default_rng(0)))
    else:
        per_epoch = len(labels)
    steps = max(1, -(-per_epoch // batch_size))
    losses = []
    for j, values in enumerate(spec.heads.values()):
        w = class_weights(labels[:, j], len(values), cfg.balance_percentile) if cfg.balance == "weights" else None
        losses.append(masked_loss(len(values), w, cfg.label_smoothing))
    warmup = int(max(cfg.warmup_epochs * steps, 1))
    if budget_s:
        schedule: Any = BudgetCosineDecay(cfg.learning_rate, warmup)
    else:
        schedule = keras.optimizers.schedules.CosineDecay(
            cfg.learning_rate / 100,
            max(cfg.epochs * steps - warmup, 1),
            alpha=0.01,
            warmup_target=cfg.learning_rate,
            warmup_steps=warmup,
        )
    top.compile(optimizer=keras.optimizers.Adam(learning_rate=schedule), loss=losses)
    val_labels = val.labels if val is not None and "val" in feats else None

    class Monitor(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.epoch_start = time.perf_counter()

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch
            self.epoch_start = time.perf_counter()

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            if budget_s and isinstance(schedule, BudgetCosineDecay):
                start = float(state["train_start_s"])
                schedule.progress.assign(min((elapsed() - start) / max(budget_s - start, 1.0), 1.0))

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            if budget_s is not None and elapsed() + state.get("eval_seconds", 0.0) >= budget_s:
                self.model.stop_training = True
                state["stopped"] = "budget"
            loss = float((logs or {}).get("loss", float("nan")))
            step = self.epoch * steps + batch + 1
            state["curve"].append([step, loss])
            if len(state["curve"]) > CURVE_POINTS:
                del state["curve"][1::2]
            emit(
                "training",
                epoch=self.epoch + 1,
                epochs=cfg.epochs,
                step=step,
                steps=cfg.epochs * steps,
                loss=loss,
                images_per_s=round(meter.images_per_s, 2),
                eta_s=round(max(budget_s - elapsed(), 0.0), 1) if budget_s else None,
            )

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            entry: dict[str, Any] = {
                "epoch": epoch + 1,
                "loss": float((logs or {}).get("loss", float("nan"))),
                "seconds": round(time.perf_counter() - self.epoch_start, 2),
                "images_per_s": round(meter.images_per_s, 2),
            }
            t = time.perf_counter()
            acc = None
            if val_labels is not None:
                acc = val_accuracy(predict_logits(self.model, feats["val"], eval_views), val_labels, main)
            state["eval_seconds"] = time.perf_counter() - t
            entry["val_top1"] = acc
            best = state.get("best")
            score = -1.0 if acc is None else acc
            improved = best is None or score > best["score"]
            if best is None or score >= best["score"]:
                self.model.save_weights(work_dir / "best.weights.h5")
                state["best"] = {"epoch": epoch + 1, "score": score, "val_top1": acc}
            state["evals_since_best"] = 0 if improved else state.get("evals_since_best", 0) + 1
            if cfg.patience is not None and state["evals_since_best"] >= cfg.patience:
                self.model.stop_training = True
                state["stopped"] = "early"
            state["history"].append(entry)
            state["epochs_done"] = epoch + 1
            state["seconds"] = round(elapsed(), 2)
            _write_state(work_dir, state)
            emit("epoch-end", epoch=epoch + 1, epochs=cfg.epochs, step=(epoch + 1) * steps, steps=cfg.epochs * steps)

    meter = ThroughputMeter(batch_size)
    callbacks = [
        meter,
        Monitor(),
        keras.callbacks.BackupAndRestore(str(work_dir / "backup"), delete_checkpoint=False),
        *(extra_callbacks or []),
    ]
    if resumed_from < cfg.epochs and not state.get("stopped"):
        data = _batches(feats["train"], labels, cfg, main, steps, cfg.seed + resumed_from)
        # Optimizer slots built before the first step, not inside its trace (see the helper), from
        # the batches' shapes: drawing one would move the batches' random views and shifts.
        batch_spec = (
            keras.KerasTensor((cfg.batch_size, *feats["train"].shape[2:]), "float32"),
            tuple(keras.KerasTensor((cfg.batch_size,), labels.dtype) for _ in range(labels.shape[1])),
        )
        build_before_first_step(top, batch_spec)
        top.fit(data, epochs=cfg.epochs, callbacks=callbacks, verbose=0)
    if (work_dir / "best.weights.h5").exists():
        top.load_weights(work_dir / "best.weights.h5")
    best = state.get("best") or {}
    state["seconds"] = round(elapsed(), 2)
    _write_state(work_dir, state)
    ips = meter.images_per_s or float(np.mean([h["images_per_s"] for h in state["history"]] or [0.0]))
    return TagsTrainResult(
        spec=spec,
        top=top,
        trunk=trunk,
        best_epoch=int(best.get("epoch") or state.get("epochs_done") or 0),
        history=state["history"],
        curve=state["curve"],
        images_per_s=float(ips),
        feature_images_per_s=float(state.get("feature_images_per_s") or 0.0),
        seconds=float(state["seconds"]),
        stopped=state.get("stopped"),
        resumed_from_epoch=resumed_from,
        val_logits=predict_logits(top, feats["val"], eval_views) if "val" in feats else None,
        test_logits=predict_logits(top, feats["test"], eval_views) if "test" in feats else None,
    )
