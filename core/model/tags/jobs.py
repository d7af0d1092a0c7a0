"""The tags model's jobs: ``train-tags``, ``predict-tags`` and ``evaluate-tags``.

``train-tags`` reads the tagged images (:mod:`core.model.tags.data`), trains (:mod:`core.model.tags.train`)
in ``<jobs_dir>/train-tags-<job id>/`` (a resume reuses the folder of the job it resumes), fits one
temperature per head on the validation split, evaluates on the test split and registers a
``ModelVersion(kind=TAGS)`` whose params hold ``heads`` and ``temperatures`` (the convention) and whose
metrics hold the evaluation. The model goes to ``<models_dir>/project-<id>/v<version id>/``.

``predict-tags`` writes one :class:`db.models.TagPrediction` per (version, image, tag), replacing the
version's earlier rows for those images.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import delete, select

from core.jobs import JobContext, JobError
from core.settings import Settings
from db.engine import session_scope, write_scope
from db.models import Image, Job, ModelKind, ModelVersion, Project, TagPrediction

TRAIN_KIND = "train-tags"
PREDICT_KIND = "predict-tags"
EVALUATE_KIND = "evaluate-tags"
AUTO = "auto"

# Defaults measured on clothing-catalogue (docs/benchmarks.md, "Tags model").
DEFAULTS: dict[str, Any] = {
    "budget_minutes": 15.0,
    "epochs": 60,
    "patience": 6,
    "image_size": 224,
    "weights": AUTO,
    "split_block": 13,
    "dropout": 0.2,
    "flip_average": True,
    "members": 3,
    "batch_size": 32,
    "learning_rate": 3e-4,
    "label_smoothing": 0.1,
    "balance": "weights",
    "balance_percentile": 50.0,
    "views": 2,
    "shift": True,
    "seed": 0,
}
MAX_MEMBERS = 8
SPEC_KEYS = ("image_size", "weights", "split_block", "dropout", "flip_average", "members")
CONFIG_KEYS = (
    "epochs",
    "budget_minutes",
    "patience",
    "batch_size",
    "learning_rate",
    "label_smoothing",
    "balance",
    "balance_percentile",
    "views",
    "shift",
    "seed",
)


class TagsJobError(JobError):
    """A tags training or prediction request that cannot run (the message says why)."""


def tags_train_params(project_id: int, **overrides: Any) -> dict[str, Any]:
    """Job parameters: :data:`DEFAULTS` with ``overrides`` (None ignored; budget/patience <= 0 mean off)."""
    params = dict(DEFAULTS, project_id=project_id)
    params.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("budget_minutes", "patience"):
        if params.get(key) is not None and params[key] <= 0:
            params[key] = None
    if params["balance"] not in ("weights", "oversample", "none"):
        raise TagsJobError(f"balance must be weights, oversample or none, not {params['balance']!r}.")
    if params["views"] not in (1, 2, 4):
        raise TagsJobError(f"views must be 1, 2 or 4, not {params['views']!r}.")
    if not isinstance(params["members"], int) or not 1 <= params["members"] <= MAX_MEMBERS:
        raise TagsJobError(f"members must be a whole number from 1 to {MAX_MEMBERS}, not {params['members']!r}.")
    return params


def resolve_tags_weights(settings: Settings, weights: str) -> str:
    """``"auto"``: the offline ImageNet weights when prepared, else random (said in the log)."""
    if weights != AUTO:
        return weights
    from core.model.pretrained.offline_weights import cache_dir_for, is_prepared

    return "imagenet-offline" if is_prepared(cache_dir_for(settings.data_dir)) else "none"


def tags_resume_params(session: Any, job_id: int) -> dict[str, Any]:
    """Parameters of a job resuming train-tags job ``job_id`` from its work folder.

    Raises:
        TagsJobError: No such job, still active, or it finished.
    """
    old = session.get(Job, job_id)
    if old is None or old.kind != TRAIN_KIND:
        raise TagsJobError(f"No tags training job #{job_id}.")
    if not old.status.is_final:
        raise TagsJobError(f"Tags training job #{job_id} is still {old.status.value}.")
    if old.result and old.result.get("model_version_id"):
        raise TagsJobError(f"Tags training job #{job_id} finished; nothing to resume.")
    return {**{k: v for k, v in old.params.items() if k != "resume_job"}, "resume_job": job_id}


def train_tags_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The ``train-tags`` job handler."""
    from core.model.pretrained.offline_weights import cache_dir_for
    from core.model.tags.calibration import calibrate_heads
    from core.model.tags.data import TagsDataError, load_tags_data
    from core.model.tags.evaluation import evaluate_heads, headline
    from core.model.tags.model import TagsSpec, compose, save_version
    from core.model.tags.train import TagsTrainConfig, train_tags

    project_id = int(params["project_id"])
    work_dir = Path(params.get("work_dir") or ctx.settings.jobs_dir / f"train-tags-{ctx.job_id}")
    params = {**params, "weights": resolve_tags_weights(ctx.settings, str(params.get("weights", AUTO)))}
    with write_scope(ctx.engine) as session:
        job = session.get(Job, ctx.job_id)
        assert job is not None
        job.params = {**job.params, "work_dir": str(work_dir), "weights": params["weights"]}
        project = session.get(Project, project_id)
        if project is None:
            raise TagsJobError(f"No project #{project_id}.")
        project_name = project.name
        try:
            data = load_tags_data(session, project_id, ctx.settings.data_dir)
        except TagsDataError as exc:
            raise TagsJobError(str(exc)) from exc
    if params.get("resume_job"):
        ctx.log(f"resuming tags training job #{params['resume_job']} from {work_dir}")
    counts = data.counts()
    ctx.log(f"{counts} tagged images; heads {', '.join(f'{t} ({len(v)})' for t, v in data.heads.items())}")
    for tag, why in data.left_out.items():
        ctx.log(f"no head for {tag!r}: {why}")
    ctx.log(f"initial weights: {params['weights']}")
    train, val, test = data.subset("train"), data.subset("val"), data.subset("test")
    if not train.image_ids:
        raise TagsJobError("No tagged image is in the train split; tag more images.")
    spec = TagsSpec(heads=data.heads, **{k: params[k] for k in SPEC_KEYS if k in params})
    config = TagsTrainConfig.from_dict({k: params[k] for k in CONFIG_KEYS if k in params})
    last: dict[str, Any] = {}

    def on_progress(p: dict[str, Any]) -> None:
        last.update(p)
        if p["phase"] == "features":
            message = p.get("message", "")
        else:
            bits = [f"epoch {p.get('epoch')}"]
            if p.get("members"):
                bits.insert(0, f"model {p['member']} of {p['members']}")
            if p.get("loss") is not None:
                bits.append(f"loss {p['loss']:.3f}")
            if p.get("images_per_s"):
                bits.append(f"{p['images_per_s']:.0f} img/s")
            if p.get("eta_s") is not None:
                bits.append(f"budget left {p['eta_s'] / 60:.1f} min")
            message = " · ".join(bits)
        extra = {k: v for k, v in p.items() if k not in ("message", "step", "steps")}
        ctx.progress(p.get("step", 0), p.get("steps"), message, **extra)

    result = train_tags(
        spec,
        config,
        train,
        val if val.image_ids else None,
        work_dir,
        weights_dir=cache_dir_for(ctx.settings.data_dir),
        test=test if test.image_ids else None,
        on_progress=on_progress,
    )
    final = {k: v for k, v in last.items() if k not in ("message", "step", "steps")}
    ctx.progress(last.get("step", 0), last.get("steps"), "calibrating and evaluating", **{**final, "phase": "final"})
    # Calibrate on validation; with no validation split, on the training images (said in the metrics).
    if result.val_logits is not None:
        cal_logits, cal_data, cal_on = result.val_logits, val, "val"
    else:
        from core.model.tags.train import predict_logits

        train_feats = np.load(next((work_dir / "features").glob("train-*.npy")))
        cal_logits = predict_logits(result.top, train_feats, 2 if spec.flip_average else 1)
        cal_data, cal_on = train, "train"
    by_head_logits, by_head_labels = {}, {}
    for j, tag in enumerate(spec.heads):
        known = cal_data.labels[:, j] >= 0
        by_head_logits[tag], by_head_labels[tag] = cal_logits[j][known], cal_data.labels[known, j]
    spec.temperatures = calibrate_heads(by_head_logits, by_head_labels)
    metrics: dict[str, Any] = {"calibrated_on": cal_on}
    if result.val_logits is not None:
        metrics["val"] = evaluate_heads(result.val_logits, val.labels, spec.heads, val.image_ids, spec.temperatures)
    if result.test_logits is not None:
        metrics["test"] = evaluate_heads(result.test_logits, test.labels, spec.heads, test.image_ids, spec.temperatures)
    evaluated_on = "test" if "test" in metrics else ("val" if "val" in metrics else None)
    metrics.update(
        {
            **headline(metrics.get(evaluated_on, {}) if evaluated_on else {}),
            "evaluated_on": evaluated_on,
            "best_epoch": result.best_epoch,
            "history": result.history,
            "curve": result.curve,
            "images_per_s": round(result.images_per_s, 2),
            "feature_images_per_s": round(result.feature_images_per_s, 2),
            "stopped": result.stopped,
            "train_seconds": round(result.seconds, 1),
        }
    )
    model = compose(result.trunk, result.top, spec)
    with write_scope(ctx.engine) as session:
        n = session.scalar(
            select(ModelVersion.id).where(ModelVersion.project_id == project_id).order_by(ModelVersion.id.desc())
        )
        version = ModelVersion(
            project_id=project_id,
            kind=ModelKind.TAGS,
            job_id=ctx.job_id,
            name=params.get("name") or f"{project_name} tags v{(n or 0) + 1}",
            path="",
            params={
                **spec.to_dict(),
                **config.to_dict(),
                "images": counts,
                "known_per_head": data.known_per_head(),
                "heads_left_out": data.left_out,
                "resumed_from_epoch": result.resumed_from_epoch,
                "resumed_job": params.get("resume_job"),
            },
            metrics=metrics,
        )
        session.add(version)
        session.flush()
        target = ctx.settings.models_dir / f"project-{project_id}" / f"v{version.id}"
        if target.exists():
            shutil.rmtree(target)
        save_version(model, spec, target)
        version.path = str((target / "model.keras").relative_to(ctx.settings.data_dir))
        version_id, version_name = version.id, version.name
        from core.project.projects import record_activity

        top1 = metrics.get("top1")
        text = f"top-1 {top1:.3f} on {evaluated_on}" if top1 is not None else "no evaluation split"
        record_activity(session, project_id, "train", f"tags model {version_name} trained ({text})", params.get("who"))
    ctx.log(f"tags model version #{version_id} saved ({text})")
    return {
        "model_version_id": version_id,
        "top1": metrics.get("top1"),
        "top5": metrics.get("top5"),
        "ece_after": metrics.get("ece_after"),
        "best_epoch": result.best_epoch,
        "epochs_done": len(result.history),
        "stopped": result.stopped,
        "images": counts,
        "temperatures": spec.temperatures,
    }


def tags_version(session: Any, model_version_id: int) -> ModelVersion:
    """The tags model version, or a clear refusal."""
    version = session.get(ModelVersion, model_version_id)
    if version is None:
        raise TagsJobError(f"No model version #{model_version_id}.")
    if version.kind is not ModelKind.TAGS:
        raise TagsJobError(f"Model version #{model_version_id} is a {version.kind.value}, not a tags model.")
    return version


def predict_stored(
    engine: Any,
    settings: Settings,
    model_version_id: int,
    image_ids: list[int],
    batch_size: int = 32,
    progress: Any = None,
) -> int:
    """Runs a tags version over stored images; replaces its TagPrediction rows for them. Returns rows written."""
    from concurrent.futures import ThreadPoolExecutor

    from core.model.tags.data import load_image
    from core.model.tags.model import Tagger
    from core.model.training import model_file

    with session_scope(engine) as session:
        version = tags_version(session, model_version_id)
        path = model_file(settings, version)
        rows = session.execute(
            select(Image.id, Image.stored_path).where(Image.id.in_(image_ids), Image.project_id == version.project_id)
        ).all()
    stored = {i: settings.data_dir / p for i, p in rows}
    ids = [i for i in image_ids if i in stored]
    tagger = Tagger.load(path, batch_size=batch_size)
    written = 0
    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            images = np.stack(list(pool.map(lambda i: load_image(stored[i], tagger.spec.image_size), chunk)))
            probs = tagger.probabilities(images)
            with write_scope(engine) as session:
                session.execute(
                    delete(TagPrediction).where(
                        TagPrediction.model_version_id == model_version_id, TagPrediction.image_id.in_(chunk)
                    )
                )
                for r, image_id in enumerate(chunk):
                    for tag, values in tagger.spec.heads.items():
                        p = probs[tag][r]
                        k = int(p.argmax())
                        session.add(
                            TagPrediction(
                                model_version_id=model_version_id,
                                image_id=image_id,
                                tag=tag,
                                value=values[k],
                                confidence=round(float(p[k]), 6),
                                probabilities={v: round(float(p[c]), 6) for c, v in enumerate(values)},
                            )
                        )
                        written += 1
            if progress is not None:
                progress(min(start + batch_size, len(ids)), len(ids))
    return written


def predict_tags_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The ``predict-tags`` job handler: params ``model_version_id``, ``images`` (all, unlabelled, split:NAME)."""
    from core.model.prediction import PredictionError, select_images

    version_id = int(params["model_version_id"])
    with session_scope(ctx.engine) as session:
        version = tags_version(session, version_id)
        try:
            image_ids = select_images(session, version.project_id, str(params.get("images", "all")))
        except PredictionError as exc:
            raise TagsJobError(str(exc)) from exc
        project_id, name = version.project_id, version.name
    ctx.log(f"predicting tags of {len(image_ids)} images with model version #{version_id} ({name})")
    ctx.progress(0, len(image_ids), "loading the model")

    def on_progress(done: int, total: int) -> None:
        ctx.progress(done, total, f"{done}/{total} images")

    n = predict_stored(ctx.engine, ctx.settings, version_id, image_ids, int(params.get("batch_size", 32)), on_progress)
    with write_scope(ctx.engine) as session:
        from core.project.projects import record_activity

        record_activity(
            session, project_id, "predict", f"tags model {name} tagged {len(image_ids)} images", params.get("who")
        )
    return {"model_version_id": version_id, "images": len(image_ids), "tag_predictions": n}


def evaluate_tags_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The ``evaluate-tags`` job handler: the version on the project's current test split, stored in its metrics."""
    from core.model.tags.data import TagsDataError, load_image, load_tags_data
    from core.model.tags.evaluation import evaluate_heads, headline
    from core.model.tags.model import Tagger
    from core.model.training import model_file
    from db.queries import image_names

    version_id = int(params["model_version_id"])
    with write_scope(ctx.engine) as session:
        version = tags_version(session, version_id)
        path = model_file(ctx.settings, version)
        try:
            data = load_tags_data(session, version.project_id, ctx.settings.data_dir)
        except TagsDataError as exc:
            raise TagsJobError(str(exc)) from exc
    tagger = Tagger.load(path)
    test = data.subset("test")
    if not test.image_ids:
        raise TagsJobError("The project has no tagged image in the test split.")
    # The version's heads, in its order; labels of values it does not know count as unknown.
    labels = np.full((len(test.image_ids), len(tagger.spec.heads)), -1, dtype=np.int32)
    for j, (tag, values) in enumerate(tagger.spec.heads.items()):
        if tag in data.heads:
            src = data.heads[tag]
            col = test.labels[:, list(data.heads).index(tag)]
            mapping = np.array([values.index(v) if v in values else -1 for v in src] + [-1])
            labels[:, j] = mapping[col]  # -1 indexes the trailing -1
    logits: list[list[np.ndarray]] = [[] for _ in tagger.spec.heads]
    for start in range(0, len(test.paths), 32):
        images = np.stack([load_image(p, tagger.spec.image_size) for p in test.paths[start : start + 32]])
        for j, z in enumerate(tagger.logits(images)):
            logits[j].append(z)
        ctx.progress(min(start + 32, len(test.paths)), len(test.paths), "evaluating on the test split")
    per_head = evaluate_heads(
        [np.concatenate(z) for z in logits], labels, tagger.spec.heads, test.image_ids, tagger.spec.temperatures
    )
    with write_scope(ctx.engine) as session:
        version = tags_version(session, version_id)
        version.metrics = {**version.metrics, "test": per_head, **headline(per_head), "evaluated_on": "test"}
        names = image_names(session, {i["image_id"] for h in per_head.values() for i in h["labels_to_check"]})
    # The Evaluate page's "Labels to check", named, for the command line (``python -m core evaluate``).
    to_check = {
        tag: [{"image": names.get(i["image_id"]), **i} for i in head["labels_to_check"]]
        for tag, head in per_head.items()
    }
    return {"model_version_id": version_id, **headline(per_head), "labels_to_check": to_check}
