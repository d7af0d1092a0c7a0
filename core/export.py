"""Dataset export: TFRecord (OD API), Pascal VOC, CSV and COCO, streamed from the database.

Only ground truth leaves: images whose status is ``done`` or ``no_objects`` (an image
marked done with zero boxes, or no_objects, is exported on purpose as a negative
example). Before writing, images without a split get one (:mod:`core.splits`); a split,
once given, never changes, so the test set is the same in every export.

Memory stays flat as the dataset grows: images are read from the database in chunks of
:data:`CHUNK` (keyset pagination), each image file is read, written and dropped, COCO's
JSON is written as it goes, and zips are written entry by entry to disk.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, bindparam, func, select
from sqlalchemy.orm import Session

from core.boxes import Box
from core.settings import Settings
from core.splits import DEFAULT_FRACTIONS, EXPORTABLE_STATUSES, SPLITS, assign_splits, check_fractions
from db.engine import read_scope, session_scope
from db.models import Box as BoxRow
from db.models import Image, Label, Project

FORMATS: tuple[str, ...] = ("tfrecord", "voc", "csv", "coco")
CHUNK = 500  # images per database round trip (their rows and boxes: a few hundred kB)
IMAGES_PER_SHARD = 1000  # default shard size: a few hundred MB of phone photos per file
Progress = Callable[[int, int, str], None]


class ExportError(ValueError):
    """An export that cannot be made (the message says why)."""


@dataclass(frozen=True)
class ExportObject:
    """A box of an exported image, in original-image pixels."""

    box: Box
    label: str
    label_index: int  # 1-based, label order


@dataclass
class ExportImage:
    """One image as the writers see it."""

    id: int
    name: str  # file name inside the export (unique, flat)
    original_name: str
    sha256: str
    stored_path: str
    width: int
    height: int
    split: str
    attributes: dict[str, Any]
    objects: list[ExportObject] = field(default_factory=list)


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


def _unique_names(session: Session, project_id: int) -> dict[int, str]:
    """Export file name per exportable image, unique by stem (VOC ids are stems)."""
    rows = session.execute(
        select(Image.id, Image.original_name, Image.stored_path)
        .where(Image.project_id == project_id, Image.status.in_(EXPORTABLE_STATUSES))
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


# One exportable image as the database gives it: id, original name, sha256, stored path, width,
# height, attributes, and its boxes as (label id, x_min, y_min, x_max, y_max) tuples in pixels.
ImageRow = tuple[int, str, str, str, int, int, dict[str, Any] | None, list[tuple[int, float, float, float, float]]]


def iter_image_rows(session: Session, project_id: int, split: str) -> Iterator[ImageRow]:
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
            Image.status.in_(EXPORTABLE_STATUSES),
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
    session: Session, project_id: int, split: str, names: dict[int, str], label_index: dict[int, tuple[str, int]]
) -> Iterator[ExportImage]:
    """Streams the exportable images of one split with their boxes, CHUNK at a time."""
    for image_id, original, sha, stored, w, h, attrs, boxes in iter_image_rows(session, project_id, split):
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


# --- output sinks: a folder, or a zip written entry by entry -------------------------------------------------


class FolderSink:
    """Writes export files below a folder."""

    def __init__(self, root: Path) -> None:
        """Creates the folder."""
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def copy_file(self, rel: str, source: Path) -> None:
        """Copies a file in (the kernel copies; nothing is held in memory)."""
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)

    @contextmanager
    def open_text(self, rel: str) -> Iterator[IO[str]]:
        """A text file to write into."""
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", encoding="utf-8", newline="") as fh:
            yield fh

    def write_text(self, rel: str, text: str) -> None:
        """Writes a small text file."""
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")

    def close(self) -> None:
        """Nothing to finish for a folder."""


class ZipSink:
    """Writes export files into a zip, one entry at a time (ZIP64, images stored, text deflated)."""

    def __init__(self, path: Path) -> None:
        """Opens the zip for writing (replacing an existing file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.zf = zipfile.ZipFile(path, "w", allowZip64=True)

    def copy_file(self, rel: str, source: Path) -> None:
        """Streams a file in, uncompressed: JPEG and PNG do not shrink further."""
        self.zf.write(source, rel, compress_type=zipfile.ZIP_STORED)

    @contextmanager
    def open_text(self, rel: str) -> Iterator[IO[str]]:
        """A text entry to write into, deflated.

        A zip takes one entry at a time, while a split's list or a COCO file is written
        alongside its images; so the text goes to a scratch file first and is streamed
        in when it is complete.
        """
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", newline="", suffix=".txt", dir=self.path.parent) as fh:
            yield fh
            fh.flush()
            self.zf.write(fh.name, rel, compress_type=zipfile.ZIP_DEFLATED)

    def write_text(self, rel: str, text: str) -> None:
        """Writes a small text entry, deflated."""
        self.zf.writestr(rel, text.encode("utf-8"), compress_type=zipfile.ZIP_DEFLATED)

    def close(self) -> None:
        """Writes the central directory."""
        self.zf.close()


Sink = FolderSink | ZipSink


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
        fmt: One of :data:`FORMATS`.
        out_dir: Output folder (created; must be empty or absent), or with ``archive``
            the zip file to write.
        fractions: Train/val/test shares for images that have no split yet.
        seed: Seed for placing those images.
        num_shards: TFRecord shards per split; default one per :data:`IMAGES_PER_SHARD` images.
        progress: Called with (images written, images in total, message).
        archive: Write one zip file at ``out_dir`` instead of a folder.

    Returns:
        A summary: format, path, image and box counts, images per split, newly placed
        images per split, files written, bytes.

    Raises:
        ExportError: Unknown format, bad fractions, non-empty output folder, no labels.
    """
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ExportError(f"Unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}.")
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
        new_splits = assign_splits(session, project_id, fractions, seed)
    notify = progress or (lambda done, total, message: None)
    # Only reads, for as long as the files take to write: a read scope holds up no one (on
    # SQLite a unit of work would hold the write lock throughout, and the job's own
    # progress writes, from another session, would wait for it).
    with read_scope(engine) as session:
        project = session.get(Project, project_id)
        if project is None:
            raise ExportError(f"No project #{project_id}.")
        labels = list(session.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.order)))
        label_names = [lab.name for lab in labels]
        label_index = {lab.id: (lab.name, i) for i, lab in enumerate(labels, start=1)}
        names = _unique_names(session, project_id)
        per_split = dict(
            session.execute(
                select(Image.split, func.count())
                .where(Image.project_id == project_id, Image.status.in_(EXPORTABLE_STATUSES))
                .group_by(Image.split)
            ).all()
        )
        counts = {s.value: int(per_split.get(s, 0)) for s in SPLITS}
        total = sum(counts.values())
        state = _State(total=total, notify=notify)
        notify(0, total, "starting")

        def images(split: str) -> Iterator[ExportImage]:
            for img in iter_images(session, project_id, split, names, label_index):
                yield img
                state.step(img)

        if fmt == "tfrecord":

            def rows(split: str) -> Iterator[tuple[str, ImageRow]]:
                for row in iter_image_rows(session, project_id, split):
                    yield names[row[0]], row
                    state.step_row(names[row[0]], len(row[7]))

            files = _export_tfrecord(settings, out_dir, archive, label_index, counts, rows, num_shards)
        else:
            sink: Sink = ZipSink(out_dir) if archive else FolderSink(out_dir)
            try:
                writer = {"voc": _write_voc, "csv": _write_csv, "coco": _write_coco}[fmt]
                files = writer(settings, sink, label_names, counts, images)
            finally:
                sink.close()
    notify(total, total, "done")
    size = out_dir.stat().st_size if archive else sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    return {
        "format": fmt,
        "path": str(out_dir),
        "archive": archive,
        "images": total,
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


ImagesOf = Callable[[str], Iterator[ExportImage]]


def _export_tfrecord(
    settings: Settings,
    out: Path,
    archive: bool,
    label_index: dict[int, tuple[str, int]],
    counts: dict[str, int],
    rows_of: Callable[[str], Iterator[tuple[str, ImageRow]]],
    num_shards: int | None,
) -> list[str]:
    # TensorFlow is imported only for this format: a VOC export never pays for it.
    from core.formats.label_map import write_label_map
    from core.formats.tfrecord import DEFAULT_VIEW, example_head, image_format, open_record_writer, shard_name

    label_names = [name for name, _ in sorted(label_index.values(), key=lambda item: item[1])]
    text_of = {label_id: name for label_id, (name, _) in label_index.items()}
    index_of = {label_id: index for label_id, (_, index) in label_index.items()}
    view = DEFAULT_VIEW.decode("ascii")
    data_dir = str(settings.data_dir)
    if archive:
        # The scratch folder goes beside the zip, so the output's folder must exist first (the
        # Export page writes to <data dir>/exports/, which a fresh install does not have).
        out.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".tfrecord-", dir=out.parent))
    else:
        folder = out
        folder.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    try:
        write_label_map(label_names, folder / "label_map.pbtxt")
        files.append("label_map.pbtxt")
        for split in (s.value for s in SPLITS):
            n = num_shards or max(1, math.ceil(counts[split] / IMAGES_PER_SHARD))
            shard_files = [shard_name(split, i, n) for i in range(n)]
            writers = [open_record_writer(folder / f) for f in shard_files]
            try:
                # The hot loop: per image one file read, one head of a few hundred bytes built from
                # the row's tuples, and one write of head and image bytes as they are (no joined copy).
                for i, (name, row) in enumerate(rows_of(split)):
                    image_id, _original, sha, stored, width, height, attrs, boxes = row
                    encoded = _read_file(os.path.join(data_dir, stored))  # no Path per image: hot loop
                    k = len(boxes)
                    head = example_head(
                        len(encoded),
                        image_format(encoded),
                        width,
                        height,
                        name,
                        str(image_id),
                        # The content hash taken at upload: the stored file's own hash whenever it
                        # was kept byte for byte (every JPEG and PNG that needed no conversion),
                        # and a unique key either way, which is what the OD API uses it for.
                        sha,
                        [b[1:] for b in boxes],
                        tuple([text_of[b[0]] for b in boxes]),
                        tuple([index_of[b[0]] for b in boxes]),
                        (0,) * k,
                        # VOC's truncated flag as LabelImg users mean it: the box touches the edge.
                        tuple([int(b[1] <= 0 or b[2] <= 0 or b[3] >= width or b[4] >= height) for b in boxes]),
                        (view,) * k,
                        attrs,
                    )
                    writers[i % n].write(head, encoded)
            finally:
                # A second thread for the writes was tried: on these 2 shared cores it cost CPU
                # (about 0.5 s instead of 0.3 s per 2,000 images) and gained no wall time.
                for writer in writers:
                    writer.close()
            files.extend(shard_files)
        if archive:
            sink = ZipSink(out)
            try:
                for f in files:
                    sink.copy_file(f, folder / f)
            finally:
                sink.close()
    finally:
        if archive:
            shutil.rmtree(folder, ignore_errors=True)
    return files


def _read_file(path: str) -> bytes:
    """A whole file's bytes: os.open/fstat/read, without the buffered file object open() builds per call."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        data = os.read(fd, size)
        if len(data) < size:  # a short read: read on to the end
            chunks = [data]
            while chunk := os.read(fd, max(size, 1 << 16)):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)


def _truncated(box: Box, img: ExportImage) -> int:
    """VOC's truncated flag as LabelImg users mean it: the box touches the image edge."""
    return int(box.x_min <= 0 or box.y_min <= 0 or box.x_max >= img.width or box.y_max >= img.height)


def _write_voc(
    settings: Settings, sink: Sink, label_names: list[str], counts: dict[str, int], images: ImagesOf
) -> list[str]:
    from core.formats.voc import VocObject, format_voc_xml

    files: list[str] = []
    sink.write_text("labels.txt", "".join(f"{n}\n" for n in label_names))
    files.append("labels.txt")
    for split in (s.value for s in SPLITS):
        rel_list = f"ImageSets/Main/{split}.txt"
        with sink.open_text(rel_list) as listing:
            for img in images(split):
                stem = posixpath.splitext(img.name)[0]
                sink.copy_file(f"JPEGImages/{img.name}", settings.data_dir / img.stored_path)
                xml = format_voc_xml(
                    filename=img.name,
                    width=img.width,
                    height=img.height,
                    objects=[VocObject(o.box, o.label, truncated=_truncated(o.box, img)) for o in img.objects],
                    attributes=img.attributes,
                )
                sink.write_text(f"Annotations/{stem}.xml", xml)
                listing.write(stem + "\n")
        files.append(rel_list)
    return files


def _write_csv(
    settings: Settings, sink: Sink, label_names: list[str], counts: dict[str, int], images: ImagesOf
) -> list[str]:
    from core.formats.csv_boxes import CSV_HEADER, csv_rows

    import csv

    files: list[str] = []
    for split in (s.value for s in SPLITS):
        rel = f"{split}_labels.csv"
        with sink.open_text(rel) as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(CSV_HEADER)
            for img in images(split):
                sink.copy_file(f"images/{img.name}", settings.data_dir / img.stored_path)
                w.writerows(csv_rows(img.name, img.width, img.height, [(o.box, o.label) for o in img.objects]))
        files.append(rel)
    return files


def _write_coco(
    settings: Settings, sink: Sink, label_names: list[str], counts: dict[str, int], images: ImagesOf
) -> list[str]:
    from core.formats.coco import coco_annotation, coco_categories, coco_image

    files: list[str] = []
    categories = coco_categories(label_names)
    ann_id = 0
    for split in (s.value for s in SPLITS):
        rel = f"annotations/instances_{split}.json"
        # Annotations go to a scratch file while the image list streams out, then follow it.
        with tempfile.TemporaryFile("w+", encoding="utf-8") as anns, sink.open_text(rel) as fh:
            fh.write('{"info": {"description": "Tagrack export", "version": "1.0"}, "licenses": [], ')
            fh.write('"categories": ' + json.dumps(categories) + ', "images": [')
            first_image, first_ann = True, True
            for img in images(split):
                sink.copy_file(f"images/{img.name}", settings.data_dir / img.stored_path)
                entry = coco_image(img.id, img.name, img.width, img.height, img.attributes, split)
                fh.write(("" if first_image else ", ") + json.dumps(entry))
                first_image = False
                for o in img.objects:
                    ann_id += 1
                    ann = coco_annotation(ann_id, img.id, o.label_index, o.box)
                    anns.write(("" if first_ann else ", ") + json.dumps(ann))
                    first_ann = False
            fh.write('], "annotations": [')
            anns.seek(0)
            shutil.copyfileobj(anns, fh)
            fh.write("]}\n")
        files.append(rel)
    return files


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
