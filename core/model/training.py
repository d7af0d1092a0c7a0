"""The ``train`` job: export the project's dataset as TFRecords, train, evaluate, register a model version.

What a user exports is what we train on: the job calls the project's own TFRecord
exporter (:func:`core.dataset.exporter.export_dataset`) into its work folder and trains from those
files. The snapshot's hash (SHA-256 over the record files) is stored on the model version,
so two versions trained on the same data say so. The detector's classes are the export's
labels that have a box in the train split (:func:`core.model.detector.data.train_classes`): a label
with none would get a head that never sees its class; the job log and the model version's
``classes_left_out`` name the labels left out.

Folders: ``<jobs_dir>/train-<job id>/`` holds ``data/`` (the export), ``backup/`` and
``state.json`` (checkpoints, see :mod:`core.model.detector.train`) and ``best/``. A job started
with ``resume_job`` reuses the folder (and the data snapshot and settings) of the job it
resumes, so training continues from the last completed epoch. The finished model goes to
``<models_dir>/project-<id>/v<version id>/`` (``model.keras`` + ``detector.json``);
:attr:`db.models.ModelVersion.path` holds that file's path relative to the data folder.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.jobs import JobContext, JobError
from core.settings import Settings
from db.engine import session_scope
from db.models import Job, ModelVersion, Project

JOB_KIND = "train"

# Defaults sized for a 2-core CPU machine and measured in docs/benchmarks.md ("Train" and
# "Accuracy on real photos"):
# - a budget in minutes, not epochs: the run stops when the time is spent (the learning
#   rate decays over it), keeping the epoch with the best validation mAP, and stops
#   earlier when validation mAP has not improved for ``patience`` evaluations;
# - "auto" input size and anchors, fitted to the project's labelled boxes
#   (core.model.detector.input_fit): letterboxed to the images' aspect, long side large enough
#   for the small boxes; heads from level 4 when the anchors there still cover 95 % of
#   the boxes (2.5x faster than level 3 on the demo scenes), else level 3;
# - "auto" weights: the offline ImageNet weights when they are prepared, else Keras'
#   ImageNet weights when already downloaded, else random (see :func:`resolve_weights`);
# - with pretrained weights, frozen batch norm and the first stages frozen;
# - "auto" batch: 8 on CPU; on GPUs 32 per GPU (a GPU step costs about the same for 8 or
#   32 images at these sizes, so the same minutes buy about 4x the epochs; docs/gpu.md).
AUTO = "auto"
DEFAULTS: dict[str, Any] = {
    "budget_minutes": 15.0,
    "epochs": 500,  # an upper bound: the budget ends the run
    "patience": 8,
    "image_height": AUTO,
    "image_width": AUTO,
    "min_level": AUTO,
    "anchor_size": AUTO,
    "alpha": 1.0,
    "weights": AUTO,
    "frozen_stages": 4,
    "batch_size": AUTO,
    "learning_rate": 1e-3,
    "eval_every": AUTO,
    "val_holdout": 0.1,
    "seed": 0,
    # How the "auto" fit weighs small classes (core.model.detector.input_fit): "boxes" (all boxes
    # together) until the accuracy benchmark has measured "classes" (each class's small boxes).
    "fit_rule": "boxes",
    # Box-regression loss (core.model.detector.box_loss): Huber plus CIoU. On ccp-detection, 30 min,
    # same day, same seed: mAP@[.5:.95] 0.199 vs 0.135, AP@0.75 0.162 vs 0.063 (docs/benchmarks.md).
    "box_loss": "huber+ciou",
    # Conv layers in each RetinaNet head before its logits (DetectorSpec.head_convs; keras-hub's
    # default is 4). The heads' 256-channel convs over the stride-8 grid are most of a step on a
    # CPU: one instead of two trains 1.3x as many images in the same minutes, and on ccp-detection,
    # 30 min, same machine and seed, it scored higher on every figure (mAP@0.5 0.447 vs 0.403,
    # mAP@[.5:.95] 0.225 vs 0.201, Sunglasses AP@0.5 0.62 vs 0.47; docs/benchmarks.md). Jobs saved
    # before this setting resume with the spec's own default (2), which their checkpoints hold.
    "head_convs": 1,
    # Channels of the feature pyramid and the heads (DetectorSpec.pyramid_width; keras-hub fixes
    # 256). Their 3x3 convs over the stride-8 grid are most of a CPU step: 128 trained 2.25-2.46x the
    # images per second of 256, so 30 minutes bought twice the epochs, and on ccp-detection and its
    # 2/3 copy (30 min, two seeds each, same machine) it scored higher mAP@0.5, mAP@[.5:.95] and AP@0.75
    # (mAP@[.5:.95] 0.258 vs 0.199 on ccp; docs/benchmarks.md, session 20). Jobs saved before this
    # setting resume with the spec's 256.
    "pyramid_width": 128,
    # Test-time flip (core.model.detector.flip_tta): off, as in YOLO and Roboflow, because it
    # doubles prediction time for little with today's heads: +0.001 to +0.006 mAP@[.5:.95] on four
    # 30-minute runs (docs/benchmarks.md, session 19); the accuracy benchmark reports it (--flip-too).
    "test_time_flip": False,
}
SPEC_KEYS = (
    "image_height",
    "image_width",
    "alpha",
    "weights",
    "freeze_batch_norm",
    "head_convs",
    "pyramid_width",
    "fpn_batch_norm",
    "head_group_norm",
    "score_threshold",
    "min_level",
    "anchor_size",
    "frozen_stages",
    "test_time_flip",
)
CONFIG_KEYS = (
    "epochs",
    "budget_minutes",
    "patience",
    "batch_size",
    "learning_rate",
    "warmup_epochs",
    "eval_every",
    "seed",
    "box_loss",
)
FIT_KEYS = ("image_height", "image_width", "min_level", "anchor_size")
CPU_BATCH = 8
GPU_BATCH_PER_DEVICE = 32
# Evaluate about every this many training images (an epoch of a small project is short,
# and evaluating it every epoch would spend the budget on evaluation).
EVAL_EVERY_IMAGES = 400


class TrainingError(JobError):
    """A training request that cannot run (the message says why)."""


def train_params(project_id: int, **overrides: Any) -> dict[str, Any]:
    """Job parameters: :data:`DEFAULTS` with ``overrides`` (None values ignored).

    None means "the default" here, so switching the budget or early stopping off needs a
    value of its own: ``budget_minutes <= 0`` trains for ``epochs`` epochs with no time
    limit, and ``patience <= 0`` never stops early (both stored as None, which is what
    :class:`core.model.detector.train.TrainConfig` reads as "off"; a patience of 0 taken
    literally would stop after the first evaluation).
    """
    params = dict(DEFAULTS, project_id=project_id)
    params.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("budget_minutes", "patience"):
        if params.get(key) is not None and params[key] <= 0:
            params[key] = None
    return params


HOLDOUT_MIN_TRAIN = 50  # fewer training images: no holdout (too few left to learn from)


def holdout_every(train_count: int, val_count: int, fraction: float | None) -> int | None:
    """Every how many training images one is held out for validation, or None for no holdout.

    With no validation split (a dataset imported with train/test only) the job holds out
    every k-th training image for model selection and early stopping, as YOLO-style tools
    do, rather than choose the model on the test split or not at all.
    """
    if val_count or not fraction or train_count < HOLDOUT_MIN_TRAIN:
        return None
    return max(2, round(1 / float(fraction)))


def resolve_weights(settings: Settings, weights: str, alpha: float = 1.0) -> str:
    """Turns ``"auto"`` into the best initial weights this machine has without a download.

    Offline ImageNet weights when prepared (``python -m core weights prepare`` or the
    Train page's button), else Keras' ImageNet weights when Keras already has them, else
    random weights. Any other choice is returned unchanged.
    """
    if weights != AUTO:
        return weights
    from core.model.detector.model import OFFLINE_IMAGENET
    from core.model.pretrained.offline_weights import cache_dir_for, is_prepared

    if alpha == 1.0 and is_prepared(cache_dir_for(settings.data_dir)):
        return OFFLINE_IMAGENET
    if keras_imagenet_cached(alpha):
        return "imagenet"
    return "none"


def keras_imagenet_cached(alpha: float) -> bool:
    """Whether Keras already has the ImageNet MobileNetV2 weights for ``alpha`` (no download needed)."""
    import os

    name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(alpha)}_224_no_top.h5"
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    return (keras_home / "models" / name).exists()


def fit_geometry(session: Session, project_id: int, sample_images: int | None = None, rule: str = "boxes") -> Any:
    """Input size and anchors fitted to the project's finished images in the train split.

    Falls back to all finished images when none has a split yet. ``sample_images`` bounds the
    images read to about that many (every k-th by id, an even spread): the Train page shows the
    fit on every run and on 100,000 images reading every box took seconds, while the fit (box
    size quantiles) of a few thousand images is the same; the training job fits on all of them.
    ``rule`` is :func:`core.model.detector.input_fit.fit_input`'s.
    """
    from core.accounts.review_stage import ground_truth_in
    from core.model.detector.input_fit import fit_input
    from db.models import BoxRow, Image, Label, Split

    cond = [Image.project_id == project_id, ground_truth_in(session, project_id)]
    if sample_images:
        total = session.scalar(select(func.count()).select_from(Image).where(*cond)) or 0
        step = max(1, total // sample_images)
        if step > 1:
            cond.append(Image.id % step == 0)
    rows = session.execute(select(Image.id, Image.width, Image.height, Image.split).where(*cond)).all()
    train = [r for r in rows if r.split == Split.TRAIN] or list(rows)
    index = {r.id: i for i, r in enumerate(train)}
    boxes = session.execute(
        select(BoxRow.image_id, BoxRow.x_max - BoxRow.x_min, BoxRow.y_max - BoxRow.y_min, Label.name)
        .join(Image, BoxRow.image_id == Image.id)
        .join(Label, BoxRow.label_id == Label.id)
        .where(*cond)
    ).all()
    return fit_input(
        [(r.width, r.height) for r in train],
        [(index[i], w, h, name) for i, w, h, name in boxes if i in index],
        rule=rule,
    )


def start_training(engine: Engine, settings: Settings, project_id: int, params: dict[str, Any]) -> int:
    """Creates and launches a train job; refuses a second one for the same project.

    Returns:
        The job id.

    Raises:
        core.jobs.JobError: A training job is already queued or running for the project.
    """
    from core.jobs import create_job, launch

    with session_scope(engine) as session:
        job_id = create_job(session, JOB_KIND, params, project_id=project_id, exclusive=True).id
    launch(settings, job_id, engine)
    return job_id


def resume_params(session: Session, job_id: int) -> dict[str, Any]:
    """Parameters of a job that resumes train job ``job_id`` from its last checkpoint.

    Raises:
        TrainingError: No such train job, or it is still active or succeeded.
    """
    old = session.get(Job, job_id)
    if old is None or old.kind != JOB_KIND:
        raise TrainingError(f"No training job #{job_id}.")
    if not old.status.is_final:
        raise TrainingError(f"Training job #{job_id} is still {old.status.value}.")
    if old.result and old.result.get("model_version_id"):
        raise TrainingError(f"Training job #{job_id} finished; nothing to resume.")
    params = {k: v for k, v in old.params.items() if k != "resume_job"}
    params["resume_job"] = job_id
    params["work_dir"] = old.params.get("work_dir")
    return params


def model_file(settings: Settings, version: ModelVersion) -> Path:
    """The ``model.keras`` of a model version (its path is relative to the data folder)."""
    path = Path(version.path)
    return path if path.is_absolute() else settings.data_dir / path


def snapshot_hash(data_dir: Path) -> str:
    """SHA-256 over the export's label map and record files (names and bytes, sorted)."""
    h = hashlib.sha256()
    for p in sorted(data_dir.iterdir()):
        if p.name == "label_map.pbtxt" or ".record-" in p.name:
            h.update(p.name.encode() + b"\0")
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def _export(ctx: JobContext, project_id: int, data_dir: Path) -> dict[str, Any]:
    """Exports once per work folder; a half-written export (crash) is redone."""
    from core.dataset.exporter import export_dataset

    marker = data_dir / "export.json"
    if marker.exists():
        return json.loads(marker.read_text(encoding="utf-8"))
    if data_dir.exists():
        shutil.rmtree(data_dir)

    def progress(done: int, total: int, message: str) -> None:
        ctx.progress(0, None, f"exporting the dataset: {done}/{total} images", phase="export")

    summary = export_dataset(ctx.engine, ctx.settings, project_id, "tfrecord", data_dir, progress=progress)
    summary["dataset_hash"] = snapshot_hash(data_dir)
    marker.write_text(json.dumps(summary, default=str), encoding="utf-8")
    return summary


def _resolve_auto(ctx: JobContext, params: dict[str, Any], project_id: int, counts: dict[str, int]) -> dict[str, Any]:
    """Replaces "auto" parameters by their values for this project and machine.

    The resolved values are written back to the job's parameters (a resume reuses them,
    so it builds the same model) and logged.
    """
    resolved = dict(params)
    resolved["weights"] = resolve_weights(ctx.settings, params.get("weights", AUTO), float(params.get("alpha", 1.0)))
    if any(params.get(k, AUTO) == AUTO for k in FIT_KEYS):
        with session_scope(ctx.engine) as session:
            fit = fit_geometry(session, project_id, rule=str(params.get("fit_rule", "boxes")))
        for k, v in fit.params().items():
            if params.get(k, AUTO) == AUTO:
                resolved[k] = v
        chosen = {k: resolved[k] for k in FIT_KEYS}
        if chosen == fit.params():
            coverage = f"anchors cover {fit.coverage:.0%} of the boxes"
        else:  # some were set by hand: the fit's own figure would describe other anchors
            coverage = f"some set by hand; the fit alone would be {fit.params()}"
        ctx.log(
            f"fitted to {fit.boxes} boxes: input {resolved['image_width']}x{resolved['image_height']}, "
            f"heads from level {resolved['min_level']}, anchor size {resolved['anchor_size']} "
            f"({coverage}; small boxes {fit.small_side_px:.0f} px)"
        )
        if fit.smallest_class:
            ctx.log(f"fit rule {fit.rule!r}: {fit.describe_smallest()}")
    if params.get("batch_size", AUTO) == AUTO:
        import tensorflow as tf

        gpus = len(tf.config.list_physical_devices("GPU"))
        resolved["batch_size"] = CPU_BATCH if not gpus else GPU_BATCH_PER_DEVICE * gpus
    if params.get("eval_every", AUTO) == AUTO:
        resolved["eval_every"] = max(1, -(-EVAL_EVERY_IMAGES // max(counts["train"], 1)))
    ctx.log(f"initial weights: {resolved['weights']}")
    if resolved != params:
        with session_scope(ctx.engine) as session:
            job = session.get(Job, ctx.job_id)
            assert job is not None
            job.params = {**job.params, **{k: v for k, v in resolved.items() if k in params or k == "weights"}}
    return resolved


def train_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The ``train`` job handler (registered in :data:`core.jobs.HANDLERS`)."""
    from core.model.detector.data import count_records, tfrecord_dataset, tfrecord_files, train_classes
    from core.model.detector.model import DetectorSpec
    from core.model.detector.predict import Detector
    from core.model.detector.train import EvalSet, TrainConfig, evaluate_detector, train

    project_id = int(params["project_id"])
    work_dir = Path(params.get("work_dir") or ctx.settings.jobs_dir / f"train-{ctx.job_id}")
    with session_scope(ctx.engine) as session:
        job = session.get(Job, ctx.job_id)
        assert job is not None
        job.params = {**job.params, "work_dir": str(work_dir)}
        project = session.get(Project, project_id)
        if project is None:
            raise TrainingError(f"No project #{project_id}.")
        project_name = project.name
    if params.get("resume_job"):
        ctx.log(f"resuming training job #{params['resume_job']} from {work_dir}")
    ctx.progress(0, None, "exporting the dataset", phase="export")
    summary = _export(ctx, project_id, work_dir / "data")
    data_dir = work_dir / "data"
    files = {s: tfrecord_files(data_dir, s) for s in ("train", "val", "test")}
    counts = {s: count_records(f) if f else 0 for s, f in files.items()}
    # Only labels with a box in the train split become classes (the snapshot decides, so a resume gets the same).
    plan = train_classes(data_dir)
    ctx.log(f"dataset {summary['dataset_hash'][:12]}: {counts} images; {plan.message()}")
    if counts["train"] == 0:
        raise TrainingError("The project has no finished images in the train split; label some images first.")
    if not plan.names:
        raise TrainingError("No image in the train split has a box; draw some boxes first.")

    params = _resolve_auto(ctx, params, project_id, counts)
    spec = DetectorSpec(class_names=plan.names, **{k: params[k] for k in SPEC_KEYS if k in params})
    config = TrainConfig.from_dict({k: params[k] for k in CONFIG_KEYS if k in params})

    def examples(split: str) -> Any:
        return tfrecord_dataset(files[split], class_ids=plan.ids)

    train_examples, train_count = examples("train"), counts["train"]
    val: EvalSet | None = None
    holdout = 0
    if counts["val"]:
        val = EvalSet(examples("val"), counts["val"])
    elif (k := holdout_every(train_count, counts["val"], params.get("val_holdout"))) is not None:
        # The records' order is the export's (fixed), so the held-out set is the same on a resume.
        holdout = -(-train_count // k)
        indexed = train_examples.enumerate()
        val = EvalSet(indexed.filter(lambda i, _: i % k == 0).map(lambda _, x: x), holdout)
        train_examples = indexed.filter(lambda i, _: i % k != 0).map(lambda _, x: x)
        train_count -= holdout
        ctx.log(f"no validation split: holding out {holdout} of the training images (every {k}th) for model selection")

    last: dict[str, Any] = {}

    def on_progress(p: dict[str, Any]) -> None:
        last.update(p)
        loss = f"loss {p['loss']:.3f}" if p.get("loss") is not None else ""
        eta = f"ETA {p['eta_s'] / 60:.1f} min" if p.get("eta_s") is not None else ""
        message = " · ".join(
            x for x in (f"epoch {p['epoch']}/{p['epochs']}", loss, f"{p['images_per_s']:.1f} img/s", eta) if x
        )
        ctx.progress(p["step"], p["steps"], message, **p)

    from core.model.pretrained.offline_weights import cache_dir_for

    result = train(
        spec,
        config,
        train_examples,
        train_count,
        work_dir,
        val=val,
        on_progress=on_progress,
        weights_dir=cache_dir_for(ctx.settings.data_dir),
    )
    # Keep the curves and history in the progress the page shows after the run.
    ctx.progress(last.get("step", 0), last.get("steps"), "evaluating the best model", **{**last, "phase": "final"})
    detector = Detector.load(result.best_dir, batch_size=config.batch_size)
    metrics: dict[str, Any] = {}
    if val is not None:
        metrics["val"] = evaluate_detector(detector, val.examples).to_dict()
        metrics["val_held_out_from_train"] = holdout
    if counts["test"]:
        metrics["test"] = evaluate_detector(detector, examples("test")).to_dict()
    headline = metrics.get("val") or metrics.get("test") or {}
    metrics.update(
        {
            "map50": headline.get("map50"),
            "ap50": headline.get("ap50"),
            "evaluated_on": "val" if "val" in metrics else ("test" if "test" in metrics else None),
            "best_epoch": result.best_epoch,
            "history": result.history,
            "images_per_s": round(result.images_per_s, 2),
            "stopped": result.stopped,
            "train_seconds": round(result.seconds, 1),
        }
    )
    with session_scope(ctx.engine) as session:
        n = len(list(session.scalars(select(ModelVersion.id).where(ModelVersion.project_id == project_id))))
        version = ModelVersion(
            project_id=project_id,
            job_id=ctx.job_id,
            name=params.get("name") or f"{project_name} v{n + 1}",
            path="",
            params={
                **spec.to_dict(),
                **config.to_dict(),
                "device": result.device,
                "images": counts,
                "classes_left_out": list(plan.left_out),
                "resumed_from_epoch": result.resumed_from_epoch,
                "resumed_job": params.get("resume_job"),
            },
            dataset_hash=summary["dataset_hash"],
            metrics=metrics,
        )
        session.add(version)
        session.flush()
        target = ctx.settings.models_dir / f"project-{project_id}" / f"v{version.id}"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(result.best_dir, target)
        version.path = str((target / "model.keras").relative_to(ctx.settings.data_dir))
        version_id, version_name = version.id, version.name
        from core.project.projects import record_activity

        map_text = f"mAP@0.5 {headline['map50']:.3f}" if headline.get("map50") is not None else "no evaluation split"
        record_activity(session, project_id, "train", f"model {version_name} trained ({map_text})", params.get("who"))
    ctx.log(f"model version #{version_id} saved: {metrics.get('map50')}")
    return {
        "model_version_id": version_id,
        "map50": metrics.get("map50"),
        "test_map50": (metrics.get("test") or {}).get("map50"),
        "best_epoch": result.best_epoch,
        "images_per_s": round(result.images_per_s, 2),
        "stopped": result.stopped,
        "epochs_done": len(result.history),
        "epochs_trained": result.epochs_trained,
        "resumed_from_epoch": result.resumed_from_epoch,
        "dataset_hash": summary["dataset_hash"],
        "images": counts,
        "classes_left_out": list(plan.left_out),
    }
