"""The ``export-model`` job: a model version -> a checked deployment zip, recorded in ``model_export``.

Steps: load the Keras model (a missing or damaged file is refused with a message), write the
format's artefact (int8 calibrated on up to 300 of the project's training images), run the
project's test split through the artefact in its own runtime and through the Keras model,
compare (:mod:`core.model.export.check`), and zip it with its README and example script into
``<data-dir>/exports/model-<id>/``. One row per (model version, format): a new export of the same
pair replaces it. ``python -m core export-model`` runs the same job and copies the zip to OUT.

Model kinds plug in through :data:`KIND_FORMATS`: the detector today, the tags classifier later.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from core.jobs import JobContext, create_job
from core.model.export.formats import FORMATS, ExportError, deploy_format
from core.settings import Settings
from db.engine import session_scope
from db.models import Image, ModelExport, ModelKind, ModelVersion, Split

JOB_KIND = "export-model"
KERAS_BATCH = 8  # images per Keras call in the check (the Detector's batch size)
# Which formats each model kind exports to.
KIND_FORMATS: dict[ModelKind, tuple[str, ...]] = {ModelKind.DETECTOR: tuple(FORMATS)}

Progress = Callable[[int, int, str], None]


def export_params(model_version_id: int, fmt: str, out: str | None = None) -> dict[str, Any]:
    """The job's parameters (``out``: also copy the zip there)."""
    deploy_format(fmt)
    return {"model_version_id": int(model_version_id), "format": fmt, "out": out}


def start_export(session: Session, model_version_id: int, fmt: str) -> int:
    """Queues an export job for a model version (the caller commits and launches); returns its id."""
    version = session.get(ModelVersion, model_version_id)
    if version is None:
        raise ExportError(f"No model version #{model_version_id}.")
    return create_job(session, JOB_KIND, export_params(model_version_id, fmt), version.project_id).id


def zip_path(settings: Settings, row: ModelExport) -> Path:
    """The absolute path of an export's zip."""
    return settings.data_dir / row.path


def exports_of(session: Session, model_version_id: int) -> list[ModelExport]:
    """A model version's exports, by format."""
    rows = session.scalars(select(ModelExport).where(ModelExport.model_version_id == model_version_id))
    return sorted(rows, key=lambda r: list(FORMATS).index(r.format) if r.format in FORMATS else 99)


def _load(settings: Settings, version: ModelVersion) -> tuple[Any, Any, Path]:
    """The Keras detector and its spec; a clear error when the weights file is missing or damaged."""
    from core.model.detector.predict import Detector
    from core.model.training import model_file

    path = model_file(settings, version)
    if not path.is_file():
        raise ExportError(
            f"Model version #{version.id}'s weights file {path} is missing; restore it from a backup or train again."
        )
    try:
        # flip=False: the artefact is the model's single pass (a version with test-time flip fuses a
        # mirrored pass only inside Tagrack), so the check compares it with Keras' single pass.
        detector = Detector.load(path, flip=False)
    except Exception as exc:  # a truncated zip, a wrong file: Keras raises many kinds
        raise ExportError(
            f"Model version #{version.id}'s weights file {path} cannot be read ({type(exc).__name__}: {exc}); "
            "it is damaged or truncated. Restore it from a backup or train again."
        ) from exc
    return detector, detector.spec, path


def _images(settings: Settings, rows: list[tuple[int, str]]) -> Iterator[tuple[int, bytes, np.ndarray]]:
    import io

    from PIL import Image as PILImage

    from core.project.imagestore import ImageStore

    store = ImageStore(settings.data_dir)
    for image_id, stored in rows:
        data = store.read_bytes(stored)
        with PILImage.open(io.BytesIO(data)) as im:
            yield image_id, data, np.asarray(im.convert("RGB"))


def export_model_version(
    engine: Engine,
    settings: Settings,
    model_version_id: int,
    fmt_name: str,
    *,
    job_id: int | None = None,
    progress: Progress | None = None,
    keras_cache: dict[int, list[Any]] | None = None,
) -> dict[str, Any]:
    """Exports, checks and zips one model version in one format; records it. Returns the stored figures.

    ``keras_cache`` (image id -> the Keras model's detections), when given, is read and filled, so
    that exporting one version to several formats in a row runs the Keras model once per image.

    Raises:
        ExportError: Unknown version or format, a kind without this export, a missing or damaged
            weights file, no annotated test images to check on.
    """
    from core.model.evaluation import load_boxes, test_image_ids
    from core.model.export import check, detector, package

    def say(done: int, total: int, message: str) -> None:
        if progress is not None:
            progress(done, total, message)

    fmt = deploy_format(fmt_name)
    with session_scope(engine) as session:
        version = session.get(ModelVersion, model_version_id)
        if version is None:
            raise ExportError(f"No model version #{model_version_id}.")
        if fmt.name not in KIND_FORMATS.get(version.kind, ()):
            raise ExportError(
                f"Model version #{model_version_id} is a {version.kind.value} model: no {fmt.name} export."
            )
        project_id, name = version.project_id, version.name
        test_ids = test_image_ids(session, project_id)
        if not test_ids:
            raise ExportError(
                "The project has no annotated test images: the export is checked against the Keras model on them. "
                "Annotate some images of the test split first."
            )
        gts, _ = load_boxes(session, project_id, model_version_id, test_ids)
        paths = dict(session.execute(select(Image.id, Image.stored_path).where(Image.id.in_(test_ids))).tuples().all())
        train_rows = session.execute(
            select(Image.id, Image.stored_path)
            .where(Image.project_id == project_id, Image.split == Split.TRAIN)
            .order_by(Image.id)
        ).all()
        keras_detector, spec, _ = _load(settings, version)
    # Evenly spread over the training split, at most CALIBRATION_IMAGES of them.
    step = max(1, -(-len(train_rows) // detector.CALIBRATION_IMAGES))
    calibration_rows = [(r[0], r[1]) for r in train_rows[::step]]

    def calibration() -> Iterator[np.ndarray]:
        for _, _, array in _images(settings, calibration_rows):
            yield detector.letterbox_uint8(array, spec)[0]

    total = len(test_ids)
    with tempfile.TemporaryDirectory(prefix="tagrack-export-") as tmp:
        say(0, total, f"writing {fmt.name}")
        artefact = detector.write_artefact(keras_detector.model, spec, fmt, Path(tmp), calibration)
        runner = detector.load_runner(fmt, artefact, spec)
        keras_dets, export_dets = [], []
        rows = [(t, paths[t]) for t in test_ids]
        for start in range(0, total, KERAS_BATCH):
            chunk = list(_images(settings, rows[start : start + KERAS_BATCH]))
            cache = keras_cache if keras_cache is not None else {}
            todo = [(image_id, array) for image_id, _, array in chunk if image_id not in cache]
            if todo:  # the Keras detector pads every call to its batch size: one call per chunk
                found = keras_detector.predict([array for _, array in todo])
                cache.update({image_id: dets for (image_id, _), dets in zip(todo, found, strict=True)})
            keras_dets.extend(cache[image_id] for image_id, _, _ in chunk)
            export_dets.extend(runner.predict([(data, array) for _, data, array in chunk]))
            say(start + len(chunk), total, f"checking {fmt.name} against Keras on the test split")
        figures = check.compare(gts, test_ids, keras_dets, export_dets, list(spec.class_names), fmt.precision)
        figures["format"] = fmt.name
        relative = Path("exports") / f"model-{model_version_id}" / f"model-{model_version_id}-{fmt.name}.zip"
        final = package.write_zip(settings.data_dir / relative, artefact, fmt, spec, name, model_version_id, figures)
    size = final.stat().st_size
    with session_scope(engine) as session:
        session.execute(
            delete(ModelExport).where(ModelExport.model_version_id == model_version_id, ModelExport.format == fmt.name)
        )
        session.add(
            ModelExport(
                model_version_id=model_version_id,
                format=fmt.name,
                path=relative.as_posix(),
                size_bytes=size,
                check_result=figures,
                job_id=job_id,
            )
        )
    return {
        "model_version_id": model_version_id,
        "format": fmt.name,
        "zip": str(final),
        "bytes": size,
        "check": figures,
    }


def export_model_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler: ``params`` from :func:`export_params`."""

    def progress(done: int, total: int, message: str) -> None:
        ctx.check_cancelled()
        ctx.progress(done, total, message)

    result = export_model_version(
        ctx.engine,
        ctx.settings,
        int(params["model_version_id"]),
        params["format"],
        job_id=ctx.job_id,
        progress=progress,
    )
    if params.get("out"):
        out = Path(params["out"])
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result["zip"], out)
        result["out"] = str(out)
    return result
