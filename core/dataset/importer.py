"""Importing annotated datasets in any format with a reader (:mod:`core.formats.registry`).

Every format's reader turns its files into a stream of :class:`ImportItem` (one image:
where its bytes come from and its boxes), and :func:`import_items` stores them:

- Images go through :func:`core.project.ingest.ingest_one`, so they are decoded, checked and
  deduplicated by content hash like uploads.
- Idempotent: an image already in the project that already has boxes gets nothing added
  (its boxes are left as they are and the item is reported as a duplicate), so importing
  the same file twice adds nothing; an image left to annotate because all its boxes were
  refused is a duplicate too when the file refuses them again for the same reasons.
- Per image transactional: each image and its boxes are written in one savepoint; a bad
  record is reported with its reason and the rest import.
- Boxes past the image edge are clipped and reported; empty, inverted, non-finite or
  unreadable ones, and ones lying wholly outside the image, are refused (left out) and
  reported by the source's own numbering (VOC ``object 2``, COCO ``annotation 17``).
- Labels are matched to the project's ignoring case and surrounding spaces and stored in
  the project's spelling (the report lists each such match). Labels the project lacks
  are added, or (``add_labels=False``) the image is refused with the list of unknown labels.
- Images whose boxes were all kept become ``done``; an annotation with no objects at all
  makes the image ``no_objects``. A refusal is never turned into data: an image whose
  boxes were all refused stays ``new`` (to annotate), and one that kept some boxes and
  lost others keeps the kept ones as ``in_progress`` (it needs a look before it is ground
  truth: exported or trained on as done, the refused object would be background). Both
  carry the reasons in :attr:`db.models.Image.import_note`, which Annotate shows.
- A split the dataset fixes (VOC's ``ImageSets/Main/{train,val,test}.txt``) is stored on
  the image when it has none yet. A split once set is never changed (:mod:`core.project.splits`):
  an image already in another split keeps it and the record says so. Images the dataset
  puts in no split keep none; export places them later.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select

from core.boxes import Box, InvalidBoxError
from core.dataset.items import AnnotationImportError, ImportItem, ImportOutcome, Outcome
from core.formats import registry
from core.project.decode import IngestError
from core.project.imagestore import ImageStore
from core.project.ingest import ingest_one
from core.project.projects import colour_for, record_activity
from core.settings import Settings
from db.engine import session_scope, write_scope
from db.models import BoxRow, BoxSource, Image, ImageStatus, Label, Split

BATCH = 50
T = TypeVar("T")


@dataclass
class ImportReport:
    """Outcomes in input order, labels added, and dataset label spellings matched to the project's."""

    outcomes: list[ImportOutcome] = field(default_factory=list)
    labels_added: list[str] = field(default_factory=list)
    labels_matched: dict[str, str] = field(default_factory=dict)

    def _stored(self) -> list[ImportOutcome]:
        return [o for o in self.outcomes if o.outcome in ("imported", "updated")]

    def left_to_annotate(self) -> int:
        """Images stored without boxes because every box of theirs was refused (status new)."""
        return sum(1 for o in self._stored() if o.boxes_refused and not o.boxes)

    def partly_refused(self) -> int:
        """Images that kept some boxes and lost others (status in progress)."""
        return sum(1 for o in self._stored() if o.boxes_refused and o.boxes)

    def refusals_message(self) -> str:
        """``25 images had all their boxes refused ...``; empty when no box was refused."""
        refused = sum(o.boxes_refused for o in self.outcomes)
        if not refused:
            return ""
        parts = []
        if n := self.left_to_annotate():
            parts.append(
                f"{n} image{'s' if n != 1 else ''} had all their boxes refused and {'are' if n != 1 else 'is'} "
                "left to annotate (status new, not 'no garments')"
            )
        if n := self.partly_refused():
            parts.append(
                f"{n} image{'s' if n != 1 else ''} kept some boxes and lost others and {'are' if n != 1 else 'is'} "
                "in progress for a look"
            )
        parts.append(f"{refused} box{'es' if refused != 1 else ''} refused in all; Annotate shows each image's reasons")
        return "; ".join(parts)

    def labels_message(self) -> str:
        """``labels matched to the project's spelling: 'sunglasses' as the project's 'Sunglasses'``; or empty."""
        if not self.labels_matched:
            return ""
        pairs = ", ".join(f"{src!r} as the project's {dst!r}" for src, dst in sorted(self.labels_matched.items()))
        return f"labels matched ignoring case and spaces, kept in the project's spelling: {pairs}"

    def count(self, outcome: Outcome) -> int:
        """How many records had ``outcome``."""
        return sum(1 for o in self.outcomes if o.outcome == outcome)

    def splits_from_file(self) -> dict[str, int]:
        """How many images got their split from the dataset's split lists, per split."""
        return {s.value: sum(1 for o in self.outcomes if o.split == s.value) for s in Split}

    def splits_message(self) -> str:
        """``splits from ImageSets/Main: 804 train, 200 test``; empty when no image got a split."""
        counts = self.splits_from_file()
        if not any(counts.values()):
            return ""
        sources = sorted({o.split_from for o in self.outcomes if o.split and o.split_from})
        per_split = ", ".join(f"{n} {split}" for split, n in counts.items() if n)
        return f"splits from {', '.join(sources) or 'the dataset'}: {per_split}"

    def summary(self) -> dict[str, Any]:
        """Counts per outcome, boxes added, labels added and splits taken from the dataset."""
        return {
            **{k: self.count(k) for k in ("imported", "updated", "duplicate", "failed", "skipped")},
            "boxes": sum(o.boxes for o in self.outcomes),
            "labels_added": list(self.labels_added),
            "splits_from_file": self.splits_from_file(),
            "splits_message": self.splits_message(),
            "boxes_refused": sum(o.boxes_refused for o in self.outcomes),
            "left_to_annotate": self.left_to_annotate(),
            "partly_refused": self.partly_refused(),
            "refusals_message": self.refusals_message(),
            "labels_matched": dict(sorted(self.labels_matched.items())),
            "labels_message": self.labels_message(),
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (job results, CLI)."""
        return {**self.summary(), "records": [o.__dict__ for o in self.outcomes]}


# --- storing ---------------------------------------------------------------------------------------------------


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _pixel_objects(
    item: ImportItem, width: int, height: int, notes: list[str], refusals: list[str]
) -> list[tuple[str, Box]]:
    """The item's boxes in pixels of the stored image, clipped; each refused one goes to ``refusals`` with why."""
    out = []
    refs = item.refs or [f"box {n}" for n in range(1, len(item.objects) + 1)]
    for ref, (label, box) in zip(refs, item.objects, strict=True):
        px = box.scaled(width, height) if item.coords == "normalised" else box
        try:
            clipped, changed = px.validated(width, height)
        except InvalidBoxError as exc:
            refusals.append(f"{ref} ({label.strip()}) left out: {exc}")
            continue
        if changed:
            notes.append(
                f"{ref} ({label.strip()}) went past the {width}x{height} image edge and was clipped "
                f"(x {px.x_min:g}..{px.x_max:g}, y {px.y_min:g}..{px.y_max:g})"
            )
        out.append((label, clipped))
    return out


def _label_key(name: str) -> str:
    """How label names are compared: ``' sunglasses '`` and ``'Sunglasses'`` are one label."""
    return name.strip().casefold()


class _Labels:
    """The project's labels, found by a dataset's spelling (exact first, then ignoring case and spaces)."""

    def __init__(self, session: Any, project_id: int) -> None:
        rows = session.execute(
            select(Label.name, Label.id).where(Label.project_id == project_id).order_by(Label.order, Label.id)
        ).all()
        self.ids: dict[str, int] = {name: i for name, i in rows}
        self.by_key: dict[str, str] = {}
        for name, _i in rows:
            self.by_key.setdefault(_label_key(name), name)  # two labels differing only in case: the first wins

    def find(self, name: str) -> str | None:
        """The project's spelling of ``name``, or None when the project has no such label."""
        if name in self.ids:
            return name
        if name.strip() in self.ids:
            return name.strip()
        return self.by_key.get(_label_key(name))

    def add(self, name: str, label_id: int) -> None:
        self.ids[name] = label_id
        self.by_key.setdefault(_label_key(name), name)


def store_in_batches(
    stream: Iterable[T | ImportOutcome], store_batch: Callable[[list[T]], None], outcomes: list[ImportOutcome]
) -> None:
    """Hands ``stream``'s records to ``store_batch`` :data:`BATCH` at a time; its outcomes go to ``outcomes``.

    A reader's outcome (a refused record) is appended after the records before it are stored, so
    the report stays in input order.
    """
    pending: list[T] = []
    for item in stream:
        if isinstance(item, ImportOutcome):
            if pending:
                store_batch(pending)
                pending = []
            outcomes.append(item)
            continue
        pending.append(item)
        if len(pending) >= BATCH:
            store_batch(pending)
            pending = []
    if pending:
        store_batch(pending)


def import_items(
    engine: Engine,
    settings: Settings,
    project_id: int,
    items: Iterable[ImportItem | ImportOutcome],
    *,
    add_labels: bool = True,
    who: str | None = None,
    progress: Callable[[int, str], None] | None = None,
) -> ImportReport:
    """Stores annotated images (see module docstring for the rules).

    Args:
        engine: Database engine.
        settings: Where the blobs go.
        project_id: Target project.
        items: From one of the ``*_items`` readers; outcomes in the stream are reported as they are.
        add_labels: Add labels the project lacks (else refuse images that use them).
        who: Recorded on boxes and in the activity feed.
        progress: Called with (records seen, last source) after each batch is stored.

    Returns:
        The per-record report.
    """
    store = ImageStore(settings.data_dir)
    report = ImportReport()
    taken: set[str] = set()

    with session_scope(engine) as session:
        before = set(_Labels(session, project_id).ids)

    def flush(pending: list[ImportItem]) -> None:
        # A unit of work that reads (duplicates, names, labels) and then writes, beside people
        # saving boxes: write_scope takes SQLite's write lock first, or a save committed between
        # its reads and its first write would fail the batch with "database is locked".
        with write_scope(engine) as session:
            labels = _Labels(session, project_id)
            for item in pending:
                matched: dict[str, str] = {}
                try:
                    with session.begin_nested():
                        outcome = _store_one(session, store, project_id, item, labels, add_labels, taken, who, matched)
                    report.outcomes.append(outcome)
                    report.labels_matched.update(matched)
                except _Refused as exc:
                    report.outcomes.append(ImportOutcome(item.source, exc.outcome, str(exc)))
                except Exception as exc:  # noqa: BLE001 - one bad record is reported; the rest import
                    report.outcomes.append(ImportOutcome(item.source, "failed", f"could not be stored: {exc}"))
                    labels = _Labels(session, project_id)  # a label added inside the failed savepoint is gone again
        # Progress after the batch commits: a job records it from another session, which would
        # wait for this one's write lock (on SQLite) until the busy timeout.
        if progress:
            progress(len(report.outcomes), pending[-1].source)

    store_in_batches(items, flush, report.outcomes)
    with session_scope(engine) as session:
        report.labels_added = sorted(set(_Labels(session, project_id).ids) - before)
    s = report.summary()
    if s["imported"] or s["updated"] or s["failed"]:
        with session_scope(engine) as session:
            record_activity(
                session,
                project_id,
                "import",
                f"annotations imported: {s['imported']} new images, {s['updated']} annotated, {s['boxes']} boxes, "
                f"{s['duplicate']} already present, {s['failed']} failed"
                + (f"; {s['refusals_message']}" if s["refusals_message"] else "")
                + (f"; {s['splits_message']}" if s["splits_message"] else ""),
                who,
            )
    return report


class _Refused(Exception):
    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def _import_note(item: ImportItem, refusals: list[str], kept: int) -> str:
    """The reason kept on an image whose boxes were (partly) refused; Annotate shows it."""
    total = kept + len(refusals)
    head = (
        f"{len(refusals)} of {_plural(total, 'box', 'boxes')} in {item.source} "
        f"{'was' if len(refusals) == 1 else 'were'} refused by the import: {'; '.join(refusals)}."
    )
    if kept:
        return f"{head} The other {kept} {'was' if kept == 1 else 'were'} imported; check the image and save it."
    return f"{head} Draw the boxes by hand, or mark it 'No garments' if there are none."


def _store_one(
    session: Any,
    store: ImageStore,
    project_id: int,
    item: ImportItem,
    labels: _Labels,
    add_labels: bool,
    taken: set[str],
    who: str | None,
    matched: dict[str, str],
) -> ImportOutcome:
    notes = list(item.notes)
    if not add_labels:
        unknown = sorted({label.strip() for label, _b in item.objects if labels.find(label) is None})
        if unknown:
            raise _Refused(
                "skipped",
                f"labels not in the project: {', '.join(unknown)} (add them to the project or allow adding labels)",
            )
    try:
        data = item.read()
    except (OSError, IngestError, KeyError, zipfile.BadZipFile) as exc:
        raise _Refused("failed", f"image {item.image_name!r} could not be read: {exc}") from exc
    ingested = ingest_one(session, store, project_id, item.image_name, data, taken)
    if ingested.outcome == "failed":
        raise _Refused("failed", f"image {item.image_name!r}: {ingested.message}")
    image = session.get(Image, ingested.image_id)
    assert image is not None
    if item.declared_size and item.coords == "pixels" and tuple(item.declared_size) != (image.width, image.height):
        notes.append(
            f"the annotation says {item.declared_size[0]}x{item.declared_size[1]} but the image is "
            f"{image.width}x{image.height}; boxes kept in pixels"
        )
    split_notes: list[str] = []
    split_set = _apply_split(image, item, split_notes)
    existing = session.scalar(select(func.count()).select_from(BoxRow).where(BoxRow.image_id == image.id))
    is_new = ingested.outcome == "imported"

    def duplicate(message: str) -> ImportOutcome:
        if split_set:
            split_notes.append(f"its split was not set yet: {split_set} from {item.split_from or 'the dataset'}")
        return ImportOutcome(
            item.source,
            "duplicate",
            "; ".join([message, *split_notes]),
            image.id,
            split=split_set,
            split_from=item.split_from if split_set else None,
        )

    if not is_new and (existing or image.status in (ImageStatus.DONE, ImageStatus.NO_OBJECTS)):
        # Same picture, already annotated: importing again must add nothing (a split it lacked is the exception:
        # that only fills in what the dataset fixes and changes no annotation).
        return duplicate(f"{ingested.message or 'already in the project'}; its boxes are left as they are")
    refusals = list(item.left_out)
    objects = _pixel_objects(item, image.width, image.height, notes, refusals)
    note = _import_note(item, refusals, len(objects)) if refusals else None
    if (
        not is_new
        and item.annotated
        and not objects
        and note is not None
        and image.status is ImageStatus.NEW
        and image.import_note == note
    ):
        # Left to annotate by an earlier import of the same file, which refuses the same boxes again.
        return duplicate(f"{ingested.message or 'already in the project'}; still left to annotate: {note}")
    notes.extend(split_notes)
    for label, _b in objects:
        name = labels.find(label)
        if name is None:
            name = label.strip()
            order = (session.scalar(select(func.max(Label.order)).where(Label.project_id == project_id)) or 0) + 1
            lab = Label(project_id=project_id, name=name, colour=colour_for(order), order=order)
            session.add(lab)
            session.flush()
            labels.add(name, lab.id)
            notes.append(f"label {name!r} added to the project")
        if name != label:
            matched[label] = name
    for label, b in objects:
        session.add(
            BoxRow(
                image_id=image.id,
                label_id=labels.ids[labels.find(label) or label],
                **b.as_columns(),
                source=BoxSource.HUMAN,
                created_by=who,
                updated_by=who,
            )
        )
    if item.attributes:
        image.attributes = {**(image.attributes or {}), **{str(k): v for k, v in item.attributes.items()}}
    notes.extend(refusals)
    if item.annotated:
        if not refusals:
            image.status = ImageStatus.DONE if objects else ImageStatus.NO_OBJECTS
        elif objects:
            image.status = ImageStatus.IN_PROGRESS
            notes.append(
                f"{len(refusals)} of {len(refusals) + len(objects)} boxes refused: the image is left in progress "
                "for a look (its kept boxes are stored)"
            )
        else:
            image.status = ImageStatus.NEW
            notes.append(
                f"all {_plural(len(refusals), 'box', 'boxes')} refused: the image is left to annotate "
                "(status new), not marked 'no garments'"
            )
        image.import_note = note
        image.revision = (image.revision or 0) + 1
        image.updated_by = who
    session.flush()
    return ImportOutcome(
        item.source,
        "imported" if is_new else "updated",
        "; ".join(notes),
        image.id,
        len(objects),
        split=split_set,
        split_from=item.split_from if split_set else None,
        boxes_refused=len(refusals),
    )


def _apply_split(image: Image, item: ImportItem, notes: list[str]) -> str | None:
    """Stores the item's split on an image that has none; returns the split stored, or None.

    A split already set is never changed, as in :mod:`core.project.splits`: moving an image that may
    already have been trained on, or tested, would mix the sets. A disagreement is noted.
    """
    if not item.split:
        return None
    wanted = Split(item.split)
    if image.split is None:
        image.split = wanted
        return wanted.value
    if image.split != wanted:
        notes.append(
            f"{item.split_from or 'the dataset'} puts it in {wanted.value}, but it is already in "
            f"{Split(image.split).value}; kept {Split(image.split).value} (a split never changes once set)"
        )
    return None


def read_items(fmt: str, path: Path, images: Path | None = None) -> Iterator[ImportItem | ImportOutcome]:
    """The item stream of ``path`` in format ``fmt``.

    Raises:
        AnnotationImportError: Unknown format, or a path that is not there.
    """
    fmt = fmt.lower()
    if not path.exists():
        raise AnnotationImportError(f"{path} does not exist")
    formats = registry.readers()
    if fmt not in formats:
        raise AnnotationImportError(f"Unknown import format {fmt!r}; choose one of {', '.join(formats)}.")
    reader = formats[fmt].reader
    assert reader is not None
    return reader(path, images)


def import_annotations(
    engine: Engine,
    settings: Settings,
    project_id: int,
    fmt: str,
    path: Path,
    *,
    images: Path | None = None,
    add_labels: bool = True,
    who: str | None = None,
    progress: Callable[[int, str], None] | None = None,
) -> ImportReport:
    """Reads ``path`` in ``fmt`` and imports it (see :func:`import_items`).

    Raises:
        AnnotationImportError: When the input as a whole cannot be read.
    """
    items = read_items(fmt, Path(path), Path(images) if images else None)
    return import_items(engine, settings, project_id, items, add_labels=add_labels, who=who, progress=progress)


def import_annotations_job(ctx: Any, params: dict[str, Any]) -> dict[str, Any]:
    """Job handler: imports ``params['path']`` in ``params['format']``; staged uploads are removed after."""
    import shutil

    ctx.progress(0, None, "reading")
    report = import_annotations(
        ctx.engine,
        ctx.settings,
        int(params["project_id"]),
        str(params["format"]),
        Path(params["path"]),
        images=Path(params["images"]) if params.get("images") else None,
        add_labels=bool(params.get("add_labels", True)),
        who=params.get("who"),
        progress=lambda n, source: ctx.progress(n, None, source),
    )
    for folder in params.get("cleanup", []):
        shutil.rmtree(folder, ignore_errors=True)
    ctx.log(f"annotation import summary: {report.summary()}")
    return report.as_dict()
