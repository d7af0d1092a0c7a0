"""Image ingest: deduplicate and store uploaded images, decoded and checked by :mod:`core.project.decode`.

Files are stored once per content hash. Zip archives are expanded with the usual defences (no
``..`` or absolute entries, no nested archives, bounded sizes). A bad file gets a clear
per-file message and never aborts the batch.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple

from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.project.decode import MAX_FILE_BYTES, IngestError, decode_image
from core.project.imagestore import ImageStore
from core.project.projects import record_activity
from db.engine import is_lock_error, read_scope, session_scope, write_scope
from db.models import Image as ImageRow

MAX_ZIP_TOTAL_BYTES = 8 * 1024**3
MAX_ZIP_RATIO = 200  # uncompressed/compressed for one entry; JPEGs barely compress at all
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"}
ARCHIVE_EXTENSIONS = {".zip", ".tar", ".gz", ".tgz", ".7z", ".rar", ".bz2", ".xz"}
# Tries of a batch's write when the database stays locked past the busy timeout (30 s each).
LOCK_ATTEMPTS = 5

Outcome = Literal["imported", "duplicate", "failed", "skipped"]


@dataclass(frozen=True)
class FileOutcome:
    """What happened to one input file.

    Attributes:
        name: The file's name as the user knows it (zip entries as ``archive.zip/inner``).
        outcome: imported, duplicate, failed or skipped.
        message: Human-readable detail (why it failed, what was converted).
        image_id: Database id of the stored (or already present) image.
        stored_name: The image's name in the project (imported: the name it got, which
            drops a zip's name and may carry a `` (2)``; duplicate: the image it repeats).
    """

    name: str
    outcome: Outcome
    message: str = ""
    image_id: int | None = None
    stored_name: str = ""


@dataclass
class IngestReport:
    """Outcomes of a batch, in input order."""

    outcomes: list[FileOutcome] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        """How many files had ``outcome``."""
        return sum(1 for o in self.outcomes if o.outcome == outcome)

    def summary(self) -> dict[str, int]:
        """Counts per outcome."""
        return {k: self.count(k) for k in ("imported", "duplicate", "failed", "skipped")}

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (for job results and the CLI)."""
        return {
            **self.summary(),
            "files": [o.__dict__ for o in self.outcomes],
        }


def _unique_name(session: Session, project_id: int, name: str, taken: set[str]) -> str:
    """``name`` if free in the project, else ``stem (2).ext``, ``stem (3).ext``..."""

    def free(candidate: str) -> bool:
        if candidate in taken:
            return False
        return (
            session.scalar(
                select(ImageRow.id).where(ImageRow.project_id == project_id, ImageRow.original_name == candidate)
            )
            is None
        )

    if free(name):
        return name
    stem, ext = posixpath.splitext(name)
    n = 2
    while not free(f"{stem} ({n}){ext}"):
        n += 1
    return f"{stem} ({n}){ext}"


@dataclass(frozen=True)
class PreparedFile:
    """A decoded file whose blobs are stored, ready to become an image row.

    Attributes:
        sha256: Content hash of the file's bytes.
        stored_path: Relative path of the stored original.
        display_path: Relative path of the display copy.
        width: Width after orientation.
        height: Height after orientation.
        notes: What was converted, for the user.
    """

    sha256: str
    stored_path: str
    display_path: str
    width: int
    height: int
    notes: tuple[str, ...]


def prepare_file(store: ImageStore, data: bytes, sha: str | None = None) -> PreparedFile:
    """Decodes a file and stores its blobs; the slow part of an import, done outside any transaction.

    Blobs are content-addressed, so storing one for a file that then turns out a duplicate
    (another import was quicker) costs space, never correctness.

    Raises:
        IngestError: The file is not an image we can take.
    """
    sha = sha or hashlib.sha256(data).hexdigest()
    decoded = decode_image(data)
    stored = store.put_original(sha, decoded.stored_bytes, decoded.ext)
    w, h = decoded.image.size
    display = stored if max(w, h) <= 1280 and decoded.ext == ".jpg" else store.put_display(sha, decoded.image)
    return PreparedFile(sha, stored, display, w, h, decoded.notes)


def _existing(session: Session, project_id: int, sha: str) -> ImageRow | None:
    return session.scalar(select(ImageRow).where(ImageRow.project_id == project_id, ImageRow.sha256 == sha))


def _duplicate(name: str, existing: ImageRow) -> FileOutcome:
    return FileOutcome(
        name,
        "duplicate",
        f"same content as {existing.original_name!r}; not stored twice",
        existing.id,
        existing.original_name,
    )


def add_prepared(
    session: Session,
    project_id: int,
    name: str,
    prepared: PreparedFile,
    taken_names: set[str] | None = None,
    *,
    source: str | None = None,
) -> FileOutcome:
    """Adds a prepared file to a project inside the caller's transaction (a duplicate is reported, not added).

    Args:
        session: Open session (the caller commits).
        project_id: Target project.
        name: The name to store the image under (made unique in the project).
        prepared: From :func:`prepare_file`.
        taken_names: Names already used in this batch (updated in place).
        source: The file's name as the user knows it, for the outcome (default ``name``).
    """
    shown = source or name
    taken = taken_names if taken_names is not None else set()
    existing = _existing(session, project_id, prepared.sha256)
    if existing is not None:
        return _duplicate(shown, existing)
    final_name = _unique_name(session, project_id, name, taken)
    taken.add(final_name)
    notes = list(prepared.notes)
    if final_name != name:
        notes.append(f"name already used in the project: stored as {final_name!r}")
    row = ImageRow(
        project_id=project_id,
        sha256=prepared.sha256,
        stored_path=prepared.stored_path,
        display_path=prepared.display_path,
        width=prepared.width,
        height=prepared.height,
        original_name=final_name,
    )
    session.add(row)
    session.flush()
    return FileOutcome(shown, "imported", "; ".join(notes), row.id, final_name)


def ingest_one(
    session: Session,
    store: ImageStore,
    project_id: int,
    name: str,
    data: bytes,
    taken_names: set[str] | None = None,
    *,
    source: str | None = None,
) -> FileOutcome:
    """Imports one file into a project inside the caller's transaction.

    Decodes inside the transaction: fine for one file or a script; a batch beside other
    writers goes through :func:`ingest_sources`, which decodes first and writes briefly.

    Args:
        session: Open session (the caller commits).
        store: Blob store.
        project_id: Target project.
        name: Display name / relative path of the file (the name to store it under).
        data: The file's bytes.
        taken_names: Names already used in this batch (updated in place).
        source: The file's name as the user knows it, for the outcome (default ``name``).

    Returns:
        The outcome; a bad file gives ``failed`` with its message, never an exception.
    """
    sha = hashlib.sha256(data).hexdigest()
    existing = _existing(session, project_id, sha)
    if existing is not None:
        return _duplicate(source or name, existing)
    try:
        prepared = prepare_file(store, data, sha)
    except IngestError as exc:
        return FileOutcome(source or name, "failed", str(exc))
    return add_prepared(session, project_id, name, prepared, taken_names, source=source)


class Source(NamedTuple):
    """A file to import.

    Attributes:
        name: The file's name as the user knows it (zip entries as ``archive.zip/inner``).
        read: Returns its bytes (raises IngestError, OSError... when it cannot).
        store_as: The name the image gets in the project; None: ``name``.
    """

    name: str
    read: Callable[[], bytes]
    store_as: str | None = None


def safe_member_name(name: str) -> str | None:
    """The normalised relative name of a zip entry, or None when it is unsafe."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return None
    parts = name.replace("\\", "/").split("/")
    if any(p == ".." for p in parts):
        return None
    return "/".join(p for p in parts if p not in ("", "."))


def expand_zip(data_or_path: bytes | Path, archive_name: str) -> Iterator[FileOutcome | Source]:
    """Yields the image entries of a zip as sources, and outcomes for entries refused.

    Refused with a message: ``..`` or absolute paths, nested archives, entries whose
    declared or actual size is out of bounds. Folders, macOS resource forks and dotfiles
    are passed over silently.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path)
    except (zipfile.BadZipFile, OSError) as exc:
        yield FileOutcome(archive_name, "failed", f"not a readable zip archive: {exc}")
        return
    total = 0
    # Not closed here: the readers yielded below run later, in import batches; the
    # archive closes when the last of them is gone.
    for info in zf.infolist():
        label = f"{archive_name}/{info.filename}"
        if info.is_dir():
            continue
        safe = safe_member_name(info.filename)
        if safe is None:
            yield FileOutcome(label, "failed", "refused: the entry's path is absolute or leaves the archive (..)")
            continue
        base = posixpath.basename(safe)
        if safe.startswith("__MACOSX/") or base.startswith("."):
            continue
        ext = posixpath.splitext(base)[1].lower()
        if ext in ARCHIVE_EXTENSIONS:
            yield FileOutcome(label, "failed", "refused: nested archives are not opened; upload it on its own")
            continue
        if ext not in IMAGE_EXTENSIONS:
            yield FileOutcome(label, "skipped", f"not an image file type ({ext or 'no extension'})")
            continue
        if info.file_size > MAX_FILE_BYTES:
            yield FileOutcome(label, "failed", f"entry too large ({info.file_size / 1e6:.0f} MB)")
            continue
        if info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO:
            yield FileOutcome(label, "failed", "refused: compression ratio typical of a zip bomb")
            continue
        total += info.file_size
        if total > MAX_ZIP_TOTAL_BYTES:
            yield FileOutcome(label, "failed", "archive expands past the size limit; the rest is not read")
            return

        def read(zf: zipfile.ZipFile = zf, info: zipfile.ZipInfo = info) -> bytes:
            # Read at most the limit + 1 byte: a header that lies about the size cannot make us inflate more.
            with zf.open(info) as fh:
                blob = fh.read(MAX_FILE_BYTES + 1)
            if len(blob) > MAX_FILE_BYTES:
                raise IngestError("entry inflates past the size limit")
            return blob

        # Messages name the entry with its archive (mixed.zip/b.jpg); the image keeps its inner path.
        yield Source(f"{archive_name}/{safe}", read, safe)


def sources_from_paths(paths: Iterable[Path], root: Path | None = None) -> Iterator[FileOutcome | Source]:
    """Sources for files and folders on disk; zips are expanded, folders walked in name order."""
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            yield from sources_from_paths(files, root=path)
            continue
        rel = path.relative_to(root).as_posix() if root is not None else path.name
        if path.name.startswith("."):
            continue
        ext = path.suffix.lower()
        if ext == ".zip":
            yield from expand_zip(path, rel)
        elif ext in IMAGE_EXTENSIONS:
            yield Source(rel, path.read_bytes)
        else:
            yield FileOutcome(rel, "skipped", f"not an image file type ({ext or 'no extension'})")


def sources_from_uploads(files: Iterable[tuple[str, bytes]]) -> Iterator[FileOutcome | Source]:
    """Sources for files uploaded in the browser: name and bytes; zips are expanded."""
    for name, data in files:
        base = posixpath.basename(name.replace("\\", "/")) or "unnamed"
        if base.lower().endswith(".zip"):
            yield from expand_zip(data, base)
        else:
            yield Source(base, lambda data=data: data)


def _prepare_source(
    session: Session, store: ImageStore, project_id: int, src: Source, prepared: dict[str, PreparedFile]
) -> FileOutcome | tuple[Source, PreparedFile]:
    """Reads, checks and decodes one source; ``session`` only reads (a :func:`read_scope`).

    Returns its outcome when it is settled already (unreadable, not an image, already in
    the project), else the prepared file for the batch's write. ``prepared`` maps the
    hashes prepared in this batch: a copy of an earlier file is not decoded again (the
    write then finds the earlier one and reports the copy as a duplicate).
    """
    try:
        data = src.read()
    except (IngestError, OSError, zipfile.BadZipFile, EOFError) as exc:
        return FileOutcome(src.name, "failed", f"could not be read: {exc}")
    sha = hashlib.sha256(data).hexdigest()
    if sha in prepared:
        return (src, prepared[sha])
    existing = _existing(session, project_id, sha)
    if existing is not None:
        return _duplicate(src.name, existing)
    try:
        prepared[sha] = prepare_file(store, data, sha)
    except IngestError as exc:
        return FileOutcome(src.name, "failed", str(exc))
    return (src, prepared[sha])


def _write_batch(
    engine: Engine,
    project_id: int,
    slots: Sequence[FileOutcome | tuple[Source, PreparedFile]],
    taken: set[str],
) -> list[FileOutcome]:
    """Adds a batch's prepared files in one transaction; the outcomes in input order.

    Should the database stay locked past the busy timeout (another process holding a long
    write), the batch is tried again: an import waits for its turn, no file fails for a lock.
    """
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        names = set(taken)
        outcomes: list[FileOutcome] = []
        try:
            with write_scope(engine) as session:
                for slot in slots:
                    if isinstance(slot, FileOutcome):
                        outcomes.append(slot)
                        continue
                    src, prepared = slot
                    try:
                        with session.begin_nested():  # one bad row never spoils the batch
                            outcomes.append(
                                add_prepared(
                                    session, project_id, src.store_as or src.name, prepared, names, source=src.name
                                )
                            )
                    except OperationalError as exc:
                        if is_lock_error(exc):
                            raise
                        outcomes.append(FileOutcome(src.name, "failed", f"could not be stored: {exc}"))
                    except Exception as exc:  # noqa: BLE001 - reported per file, the batch goes on
                        outcomes.append(FileOutcome(src.name, "failed", f"could not be stored: {exc}"))
        except OperationalError as exc:
            if not is_lock_error(exc) or attempt == LOCK_ATTEMPTS:
                raise
            continue
        taken |= names
        return outcomes
    raise AssertionError("unreachable")


def ingest_sources(
    engine: Engine,
    settings_data_dir: Path,
    project_id: int,
    sources: Iterable[FileOutcome | Source],
    progress: Callable[[int, str], None] | None = None,
    who: str | None = None,
    batch_size: int = 50,
) -> IngestReport:
    """Imports sources into a project, committing every ``batch_size`` files.

    A failing file is reported and the batch goes on; what was committed stays even if
    the process dies later.

    Args:
        engine: Database engine.
        settings_data_dir: Data directory holding the blob store.
        project_id: Target project.
        sources: From :func:`sources_from_paths` or :func:`sources_from_uploads`.
        progress: Called with (files seen, current name) after each file.
        who: User name for the activity feed.
        batch_size: Files per transaction.

    Returns:
        The per-file report.
    """
    store = ImageStore(settings_data_dir)
    report = IngestReport()
    taken: set[str] = set()
    pending: list[Source] = []

    def flush() -> None:
        # Slow work first, in a read-only transaction that waits for no one and holds no one
        # up: read, hash, look for duplicates, decode, store blobs. Then one short write
        # transaction adds the rows (and finds a duplicate another import added meanwhile),
        # so annotators saving meanwhile wait milliseconds, not the decoding of a batch.
        slots: list[FileOutcome | tuple[Source, PreparedFile]] = []
        prepared: dict[str, PreparedFile] = {}
        with read_scope(engine) as session:
            for src in pending:
                slots.append(_prepare_source(session, store, project_id, src, prepared))
                if progress:
                    progress(len(report.outcomes) + len(slots), src.name)
        report.outcomes.extend(_write_batch(engine, project_id, slots, taken))
        pending.clear()

    for item in sources:
        if isinstance(item, FileOutcome):
            report.outcomes.append(item)
            continue
        pending.append(item)
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    imported = report.count("imported")
    if imported or report.count("failed"):
        with session_scope(engine) as session:
            s = report.summary()
            record_activity(
                session,
                project_id,
                "import",
                f"imported {s['imported']} images ({s['duplicate']} duplicates, {s['failed']} failed)",
                who,
            )
    return report


def import_images_job(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler: imports ``params['paths']`` (files, folders, zips) into a project.

    Staged upload folders (``params['cleanup']``) are removed afterwards.
    """
    import shutil

    paths = [Path(p) for p in params["paths"]]
    total = sum(1 for _ in sources_from_paths(paths))
    ctx.progress(0, total, "starting")
    report = ingest_sources(
        ctx.engine,
        ctx.settings.data_dir,
        int(params["project_id"]),
        sources_from_paths(paths),
        progress=lambda n, name: ctx.progress(n, total, name),
        who=params.get("who"),
    )
    ctx.progress(total, total, "done")
    for folder in params.get("cleanup", []):
        shutil.rmtree(folder, ignore_errors=True)
    ctx.log(f"import summary: {report.summary()}")
    return report.as_dict()
