"""Importing annotated datasets: Pascal VOC, COCO JSON, DataTurks JSON and OD API TFRecord.

Every format is read into a stream of :class:`ImportItem` (one image: where its bytes
come from and its boxes), and :func:`import_items` stores them:

- Images go through :func:`core.ingest.ingest_one`, so they are decoded, checked and
  deduplicated by content hash like uploads.
- Idempotent: an image already in the project that already has boxes gets nothing added
  (its boxes are left as they are and the item is reported as a duplicate), so importing
  the same file twice adds nothing.
- Per image transactional: each image and its boxes are written in one savepoint; a bad
  record is reported with its reason and the rest import.
- Boxes past the image edge are clipped and reported; empty or non-finite ones are left
  out and reported. Labels the project lacks are added, or (``add_labels=False``) the
  image is refused with the list of unknown labels.
- Images with boxes become ``done``; an annotation with no objects makes the image
  ``no_objects``.
- A split the dataset fixes (VOC's ``ImageSets/Main/{train,val,test}.txt``) is stored on
  the image when it has none yet. A split once set is never changed (:mod:`core.splits`):
  an image already in another split keeps it and the record says so. Images the dataset
  puts in no split keep none; export places them later.
"""

from __future__ import annotations

import json
import posixpath
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, func, select

from core.boxes import Box, InvalidBoxError
from core.imagestore import ImageStore
from core.ingest import IMAGE_EXTENSIONS, MAX_FILE_BYTES, MAX_ZIP_RATIO, IngestError, _safe_member_name, ingest_one
from core.projects import colour_for, record_activity
from core.settings import Settings
from db.engine import session_scope
from db.models import Box as BoxRow
from db.models import BoxSource, Image, ImageStatus, Label, Split

IMPORT_FORMATS: tuple[str, ...] = ("voc", "coco", "dataturks", "tfrecord")
Outcome = Literal["imported", "updated", "duplicate", "failed", "skipped"]
# Box coordinates of an item: pixels of the image, or normalised to [0, 1] (DataTurks, TFRecord).
Coords = Literal["pixels", "normalised"]
BATCH = 50
# VOC's split lists, in the order that wins when one id is listed in several: an image that is anywhere
# in a test list must never be trained on (that would leak it into the model it is meant to measure).
VOC_SPLIT_LISTS: tuple[Split, ...] = (Split.TEST, Split.VAL, Split.TRAIN)
VOC_SPLIT_SOURCE = "ImageSets/Main"


class AnnotationImportError(ValueError):
    """An input that cannot be imported at all (the message says why)."""


@dataclass
class ImportItem:
    """One image to import and its annotation.

    Attributes:
        source: Where the record came from, for the report (``Annotations/a.xml``, ``train.record#12``).
        image_name: The image's file name (stored as the image's name).
        read: Returns the image bytes; raises OSError/IngestError when they cannot be read.
        objects: (label, box) in ``coords``.
        coords: ``pixels`` or ``normalised``.
        declared_size: The size the annotation states, if any (checked against the image).
        attributes: Image-level attributes.
        annotated: False when the record carries no annotation at all (status stays new).
        notes: What the reader noticed.
        split: The split the dataset puts the image in (train/val/test), if it says.
        split_from: Where that split came from, for the report (``ImageSets/Main``).
    """

    source: str
    image_name: str
    read: Callable[[], bytes]
    objects: list[tuple[str, Box]]
    coords: Coords = "pixels"
    declared_size: tuple[int, int] | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    annotated: bool = True
    notes: list[str] = field(default_factory=list)
    split: str | None = None
    split_from: str | None = None


@dataclass(frozen=True)
class ImportOutcome:
    """What happened to one record.

    ``split`` is the split this import stored on the image (from the dataset's split
    lists); None when it stored none.
    """

    source: str
    outcome: Outcome
    message: str = ""
    image_id: int | None = None
    boxes: int = 0
    split: str | None = None
    split_from: str | None = None


@dataclass
class ImportReport:
    """Outcomes in input order, plus labels added."""

    outcomes: list[ImportOutcome] = field(default_factory=list)
    labels_added: list[str] = field(default_factory=list)

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
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (job results, CLI)."""
        return {**self.summary(), "records": [o.__dict__ for o in self.outcomes]}


# --- storing ---------------------------------------------------------------------------------------------------


def _pixel_objects(item: ImportItem, width: int, height: int, notes: list[str]) -> list[tuple[str, Box]]:
    """The item's boxes in pixels of the stored image, clipped; bad ones reported and left out."""
    out = []
    for n, (label, box) in enumerate(item.objects, start=1):
        px = box.scaled(width, height) if item.coords == "normalised" else box
        try:
            clipped, changed = px.validated(width, height)
        except InvalidBoxError as exc:
            notes.append(f"box {n} ({label}) left out: {exc}")
            continue
        if changed:
            notes.append(
                f"box {n} ({label}) went past the {width}x{height} image edge and was clipped "
                f"(x {px.x_min:g}..{px.x_max:g}, y {px.y_min:g}..{px.y_max:g})"
            )
        out.append((label, clipped))
    return out


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
        progress: Called with (records seen, source) after each record.

    Returns:
        The per-record report.
    """
    store = ImageStore(settings.data_dir)
    report = ImportReport()
    taken: set[str] = set()
    pending: list[ImportItem] = []

    def label_ids(session: Any) -> dict[str, int]:
        return {lab.name: lab.id for lab in session.scalars(select(Label).where(Label.project_id == project_id))}

    with session_scope(engine) as session:
        before = set(label_ids(session))

    def flush() -> None:
        with session_scope(engine) as session:
            labels = label_ids(session)
            for item in pending:
                try:
                    with session.begin_nested():
                        outcome = _store_one(session, store, project_id, item, labels, add_labels, taken, who)
                    report.outcomes.append(outcome)
                except _Refused as exc:
                    report.outcomes.append(ImportOutcome(item.source, exc.outcome, str(exc)))
                except Exception as exc:  # noqa: BLE001 - one bad record is reported; the rest import
                    report.outcomes.append(ImportOutcome(item.source, "failed", f"could not be stored: {exc}"))
                    labels = label_ids(session)  # a label added inside the failed savepoint is gone again
                if progress:
                    progress(len(report.outcomes), item.source)
        pending.clear()

    for item in items:
        if isinstance(item, ImportOutcome):
            if pending:
                flush()  # keeps the report in input order
            report.outcomes.append(item)
            continue
        pending.append(item)
        if len(pending) >= BATCH:
            flush()
    if pending:
        flush()
    with session_scope(engine) as session:
        report.labels_added = sorted(set(label_ids(session)) - before)
    s = report.summary()
    if s["imported"] or s["updated"] or s["failed"]:
        with session_scope(engine) as session:
            record_activity(
                session,
                project_id,
                "import",
                f"annotations imported: {s['imported']} new images, {s['updated']} annotated, {s['boxes']} boxes, "
                f"{s['duplicate']} already present, {s['failed']} failed"
                + (f"; {s['splits_message']}" if s["splits_message"] else ""),
                who,
            )
    return report


class _Refused(Exception):
    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


def _store_one(
    session: Any,
    store: ImageStore,
    project_id: int,
    item: ImportItem,
    labels: dict[str, int],
    add_labels: bool,
    taken: set[str],
    who: str | None,
) -> ImportOutcome:
    notes = list(item.notes)
    if not add_labels:
        unknown = sorted({label for label, _b in item.objects if label not in labels})
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
    if not is_new and (existing or image.status in (ImageStatus.DONE, ImageStatus.NO_OBJECTS)):
        # Same picture, already annotated: importing again must add nothing (a split it lacked is the exception:
        # that only fills in what the dataset fixes and changes no annotation).
        message = f"{ingested.message or 'already in the project'}; its boxes are left as they are"
        if split_set:
            split_notes.append(f"its split was not set yet: {split_set} from {item.split_from or 'the dataset'}")
        return ImportOutcome(
            item.source, "duplicate", "; ".join([message, *split_notes]), image.id,
            split=split_set, split_from=item.split_from if split_set else None,
        )  # fmt: skip
    notes.extend(split_notes)
    objects = _pixel_objects(item, image.width, image.height, notes)
    for label, _b in objects:
        if label not in labels:
            order = (session.scalar(select(func.max(Label.order)).where(Label.project_id == project_id)) or 0) + 1
            lab = Label(project_id=project_id, name=label, colour=colour_for(order), order=order)
            session.add(lab)
            session.flush()
            labels[label] = lab.id
            notes.append(f"label {label!r} added to the project")
    for label, b in objects:
        session.add(
            BoxRow(
                image_id=image.id,
                label_id=labels[label],
                x_min=b.x_min,
                y_min=b.y_min,
                x_max=b.x_max,
                y_max=b.y_max,
                source=BoxSource.HUMAN,
                created_by=who,
                updated_by=who,
            )
        )
    if item.attributes:
        image.attributes = {**(image.attributes or {}), **{str(k): v for k, v in item.attributes.items()}}
    if item.annotated:
        image.status = ImageStatus.DONE if objects else ImageStatus.NO_OBJECTS
        image.revision = (image.revision or 0) + 1
        image.updated_by = who
    session.flush()
    return ImportOutcome(
        item.source, "imported" if is_new else "updated", "; ".join(notes), image.id, len(objects),
        split=split_set, split_from=item.split_from if split_set else None,
    )  # fmt: skip


def _apply_split(image: Image, item: ImportItem, notes: list[str]) -> str | None:
    """Stores the item's split on an image that has none; returns the split stored, or None.

    A split already set is never changed, as in :mod:`core.splits`: moving an image that may
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


# --- reading files from a folder or a zip ------------------------------------------------------------------------


class _Files:
    """The files of a folder or a zip archive, found by relative path or by base name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        self.refused: list[ImportOutcome] = []
        self.members: dict[str, Any] = {}
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                if p.is_file() and not p.name.startswith("."):
                    self.members[p.relative_to(path).as_posix()] = p
        elif zipfile.is_zipfile(path):
            self.zip = zipfile.ZipFile(path)
            for info in self.zip.infolist():
                if info.is_dir():
                    continue
                safe = _safe_member_name(info.filename)
                if safe is None:
                    self.refused.append(
                        ImportOutcome(
                            info.filename, "failed", "refused: the entry's path is absolute or leaves the archive (..)"
                        )
                    )
                    continue
                if safe.startswith("__MACOSX/") or posixpath.basename(safe).startswith("."):
                    continue
                if info.file_size > MAX_FILE_BYTES or (
                    info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO
                ):
                    self.refused.append(ImportOutcome(safe, "failed", "refused: entry too large or a likely zip bomb"))
                    continue
                self.members[safe] = info
        else:
            raise AnnotationImportError(f"{path.name} is neither a folder nor a zip archive")
        self.by_base: dict[str, list[str]] = defaultdict(list)
        for rel in self.members:
            self.by_base[posixpath.basename(rel).lower()].append(rel)

    def read(self, rel: str) -> bytes:
        member = self.members[rel]
        if isinstance(member, Path):
            if member.stat().st_size > MAX_FILE_BYTES:
                raise IngestError("file too large")
            return member.read_bytes()
        assert self.zip is not None
        with self.zip.open(member) as fh:
            blob = fh.read(MAX_FILE_BYTES + 1)
        if len(blob) > MAX_FILE_BYTES:
            raise IngestError("entry inflates past the size limit")
        return blob

    def find_image(self, name: str, near: str | None = None, stem_of: str | None = None) -> str | None:
        """The image called ``name`` (case-insensitive base name); prefer one beside ``near``'s folder."""
        candidates = self.by_base.get(name.lower(), [])
        if not candidates and stem_of:
            stem = posixpath.splitext(posixpath.basename(stem_of))[0].lower()
            candidates = [
                rel
                for ext in IMAGE_EXTENSIONS
                for rel in self.by_base.get(stem + ext, [])
            ]
        if not candidates:
            return None
        if near is not None:
            parent = posixpath.dirname(posixpath.dirname(near))
            for rel in candidates:
                if rel.startswith(parent):
                    return rel
        return sorted(candidates, key=lambda r: ("jpegimages" not in r.lower(), r))[0]


@dataclass
class _VocSplitLists:
    """The ``ImageSets/Main/{train,val,test}.txt`` lists of one VOC dataset root.

    Attributes:
        listed: Image id -> the splits it is listed in, in :data:`VOC_SPLIT_LISTS` order.
        folded: Case-folded id -> id, for datasets whose lists and file names differ in case.
        used: Ids matched to an annotation so far.
        files: The list files found, by split.
    """

    listed: dict[str, list[Split]] = field(default_factory=dict)
    folded: dict[str, str] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    files: dict[Split, str] = field(default_factory=dict)

    def lookup(self, *stems: str) -> str | None:
        """The listed id among ``stems`` (exact first, then ignoring case)."""
        for stem in stems:
            if stem in self.listed:
                return stem
        for stem in stems:
            if (hit := self.folded.get(stem.casefold())) is not None:
                return hit
        return None


def _voc_root(xml_rel: str) -> str:
    """The dataset root of an annotation: the folder holding its ``Annotations`` folder.

    ``VOC2012/Annotations/a.xml`` -> ``VOC2012``; an XML outside any ``Annotations`` folder
    counts its own folder as the root.
    """
    parts = xml_rel.split("/")[:-1]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].lower() == "annotations":
            return "/".join(parts[:i])
    return "/".join(parts)


def _read_voc_split_lists(files: _Files, root: str, problems: list[ImportOutcome]) -> _VocSplitLists:
    """Reads ``<root>/ImageSets/Main/{train,val,test}.txt`` (any of them; names compared ignoring case).

    Only these three lists count: VOC's per-class lists (``dog_train.txt``, "id 1/-1" lines)
    and ``trainval.txt`` (the union of two lists) say nothing new. Lines are image ids (the
    XML/image stem); surrounding whitespace and blank lines are ignored. A list that cannot
    be read is reported in ``problems`` and left out.
    """
    lists = _VocSplitLists()
    prefix = f"{root}/" if root else ""
    wanted = {f"{prefix}{VOC_SPLIT_SOURCE}/{s.value}.txt".lower(): s for s in VOC_SPLIT_LISTS}
    for rel in files.members:
        split = wanted.get(rel.lower())
        if split is not None:
            lists.files[split] = rel
    for split in VOC_SPLIT_LISTS:  # precedence order, so each id's list of splits is in that order too
        rel = lists.files.get(split)
        if rel is None:
            continue
        try:
            text = files.read(rel).decode("utf-8-sig")
        except (OSError, IngestError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            problems.append(ImportOutcome(rel, "failed", f"split list not readable ({exc}); its images get no split"))
            del lists.files[split]
            continue
        for line in text.splitlines():
            image_id = line.strip()
            if not image_id:
                continue
            splits = lists.listed.setdefault(image_id, [])
            if split not in splits:
                splits.append(split)
            lists.folded.setdefault(image_id.casefold(), image_id)
    return lists


def _unmatched_ids(lists: _VocSplitLists) -> Iterator[ImportOutcome]:
    """One ``skipped`` record per split list naming ids that no annotation matched."""
    for split, rel in lists.files.items():
        missing = sorted(i for i, splits in lists.listed.items() if split in splits and i not in lists.used)
        if missing:
            shown = ", ".join(missing[:5]) + (", …" if len(missing) > 5 else "")
            yield ImportOutcome(
                rel, "skipped", f"{len(missing)} listed image ids have no annotation XML, so nothing was imported "
                f"for them: {shown}",
            )  # fmt: skip


def voc_items(path: Path) -> Iterator[ImportItem | ImportOutcome]:
    """Items of a Pascal VOC folder or zip (``Annotations/*.xml`` and the images beside them).

    Images are found by the base name in ``<filename>`` (or ``<path>``), preferring
    ``JPEGImages/``, else by the XML's stem with an image extension. The split of an image
    comes from ``ImageSets/Main/{train,val,test}.txt`` beside the ``Annotations`` folder
    its XML is in (see :func:`_read_voc_split_lists`), matched by the XML's or the image's stem.
    """
    from core.formats.voc import VocError, parse_voc_xml

    files = _Files(path)
    yield from files.refused
    xmls = [rel for rel in files.members if rel.lower().endswith(".xml")]
    if not xmls:
        raise AnnotationImportError(f"{path.name}: no .xml annotation files found")
    split_lists: dict[str, _VocSplitLists] = {}
    for rel in xmls:
        root = _voc_root(rel)
        if root not in split_lists:
            problems: list[ImportOutcome] = []
            split_lists[root] = _read_voc_split_lists(files, root, problems)
            yield from problems
        lists = split_lists[root]
        xml_stem = posixpath.splitext(posixpath.basename(rel))[0]
        if (listed_id := lists.lookup(xml_stem)) is not None:
            lists.used.add(listed_id)  # has an annotation, even if it turns out unusable (reported on its own)
        try:
            ann = parse_voc_xml(files.read(rel), rel)
        except (VocError, IngestError, OSError) as exc:
            yield ImportOutcome(rel, "failed", str(exc).removeprefix(f"{rel}: "))  # the outcome names the file
            continue
        image_rel = files.find_image(ann.filename, near=rel, stem_of=rel)
        if image_rel is None:
            yield ImportOutcome(rel, "failed", f"image {ann.filename!r} not found in {path.name}")
            continue
        notes = list(ann.notes)
        split: Split | None = None
        image_id = lists.lookup(xml_stem, posixpath.splitext(posixpath.basename(image_rel))[0])
        if image_id is not None:
            lists.used.add(image_id)
            splits = lists.listed[image_id]
            split = splits[0]
            if len(splits) > 1:
                notes.append(
                    f"listed in {' and '.join(f'{s.value}.txt' for s in splits)} of {VOC_SPLIT_SOURCE}; "
                    f"taken as {split.value} (an image listed for testing must never be trained on)"
                )
        yield ImportItem(
            source=rel,
            image_name=posixpath.basename(image_rel),
            read=lambda r=image_rel: files.read(r),
            objects=[(o.name, o.box) for o in ann.objects],
            declared_size=(ann.width, ann.height) if ann.width and ann.height else None,
            attributes=dict(ann.attributes),
            notes=notes,
            split=split.value if split else None,
            split_from=VOC_SPLIT_SOURCE if split else None,
        )
    for lists in split_lists.values():
        yield from _unmatched_ids(lists)


def coco_items(json_path: Path, images: Path | None = None) -> Iterator[ImportItem | ImportOutcome]:
    """Items of a COCO detection JSON; images are looked up by ``file_name`` in ``images``.

    ``images`` defaults to the JSON's folder's parent (the ``annotations/`` + ``images/``
    layout) searched recursively by base name.
    """
    from core.formats.coco import box_from_coco

    try:
        doc = json.loads(json_path.read_bytes())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnnotationImportError(f"{json_path.name}: not readable JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
        raise AnnotationImportError(f"{json_path.name}: not a COCO file (no 'images' list)")
    categories = {c.get("id"): str(c.get("name")) for c in doc.get("categories") or [] if isinstance(c, dict)}
    by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for ann in doc.get("annotations") or []:
        if isinstance(ann, dict):
            by_image[ann.get("image_id")].append(ann)
    root = images or (json_path.parent.parent if json_path.parent.name == "annotations" else json_path.parent)
    files = _Files(root)
    for entry in doc["images"]:
        if not isinstance(entry, dict) or not entry.get("file_name"):
            yield ImportOutcome(json_path.name, "failed", f"image entry without file_name: {str(entry)[:80]}")
            continue
        name = posixpath.basename(str(entry["file_name"]).replace("\\", "/"))
        source = f"{json_path.name}#{entry.get('id')}"
        rel = files.find_image(name)
        if rel is None:
            yield ImportOutcome(source, "failed", f"image {name!r} not found in {root}")
            continue
        notes: list[str] = []
        objects: list[tuple[str, Box]] = []
        for ann in by_image.get(entry.get("id"), []):
            label = categories.get(ann.get("category_id"))
            if label is None:
                notes.append(f"annotation {ann.get('id')}: unknown category_id {ann.get('category_id')}; left out")
                continue
            try:
                objects.append((label, box_from_coco(ann.get("bbox") or [])))
            except (TypeError, ValueError) as exc:
                notes.append(f"annotation {ann.get('id')} ({label}): bad bbox ({exc}); left out")
        w, h = entry.get("width"), entry.get("height")
        attrs = entry.get("attributes") if isinstance(entry.get("attributes"), dict) else {}
        yield ImportItem(
            source=source,
            image_name=name,
            read=lambda r=rel: files.read(r),
            objects=objects,
            declared_size=(int(w), int(h)) if isinstance(w, int) and isinstance(h, int) else None,
            attributes=attrs,
            notes=notes,
        )


def dataturks_items(json_path: Path, images: Path | None = None) -> Iterator[ImportItem | ImportOutcome]:
    """Items of a DataTurks export (one JSON object per line); images resolved by name in ``images``.

    URLs in ``content`` are never fetched.
    """
    from core.formats.dataturks import DataturksError, iter_lines, parse_line

    try:
        text = json_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationImportError(f"{json_path.name}: not readable as UTF-8 text: {exc}") from exc
    files = _Files(images or json_path.parent)
    for n, line in iter_lines(text):
        source = f"{json_path.name}:{n}"
        try:
            item = parse_line(line)
        except DataturksError as exc:
            yield ImportOutcome(source, "failed", f"line {n}: {exc}")
            continue
        rel = next((r for name in item.names if (r := files.find_image(name)) is not None), None)
        if rel is None:
            yield ImportOutcome(
                source, "failed", f"image {item.names[0]!r} not found in {files.path} (URLs are never downloaded)"
            )
            continue
        raw = json.loads(line)
        yield ImportItem(
            source=source,
            image_name=posixpath.basename(rel),
            read=lambda r=rel: files.read(r),
            objects=[(label, Box(*c)) for label, c in item.objects],
            coords="normalised",
            annotated=raw.get("annotation") is not None,
            notes=item.notes,
        )


def tfrecord_items(path: Path) -> Iterator[ImportItem | ImportOutcome]:
    """Items of OD API TFRecords: a file, or a folder of ``*.record*``/``*.tfrecord*`` files.

    The images come inside the records. Class names come from ``image/object/class/text``;
    records with only numeric labels need a ``label_map.pbtxt`` beside the records.
    """
    import tensorflow as tf

    from core.formats.label_map import LabelMapError, parse_label_map
    from core.formats.tfrecord import parse_example

    paths = (
        sorted(p for p in path.iterdir() if p.is_file() and (".record" in p.name or ".tfrecord" in p.name))
        if path.is_dir()
        else [path]
    )
    if not paths:
        raise AnnotationImportError(f"{path.name}: no .record or .tfrecord files found")
    label_map: dict[int, str] = {}
    lm = (path if path.is_dir() else path.parent) / "label_map.pbtxt"
    if lm.is_file():
        try:
            label_map = parse_label_map(lm.read_text(encoding="utf-8"))
        except (LabelMapError, UnicodeDecodeError) as exc:
            yield ImportOutcome(lm.name, "failed", f"label map not usable: {exc}")
    for p in paths:
        n = 0
        try:
            for raw in tf.data.TFRecordDataset(str(p)):
                n += 1
                source = f"{p.name}#{n}"
                try:
                    ex = parse_example(raw.numpy())
                except (tf.errors.InvalidArgumentError, ValueError) as exc:
                    yield ImportOutcome(source, "failed", f"not an OD API example: {str(exc).splitlines()[0][:200]}")
                    continue
                texts = ex["texts"]
                if not texts or len(texts) != len(ex["boxes"]):
                    if ex["labels"] and all(i in label_map for i in ex["labels"]):
                        texts = [label_map[i] for i in ex["labels"]]
                    elif ex["boxes"]:
                        yield ImportOutcome(
                            source, "failed", "boxes without class names and no label_map.pbtxt to name them"
                        )
                        continue
                # Boxes back to normalised: the stored image's own size is what counts.
                w, h = max(ex["width"], 1), max(ex["height"], 1)
                objects = [(t, b.scaled(1 / w, 1 / h)) for t, b in zip(texts, ex["boxes"], strict=True)]
                if not ex["encoded"]:
                    yield ImportOutcome(source, "failed", "record has no image/encoded bytes")
                    continue
                fallback = f"{ex['source_id'] or source}.{'png' if ex['format'] == 'png' else 'jpg'}"
                name = posixpath.basename(ex["filename"].replace("\\", "/")) or fallback
                yield ImportItem(
                    source=source,
                    image_name=name,
                    read=lambda b=ex["encoded"]: b,
                    objects=objects,
                    coords="normalised",
                    attributes=dict(ex["attributes"]),
                )
        except tf.errors.DataLossError as exc:
            first_line = str(exc).splitlines()[0][:200]
            yield ImportOutcome(
                f"{p.name}#{n + 1}", "failed", f"corrupt TFRecord file, the rest of it is unreadable: {first_line}"
            )


def read_items(fmt: str, path: Path, images: Path | None = None) -> Iterator[ImportItem | ImportOutcome]:
    """The item stream of ``path`` in format ``fmt``.

    Raises:
        AnnotationImportError: Unknown format, or a path that is not there.
    """
    fmt = fmt.lower()
    if not path.exists():
        raise AnnotationImportError(f"{path} does not exist")
    if fmt == "voc":
        return voc_items(path)
    if fmt == "coco":
        return coco_items(path, images)
    if fmt == "dataturks":
        return dataturks_items(path, images)
    if fmt == "tfrecord":
        return tfrecord_items(path)
    raise AnnotationImportError(f"Unknown import format {fmt!r}; choose one of {', '.join(IMPORT_FORMATS)}.")


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


