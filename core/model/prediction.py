"""The prediction store: a model version run over stored images, every box kept with its score.

Boxes are in **original-image pixels** (what :class:`core.model.detector.predict.Detector` returns
and what :class:`db.models.Prediction` holds). Predictions of earlier model versions stay
in the table, so the review page and the evaluation page can compare versions; running the
same version again over an image replaces that version's boxes for that image only.

Long runs go through the ``predict`` job (:data:`JOB_KIND`, a detached worker with progress);
``python -m core predict --model-version ID --images unlabelled|all|split:NAME`` queues and
runs the same job.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from core.jobs import JobContext, JobError
from core.settings import Settings
from db.engine import session_scope
from db.models import Image, ImageStatus, Label, ModelVersion, Prediction, Split

JOB_KIND = "predict"
# Which images a predict run covers: the unlabelled ones (new), all, or one split ("split:test").
IMAGE_SETS = ("unlabelled", "all")


class PredictionError(JobError):
    """A prediction request that cannot run (the message says why)."""


def select_images(session: Session, project_id: int, which: str) -> list[int]:
    """Ids of the project's images a predict run covers, in id order.

    Args:
        session: Open session.
        project_id: The project.
        which: ``"unlabelled"`` (status new), ``"all"``, or ``"split:train|val|test"``.

    Raises:
        PredictionError: An unknown image set.
    """
    stmt = select(Image.id).where(Image.project_id == project_id)
    if which == "unlabelled":
        stmt = stmt.where(Image.status == ImageStatus.NEW)
    elif which.startswith("split:"):
        name = which.split(":", 1)[1]
        if name not in {s.value for s in Split}:
            raise PredictionError(f"Unknown split {name!r}; use one of: {', '.join(s.value for s in Split)}.")
        stmt = stmt.where(Image.split == Split(name))
    elif which != "all":
        raise PredictionError(f"Unknown image set {which!r}; use unlabelled, all or split:train|val|test.")
    return list(session.scalars(stmt.order_by(Image.id)))


def _version(session: Session, model_version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, model_version_id)
    if version is None:
        raise PredictionError(f"No model version #{model_version_id}.")
    return version


def predict_images(
    engine: Engine,
    settings: Settings,
    model_version_id: int,
    image_ids: Sequence[int],
    *,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Runs a model version over stored images and stores every prediction.

    Each batch is committed on its own, so a cancelled or crashed run keeps what it
    finished. The model's class names are matched to the project's labels by name; a
    class the project no longer has is dropped (logged through the count only).

    Args:
        engine: Database engine.
        settings: Where the images and models live.
        model_version_id: The model version.
        image_ids: Images of the version's project.
        batch_size: Images per forward pass.
        progress: Called with (images done, total) after each batch.

    Returns:
        The number of predictions stored.

    Raises:
        PredictionError: Unknown model version, or an image of another project.
    """
    from core.model.detector.predict import Detector
    from core.model.training import model_file
    from core.project.imagestore import ImageStore

    with session_scope(engine) as session:
        version = _version(session, model_version_id)
        project_id, path = version.project_id, model_file(settings, version)
        label_ids = {
            name: lid
            for lid, name in session.execute(select(Label.id, Label.name).where(Label.project_id == project_id))
        }
    if not path.exists():
        raise PredictionError(f"Model version #{model_version_id}'s file {path} is missing.")
    detector = Detector.load(path, batch_size=batch_size)
    store = ImageStore(settings.data_dir)
    total, stored = len(image_ids), 0
    for start in range(0, total, batch_size):
        chunk = list(image_ids[start : start + batch_size])
        with session_scope(engine) as session:
            rows = session.execute(
                select(Image.id, Image.stored_path, Image.project_id).where(Image.id.in_(chunk))
            ).all()
        by_id = {r.id: r for r in rows}
        missing = [i for i in chunk if i not in by_id or by_id[i].project_id != project_id]
        if missing:
            raise PredictionError(f"Images {missing} are not images of model version #{model_version_id}'s project.")
        pictures = []
        for image_id in chunk:
            with store.open(by_id[image_id].stored_path) as im:
                pictures.append(im.convert("RGB"))
        results = detector.predict(pictures)
        with session_scope(engine) as session:
            session.execute(
                delete(Prediction).where(
                    Prediction.model_version_id == model_version_id, Prediction.image_id.in_(chunk)
                )
            )
            for image_id, dets in zip(chunk, results, strict=True):
                for d in dets:
                    label_id = label_ids.get(d.label)
                    if label_id is None:
                        continue
                    b = d.box
                    session.add(
                        Prediction(
                            model_version_id=model_version_id,
                            image_id=image_id,
                            label_id=label_id,
                            **b.as_columns(),
                            score=d.score,
                        )
                    )
                    stored += 1
        if progress is not None:
            progress(min(start + batch_size, total), total)
    return stored


def predict_params(model_version_id: int, images: str = "unlabelled", batch_size: int = 8, **extra: Any) -> dict:
    """Parameters of a predict job."""
    return {"model_version_id": model_version_id, "images": images, "batch_size": batch_size, **extra}


def start_prediction(engine: Engine, settings: Settings, params: dict[str, Any]) -> int:
    """Creates and launches a predict job (one per project at a time); returns its id."""
    from core.jobs import create_job, launch

    with session_scope(engine) as session:
        project_id = _version(session, int(params["model_version_id"])).project_id
        job_id = create_job(session, JOB_KIND, params, project_id=project_id, exclusive=True).id
    launch(settings, job_id, engine)
    return job_id


def predict_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """The ``predict`` job handler (registered in :data:`core.jobs.HANDLERS`)."""
    version_id = int(params["model_version_id"])
    with session_scope(ctx.engine) as session:
        version = _version(session, version_id)
        image_ids = select_images(session, version.project_id, str(params.get("images", "unlabelled")))
        project_id, name = version.project_id, version.name
    ctx.log(f"predicting {len(image_ids)} images with model version #{version_id} ({name})")
    ctx.progress(0, len(image_ids), "loading the model")

    def on_progress(done: int, total: int) -> None:
        ctx.progress(done, total, f"{done}/{total} images")

    n = predict_images(
        ctx.engine,
        ctx.settings,
        version_id,
        image_ids,
        batch_size=int(params.get("batch_size", 8)),
        progress=on_progress,
    )
    with session_scope(ctx.engine) as session:
        from core.project.projects import record_activity

        record_activity(
            session,
            project_id,
            "predict",
            f"model {name} predicted {n} boxes on {len(image_ids)} images",
            params.get("who"),
        )
    return {"model_version_id": version_id, "images": len(image_ids), "predictions": n}
