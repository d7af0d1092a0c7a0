"""The annotation queue: which images to page through, the next one to do, finding one by name, progress."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from core.annotate.names import find_named
from db.models import BoxRow, Image, ImageStatus, Split, utcnow

# Statuses an annotator still has to work on; "next unannotated" means one of these.
TO_DO_STATUSES: frozenset[ImageStatus] = frozenset({ImageStatus.NEW, ImageStatus.IN_PROGRESS})
# Statuses that count as finished in the progress figure.
DONE_STATUSES: frozenset[ImageStatus] = frozenset({ImageStatus.DONE, ImageStatus.NO_OBJECTS})
# Value used in split filters for images that have no split yet.
UNASSIGNED = "unassigned"


@dataclass(frozen=True)
class AnnotationQueueFilter:
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


def queue(session: Session, project_id: int, flt: AnnotationQueueFilter = AnnotationQueueFilter()) -> list[QueueEntry]:
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
    done_cond = Image.status.in_(DONE_STATUSES)
    row = session.execute(
        select(
            func.count(),
            func.count().filter(done_cond),
            func.count().filter(
                and_(
                    done_cond,
                    Image.updated_by == who,
                    Image.updated_at >= midnight,
                    Image.updated_at < midnight + timedelta(days=1),
                )
            ),
        ).where(Image.project_id == project_id)
    ).one()
    return Progress(done=row[1], total=row[0], mine_today=row[2])
