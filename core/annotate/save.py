"""Saving an image's boxes and attributes as one new revision, with a history row per changed box.

Saving is optimistic locking on ``Image.revision``: the page remembers the revision it
loaded, and :func:`save_boxes` bumps it with one conditional ``UPDATE ... WHERE revision
= :expected`` as the transaction's first statement. A save that names an older revision
(another tab or person saved in between) changes nothing and raises
:class:`StaleRevisionError`, so a save is never a silent overwrite. Every created, edited
or deleted box leaves a :class:`db.models.BoxChange` row with who and when.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.accounts.review_stage import on_saved
from core.annotate.attributes import merged_attributes
from core.annotate.errors import AnnotationError, StaleRevisionError
from core.annotate.state import DraftBox, LabelInfo, load_image, project_labels, resolve_label
from core.boxes import Box, InvalidBoxError
from db.models import BoxChange, BoxRow, BoxSource, Image, ImageStatus, Project, utcnow

# Two boxes of different labels that overlap more than this are one garment stored twice (a
# reviewer accepting a prediction the model gave two classes, or a relabel drawn as a new box):
# a save refuses them. A jacket over a shirt stays well below it.
SAME_BOX_IOU = 0.95

# A draft that passed validation: the draft, its project label, its box clipped to the image.
_Resolved = tuple[DraftBox, LabelInfo, Box]


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
    image = _bump_revision(session, image_id, expected_revision, who, now)
    stamp = _Stamp(image_id, image.revision, who, now)
    labels = project_labels(session, image.project_id)
    resolved, clipped = _validate_drafts(drafts, labels, image.width, image.height, no_objects=no_objects)
    if attributes is not None:
        schema = session.scalar(select(Project.attribute_schema).where(Project.id == image.project_id)) or {}
        image.attributes = merged_attributes(schema, image.attributes, attributes)
    result = SaveResult(revision=image.revision, status=image.status, clipped=clipped)
    _write_boxes(session, stamp, resolved, {lab.id: lab.name for lab in labels}, result)
    image.status = _status_after(resolved, no_objects=no_objects)
    result.status = image.status
    on_saved(session, image, who)  # the review stage: a finished image waits for a reviewer
    session.flush()
    return result


@dataclass(frozen=True)
class _Stamp:
    """Which revision of which image a save writes, by whom, when: on every changed box and history row."""

    image_id: int
    revision: int
    who: str
    now: datetime

    def change(
        self, action: str, box_id: int, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> BoxChange:
        """The history row of one created, edited or deleted box."""
        return BoxChange(
            image_id=self.image_id,
            box_id=box_id,
            action=action,
            revision=self.revision,
            before=before,
            after=after,
            who=self.who,
            created_at=self.now,
        )


def _bump_revision(session: Session, image_id: int, expected_revision: int, who: str, now: datetime) -> Image:
    """Moves the image to its next revision if it is still at ``expected_revision``, and returns it.

    Raises:
        AnnotationError: The image does not exist.
        StaleRevisionError: Someone saved it after ``expected_revision`` was loaded.
    """
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
    return image


def _validate_drafts(
    drafts: Sequence[DraftBox], labels: Sequence[LabelInfo], width: int, height: int, *, no_objects: bool
) -> tuple[list[_Resolved], int]:
    """Resolves each draft's label and clips its box to the image; returns them and how many were clipped.

    Raises:
        AnnotationError: Listing every problem (unknown label, invalid box, one box stored twice
            with two labels, "no garments" with boxes).
    """
    problems: list[str] = []
    resolved: list[_Resolved] = []
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
            box, was_clipped = draft.box.validated(width, height)
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
    return resolved, clipped


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


def _row_snapshot(row: BoxRow, label_names: Mapping[int, str]) -> dict[str, Any]:
    return _snapshot(label_names.get(row.label_id, "?"), Box.from_row(row), row.source, row.score)


def _write_boxes(
    session: Session, stamp: _Stamp, resolved: Sequence[_Resolved], label_names: Mapping[int, str], result: SaveResult
) -> None:
    """Diffs the drafts against the stored boxes: edits, creates and deletes rows, one history row each.

    A draft continues its stored box (``box_id``) at most once; a second draft naming the same
    box is a new box. Stored boxes no draft continues are deleted. Counts go into ``result``.
    """
    stored = {b.id: b for b in session.scalars(select(BoxRow).where(BoxRow.image_id == stamp.image_id))}
    kept: set[int] = set()
    for draft, lab, box in resolved:
        row = stored.get(draft.box_id) if draft.box_id is not None else None
        if row is not None and row.id not in kept:
            kept.add(row.id)
            if Box.from_row(row) == box and row.label_id == lab.id:
                result.unchanged += 1
                continue
            before = _row_snapshot(row, label_names)
            row.x_min, row.y_min, row.x_max, row.y_max = box.x_min, box.y_min, box.x_max, box.y_max
            row.label_id = lab.id
            row.source, row.score = BoxSource.HUMAN, None
            row.updated_by, row.updated_at = stamp.who, stamp.now
            session.add(stamp.change("edited", row.id, before, _snapshot(lab.name, box, BoxSource.HUMAN, None)))
            result.edited += 1
        else:
            new = BoxRow(
                image_id=stamp.image_id,
                label_id=lab.id,
                **box.as_columns(),
                source=draft.source,
                score=draft.score,
                created_by=stamp.who,
                created_at=stamp.now,
                updated_by=stamp.who,
                updated_at=stamp.now,
            )
            session.add(new)
            session.flush()
            result.created_ids.append(new.id)
            session.add(stamp.change("created", new.id, None, _snapshot(lab.name, box, draft.source, draft.score)))
            result.created += 1
    for row in stored.values():
        if row.id in kept:
            continue
        session.add(stamp.change("deleted", row.id, _row_snapshot(row, label_names), None))
        session.delete(row)
        result.deleted += 1


def _status_after(resolved: Sequence[_Resolved], *, no_objects: bool) -> ImageStatus:
    """Done with boxes, "no garments" when the annotator said so, else still in progress."""
    if resolved:
        return ImageStatus.DONE
    if no_objects:
        return ImageStatus.NO_OBJECTS
    return ImageStatus.IN_PROGRESS


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
    newest_first = (BoxChange.created_at.desc(), BoxChange.id.desc())
    return list(
        session.scalars(select(BoxChange).where(BoxChange.image_id == image_id).order_by(*newest_first).limit(limit))
    )
