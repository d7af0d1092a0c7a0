"""Importing image-level labels (tags): a CSV of labels or a folder-per-class tree, into ``Image.attributes``.

The readers are :func:`core.formats.tags_csv.read_labels` (CSV) and
:func:`core.formats.class_folders.read_tree` (folder or zip of ``class/image``); this module
stores what they yield:

- An image is found by its stored name (``Image.original_name``) or, when the record brings
  its bytes (a tree, or a CSV with ``images``), ingested through :func:`core.project.ingest.ingest_one`
  (decoded, checked, deduplicated by content: a photo already in the project gets the tags).
- Tags become STORED attributes (ground truth). A tag or value the project's schema lacks is
  added to the schema (the category is the tag ``category``), or with ``add_values=False``
  left out of that image with a message (its other tags still come in).
- Values are matched to the schema's ignoring case and surrounding spaces, and stored in the
  schema's spelling.
- Idempotent: an image that already stores every given tag with the same value is a duplicate;
  a stored value that differs is replaced (the file is the newer word) and the report says so.
- A bad record is reported with its reason and the rest come in; images' box status is untouched.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, text

from core.dataset.files import Files
from core.dataset.importer import ImportReport, store_in_batches
from core.dataset.items import AnnotationImportError, ImportOutcome, LabelRecord
from core.formats.class_folders import read_tree
from core.formats.tags_csv import read_labels
from core.project.decode import IngestError
from core.project.imagestore import ImageStore
from core.project.ingest import ingest_one
from core.project.projects import record_activity
from core.settings import Settings
from db.engine import session_scope, write_scope
from db.models import Image, Project

JOB_KIND = "import-labels"
CSV_SUFFIXES = (".csv", ".txt", ".tsv")


def tagged_image_count(session: Any, project_id: int) -> int:
    """Images that store at least one tag of the project's schema (what the tag exports take)."""
    schema = session.scalar(select(Project.attribute_schema).where(Project.id == project_id)) or {}
    if not schema:
        return 0
    # Counted in SQL (JSON extraction per tag): reading every image's attributes into Python took
    # 0.9 s of each Export page run at 100,000 images. An image that never had a tag stores "{}";
    # reading every image row to find that out cost 0.4-0.6 s at 100,000 on SQLite.
    values = [Image.attributes[tag].as_string() for tag in schema]
    has_tag = or_(*[and_(v.is_not(None), v != "") for v in values])
    # Word for word the condition of ix_image_project_with_attributes (migration 0012), so that
    # the planner reads that index: only the images that store any attribute are visited.
    dialect = session.get_bind().dialect.name
    some = text("image.attributes::text <> '{}'" if dialect == "postgresql" else "image.attributes != '{}'")
    return int(session.scalar(select(func.count()).where(Image.project_id == project_id, some, has_tag)) or 0)


def read_label_records(
    path: Path, images: Path | None = None, ignore_columns: Sequence[str] = ()
) -> Iterator[LabelRecord | ImportOutcome]:
    """The records of a labels CSV (with its images found in ``images``) or of a class-folder tree.

    Raises:
        AnnotationImportError: The path is missing or cannot be read as either.
    """
    path = Path(path)
    if not path.exists():
        raise AnnotationImportError(f"{path} does not exist")
    if path.is_file() and path.suffix.lower() in CSV_SUFFIXES:
        return _with_images(read_labels(path, ignore_columns), Files(Path(images)) if images else None)
    if path.is_dir() or zipfile.is_zipfile(path):
        if images:
            raise AnnotationImportError("--images goes with a labels CSV; a class-folder tree holds its images")
        return read_tree(path)
    raise AnnotationImportError(f"{path.name}: give a labels .csv file, or a folder or .zip of class folders")


def _with_images(
    records: Iterator[LabelRecord | ImportOutcome], files: Files | None
) -> Iterator[LabelRecord | ImportOutcome]:
    if files is not None:
        yield from files.refused
    for r in records:
        if files is not None and isinstance(r, LabelRecord):
            rel = files.find_image(r.image_name)
            if rel is not None:
                r.read = lambda rel=rel: files.read(rel)
        yield r


def _key(value: str) -> str:
    return value.strip().casefold()


class _Schema:
    """The project's schema while records are stored: values matched, new ones added (or refused)."""

    def __init__(self, schema: dict[str, list[str]], add_values: bool) -> None:
        self.schema = {k: list(v) for k, v in schema.items()}
        self.add_values = add_values
        self.added: dict[str, list[str]] = {}

    def resolve(self, tag: str, value: str) -> tuple[str | None, str]:
        """The schema's spelling of ``value`` for ``tag`` (None: refused) and a note."""
        tag_key = next((t for t in self.schema if _key(t) == _key(tag)), None)
        if tag_key is not None:
            match = next((v for v in self.schema[tag_key] if _key(v) == _key(value)), None)
            if match is not None:
                return match, ""
        if not self.add_values:
            what = f"tag {tag!r}" if tag_key is None else f"value {value!r} of {tag!r}"
            return None, f"{what} is not in the project's schema; left out (new values are refused)"
        tag_key = tag_key or tag
        self.schema.setdefault(tag_key, []).append(value)
        self.added.setdefault(tag_key, []).append(value)
        return value, ""

    def tag(self, tag: str) -> str:
        return next((t for t in self.schema if _key(t) == _key(tag)), tag)


def import_label_records(
    engine: Engine,
    settings: Settings,
    project_id: int,
    records: Iterable[LabelRecord | ImportOutcome],
    *,
    add_values: bool = True,
    who: str | None = None,
    progress: Callable[[int, str], None] | None = None,
) -> ImportReport:
    """Stores label records (see the module docstring). ``labels_added`` lists ``tag=value``s added to the schema."""
    store = ImageStore(settings.data_dir)
    report = ImportReport()
    taken: set[str] = set()
    added: list[str] = []

    def flush(pending: list[LabelRecord]) -> None:
        with write_scope(engine) as session:
            project = session.get(Project, project_id)
            if project is None:
                raise AnnotationImportError(f"No project #{project_id}.")
            schema = _Schema(dict(project.attribute_schema or {}), add_values)
            for record in pending:
                try:
                    with session.begin_nested():
                        report.outcomes.append(_store_one(session, store, project_id, record, schema, taken, who))
                except _Refused as exc:
                    report.outcomes.append(ImportOutcome(record.source, exc.outcome, str(exc)))
                except Exception as exc:  # noqa: BLE001 - one bad record is reported; the rest come in
                    report.outcomes.append(ImportOutcome(record.source, "failed", f"could not be stored: {exc}"))
            if schema.added:
                # A new dict: the JSON column sees a new value (in-place changes are not tracked).
                project.attribute_schema = schema.schema
                added.extend(f"{t}={v}" for t, vs in schema.added.items() for v in vs)
        if progress:
            progress(len(report.outcomes), pending[-1].source)

    store_in_batches(records, flush, report.outcomes)
    report.labels_added = added
    s = report.summary()
    if s["imported"] or s["updated"] or s["failed"]:
        with session_scope(engine) as session:
            record_activity(
                session,
                project_id,
                "import",
                f"labels imported: {s['imported']} new images, {s['updated']} tagged, {s['duplicate']} already so, "
                f"{s['failed']} failed" + (f"; added to the schema: {', '.join(added)}" if added else ""),
                who,
            )
    return report


class _Refused(Exception):
    def __init__(self, outcome: str, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def _find_image(
    session: Any, store: ImageStore, project_id: int, record: LabelRecord, taken: set[str]
) -> tuple[Image, bool, str]:
    """The record's image (stored or ingested), whether it is new, and the ingest's note."""
    if record.read is not None:
        try:
            data = record.read()
        except (OSError, IngestError, KeyError, zipfile.BadZipFile) as exc:
            raise _Refused("failed", f"image {record.image_name!r} could not be read: {exc}") from exc
        ingested = ingest_one(session, store, project_id, record.image_name, data, taken, source=record.source)
        if ingested.outcome == "failed":
            raise _Refused("failed", f"image {record.image_name!r}: {ingested.message}")
        image = session.get(Image, ingested.image_id)
        return image, ingested.outcome == "imported", ingested.message
    image = None
    # The name as written, then its base name (a CSV written beside its photos says ``images/a.jpg``).
    for name in dict.fromkeys((record.image_name, posixpath.basename(record.image_name.replace("\\", "/")))):
        image = session.scalar(select(Image).where(Image.project_id == project_id, Image.original_name == name))
        if image is not None:
            break
    if image is None:
        raise _Refused(
            "failed",
            f"unknown image {record.image_name!r}: no image of that name in the project "
            "(upload it first, or give the images with the labels)",
        )
    return image, False, ""


def _store_one(
    session: Any,
    store: ImageStore,
    project_id: int,
    record: LabelRecord,
    schema: _Schema,
    taken: set[str],
    who: str | None,
) -> ImportOutcome:
    image, is_new, ingest_note = _find_image(session, store, project_id, record, taken)
    notes = [n for n in (*record.notes, ingest_note) if n]
    stored = dict(image.attributes or {})
    changes: dict[str, str] = {}
    refused = 0
    for tag, value in record.tags.items():
        match, note = schema.resolve(tag, value)
        if match is None:
            notes.append(note)
            refused += 1
            continue
        key = schema.tag(tag)
        if key in stored and str(stored[key]) == match:
            continue
        if key in stored and stored[key] not in (None, ""):
            notes.append(f"{key} was {stored[key]!r}, now {match!r}")
        changes[key] = match
    if not changes:
        if refused and not is_new:
            raise _Refused("skipped", "; ".join(notes))
        outcome = "imported" if is_new else "duplicate"
        return ImportOutcome(record.source, outcome, "; ".join(notes or ["already tagged so; nothing added"]), image.id)
    image.attributes = {**stored, **changes}
    # Annotate saves attributes with a revision check: an editor opened before this import must reload.
    image.revision = (image.revision or 0) + 1
    image.updated_by = who
    session.flush()
    return ImportOutcome(record.source, "imported" if is_new else "updated", "; ".join(notes), image.id)


def import_labels(
    engine: Engine,
    settings: Settings,
    project_id: int,
    path: Path,
    *,
    images: Path | None = None,
    add_values: bool = True,
    ignore_columns: Sequence[str] = (),
    who: str | None = None,
    progress: Callable[[int, str], None] | None = None,
) -> ImportReport:
    """Reads ``path`` (a labels CSV or a class-folder tree) and stores its labels.

    Raises:
        AnnotationImportError: When the input as a whole cannot be read.
    """
    records = read_label_records(Path(path), Path(images) if images else None, ignore_columns)
    return import_label_records(
        engine, settings, project_id, records, add_values=add_values, who=who, progress=progress
    )


def import_labels_job(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler: imports labels from ``params['path']``; staged uploads are removed after."""
    import shutil

    ctx.progress(0, None, "reading")
    report = import_labels(
        ctx.engine,
        ctx.settings,
        int(params["project_id"]),
        Path(params["path"]),
        images=Path(params["images"]) if params.get("images") else None,
        add_values=bool(params.get("add_values", True)),
        ignore_columns=list(params.get("ignore_columns", [])),
        who=params.get("who"),
        progress=lambda n, source: ctx.progress(n, None, source),
    )
    for folder in params.get("cleanup", []):
        shutil.rmtree(folder, ignore_errors=True)
    ctx.log(f"labels import summary: {report.summary()}")
    return report.as_dict()
