"""Dataset export in any format with a writer (:mod:`core.formats.registry`), streamed from the database.

Only ground truth leaves: images whose status is ``done`` or ``no_objects`` (an image
marked done with zero boxes, or no_objects, is exported on purpose as a negative
example). Before writing, images without a split get one (:mod:`core.project.splits`); a split,
once given, never changes, so the test set is the same in every export.

Memory stays flat as the dataset grows: images are read from the database in chunks of
:data:`CHUNK` (keyset pagination), each image file is read, written and dropped, COCO's
JSON is written as it goes, and zips are written entry by entry to disk.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.orm import Session

from core.accounts.review_stage import passes_review_stage
from core.boxes import Box
from core.dataset.items import ExportContext, ExportError, ExportImage, ExportObject, ImageRow
from core.formats import registry
from core.project.splits import (
    DEFAULT_FRACTIONS,
    EXPORTABLE_STATUSES,
    SPLITS,
    assign_splits,
    check_fractions,
    exportable_per_split,
)
from core.settings import Settings
from db.engine import read_scope, session_scope
from db.models import BoxRow, Image, ImageStatus, Label, Project

CHUNK = 500  # images per database round trip (their rows and boxes: a few hundred kB)
Progress = Callable[[int, int, str], None]


def _ext_of_stored(stored_path: str) -> str:
    return posixpath.splitext(stored_path)[1].lower() or ".jpg"


def export_file_name(original_name: str, stored_path: str) -> str:
    """A flat file name for the export: the original base name with the stored file's extension.

    Folders in the original name (zip uploads) are joined with ``__`` so that names stay
    unique once flattened; ``.jpeg`` stays ``.jpeg`` for a JPEG, other extensions that do
    not match the stored format are replaced.
    """
    flat = original_name.replace("\\", "/").strip("/").replace("/", "__") or "image"
    stem, ext = posixpath.splitext(flat)
    stored_ext = _ext_of_stored(stored_path)
    if ext.lower() in _SAME_EXT.get(stored_ext, (stored_ext,)):
        return flat
    return f"{flat if not ext else stem}{stored_ext}"


# Original extensions kept as they are for a stored format (.jpeg stays .jpeg for a JPEG).
_SAME_EXT = {".jpg": (".jpg", ".jpeg"), ".png": (".png",)}


def _unique_names(
    session: Session, project_id: int, statuses: Sequence[ImageStatus] = EXPORTABLE_STATUSES
) -> dict[int, str]:
    """Export file name per exportable image, unique by stem (VOC ids are stems)."""
    rows = session.execute(
        select(Image.id, Image.original_name, Image.stored_path)
        .where(Image.project_id == project_id, Image.status.in_(statuses), passes_review_stage())
        .order_by(Image.id)
    ).all()
    names: dict[int, str] = {}
    stems: set[str] = set()
    for image_id, original, stored in rows:
        name = export_file_name(original, stored)
        stem, ext = posixpath.splitext(name)
        if stem.lower() in stems:
            stem = f"{stem}-{image_id}"
            name = stem + ext
        stems.add(stem.lower())
        names[image_id] = name
    return names


def iter_image_rows(
    session: Session, project_id: int, split: str, statuses: Sequence[ImageStatus] = EXPORTABLE_STATUSES
) -> Iterator[ImageRow]:
    """Streams the exportable images of one split with their boxes as plain tuples, CHUNK at a time.

    Two queries per chunk (its images, then all their boxes in image order), run on the
    session's connection as Core statements: ORM row handling and one dataclass per box cost
    more than the queries themselves on a large export (benchmarks/export.py).
    """
    conn = session.connection()
    # Both statements are built once with bound parameters: building them per chunk cost as
    # much as running them.
    images = (
        select(
            Image.id,
            Image.original_name,
            Image.sha256,
            Image.stored_path,
            Image.width,
            Image.height,
            Image.attributes,
        )
        .where(
            Image.project_id == project_id,
            Image.status.in_(statuses),
            passes_review_stage(),
            Image.split == split,
            Image.id > bindparam("last"),
        )
        .order_by(Image.id)
        .limit(CHUNK)
    )
    boxes_of = (
        select(BoxRow.image_id, BoxRow.label_id, BoxRow.x_min, BoxRow.y_min, BoxRow.x_max, BoxRow.y_max)
        .where(BoxRow.image_id.in_(bindparam("ids", expanding=True)))
        .order_by(BoxRow.image_id, BoxRow.id)
    )
    last = 0
    while True:
        rows = conn.execute(images, {"last": last}).all()
        if not rows:
            return
        ids = [r[0] for r in rows]
        boxes: dict[int, list[tuple[int, float, float, float, float]]] = {i: [] for i in ids}
        for row in conn.execute(boxes_of, {"ids": ids}).all():  # all() at once: iterating fetches row by row
            boxes[row[0]].append(row[1:])
        for image_id, original, sha, stored, w, h, attrs in rows:
            yield image_id, original, sha, stored, w, h, attrs, boxes[image_id]
        last = ids[-1]


def iter_images(
    session: Session,
    project_id: int,
    split: str,
    names: dict[int, str],
    label_index: dict[int, tuple[str, int]],
    statuses: Sequence[ImageStatus] = EXPORTABLE_STATUSES,
) -> Iterator[ExportImage]:
    """Streams the exportable images of one split with their boxes, CHUNK at a time."""
    for image_id, original, sha, stored, w, h, attrs, boxes in iter_image_rows(session, project_id, split, statuses):
        objects = []
        for label_id, x0, y0, x1, y1 in boxes:
            name, index = label_index[label_id]
            objects.append(ExportObject(Box(x0, y0, x1, y1), name, index))
        yield ExportImage(
            id=image_id,
            name=names[image_id],
            original_name=original,
            sha256=sha,
            stored_path=stored,
            width=w,
            height=h,
            split=split,
            attributes=dict(attrs or {}),
            objects=objects,
        )


# --- the export -------------------------------------------------------------------------------------------------


def export_dataset(
    engine: Engine,
    settings: Settings,
    project_id: int,
    fmt: str,
    out_dir: Path,
    *,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    num_shards: int | None = None,
    progress: Progress | None = None,
    archive: bool = False,
) -> dict[str, Any]:
    """Exports a project's ground truth.

    Args:
        engine: Database engine.
        settings: Where the image blobs are.
        project_id: The project.
        fmt: A format with a writer in :mod:`core.formats.registry`.
        out_dir: Output folder (created; must be empty or absent), or with ``archive``
            the zip file to write.
        fractions: Train/val/test shares for images that have no split yet.
        seed: Seed for placing those images.
        num_shards: TFRecord shards per split; default one per :data:`core.formats.tfrecord.writer.IMAGES_PER_SHARD` images.
        progress: Called with (images written, images in total, message).
        archive: Write one zip file at ``out_dir`` instead of a folder.

    Returns:
        A summary: format, path, image and box counts, images per split, newly placed
        images per split, files written, bytes.

    Raises:
        ExportError: Unknown format, bad fractions, non-empty output folder, no labels.
    """
    fmt = fmt.lower()
    formats = registry.writers()
    if fmt not in formats:
        raise ExportError(f"Unknown export format {fmt!r}; choose one of {', '.join(formats)}.")
    writer = formats[fmt].writer
    assert writer is not None
    # Image-level tags are ground truth on any image that stores them, boxes or not: a tags format
    # gets every image and keeps the tagged ones.
    statuses = tuple(ImageStatus) if formats[fmt].ground_truth == "tags" else EXPORTABLE_STATUSES
    try:
        fractions = check_fractions(fractions)
    except ValueError as exc:
        raise ExportError(str(exc)) from exc
    if num_shards is not None and num_shards < 1:
        raise ExportError("The number of shards must be at least 1.")
    out_dir = Path(out_dir)
    if archive:
        if out_dir.suffix.lower() != ".zip":
            out_dir = out_dir.with_name(out_dir.name + ".zip")
        if out_dir.exists():
            raise ExportError(f"{out_dir} already exists; choose a new file name.")
    elif out_dir.exists() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir} is not empty; export into a new or empty folder.")

    with session_scope(engine) as session:
        new_splits = assign_splits(session, project_id, fractions, seed, statuses)
    notify = progress or (lambda done, total, message: None)
    # Only reads, for as long as the files take to write: a read scope holds up no one (the
    # job's own progress writes, from another session, never wait for it).
    with read_scope(engine) as session:
        project = session.get(Project, project_id)
        if project is None:
            raise ExportError(f"No project #{project_id}.")
        labels = list(session.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.order)))
        label_names = [lab.name for lab in labels]
        label_index = {lab.id: (lab.name, i) for i, lab in enumerate(labels, start=1)}
        names = _unique_names(session, project_id, statuses)
        per_split = exportable_per_split(session, project_id, statuses)
        counts = {s.value: int(per_split.get(s, 0)) for s in SPLITS}
        total = sum(counts.values())
        state = _State(total=total, notify=notify)
        notify(0, total, "starting")

        def images(split: str) -> Iterator[ExportImage]:
            for img in iter_images(session, project_id, split, names, label_index, statuses):
                yield img
                state.step(img)

        def rows(split: str) -> Iterator[tuple[str, ImageRow]]:
            for row in iter_image_rows(session, project_id, split, statuses):
                yield names[row[0]], row
                state.step_row(names[row[0]], len(row[7]))

        ctx = ExportContext(
            settings=settings,
            out=out_dir,
            archive=archive,
            label_names=label_names,
            label_index=label_index,
            counts=counts,
            images=images,
            rows=rows,
            num_shards=num_shards,
            attribute_schema=dict(project.attribute_schema or {}),
        )
        files = writer(ctx)
    notify(total, total, "done")
    size = out_dir.stat().st_size if archive else sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    return {
        "format": fmt,
        "path": str(out_dir),
        "archive": archive,
        "images": total if ctx.written is None else ctx.written,
        "boxes": state.boxes,
        "splits": counts,
        "new_splits": new_splits,
        "labels": label_names,
        "files": files,
        "bytes": size,
    }


@dataclass
class _State:
    total: int
    notify: Progress
    done: int = 0
    boxes: int = 0

    def step(self, img: ExportImage) -> None:
        self.step_row(img.name, len(img.objects))

    def step_row(self, name: str, boxes: int) -> None:
        self.done += 1
        self.boxes += boxes
        self.notify(self.done, self.total, name)


# --- the background job -----------------------------------------------------------------------------------------


def export_job(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler: exports a project to a zip under ``<data dir>/exports`` for download.

    Params: ``project_id``, ``format``, optional ``fractions``, ``seed``, ``num_shards``,
    ``out`` (the zip path; default a fresh name under the exports folder).
    """
    from datetime import UTC, datetime

    fmt = str(params["format"])
    project_id = int(params["project_id"])
    out = params.get("out")
    if out is None:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        out = ctx.settings.data_dir / "exports" / f"project{project_id}-{fmt}-{stamp}-job{ctx.job_id}.zip"
    result = export_dataset(
        ctx.engine,
        ctx.settings,
        project_id,
        fmt,
        Path(out),
        fractions=tuple(params.get("fractions", DEFAULT_FRACTIONS)),  # type: ignore[arg-type]
        seed=int(params.get("seed", 0)),
        num_shards=params.get("num_shards"),
        progress=lambda done, total, message: ctx.progress(done, total, message),
        archive=True,
    )
    ctx.log(f"export written: {result['path']} ({result['images']} images, {result['bytes'] / 1e6:.1f} MB)")
    return result
