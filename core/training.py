"""The ``train`` job: export the project's dataset as TFRecords, train, evaluate, register a model version.

What a user exports is what we train on: the job calls the project's own TFRecord
exporter (:func:`core.export.export_dataset`) into its work folder and trains from those
files. The snapshot's hash (SHA-256 over the record files) is stored on the model version,
so two versions trained on the same data say so.

Folders: ``<jobs_dir>/train-<job id>/`` holds ``data/`` (the export), ``backup/`` and
``state.json`` (checkpoints, see :mod:`core.detector.train`) and ``best/``. A job started
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

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.jobs import JobContext, JobError
from core.settings import Settings
from db.engine import session_scope
from db.models import Job, ModelVersion, Project

JOB_KIND = "train"

# Defaults sized for a 2-core CPU machine: the demo project (200 labelled 512x384 scenes,
# ~160 for training) trains in under 15 minutes. Measured in docs/benchmarks.md:
# - 256x192 keeps the scenes' 4:3 aspect (letterbox, no padding) at half their size;
# - heads from pyramid level 4 (stride 16) with anchors of 3 strides (48 px and up):
#   the RetinaNet heads, not the MobileNet, cost most of the time, and level 3 holds 3/4
#   of their positions; 2.5x the images/s at the same mAP per epoch on the demo scenes.
#   Real photos with small objects want level 3 back (issue 9 fits anchors to the data).
DEFAULTS: dict[str, Any] = {
    "image_height": 192,
    "image_width": 256,
    "alpha": 1.0,
    "weights": "none",
    "min_level": 4,
    "anchor_size": 3.0,
    "epochs": 80,
    "batch_size": 8,
    "learning_rate": 1e-3,
    "eval_every": 5,
    "seed": 0,
}
SPEC_KEYS = (
    "image_height", "image_width", "alpha", "weights", "freeze_batch_norm", "head_convs", "fpn_batch_norm",
    "head_group_norm", "score_threshold", "min_level", "anchor_size",
)  # fmt: skip
CONFIG_KEYS = ("epochs", "batch_size", "learning_rate", "warmup_epochs", "eval_every", "seed")


class TrainingError(JobError):
    """A training request that cannot run (the message says why)."""


def train_params(project_id: int, **overrides: Any) -> dict[str, Any]:
    """Job parameters: :data:`DEFAULTS` with ``overrides`` (None values ignored)."""
    params = dict(DEFAULTS, project_id=project_id)
    params.update({k: v for k, v in overrides.items() if v is not None})
    return params


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
    from core.export import export_dataset

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


def train_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The ``train`` job handler (registered in :data:`core.jobs.HANDLERS`)."""
    from core.detector.data import count_records, read_class_names, tfrecord_dataset, tfrecord_files
    from core.detector.model import DetectorSpec
    from core.detector.predict import Detector
    from core.detector.train import EvalSet, TrainConfig, evaluate_detector, train

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
    class_names = read_class_names(data_dir / "label_map.pbtxt")
    files = {s: tfrecord_files(data_dir, s) for s in ("train", "val", "test")}
    counts = {s: count_records(f) if f else 0 for s, f in files.items()}
    ctx.log(f"dataset {summary['dataset_hash'][:12]}: {counts} images, classes {class_names}")
    if counts["train"] == 0:
        raise TrainingError("The project has no finished images in the train split; label some images first.")

    spec = DetectorSpec(class_names=tuple(class_names), **{k: params[k] for k in SPEC_KEYS if k in params})
    config = TrainConfig.from_dict({k: params[k] for k in CONFIG_KEYS if k in params})
    val = EvalSet(tfrecord_dataset(files["val"]), counts["val"]) if counts["val"] else None

    last: dict[str, Any] = {}

    def on_progress(p: dict[str, Any]) -> None:
        last.update(p)
        loss = f"loss {p['loss']:.3f}" if p.get("loss") is not None else ""
        eta = f"ETA {p['eta_s'] / 60:.1f} min" if p.get("eta_s") is not None else ""
        message = " · ".join(
            x for x in (f"epoch {p['epoch']}/{p['epochs']}", loss, f"{p['images_per_s']:.1f} img/s", eta) if x
        )
        ctx.progress(p["step"], p["steps"], message, **p)

    result = train(
        spec, config, tfrecord_dataset(files["train"]), counts["train"], work_dir, val=val, on_progress=on_progress
    )
    # Keep the curves and history in the progress the page shows after the run.
    ctx.progress(last.get("step", 0), last.get("steps"), "evaluating the best model", **{**last, "phase": "final"})
    detector = Detector.load(result.best_dir, batch_size=config.batch_size)
    metrics: dict[str, Any] = {}
    if val is not None:
        metrics["val"] = evaluate_detector(detector, val.examples).to_dict()
    if counts["test"]:
        metrics["test"] = evaluate_detector(detector, tfrecord_dataset(files["test"])).to_dict()
    headline = metrics.get("val") or metrics.get("test") or {}
    metrics.update(
        {
            "map50": headline.get("map50"),
            "ap50": headline.get("ap50"),
            "evaluated_on": "val" if "val" in metrics else ("test" if "test" in metrics else None),
            "best_epoch": result.best_epoch,
            "history": result.history,
            "images_per_s": round(result.images_per_s, 2),
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
        from core.projects import record_activity

        map_text = f"mAP@0.5 {headline['map50']:.3f}" if headline.get("map50") is not None else "no evaluation split"
        record_activity(session, project_id, "train", f"model {version_name} trained ({map_text})", params.get("who"))
    ctx.log(f"model version #{version_id} saved: {metrics.get('map50')}")
    return {
        "model_version_id": version_id,
        "map50": metrics.get("map50"),
        "test_map50": (metrics.get("test") or {}).get("map50"),
        "best_epoch": result.best_epoch,
        "images_per_s": round(result.images_per_s, 2),
        "resumed_from_epoch": result.resumed_from_epoch,
        "dataset_hash": summary["dataset_hash"],
        "images": counts,
    }
