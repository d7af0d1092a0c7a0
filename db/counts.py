"""A project's counts kept on write: images per status and split, boxes per label (migration 0011).

Triggers on ``image`` and ``box`` append +1 / -1 rows to ``count_delta`` in the writing
transaction itself, so every write path (a save, an import, auto-accept, a review decision, a
bulk COPY, a cascade delete) keeps them right without knowing they exist, and a reader sees the
counts of exactly the rows its snapshot sees. Reading sums a project's delta rows (an index
range); when they pile up past :data:`FOLD_AT`, :func:`fold` replaces them by one row per key.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, func, insert, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from db.engine import BEGIN_MODE, SQLITE_BUSY_TIMEOUT_MS
from db.models import CountDelta, ImageStatus, Split

# Delta rows of one project a reader sums before it folds them (a save writes 2-6).
FOLD_AT = 500
# How long a fold waits for the write lock before leaving it to the next reader.
FOLD_WAIT_MS = 50


@dataclass(frozen=True)
class ProjectCounts:
    """Images per (status, split) and boxes per label id, as the database's triggers keep them."""

    images: dict[tuple[str, str], int] = field(default_factory=dict)
    boxes: dict[int, int] = field(default_factory=dict)

    def by_status(self) -> dict[str, int]:
        """Image count per status, every status present (zero when none)."""
        out = {s.value: 0 for s in ImageStatus}
        for (status, _split), n in self.images.items():
            out[status] = out.get(status, 0) + n
        return out

    def by_split(self) -> dict[str, int]:
        """Image count per split ("unassigned" for none), every split present."""
        out = {s.value: 0 for s in Split} | {"unassigned": 0}
        for (_status, split), n in self.images.items():
            key = split or "unassigned"
            out[key] = out.get(key, 0) + n
        return out

    @property
    def total_images(self) -> int:
        return sum(self.images.values())


def project_counts(session: Session, project_id: int) -> ProjectCounts:
    """The project's counts in ``session``'s snapshot; folds its delta rows when they pile up."""
    rows = session.execute(
        select(CountDelta.kind, CountDelta.key, func.sum(CountDelta.n), func.count())
        .where(CountDelta.project_id == project_id)
        .group_by(CountDelta.kind, CountDelta.key)
    ).all()
    images: dict[tuple[str, str], int] = {}
    boxes: dict[int, int] = {}
    for kind, key, n, _rows in rows:
        if not n:
            continue
        if kind == "image":
            status, _, split = key.partition("|")
            images[(status, split)] = int(n)
        elif kind == "label":
            boxes[int(key)] = int(n)
    if sum(r[3] for r in rows) > FOLD_AT:
        bind = session.get_bind()
        if isinstance(bind, Engine):
            fold(bind, project_id)
    return ProjectCounts(images=images, boxes=boxes)


def fold(engine: Engine, project_id: int, wait_ms: int = FOLD_WAIT_MS) -> bool:
    """Replaces the project's delta rows by one row per key (their sum) in its own short transaction.

    Returns False, changing nothing, when the write lock is not had within ``wait_ms`` (other
    writers, or the caller's own open write on SQLite): the next reader tries again. The rows
    it folds are the ones its DELETE removed (``RETURNING``), so two folds at once, or writers
    appending meanwhile, never count a row twice or drop one.
    """
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        raw = conn.connection.dbapi_connection
        if sqlite:
            raw.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
        try:
            with conn.execution_options(**{BEGIN_MODE: "write"}).begin():
                if not sqlite:
                    conn.execute(text(f"SET LOCAL lock_timeout = '{int(wait_ms)}ms'"))
                gone = conn.execute(
                    delete(CountDelta)
                    .where(CountDelta.project_id == project_id)
                    .returning(CountDelta.kind, CountDelta.key, CountDelta.n)
                ).all()
                sums: dict[tuple[str, str], int] = defaultdict(int)
                for kind, key, n in gone:
                    sums[(kind, key)] += n
                rows = [
                    {"project_id": project_id, "kind": kind, "key": key, "n": n} for (kind, key), n in sums.items() if n
                ]
                if rows:
                    conn.execute(insert(CountDelta), rows)
            return True
        except OperationalError as exc:
            text_ = str(exc.orig).lower()
            if "locked" in text_ or "busy" in text_ or "lock timeout" in text_:
                return False
            raise
        finally:
            if sqlite:
                raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
