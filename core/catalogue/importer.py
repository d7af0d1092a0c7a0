"""Catalogue import: a seller's CSV of listings (``sku, image, title, description`` + tag columns) into a project.

Each listing's photos (``a.jpg;b.jpg``) are the project's images of that file name, or files of
``--images`` (a folder or zip) ingested with the usual checks, where a file whose content the
project already holds is matched by its hash (never stored twice). A bad row (no SKU, a
repeated SKU, a photo found nowhere, text that is not UTF-8, an over-long field) gets a
message and the other rows come in. Re-importing updates listings by SKU, so their ids and the
decisions made on them stay; a changed listing's old check results are dropped (they described
other words or photos).
"""

from __future__ import annotations

import csv
import posixpath
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, select

from core.catalogue.claims import COLUMN_ALIASES
from core.catalogue.settings import project_vocabulary
from core.dataset.files import Files
from core.dataset.items import AnnotationImportError
from core.project.ingest import Source, ingest_sources
from core.project.projects import record_activity
from db.engine import session_scope
from db.models import CatalogueItem, CatalogueItemImage, CatalogueResult, Project, utcnow
from db.models import Image as ImageRow

REQUIRED_COLUMNS = ("sku", "image", "title")
MAX_SKU_CHARS = 200
MAX_TITLE_CHARS = 1_000
MAX_DESCRIPTION_CHARS = 20_000
MAX_IMAGES_PER_SKU = 20
# csv's own limit (128 KiB a field) would end the whole file at one long field; the row
# limits above refuse such a row with a message instead.
_CSV_FIELD_LIMIT = 64 * 1024 * 1024
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class CatalogueImportError(ValueError):
    """A catalogue file that cannot be read at all (no header, missing columns)."""


@dataclass(frozen=True)
class RowOutcome:
    """What happened to one row: added, updated, unchanged or refused (with why)."""

    row: int
    sku: str
    outcome: str
    message: str = ""


@dataclass
class CatalogueImportReport:
    """Outcomes per row, the photo ingest's summary and notes about the file (ignored columns)."""

    rows: list[RowOutcome] = field(default_factory=list)
    images: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        """Rows with ``outcome``."""
        return sum(1 for r in self.rows if r.outcome == outcome)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form: counts, photo summary, notes and every row that did not simply come in."""
        counts = {k: self.count(k) for k in ("added", "updated", "unchanged", "refused")}
        return {
            **counts,
            "images": self.images,
            "notes": self.notes,
            "rows": [asdict(r) for r in self.rows if r.outcome == "refused" or r.message],
        }


@dataclass
class _Row:
    number: int
    sku: str
    names: list[str]
    title: str
    description: str
    structured: dict[str, str]


def _decode(data: bytes) -> tuple[list[str], dict[int, str]]:
    """The file's lines; lines that are not UTF-8 are named by line number (and left out)."""
    lines, bad = [], {}
    for n, raw in enumerate(data.splitlines(keepends=True), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            bad[n] = (
                f"text is not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); save the file as UTF-8"
            )
            lines.append("\n")  # keeps csv's line numbers equal to the file's
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    return lines, bad


def parse_catalogue(data: bytes, tags: set[str]) -> tuple[list[_Row], list[RowOutcome], list[str]]:
    """Rows of a catalogue CSV, the refused rows and notes about the file.

    Args:
        data: The CSV's bytes (UTF-8, a BOM allowed).
        tags: Tag names a structured column may carry (vocabulary tags and the project's schema).

    Raises:
        CatalogueImportError: No header, or a required column missing.
    """
    lines, bad_lines = _decode(data)
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.reader(lines)
    header = next(reader, None)
    if not header:
        raise CatalogueImportError("The catalogue is empty; it needs a header row: sku,image,title,description.")
    columns = [h.strip().lower().replace(" ", "_") for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise CatalogueImportError(
            f"The catalogue needs the columns sku, image, title (and optionally description and tag columns); "
            f"missing: {', '.join(missing)}. Its header is: {', '.join(header)}."
        )
    tag_columns = {c: COLUMN_ALIASES.get(c, c) for c in columns if COLUMN_ALIASES.get(c, c) in tags}
    ignored = [
        h for h, c in zip(header, columns, strict=True) if c not in (*REQUIRED_COLUMNS, "description", *tag_columns)
    ]
    notes = [f"column {h!r} is not a tag of the project or its vocabulary; ignored" for h in ignored]
    rows: list[_Row] = []
    refused: list[RowOutcome] = []
    first_seen: dict[str, int] = {}
    for cells in reader:
        number = reader.line_num
        if number in bad_lines:
            refused.append(RowOutcome(number, "", "refused", bad_lines[number]))
            continue
        if not any(c.strip() for c in cells):
            continue
        record = dict(zip(columns, (c.strip() for c in cells), strict=False))
        sku = record.get("sku", "")
        problem = _row_problem(record, len(cells), len(columns))
        if problem is None and sku in first_seen:
            problem = f"SKU {sku!r} repeats row {first_seen[sku]}; the first one was kept"
        if problem is not None:
            refused.append(RowOutcome(number, sku[:MAX_SKU_CHARS], "refused", problem))
            continue
        first_seen[sku] = number
        names = [n.strip() for n in record["image"].split(";") if n.strip()]
        structured = {tag: record[c] for c, tag in tag_columns.items() if record.get(c)}
        rows.append(_Row(number, sku, names, record["title"], record.get("description", ""), structured))
    return rows, refused, notes


def _row_problem(record: dict[str, str], n_cells: int, n_columns: int) -> str | None:
    """Why a row cannot come in, or None."""
    if n_cells > n_columns:
        return f"{n_cells} cells for {n_columns} columns (an unquoted comma?)"
    if not record.get("sku"):
        return "no SKU"
    if len(record["sku"]) > MAX_SKU_CHARS:
        return f"SKU longer than {MAX_SKU_CHARS} characters"
    if not record.get("image"):
        return "no image named"
    if not record.get("title"):
        return "no title"
    if len(record["title"]) > MAX_TITLE_CHARS:
        return f"title longer than {MAX_TITLE_CHARS} characters"
    if len(record.get("description", "")) > MAX_DESCRIPTION_CHARS:
        return f"description longer than {MAX_DESCRIPTION_CHARS} characters"
    if any(_CONTROL.search(v) for v in record.values()):
        return "text holds control characters (a binary file?)"
    if len([n for n in record["image"].split(";") if n.strip()]) > MAX_IMAGES_PER_SKU:
        return f"more than {MAX_IMAGES_PER_SKU} images"
    return None


def _project_images(engine: Engine, project_id: int) -> tuple[dict[str, int], dict[str, list[int]]]:
    """The project's images by exact name and by lower-case base name."""
    exact: dict[str, int] = {}
    by_base: dict[str, list[int]] = defaultdict(list)
    with session_scope(engine) as session:
        for image_id, name in session.execute(
            select(ImageRow.id, ImageRow.original_name).where(ImageRow.project_id == project_id)
        ):
            exact[name] = image_id
            by_base[posixpath.basename(name).lower()].append(image_id)
    return exact, by_base


def import_catalogue(
    engine: Engine,
    data_dir: Path,
    project_id: int,
    csv_data: bytes,
    images: Path | None = None,
    who: str | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> CatalogueImportReport:
    """Imports (or re-imports) a catalogue CSV into a project.

    Args:
        engine: Database engine.
        data_dir: Data folder holding the image store.
        project_id: Target project.
        csv_data: The CSV's bytes.
        images: A folder or zip holding the listings' photos; None: only the project's images are used.
        who: User name for the activity feed.
        progress: Called with (photos read, photos to read, name) while photos are ingested.

    Raises:
        CatalogueImportError: The CSV cannot be read at all, or ``images`` is neither a folder nor a zip.
    """
    with session_scope(engine) as session:
        project = session.get(Project, project_id)
        if project is None:
            raise CatalogueImportError(f"No project with id {project_id}.")
        tags = set(project.attribute_schema or {}) | set(project_vocabulary(session, project_id).tags) | {"category"}
    rows, refused, notes = parse_catalogue(csv_data, tags)
    report = CatalogueImportReport(notes=notes)
    resolved = _resolve_images(engine, data_dir, project_id, rows, images, report, who, progress)
    with session_scope(engine) as session:
        existing = {
            item.sku: item
            for item in session.scalars(select(CatalogueItem).where(CatalogueItem.project_id == project_id))
        }
        for row in rows:
            image_ids = resolved.get(row.number)
            if isinstance(image_ids, str):
                report.rows.append(RowOutcome(row.number, row.sku, "refused", image_ids))
                continue
            assert image_ids is not None
            report.rows.append(_store_row(session, project_id, existing.get(row.sku), row, image_ids))
        report.rows.extend(refused)
        report.rows.sort(key=lambda r: r.row)
        summary = report.as_dict()
        record_activity(
            session,
            project_id,
            "catalogue",
            f"imported a catalogue: {summary['added']} listings added, {summary['updated']} updated, "
            f"{summary['unchanged']} unchanged, {summary['refused']} refused",
            who,
        )
    return report


def _store_row(
    session: Any, project_id: int, item: CatalogueItem | None, row: _Row, image_ids: list[int]
) -> RowOutcome:
    if item is None:
        item = CatalogueItem(
            project_id=project_id, sku=row.sku, title=row.title, description=row.description, structured=row.structured
        )
        item.images = [CatalogueItemImage(image_id=i, position=p) for p, i in enumerate(image_ids)]
        session.add(item)
        return RowOutcome(row.number, row.sku, "added")
    changed = [
        what
        for what, same in (
            ("title", item.title == row.title),
            ("description", item.description == row.description),
            ("tag columns", (item.structured or {}) == row.structured),
            ("photos", [i.image_id for i in item.images] == image_ids),
        )
        if not same
    ]
    if not changed:
        return RowOutcome(row.number, row.sku, "unchanged")
    item.title, item.description, item.structured = row.title, row.description, row.structured
    if "photos" in changed:
        item.images.clear()
        session.flush()
        item.images.extend(CatalogueItemImage(image_id=i, position=p) for p, i in enumerate(image_ids))
    item.updated_at = utcnow()
    session.flush()
    # The old results judged other words or photos; the decisions stay (they are history).
    session.execute(delete(CatalogueResult).where(CatalogueResult.item_id == item.id))
    return RowOutcome(row.number, row.sku, "updated", f"changed: {', '.join(changed)}")


def _resolve_images(
    engine: Engine,
    data_dir: Path,
    project_id: int,
    rows: list[_Row],
    images: Path | None,
    report: CatalogueImportReport,
    who: str | None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict[int, list[int] | str]:
    """Each row's image ids, or why its photos cannot be found; files of ``images`` are ingested."""
    files: Files | None = None
    if images is not None:
        try:
            files = Files(images)
        except AnnotationImportError as exc:
            raise CatalogueImportError(str(exc)) from exc
    wanted: dict[str, str] = {}  # file in `images` -> name the CSV gave
    if files is not None:
        for row in rows:
            for name in row.names:
                rel = name if name in files.members else files.find_image(posixpath.basename(name))
                if rel is not None:
                    wanted.setdefault(rel, name)
    from_files: dict[str, int] = {}
    failed: dict[str, str] = {}
    if wanted and files is not None:
        sources = [Source(rel, lambda rel=rel: files.read(rel), posixpath.basename(rel)) for rel in wanted]
        total = len(sources)
        ingest = ingest_sources(
            engine,
            data_dir,
            project_id,
            sources,
            who=who,
            progress=(lambda n, name: progress(n, total, name)) if progress else None,
        )
        report.images = ingest.summary()
        for outcome in ingest.outcomes:
            if outcome.image_id is not None:
                from_files[outcome.name] = outcome.image_id
            else:
                failed[outcome.name] = outcome.message
    exact, by_base = _project_images(engine, project_id)
    out: dict[int, list[int] | str] = {}
    for row in rows:
        ids, problems = [], []
        for name in row.names:
            rel = (name if files is not None and name in files.members else None) or (
                files.find_image(posixpath.basename(name)) if files is not None else None
            )
            if rel is not None and rel in from_files:
                ids.append(from_files[rel])
            elif rel is not None and rel in failed:
                problems.append(f"image {name!r} could not be read: {failed[rel]}")
            elif name in exact:
                ids.append(exact[name])
            elif len(by_base.get(posixpath.basename(name).lower(), [])) == 1:
                ids.append(by_base[posixpath.basename(name).lower()][0])
            elif by_base.get(posixpath.basename(name).lower()):
                problems.append(f"image {name!r} matches several of the project's images; give its full name")
            else:
                where = "the project or the images given" if files is not None else "the project (give --images)"
                problems.append(f"image {name!r} is not in {where}")
        if len(set(ids)) != len(ids) and not problems:
            problems.append("the same photo is named twice")
        out[row.number] = "; ".join(problems) if problems else ids
    return out


def import_catalogue_job(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler (``catalogue-import``): a staged CSV (and photo zip or folder) into a project.

    Staged upload folders (``params['cleanup']``) are removed afterwards, also when the import fails.
    """
    import shutil

    try:
        ctx.progress(0, None, "reading the catalogue")
        report = import_catalogue(
            ctx.engine,
            ctx.settings.data_dir,
            int(params["project_id"]),
            read_csv_file(Path(params["csv_path"])),
            Path(params["images"]) if params.get("images") else None,
            params.get("who"),
            progress=lambda done, total, name: ctx.progress(done, total, f"photo {name}"),
        )
    finally:
        for folder in params.get("cleanup", []):
            shutil.rmtree(folder, ignore_errors=True)
    return report.as_dict()


def read_csv_file(path: Path) -> bytes:
    """The bytes of a catalogue CSV, with a clear error when it cannot be read."""
    if not path.is_file():
        raise CatalogueImportError(f"{path} is not a file.")
    return path.read_bytes()
