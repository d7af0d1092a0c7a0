"""One image as the annotate page sees it: its stored boxes, the drafts to save, the project's labels.

All coordinates here are **original-image pixels** (:class:`core.boxes.Box`); the canvas
and display-copy spaces are converted in ``ui/canvas.py`` before anything reaches
``core/annotate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.annotate.errors import AnnotationError
from core.annotate.names import find_named
from core.boxes import Box
from db.models import BoxRow, BoxSource, Image, ImageStatus, Label, Split


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
            saved as a model box with its score (``core/review/decisions.py``); everything else is human.
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
        select(BoxRow, Label.name)
        .join(Label, Label.id == BoxRow.label_id)
        .where(BoxRow.image_id == image_id)
        .order_by(BoxRow.id)
    ).all()
    boxes = tuple(
        StoredBox(
            id=b.id,
            label=name,
            box=Box.from_row(b),
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
    found = find_named(labels, text)
    if found is not None:
        return found
    text = text.strip()
    if text.isdigit() and 1 <= int(text) <= len(labels):
        return labels[int(text) - 1]
    return None
