"""Annotating one image: loading its boxes, saving them safely, and the annotation queue.

All coordinates here are **original-image pixels** (:class:`core.boxes.Box`); the canvas
and display-copy spaces are converted in ``ui/canvas.py`` before anything reaches this
module.

Saving is optimistic locking on ``Image.revision``: the page remembers the revision it
loaded, and :func:`save_boxes` bumps it with one conditional ``UPDATE ... WHERE revision
= :expected`` as the transaction's first statement. A save that names an older revision
(another tab or person saved in between) changes nothing and raises
:class:`StaleRevisionError`, so a save is never a silent overwrite. Every created, edited
or deleted box leaves a :class:`db.models.BoxChange` row with who and when.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from core.boxes import Box, InvalidBoxError
from db.models import BoxRow
from db.models import BoxChange, BoxSource, Image, ImageStatus, Label, Project, Split, utcnow

# Statuses an annotator still has to work on; "next unannotated" means one of these.
TO_DO_STATUSES: frozenset[ImageStatus] = frozenset({ImageStatus.NEW, ImageStatus.IN_PROGRESS})
# Statuses that count as finished in the progress figure.
DONE_STATUSES: frozenset[ImageStatus] = frozenset({ImageStatus.DONE, ImageStatus.NO_OBJECTS})
# Image.attributes keys with this prefix are the model's auto-tags (core/review/review.py), not the
# attribute schema's: an attribute save keeps them.
MACHINE_ATTRIBUTE_PREFIX = "auto_"
# Value used in split filters for images that have no split yet.
UNASSIGNED = "unassigned"
# Two boxes of different labels that overlap more than this are one garment stored twice (a
# reviewer accepting a prediction the model gave two classes, or a relabel drawn as a new box):
# a save refuses them. A jacket over a shirt stays well below it.
SAME_BOX_IOU = 0.95


class AnnotationError(ValueError):
    """A save that cannot be done; the message says why and what to do. Nothing was changed."""


class StaleRevisionError(AnnotationError):
    """The image was saved by someone else after this copy was loaded.

    Attributes:
        current_revision: The revision now in the database.
        saved_by: Who made that revision.
        saved_at: When (UTC).
    """

    def __init__(self, image_name: str, expected: int, current: int, saved_by: str | None, saved_at: datetime | None):
        self.current_revision = current
        self.saved_by = saved_by
        self.saved_at = saved_at
        when = f" at {saved_at:%H:%M:%S} UTC" if saved_at else ""
        who = saved_by or "someone else"
        super().__init__(
            f"Not saved: {image_name!r} was saved by {who}{when} (revision {current}) after you opened it "
            f"(revision {expected}). Your changes were not written; the page now shows the saved version — "
            "redo your changes on it if they are still needed."
        )


@dataclass(frozen=True)
class StoredBox:
    """A box as it is in the database."""

    id: int
    label: str
    box: Box
    source: BoxSource
    score: float | None
    created_by: str | None
    updated_by: str | None
    updated_at: datetime | None


@dataclass(frozen=True)
class DraftBox:
    """A box the annotator wants saved.

    Attributes:
        label: Label name as typed or picked (resolved against the project on save).
        box: Original-image pixels.
        box_id: The stored box this one continues (moved, resized, relabelled or unchanged);
            None for a new box.
        source: Who made a new box: a model prediction a reviewer accepted unchanged is
            saved as a model box with its score (``core/review/review.py``); everything else is human.
        score: The model's score of such a box.
    """

    label: str
    box: Box
    box_id: int | None = None
    source: BoxSource = BoxSource.HUMAN
    score: float | None = None


@dataclass(frozen=True)
class LabelInfo:
    """A label of the project, in picker order."""

    id: int
    name: str
    colour: str


@dataclass(frozen=True)
class ImageState:
    """Everything the annotate page needs about one image, read in one session."""

    id: int
    project_id: int
    name: str
    width: int
    height: int
    stored_path: str
    display_path: str
    status: ImageStatus
    split: Split | None
    revision: int
    attributes: dict[str, Any]
    updated_by: str | None
    updated_at: datetime | None
    boxes: tuple[StoredBox, ...]
    import_note: str | None = None  # why an annotation import refused (some of) its boxes


@dataclass
class SaveResult:
    """What a save did."""

    revision: int
    status: ImageStatus
    created: int = 0
    edited: int = 0
    deleted: int = 0
    unchanged: int = 0
    clipped: int = 0
    messages: list[str] = field(default_factory=list)
    # Ids of the boxes this save created, in the order of their drafts.
    created_ids: list[int] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """One line for the page."""
        parts = [f"{self.created} added", f"{self.edited} changed", f"{self.deleted} deleted"]
        text = f"Saved revision {self.revision} ({', '.join(parts)}); status {self.status.value}."
        if self.clipped:
            text += f" {self.clipped} box(es) reached outside the image and were clipped to it."
        return text


def project_labels(session: Session, project_id: int) -> list[LabelInfo]:
    """The project's labels in picker order."""
    rows = session.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.order, Label.id))
    return [LabelInfo(lab.id, lab.name, lab.colour) for lab in rows]


def load_image(session: Session, image_id: int) -> ImageState:
    """Reads an image and its boxes (oldest box first, the order they are drawn in).

    Raises:
        AnnotationError: When the image does not exist.
    """
    image = session.get(Image, image_id)
    if image is None:
        raise AnnotationError(f"Image {image_id} does not exist (it may have been deleted).")
    rows = session.execute(
        select(BoxRow, Label.name).join(Label, Label.id == BoxRow.label_id).where(BoxRow.image_id == image_id)
        .order_by(BoxRow.id)
    ).all()  # fmt: skip
    boxes = tuple(
        StoredBox(
            id=b.id,
            label=name,
            box=Box(b.x_min, b.y_min, b.x_max, b.y_max),
            source=b.source,
            score=b.score,
            created_by=b.created_by,
            updated_by=b.updated_by,
            updated_at=b.updated_at,
        )
        for b, name in rows
    )
    return ImageState(
        id=image.id,
        project_id=image.project_id,
        name=image.original_name,
        width=image.width,
        height=image.height,
        stored_path=image.stored_path,
        display_path=image.display_path,
        status=image.status,
        split=image.split,
        revision=image.revision,
        attributes=dict(image.attributes or {}),
        updated_by=image.updated_by,
        updated_at=image.updated_at,
        boxes=boxes,
        import_note=image.import_note,
    )


def resolve_label(text: str, labels: Sequence[LabelInfo]) -> LabelInfo | None:
    """Finds the label a box's label text means.

    Accepts the exact name, the name in any letter case, or the label's 1-based number
    in the picker (what an annotator types when relabelling a box on the canvas).
    """
    text = text.strip()
    for lab in labels:
        if lab.name == text:
            return lab
    folded = text.casefold()
    for lab in labels:
        if lab.name.casefold() == folded:
            return lab
    if text.isdigit() and 1 <= int(text) <= len(labels):
        return labels[int(text) - 1]
    return None


def _close(a: Box, b: Box, tolerance: float) -> bool:
    return (
        abs(a.x_min - b.x_min) <= tolerance
        and abs(a.y_min - b.y_min) <= tolerance
        and abs(a.x_max - b.x_max) <= tolerance
        and abs(a.y_max - b.y_max) <= tolerance
    )


def match_boxes(
    stored: Sequence[StoredBox], edited: Sequence[tuple[str, Box]], tolerance: float
) -> list[DraftBox]:
    """Tells which stored box each box coming back from the canvas continues.

    The canvas returns plain labelled rectangles without ids, so identity is recovered
    here, in three passes that each only consider boxes not yet matched:

    1. unchanged: same label and every edge within ``tolerance`` (the canvas round-trips
       coordinates through its own float formatting, so exact equality is too strict);
       such a draft carries the *stored* coordinates, so an untouched box never drifts;
    2. moved or resized: the best-overlapping stored box (IoU > 0.3);
    3. anything else left over is new, and stored boxes no draft continues are deleted.

    Args:
        stored: The boxes as loaded.
        edited: (label, box) pairs in original pixels, in canvas order.
        tolerance: Largest per-edge difference, in original pixels, that still counts as
            unchanged (about 0.05 canvas pixels, converted).

    Returns:
        One draft per edited box, in the same order.
    """
    drafts: list[DraftBox | None] = [None] * len(edited)
    free = {s.id: s for s in stored}
    for i, (label, box) in enumerate(edited):
        for sid, s in free.items():
            if s.label == label and _close(s.box, box, tolerance):
                drafts[i] = DraftBox(label, s.box, sid)
                del free[sid]
                break
    pairs = sorted(
        ((box.iou(s.box), i, s.id) for i, (_, box) in enumerate(edited) if drafts[i] is None for s in free.values()),
        reverse=True,
    )
    for score, i, sid in pairs:
        if score <= 0.3:
            break
        if drafts[i] is None and sid in free:
            drafts[i] = DraftBox(edited[i][0], edited[i][1], sid)
            del free[sid]
    return [d if d is not None else DraftBox(label, box) for d, (label, box) in zip(drafts, edited, strict=True)]


def default_attributes(schema: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """The first allowed value of every attribute (the schema's defaults)."""
    return {name: str(values[0]) for name, values in schema.items() if values}


def effective_attributes(schema: Mapping[str, Sequence[str]], stored: Mapping[str, Any]) -> dict[str, str]:
    """The image's attribute values, with schema defaults for any not set (or no longer allowed)."""
    out = default_attributes(schema)
    for name, values in schema.items():
        if name in stored and stored[name] in values:
            out[name] = str(stored[name])
    return out


def validate_attributes(schema: Mapping[str, Sequence[str]], attributes: Mapping[str, Any]) -> dict[str, str]:
    """Checks image-level attributes against the project's schema.

    Raises:
        AnnotationError: For an attribute the schema does not have or a value it does not allow.
    """
    clean: dict[str, str] = {}
    for name, value in attributes.items():
        if name not in schema:
            raise AnnotationError(f"Unknown attribute {name!r}; this project has: {', '.join(schema) or 'none'}.")
        if value not in schema[name]:
            raise AnnotationError(
                f"{value!r} is not allowed for {name!r}; choose one of: {', '.join(map(str, schema[name]))}."
            )
        clean[name] = str(value)
    return clean


def has_changes(stored: Sequence[StoredBox], drafts: Sequence[DraftBox]) -> bool:
    """True when saving ``drafts`` would change the stored boxes."""
    by_id = {s.id: s for s in stored}
    if len(drafts) != len(stored):
        return True
    for d in drafts:
        s = by_id.get(d.box_id) if d.box_id is not None else None
        if s is None or s.label != d.label or s.box != d.box:
            return True
    return False


def _snapshot(label: str, box: Box, source: BoxSource, score: float | None) -> dict[str, Any]:
    return {
        "label": label,
        "x_min": box.x_min,
        "y_min": box.y_min,
        "x_max": box.x_max,
        "y_max": box.y_max,
        "source": source.value,
        "score": score,
    }


def _same_box_problems(boxes: Sequence[tuple[int, str, Box]]) -> list[str]:
    """One message per pair of differently labelled boxes that are the same box (IoU above SAME_BOX_IOU)."""
    out = []
    for i, (n, label, box) in enumerate(boxes):
        for m, other_label, other in boxes[i + 1 :]:
            iou = box.iou(other)
            if other_label != label and iou > SAME_BOX_IOU:
                out.append(
                    f"box {n} ({label}) and box {m} ({other_label}) are the same box (IoU {iou:.2f}), so one garment "
                    "would be stored twice with two labels. Delete the wrong one (or move it, if they are two "
                    "garments) and save again"
                )
    return out


def save_boxes(
    session: Session,
    image_id: int,
    expected_revision: int,
    drafts: Sequence[DraftBox],
    who: str,
    *,
    no_objects: bool = False,
    attributes: Mapping[str, Any] | None = None,
) -> SaveResult:
    """Saves an image's boxes (and attributes) as one new revision.

    Boxes are clipped to the image; a box with zero or negative area, a non-finite
    coordinate, a label the project does not have, or two boxes of different labels on
    the same place (IoU above :data:`SAME_BOX_IOU`) refuse the whole save with a message
    (nothing is written). A stored box that is edited becomes a human box (a
    model box loses its score; the history keeps it). The image's status becomes
    ``done`` with boxes, ``no_objects`` when ``no_objects`` is set (only with zero
    boxes), else ``in_progress``.

    Args:
        session: An open session; the caller commits (``session_scope``).
        image_id: The image.
        expected_revision: The revision the annotator's copy was loaded at.
        drafts: The full set of boxes the image should have afterwards.
        who: Recorded on every changed box and history row.
        no_objects: "No garments in this image": done with zero boxes.
        attributes: Image-level attributes to store (validated against the project's
            schema); None keeps the stored ones.

    Returns:
        What was saved.

    Raises:
        StaleRevisionError: The image is no longer at ``expected_revision``.
        AnnotationError: Invalid boxes, labels or attributes (the message lists them).
    """
    now = utcnow()
    # The conditional bump comes first: it takes SQLite's write lock at once, so two
    # saves are serialised here and the loser sees the winner's revision.
    bumped = session.execute(
        update(Image)
        .where(Image.id == image_id, Image.revision == expected_revision)
        .values(revision=Image.revision + 1, updated_by=who, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    image = session.execute(
        select(Image).where(Image.id == image_id).execution_options(populate_existing=True)
    ).scalar()
    if image is None:
        raise AnnotationError(f"Image {image_id} does not exist any more; nothing was saved.")
    if bumped.rowcount != 1:
        raise StaleRevisionError(
            image.original_name, expected_revision, image.revision, image.updated_by, image.updated_at
        )

    labels = project_labels(session, image.project_id)
    problems: list[str] = []
    resolved: list[tuple[DraftBox, LabelInfo, Box]] = []
    numbered: list[tuple[int, str, Box]] = []  # the draft's number (as the page lists them), label, clipped box
    clipped = 0
    for n, draft in enumerate(drafts, start=1):
        lab = resolve_label(draft.label, labels)
        if lab is None:
            problems.append(
                f"box {n} has label {draft.label!r}, which this project does not have "
                f"(labels: {', '.join(x.name for x in labels)})"
            )
            continue
        try:
            box, was_clipped = draft.box.validated(image.width, image.height)
        except InvalidBoxError as exc:
            problems.append(f"box {n} ({lab.name}): {exc}")
            continue
        clipped += was_clipped
        resolved.append((draft, lab, box))
        numbered.append((n, lab.name, box))
    problems.extend(_same_box_problems(numbered))
    if no_objects and drafts:
        problems.append(f"'No garments' needs an image without boxes, but it has {len(drafts)}; delete them first")
    if problems:
        raise AnnotationError("Not saved: " + "; ".join(problems) + ".")
    if attributes is not None:
        schema = session.scalar(select(Project.attribute_schema).where(Project.id == image.project_id)) or {}
        # Keys the schema does not own (the model's auto-tags) survive an attribute save.
        kept_keys = {k: v for k, v in (image.attributes or {}).items() if str(k).startswith(MACHINE_ATTRIBUTE_PREFIX)}
        image.attributes = {**kept_keys, **validate_attributes(schema, attributes)}

    result = SaveResult(revision=image.revision, status=image.status, clipped=clipped)
    stored = {b.id: b for b in session.scalars(select(BoxRow).where(BoxRow.image_id == image_id))}
    label_names = {lab.id: lab.name for lab in labels}
    kept: set[int] = set()
    for draft, lab, box in resolved:
        row = stored.get(draft.box_id) if draft.box_id is not None else None
        if row is not None and row.id not in kept:
            kept.add(row.id)
            old = Box(row.x_min, row.y_min, row.x_max, row.y_max)
            if old == box and row.label_id == lab.id:
                result.unchanged += 1
                continue
            before = _snapshot(label_names.get(row.label_id, "?"), old, row.source, row.score)
            row.x_min, row.y_min, row.x_max, row.y_max = box.x_min, box.y_min, box.x_max, box.y_max
            row.label_id = lab.id
            row.source, row.score = BoxSource.HUMAN, None
            row.updated_by, row.updated_at = who, now
            session.add(
                BoxChange(
                    image_id=image_id, box_id=row.id, action="edited", revision=image.revision, before=before,
                    after=_snapshot(lab.name, box, BoxSource.HUMAN, None), who=who, created_at=now,
                )
            )  # fmt: skip
            result.edited += 1
        else:
            new = BoxRow(
                image_id=image_id, label_id=lab.id, x_min=box.x_min, y_min=box.y_min, x_max=box.x_max,
                y_max=box.y_max, source=draft.source, score=draft.score, created_by=who, created_at=now,
                updated_by=who, updated_at=now,
            )  # fmt: skip
            session.add(new)
            session.flush()
            result.created_ids.append(new.id)
            session.add(
                BoxChange(
                    image_id=image_id, box_id=new.id, action="created", revision=image.revision, before=None,
                    after=_snapshot(lab.name, box, draft.source, draft.score), who=who, created_at=now,
                )
            )  # fmt: skip
            result.created += 1
    for row in stored.values():
        if row.id in kept:
            continue
        session.add(
            BoxChange(
                image_id=image_id, box_id=row.id, action="deleted", revision=image.revision,
                before=_snapshot(label_names.get(row.label_id, "?"), Box(row.x_min, row.y_min, row.x_max, row.y_max),
                                 row.source, row.score),
                after=None, who=who, created_at=now,
            )
        )  # fmt: skip
        session.delete(row)
        result.deleted += 1

    if resolved:
        image.status = ImageStatus.DONE
    elif no_objects:
        image.status = ImageStatus.NO_OBJECTS
    else:
        image.status = ImageStatus.IN_PROGRESS
    result.status = image.status
    session.flush()
    return result


def copy_boxes(session: Session, source_image_id: int, target_width: int, target_height: int) -> list[DraftBox]:
    """The boxes of another image as new drafts, scaled when the two sizes differ.

    Scaling is per axis (``target / source``), so a box keeps its relative place when a
    photo series mixes resolutions.
    """
    source = session.get(Image, source_image_id)
    if source is None:
        return []
    sx, sy = target_width / source.width, target_height / source.height
    state = load_image(session, source_image_id)
    return [DraftBox(b.label, b.box.scaled(sx, sy).clip(target_width, target_height)) for b in state.boxes]


def box_history(session: Session, image_id: int, limit: int = 50) -> list[BoxChange]:
    """The newest box changes of an image."""
    return list(
        session.scalars(
            select(BoxChange).where(BoxChange.image_id == image_id)
            .order_by(BoxChange.created_at.desc(), BoxChange.id.desc()).limit(limit)
        )
    )  # fmt: skip


# ----------------------------------------------------------------------------- queue


@dataclass(frozen=True)
class QueueFilter:
    """Which images the queue holds; an empty tuple means "any".

    Attributes:
        statuses: Image statuses to include.
        label_ids: Only images with at least one box of one of these labels.
        splits: Split values (``"train"``, ``"val"``, ``"test"``) and/or ``"unassigned"``.
    """

    statuses: tuple[ImageStatus, ...] = ()
    label_ids: tuple[int, ...] = ()
    splits: tuple[str, ...] = ()


@dataclass(frozen=True)
class QueueEntry:
    """One image in the queue."""

    id: int
    name: str
    status: ImageStatus


def queue(session: Session, project_id: int, flt: QueueFilter = QueueFilter()) -> list[QueueEntry]:
    """The images to page through, in a stable order (by name, then id), filtered.

    The order is stable on purpose: "next" then "previous" must return to the same
    image even after saving changed its status. Use :func:`first_to_do` to start at the
    next unannotated one.
    """
    stmt = select(Image.id, Image.original_name, Image.status).where(Image.project_id == project_id)
    if flt.statuses:
        stmt = stmt.where(Image.status.in_(flt.statuses))
    if flt.splits:
        wanted = [Split(s) for s in flt.splits if s != UNASSIGNED]
        conds = [Image.split.in_(wanted)] if wanted else []
        if UNASSIGNED in flt.splits:
            conds.append(Image.split.is_(None))
        stmt = stmt.where(or_(*conds))
    if flt.label_ids:
        stmt = stmt.where(exists().where(and_(BoxRow.image_id == Image.id, BoxRow.label_id.in_(flt.label_ids))))
    rows = session.execute(stmt.order_by(Image.original_name, Image.id)).all()
    return [QueueEntry(i, n, s) for i, n, s in rows]


def first_to_do(entries: Sequence[QueueEntry], after: int | None = None) -> QueueEntry | None:
    """The first unannotated image (new or in progress), searching after position ``after`` and wrapping."""
    if not entries:
        return None
    n = len(entries)
    start = 0 if after is None else after + 1
    for k in range(n if after is None else n - 1):
        e = entries[(start + k) % n]
        if e.status in TO_DO_STATUSES:
            return e
    return None


def find_by_name(entries: Iterable[QueueEntry], text: str) -> QueueEntry | None:
    """Finds an image by name: exact, then case-insensitive, then the first name containing the text."""
    text = text.strip()
    if not text:
        return None
    entries = list(entries)
    for e in entries:
        if e.name == text:
            return e
    folded = text.casefold()
    for e in entries:
        if e.name.casefold() == folded:
            return e
    for e in entries:
        if folded in e.name.casefold():
            return e
    return None


@dataclass(frozen=True)
class Progress:
    """Annotation progress of a project."""

    done: int
    total: int
    mine_today: int


def progress(session: Session, project_id: int, who: str, now: datetime | None = None) -> Progress:
    """Done (boxes saved or "no garments") over all images, and how many ``who`` finished today (UTC).

    "Mine today" counts images whose latest save today was by ``who`` and left them done.
    """
    now = now or utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    done_cond = Image.status.in_(DONE_STATUSES)
    row = session.execute(
        select(
            func.count(),
            func.count().filter(done_cond),
            func.count().filter(
                and_(done_cond, Image.updated_by == who, Image.updated_at >= midnight,
                     Image.updated_at < midnight + timedelta(days=1))
            ),
        ).where(Image.project_id == project_id)
    ).one()  # fmt: skip
    return Progress(done=row[1], total=row[0], mine_today=row[2])
