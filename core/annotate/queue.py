"""The annotation queue: which images to page through, the next one to do, finding one by name, progress."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, exists, func, literal, not_, or_, select
from sqlalchemy.orm import Session

from core.annotate.names import find_named
from db.counts import project_counts
from db.models import BoxRow, Image, ImageAssignment, ImageReview, ImageStatus, Split, utcnow

# Statuses an annotator still has to work on; "next unannotated" means one of these.
TO_DO_STATUSES: frozenset[ImageStatus] = frozenset({ImageStatus.NEW, ImageStatus.IN_PROGRESS})
# Statuses that count as finished in the progress figure.
DONE_STATUSES: frozenset[ImageStatus] = frozenset({ImageStatus.DONE, ImageStatus.NO_OBJECTS})
# Value used in split filters for images that have no split yet.
UNASSIGNED = "unassigned"


@dataclass(frozen=True)
class QueueViewer:
    """Whose queue it is, when assigned work orders it (core/accounts/assignment.py).

    The queue then comes in groups: images a reviewer returned to this person (to do again),
    images assigned to them, unassigned ones, and others' (left out when ``hide_others``:
    annotators never see them). Within a group the order stays by name.
    """

    account_id: int
    username: str
    hide_others: bool


@dataclass(frozen=True)
class AnnotationQueueFilter:
    """Which images the queue holds (an empty tuple means "any") and in whose order.

    Attributes:
        statuses: Image statuses to include.
        label_ids: Only images with at least one box of one of these labels.
        splits: Split values (``"train"``, ``"val"``, ``"test"``) and/or ``"unassigned"``.
        viewer: The person's assigned-work order; None for one order for everybody (no
            sign-in, or a project with no assigned or returned images).
    """

    statuses: tuple[ImageStatus, ...] = ()
    label_ids: tuple[int, ...] = ()
    splits: tuple[str, ...] = ()
    viewer: QueueViewer | None = None

    @property
    def narrows(self) -> bool:
        """Whether a filter (not only the viewer's order) leaves images out."""
        return bool(self.statuses or self.label_ids or self.splits)


# Group of an image in a viewer's queue (RETURNED first). Without a viewer every image is UNASSIGNED.
RETURNED, MINE, UNASSIGNED_WORK, OTHERS = 0, 1, 2, 3


@dataclass(frozen=True)
class QueueEntry:
    """One image in the queue (``group``: its place in the viewer's order, see :class:`QueueViewer`)."""

    id: int
    name: str
    status: ImageStatus
    group: int = UNASSIGNED_WORK


def _group(flt: AnnotationQueueFilter) -> ColumnElement[int]:
    viewer = flt.viewer
    if viewer is None:
        return literal(UNASSIGNED_WORK)
    returned = exists().where(
        ImageReview.image_id == Image.id, ImageReview.state == "returned", ImageReview.annotator == viewer.username
    )
    mine = exists().where(ImageAssignment.image_id == Image.id, ImageAssignment.account_id == viewer.account_id)
    anyone = exists().where(ImageAssignment.image_id == Image.id)
    return case((returned, RETURNED), (mine, MINE), (not_(anyone), UNASSIGNED_WORK), else_=OTHERS)


def _filtered(stmt: Select[Any], project_id: int, flt: AnnotationQueueFilter) -> Select[Any]:
    stmt = stmt.where(Image.project_id == project_id)
    if flt.viewer is not None and flt.viewer.hide_others:
        stmt = stmt.where(_group(flt) < OTHERS)
    if flt.statuses:
        stmt = stmt.where(Image.status.in_(flt.statuses))
    if flt.splits:
        wanted = [Split(s) for s in flt.splits if s != UNASSIGNED]
        conds = [Image.split.in_(wanted)] if wanted else []
        if UNASSIGNED in flt.splits:
            conds.append(Image.split.is_(None))
        stmt = stmt.where(or_(*conds))
    if flt.label_ids:
        # Driven from the box side (the label's boxes, through ix_box_label_image): on 500,000
        # boxes that is the label's share, where an EXISTS per image would probe every image.
        stmt = stmt.where(Image.id.in_(select(BoxRow.image_id).where(BoxRow.label_id.in_(flt.label_ids))))
    return stmt


def _columns(flt: AnnotationQueueFilter) -> tuple[Any, ...]:
    return (Image.id, Image.original_name, Image.status, _group(flt))


def _order(flt: AnnotationQueueFilter) -> tuple[Any, ...]:
    # Without a viewer the group is one constant: the order is (name, id), served by the index.
    if flt.viewer is None:
        return (Image.original_name, Image.id)
    return (_group(flt), Image.original_name, Image.id)


def _order_desc(flt: AnnotationQueueFilter) -> tuple[Any, ...]:
    if flt.viewer is None:
        return (Image.original_name.desc(), Image.id.desc())
    return (_group(flt).desc(), Image.original_name.desc(), Image.id.desc())


def _after(flt: AnnotationQueueFilter, entry: QueueEntry) -> ColumnElement[bool]:
    by_name = or_(Image.original_name > entry.name, and_(Image.original_name == entry.name, Image.id > entry.id))
    if flt.viewer is None:
        return by_name
    group = _group(flt)
    return or_(group > entry.group, and_(group == entry.group, by_name))


def _before(flt: AnnotationQueueFilter, entry: QueueEntry) -> ColumnElement[bool]:
    by_name = or_(Image.original_name < entry.name, and_(Image.original_name == entry.name, Image.id < entry.id))
    if flt.viewer is None:
        return by_name
    group = _group(flt)
    return or_(group < entry.group, and_(group == entry.group, by_name))


def _entry(row: Any) -> QueueEntry | None:
    if row is None:
        return None
    group = int(row[3])
    # A returned image is to do again for its annotator: "next new image" stops at it.
    status = ImageStatus.IN_PROGRESS if group == RETURNED else row[2]
    return QueueEntry(row[0], row[1], status, group)


def queue(session: Session, project_id: int, flt: AnnotationQueueFilter = AnnotationQueueFilter()) -> list[QueueEntry]:
    """The whole queue as a list, in a stable order (by name, then id), filtered.

    For small projects and tests; the Annotate page reads the queue a page at a time
    (:func:`queue_page`) and moves with :func:`neighbour`, so a run never loads 100,000 rows.
    The order is stable on purpose: "next" then "previous" must return to the same
    image even after saving changed its status.
    """
    rows = session.execute(_filtered(select(*_columns(flt)), project_id, flt).order_by(*_order(flt))).all()
    return [e for e in map(_entry, rows) if e is not None]


def queue_page(
    session: Session,
    project_id: int,
    flt: AnnotationQueueFilter = AnnotationQueueFilter(),
    after: QueueEntry | None = None,
    limit: int = 500,
) -> list[QueueEntry]:
    """Up to ``limit`` entries following ``after`` (from the start when None), in queue order.

    Keyset pagination on (name, id): each page starts strictly after the last entry of the
    previous one, so an image inserted or re-ordered meanwhile never makes a page repeat or skip
    an image that was there all along (an OFFSET would shift under inserts).
    """
    stmt = _filtered(select(*_columns(flt)), project_id, flt)
    if after is not None:
        stmt = stmt.where(_after(flt, after))
    return [e for e in map(_entry, session.execute(stmt.order_by(*_order(flt)).limit(limit)).all()) if e is not None]


def queue_count(session: Session, project_id: int, flt: AnnotationQueueFilter = AnnotationQueueFilter()) -> int:
    """How many images the queue holds."""
    return int(session.scalar(_filtered(select(func.count()).select_from(Image), project_id, flt)) or 0)


def queue_entry(
    session: Session, project_id: int, flt: AnnotationQueueFilter, image_id: int | None
) -> QueueEntry | None:
    """The queue's entry for ``image_id``; None when the image is not (or no longer) in the queue."""
    if image_id is None:
        return None
    return _entry(
        session.execute(_filtered(select(*_columns(flt)), project_id, flt).where(Image.id == image_id)).first()
    )


def position(session: Session, project_id: int, flt: AnnotationQueueFilter, entry: QueueEntry) -> int:
    """The entry's 0-based place in the queue (how many entries come before it)."""
    stmt = _filtered(select(func.count()).select_from(Image), project_id, flt).where(_before(flt, entry))
    return int(session.scalar(stmt) or 0)


def neighbour(
    session: Session, project_id: int, flt: AnnotationQueueFilter, entry: QueueEntry, step: int
) -> QueueEntry | None:
    """The entry right after (``step`` 1) or before (``step`` -1) ``entry``; None at the end."""
    stmt = _filtered(select(*_columns(flt)), project_id, flt)
    stmt = (
        stmt.where(_after(flt, entry)).order_by(*_order(flt))
        if step > 0
        else stmt.where(_before(flt, entry)).order_by(*_order_desc(flt))
    )
    return _entry(session.execute(stmt.limit(1)).first())


def next_to_do(
    session: Session, project_id: int, flt: AnnotationQueueFilter, after: QueueEntry | None = None
) -> QueueEntry | None:
    """The first unannotated image (new or in progress) after ``after`` (from the start when None), wrapping.

    ``after`` itself is never the answer (it is the image being left).
    """
    stmt = (
        _filtered(select(*_columns(flt)), project_id, flt)
        .where(or_(Image.status.in_(TO_DO_STATUSES), _group(flt) == RETURNED))
        .order_by(*_order(flt))
    )
    if after is None:
        return _entry(session.execute(stmt.limit(1)).first())
    found = _entry(session.execute(stmt.where(_after(flt, after)).limit(1)).first())
    if found is None:
        found = _entry(session.execute(stmt.where(_before(flt, after)).limit(1)).first())
    return found


def find_in_queue(session: Session, project_id: int, flt: AnnotationQueueFilter, text: str) -> QueueEntry | None:
    """Finds an image by name as :func:`find_by_name` does (exact, any case, contained), in SQL.

    The exact match uses the (project, name) index; the other two share one scan of the names in
    the database (never in Python): every case-insensitive match also contains the text, so the
    contained names are read once, a case-insensitive match first.
    """
    text = text.strip()
    if not text:
        return None
    filtered = _filtered(select(*_columns(flt)), project_id, flt)
    found = _entry(session.execute(filtered.where(Image.original_name == text).order_by(*_order(flt)).limit(1)).first())
    if found is not None:
        return found
    folded = text.lower()
    pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    name = func.lower(Image.original_name)
    return _entry(
        session.execute(
            filtered.where(name.like(pattern, escape="\\"))
            .order_by(case((name == folded, 0), else_=1), *_order(flt))
            .limit(1)
        ).first()
    )


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
    if not text.strip():
        return None
    return find_named(entries, text, partial=True)


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
    # The count per status is kept on write (db.counts), and "mine today" is a range of
    # ix_image_project_who_time (100,000 images: a few ms).
    by_status = project_counts(session, project_id).by_status()
    mine = session.scalar(
        select(func.count()).where(
            Image.project_id == project_id,
            Image.updated_by == who,
            Image.updated_at >= midnight,
            Image.updated_at < midnight + timedelta(days=1),
            Image.status.in_(DONE_STATUSES),
        )
    )
    done = sum(n for status, n in by_status.items() if status in {s.value for s in DONE_STATUSES})
    return Progress(done=done, total=sum(by_status.values()), mine_today=int(mine or 0))
