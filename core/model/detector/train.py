"""The training loop: ``model.fit`` with progress, per-epoch evaluation, checkpoints and resume.

One function, :func:`train`, used by the ``train`` job (:mod:`core.model.training`), the CLI
and the benchmark; it knows nothing of the database. Everything it writes lives in a
work folder:

- ``backup/``: Keras' ``BackupAndRestore`` checkpoint (weights, optimizer state, epoch),
  written at the end of every epoch. Calling :func:`train` again on the same folder
  resumes from the last completed epoch; the learning-rate schedule follows the
  optimizer's step counter, so it resumes too.
- ``state.json``: the loss/validation history and the best epoch so far.
- ``best/``: the model version (``model.keras`` + ``detector.json``) of the epoch with
  the best validation mAP@0.5 (the last epoch when there is no validation split).

Devices: on a machine with GPUs the same code runs under ``tf.distribute.MirroredStrategy``
over all of them, with the ``mixed_float16`` policy and XLA (``jit_compile``); on CPU it
runs in float32 without XLA (XLA is slower there for this model).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from core.boxes import Box
from core.model.detector.box_loss import DetectorBoxLoss
from core.model.detector.data import Augment, detection_batches, eval_batches, steps_per_epoch
from core.model.detector.model import DetectorSpec, build_detector
from core.model.detector.predict import Detector, save_model_version
from core.model.metrics import voc
from core.model.metrics.types import Detection as MetricDetection
from core.model.metrics.types import GroundTruth
from core.model.metrics.voc import VocMetrics

Progress = Callable[[dict[str, Any]], None]
CURVE_POINTS = 400  # loss-curve points kept in state/progress


@dataclass(frozen=True)
class TrainConfig:
    """How to train (the model itself is a :class:`DetectorSpec`).

    Attributes:
        epochs: Passes over the training split (an upper bound when a budget is set).
        budget_minutes: Wall-clock budget for the whole run (training and the per-epoch
            evaluations). When set, training stops when the budget is spent (leaving time
            for the last evaluation) and the learning rate decays over the budget's time
            instead of over ``epochs``, so the model arrives at a low learning rate when
            the time is up whatever the machine's speed.
        patience: Early stopping: stop after this many evaluations without a better
            validation mAP@0.5 (the best version is kept). None: never stop early.
        batch_size: Global batch size.
        learning_rate: Peak learning rate (Adam), reached after warm-up.
        warmup_epochs: Linear warm-up length; then cosine decay to 1 % of the peak
            (probes.md: warm-up + cosine was part of the 0.13 -> 0.44 mAP jump).
        eval_every: Evaluate on validation every this many epochs (and after the last).
        augment: Augmentation strengths.
        seed: Random seed (shuffling, augmentation, initial weights).
        clipnorm: Global gradient-norm clip (keeps random-init starts stable).
        box_loss: Box-regression loss, one of :data:`core.model.detector.box_loss.BOX_LOSSES`
            ("huber": keras-hub's default; "huber+ciou", the product's default, adds an IoU
            term for tighter boxes).
    """

    epochs: int = 30
    budget_minutes: float | None = None
    patience: int | None = None
    batch_size: int = 8
    learning_rate: float = 1e-3
    warmup_epochs: float = 1.0
    eval_every: int = 1
    augment: Augment = field(default_factory=Augment)
    seed: int = 0
    clipnorm: float = 10.0
    box_loss: str = "huber+ciou"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; ignores unknown keys."""
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        # Configs saved before the box loss was a setting trained with Huber: a resumed
        # run keeps the loss it started with.
        known.setdefault("box_loss", "huber")
        if isinstance(known.get("augment"), dict):
            known["augment"] = Augment(**known["augment"])
        return cls(**known)


@dataclass
class EvalSet:
    """A split to evaluate on: its examples (tf.data) and how many there are."""

    examples: tf.data.Dataset
    count: int


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    best_dir: Path
    best_epoch: int
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    images_per_s: float
    resumed_from_epoch: int
    device: dict[str, Any]
    stopped: str | None = None  # "budget", "early" (patience) or None (all epochs ran)
    seconds: float = 0.0
    # Passes over the training images, the last (cut by the budget) counted by its share: the
    # budget curve's axis (core.model.detector.budget_curve), which len(history) overstates.
    epochs_trained: float = 0.0


def device_setup() -> tuple[tf.distribute.Strategy, dict[str, Any]]:
    """Picks the distribution strategy and precision for this machine.

    Returns:
        The strategy (MirroredStrategy over all GPUs, else the default one) and a
        description: GPUs seen, replicas, precision policy, XLA.
    """
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised: harmless
                pass
        keras.mixed_precision.set_global_policy("mixed_float16")
        strategy: tf.distribute.Strategy = tf.distribute.MirroredStrategy()
    else:
        keras.mixed_precision.set_global_policy("float32")
        strategy = tf.distribute.get_strategy()
    info = {
        "gpus": [g.name for g in gpus],
        "replicas": strategy.num_replicas_in_sync,
        "precision": keras.mixed_precision.global_policy().name,
        "xla": bool(gpus),
    }
    return strategy, info


@keras.saving.register_keras_serializable(package="Tagrack")
class BudgetCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up over steps, then cosine decay over the *fraction of the time budget spent*.

    Keras' schedules decay over a step count fixed up front, which a minutes budget does
    not give (the speed is only known once training runs, and changes with the machine's
    load). Here a callback writes the spent fraction into ``progress`` (a variable, so the
    compiled train step reads the current value) and the rate follows it.

    Args:
        peak: Learning rate after warm-up.
        warmup_steps: Steps of linear warm-up from ``peak / 100``.
        progress: Variable holding the spent fraction of the budget (0..1).
        alpha: Final rate as a fraction of ``peak``.
    """

    def __init__(self, peak: float, warmup_steps: int, progress: Any = None, alpha: float = 0.01) -> None:
        self.peak, self.warmup_steps, self.alpha = float(peak), int(warmup_steps), float(alpha)
        self.progress = progress if progress is not None else keras.Variable(0.0, trainable=False, name="budget_spent")

    def __call__(self, step: Any) -> Any:
        from keras import ops

        step = ops.cast(step, "float32")
        warm = self.peak / 100 + (self.peak - self.peak / 100) * ops.minimum(step / max(self.warmup_steps, 1), 1.0)
        frac = ops.clip(ops.convert_to_tensor(self.progress), 0.0, 1.0)
        cosine = self.peak * (self.alpha + (1 - self.alpha) * 0.5 * (1 + ops.cos(np.pi * frac)))
        # The lower of the two: on a short budget time runs during the warm-up too, and the
        # rate must never climb above where the decay already is.
        return ops.minimum(warm, cosine)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "alpha": self.alpha}


def build_before_first_step(model: keras.Model, batch_spec: Any) -> None:
    """Creates the optimizer's slots and the loss trackers before the first train step.

    Keras 3's TensorFlow trainer builds them ahead of ``fit`` (symbolically, without running
    the model) only for a model made under a distribution strategy scope; under the default
    strategy (no GPU) it leaves them to the first trace of the train step, and TensorFlow
    traces a ``tf.function`` that creates variables a second time. Measured on the tests'
    tiny detector on 2 cores: the job took 84 s with the double trace, 53 s without (profiled;
    docs/benchmarks.md "Train"). This runs Keras' own symbolic build, as ``fit`` does under a
    strategy, but on the batches' shapes rather than on a batch drawn from them: drawing one
    starts the reshuffled, augmented dataset an extra time and changes the order and the
    augmentation of every epoch after it. Keras has no public call for it.

    Args:
        model: The compiled model (the detector or the tags top).
        batch_spec: One batch's structure as ``fit`` gets it, each leaf with ``shape`` and
            ``dtype`` (a ``tf.data`` element spec, or ``keras.KerasTensor``\ s).
    """
    if model.optimizer.built:
        return
    # In the model's strategy scope, as Keras builds: under a MirroredStrategy (GPUs) the optimizer's
    # slots must be mirrored variables; under the default strategy the scope changes nothing.
    with model.distribute_strategy.scope():
        model._symbolic_build(data_batch=batch_spec)  # noqa: SLF001 - see the docstring


def make_optimizer(config: TrainConfig, steps: int, total_steps: int) -> keras.optimizers.Optimizer:
    """Adam with linear warm-up to the peak learning rate, then cosine decay.

    The decay runs over ``total_steps``, or over the time budget when the config has one
    (:class:`BudgetCosineDecay`; the training monitor moves its ``progress``).
    """
    warmup = int(min(max(config.warmup_epochs * steps, 1), max(total_steps // 3, 1)))
    schedule: Any
    if config.budget_minutes:
        schedule = BudgetCosineDecay(config.learning_rate, warmup)
    else:
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=config.learning_rate / 100,
            decay_steps=max(total_steps - warmup, 1),
            alpha=0.01,
            warmup_target=config.learning_rate,
            warmup_steps=warmup,
        )
    return keras.optimizers.Adam(learning_rate=schedule, global_clipnorm=config.clipnorm)


def compile_detector(
    model: keras.Model,
    optimizer: keras.optimizers.Optimizer,
    xla: bool,
    box_loss: str = TrainConfig.box_loss,
) -> None:
    """Compiles with keras-hub's focal loss and the chosen box loss (see :mod:`core.model.detector.box_loss`).

    "huber" is keras-hub's own default and left to it; the others decode boxes against
    the anchors of the model's fixed input shape.
    """
    if box_loss == "huber":
        model.compile(optimizer=optimizer, jit_compile=xla)
        return
    _, height, width, _ = model.input_shape
    loss = DetectorBoxLoss.for_model(model, (height, width), box_loss)
    model.compile(optimizer=optimizer, box_loss=loss, jit_compile=xla)


class ThroughputMeter(keras.callbacks.Callback):
    """Measures training images/s from batch ends, leaving out each run's first batch (tracing).

    The same meter times the job and the bare ``model.fit`` of the benchmark.
    """

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.images = 0
        self.seconds = 0.0
        self._last: float | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._last = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._last = None  # time spent between epochs (evaluation) is not training

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.images += self.batch_size
            self.seconds += now - self._last
        self._last = now

    @property
    def images_per_s(self) -> float:
        """Mean training throughput so far (0 before two batches)."""
        return self.images / self.seconds if self.seconds else 0.0


def ground_truths_and_detections(
    detector: Detector, examples: tf.data.Dataset
) -> tuple[list[GroundTruth], list[MetricDetection]]:
    """Runs the detector over examples; returns ground truth and detections, both in original pixels."""
    spec = detector.spec
    names = spec.class_names
    gts: list[GroundTruth] = []
    dets: list[MetricDetection] = []
    n = 0
    batches = eval_batches(examples, spec.image_height, spec.image_width, detector.batch_size)
    for part, detections in detector.predict_batches(batches.as_numpy_iterator()):
        for boxes, labels, image_dets in zip(part["boxes"], part["labels"], detections, strict=True):
            key = n
            n += 1
            for b, lab in zip(boxes, labels, strict=True):
                if 0 <= lab < len(names):  # -1: batch padding or a class the spec lacks
                    gts.append(GroundTruth(key, names[int(lab)], Box(*map(float, b))))
            for d in image_dets:
                dets.append(MetricDetection(key, d.label, d.box, d.score))
    return gts, dets


def evaluate_detector(detector: Detector, examples: tf.data.Dataset) -> VocMetrics:
    """mAP@0.5 (VOC all-point) and per-class AP of a detector on examples."""
    gts, dets = ground_truths_and_detections(detector, examples)
    return voc.evaluate(gts, dets, detector.spec.class_names, iou_threshold=0.5)


class _TrainingMonitor(keras.callbacks.Callback):
    """Progress reports, loss curve, per-epoch evaluation, best model, state file."""

    def __init__(
        self,
        spec: DetectorSpec,
        config: TrainConfig,
        work_dir: Path,
        steps: int,
        meter: ThroughputMeter,
        val: EvalSet | None,
        state: dict[str, Any],
        on_progress: Progress | None,
        budget_progress: Any = None,
    ) -> None:
        super().__init__()
        self.spec, self.config, self.work_dir, self.steps = spec, config, work_dir, steps
        self.meter, self.val, self.state, self.on_progress = meter, val, state, on_progress
        self.budget_s = config.budget_minutes * 60 if config.budget_minutes else None
        self.budget_progress = budget_progress
        self.epoch = 0
        self.eval_seconds = 0.0
        self._batches = 0  # batches run in the current epoch
        self._epoch_start = time.perf_counter()
        self._run_start = time.perf_counter()
        self._seconds_before = float(state.get("seconds", 0.0))  # spent by the runs this one resumes

    @property
    def elapsed_s(self) -> float:
        """Seconds this training has run, resumed runs included."""
        return self._seconds_before + time.perf_counter() - self._run_start

    @property
    def total_steps(self) -> int:
        if self.budget_s is None or not self.meter.images_per_s:
            return self.config.epochs * self.steps
        # With a budget the step count is an estimate: steps done plus what the rest buys.
        done = self.epoch * self.steps
        left = max(self.budget_s - self.elapsed_s, 0.0) * self.meter.images_per_s / self.config.batch_size
        return min(self.config.epochs * self.steps, done + int(left))

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._run_start = time.perf_counter()

    def _emit(self, phase: str, step_in_epoch: int, loss: float | None) -> None:
        if self.on_progress is None:
            return
        done = self.epoch * self.steps + step_in_epoch
        ips = self.meter.images_per_s
        remaining = self.total_steps - done
        evals_left = sum(1 for e in range(self.epoch + 1, self.config.epochs + 1) if self._evaluates(e))
        per_eval = self.state.get("eval_seconds", 0.0)
        if self.budget_s is not None:
            eta: float | None = max(self.budget_s - self.elapsed_s, 0.0)
            epochs = max(self.epoch + 1, -(-self.total_steps // self.steps))
        else:
            eta = remaining * self.config.batch_size / ips + evals_left * per_eval if ips else None
            epochs = self.config.epochs
        self.on_progress(
            {
                "phase": phase,
                "epoch": self.epoch + 1,
                "epochs": epochs,
                "budget_s": self.budget_s,
                "elapsed_s": round(self.elapsed_s, 1),
                "stopped": self.state.get("stopped"),
                "step": done,
                "steps": self.total_steps,
                "loss": loss,
                "images_per_s": round(ips, 2),
                "eta_s": round(eta, 1) if eta is not None else None,
                "curve": self.state["curve"],
                "history": self.state["history"],
                "best": self.state.get("best"),
            }
        )

    def _evaluates(self, epoch_number: int) -> bool:
        return epoch_number == self.config.epochs or epoch_number % max(self.config.eval_every, 1) == 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch
        self._epoch_start = time.perf_counter()
        self._batches = 0

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.budget_progress is not None and self.budget_s:
            self.budget_progress.assign(min(self.elapsed_s / self.budget_s, 1.0))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.budget_s is not None and self.elapsed_s + self.state.get("eval_seconds", 0.0) >= self.budget_s:
            # Stop now, keeping time for the last evaluation, so the run ends within its budget.
            self.model.stop_training = True
            self.state["stopped"] = "budget"
        loss = float((logs or {}).get("loss", float("nan")))
        self._batches = batch + 1
        step = self.epoch * self.steps + batch + 1
        curve = self.state["curve"]
        curve.append([step, loss])
        if len(curve) > CURVE_POINTS:  # keep every other point: bounded, still the whole run
            del curve[1::2]
        self._emit("training", batch + 1, loss)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        entry: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": float(logs.get("loss", float("nan"))),
            "box_loss": float(logs.get("bbox_regression_loss", float("nan"))),
            "class_loss": float(logs.get("cls_logits_loss", float("nan"))),
            "seconds": round(time.perf_counter() - self._epoch_start, 2),
            "images_per_s": round(self.meter.images_per_s, 2),
            "steps": self._batches,
        }
        if self._evaluates(epoch + 1) or self.model.stop_training:
            self._emit("evaluating", self.steps, entry["loss"])
            best_dir = self.work_dir / "best"
            if self.val is not None and self.val.count:
                t0 = time.perf_counter()
                metrics = evaluate_detector(Detector(self.model, self.spec, self.config.batch_size), self.val.examples)
                self.state["eval_seconds"] = time.perf_counter() - t0
                entry["val_map50"] = metrics.map
                best = self.state.get("best")
                # A tie keeps the later model (trained longer at the same score), but only a
                # strictly better score counts as progress for early stopping.
                improved = best is None or metrics.map > best["val_map50"]
                if best is None or metrics.map >= best["val_map50"]:
                    save_model_version(self.model, self.spec, best_dir)
                    self.state["best"] = {"epoch": epoch + 1, "val_map50": metrics.map, "val": metrics.to_dict()}
                self.state["evals_since_best"] = 0 if improved else self.state.get("evals_since_best", 0) + 1
                if self.config.patience is not None and self.state["evals_since_best"] >= self.config.patience:
                    self.model.stop_training = True
                    self.state["stopped"] = "early"
            else:  # no validation images: the latest model is the best we know
                save_model_version(self.model, self.spec, best_dir)
                self.state["best"] = {"epoch": epoch + 1, "val_map50": None, "val": None}
        self.state["history"].append(entry)
        self.state["epochs_done"] = epoch + 1
        self.state["seconds"] = round(self.elapsed_s, 2)
        _write_state(self.work_dir, self.state)
        self._emit("epoch-end", self.steps, entry["loss"])


def _read_state(work_dir: Path) -> dict[str, Any]:
    path = work_dir / "state.json"
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    return {"history": [], "curve": [], "best": None, "epochs_done": 0}


def _write_state(work_dir: Path, state: dict[str, Any]) -> None:
    tmp = work_dir / "state.json.tmp"
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(work_dir / "state.json")  # atomic: a kill never leaves half a file


def _backup_epoch(work_dir: Path) -> int:
    meta = work_dir / "backup" / "training_metadata.json"
    if meta.exists():
        return int(json.loads(meta.read_text(encoding="utf-8")).get("epoch", 0))
    return 0


def train(
    spec: DetectorSpec,
    config: TrainConfig,
    train_examples: tf.data.Dataset,
    train_count: int,
    work_dir: Path,
    val: EvalSet | None = None,
    on_progress: Progress | None = None,
    extra_callbacks: list[keras.callbacks.Callback] | None = None,
    weights_dir: Path | None = None,
) -> TrainResult:
    """Trains (or resumes training) a detector.

    Args:
        spec: The model to build.
        config: How to train.
        train_examples: Training examples (see :mod:`core.model.detector.data`).
        train_count: Number of training examples (sets the steps per epoch).
        work_dir: Checkpoints, state and the best model go here; an existing
            checkpoint in it is resumed.
        val: Validation examples for model selection (None: the last epoch wins).
        on_progress: Called with a progress dict after every batch and epoch.
        extra_callbacks: More Keras callbacks (tests use one to stop early).
        weights_dir: Folder of the prepared offline ImageNet weights (``spec.weights ==
            "imagenet-offline"``).

    Returns:
        The best model's folder, its epoch and metrics, the history and throughput.

    Raises:
        core.model.detector.model.WeightsUnavailableError: When the initial weights cannot be had.
        ValueError: When there are fewer training images than one batch.
    """
    if train_count < config.batch_size:
        raise ValueError(
            f"{train_count} training images are fewer than one batch of {config.batch_size}; "
            "label more images or use a smaller batch."
        )
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(config.seed)
    strategy, device = device_setup()
    resumed_from = _backup_epoch(work_dir)
    state = _read_state(work_dir)
    # The backup is written after state.json, so state may be one epoch ahead; the
    # backup is the truth.
    state["history"] = [h for h in state["history"] if h["epoch"] <= resumed_from]
    steps = steps_per_epoch(train_count, config.batch_size)
    state["curve"] = [p for p in state["curve"] if p[0] <= resumed_from * steps]
    if state.get("best") and state["best"]["epoch"] > resumed_from:
        state["best"] = None
    # On resume the weights come from the checkpoint: do not load ImageNet again, but build
    # the same architecture (flavour, frozen stages, batch-norm choice) the run started with.
    with strategy.scope():
        model = build_detector(spec, weights_dir, load_weights=not resumed_from)
        optimizer = make_optimizer(config, steps, config.epochs * steps)
        compile_detector(
            model,
            optimizer,
            xla=device["xla"],
            box_loss=config.box_loss,
        )
    schedule = optimizer._learning_rate  # noqa: SLF001 - Keras keeps the schedule object here
    budget_progress = schedule.progress if isinstance(schedule, BudgetCosineDecay) else None
    batches = detection_batches(
        train_examples,
        spec.image_height,
        spec.image_width,
        config.batch_size,
        training=True,
        augment=config.augment,
        seed=config.seed,
        repeat=True,
    )
    meter = ThroughputMeter(config.batch_size)
    monitor = _TrainingMonitor(spec, config, work_dir, steps, meter, val, state, on_progress, budget_progress)
    callbacks = [meter, monitor, keras.callbacks.BackupAndRestore(str(work_dir / "backup"), delete_checkpoint=False)]
    if resumed_from < config.epochs and not state.get("stopped"):
        build_before_first_step(model, batches.element_spec)
        model.fit(
            batches,
            epochs=config.epochs,
            steps_per_epoch=steps,
            callbacks=callbacks + list(extra_callbacks or []),
            verbose=0,
        )
    best = state.get("best") or {}
    if not (work_dir / "best" / "model.keras").exists():
        save_model_version(model, spec, work_dir / "best")
    return TrainResult(
        best_dir=work_dir / "best",
        best_epoch=int(best.get("epoch") or state.get("epochs_done") or 0),
        metrics={"val": best.get("val")},
        history=state["history"],
        images_per_s=meter.images_per_s or _mean_ips(state["history"]),
        resumed_from_epoch=resumed_from,
        device=device,
        stopped=state.get("stopped"),
        seconds=float(state.get("seconds", 0.0)),
        # Epochs recorded before "steps" was (a resumed older run) count as whole.
        epochs_trained=round(sum(h.get("steps", steps) for h in state["history"]) / steps, 2),
    )


def _mean_ips(history: list[dict[str, Any]]) -> float:
    values = [h["images_per_s"] for h in history if h.get("images_per_s")]
    return float(np.mean(values)) if values else 0.0


__all__ = ["EvalSet", "TrainConfig", "TrainResult", "evaluate_detector", "train"]
