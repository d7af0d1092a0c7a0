"""The audit trail: who did what, when, to which project; filtered reads and CSV for the admin page."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from db.engine import session_scope
from db.models import AuditEvent
from db.queries import project_names

# The actions written by Tagrack (the admin page offers them as filters).
ACTIONS = (
    "sign_in",
    "sign_in_failed",
    "sign_out",
    "account_added",
    "role_changed",
    "password_changed",
    "account_disabled",
    "account_enabled",
    "import-images",
    "import-annotations",
    "export",
    "train",
    "project_deleted",
    "labels_deleted",
    "images_assigned",
    "review_returned",
    "review_accepted",
    "review_stage",
)


def record(
    session: Session,
    action: str,
    who: str | None,
    project_id: int | None = None,
    **detail: Any,
) -> AuditEvent:
    """Adds one audit row (the caller commits, with the action it records)."""
    event = AuditEvent(action=action, who=who, project_id=project_id, detail=detail)
    session.add(event)
    return event


def events(
    session: Session,
    actions: Sequence[str] | None = None,
    who: str | None = None,
    project_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 5000,
) -> list[AuditEvent]:
    """Audit rows newest first, filtered by action, person, project and time."""
    query = select(AuditEvent)
    if actions:
        query = query.where(AuditEvent.action.in_(list(actions)))
    if who:
        query = query.where(AuditEvent.who == who)
    if project_id is not None:
        query = query.where(AuditEvent.project_id == project_id)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    return list(session.scalars(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()).limit(limit)))


def to_rows(rows: Sequence[AuditEvent]) -> list[dict[str, Any]]:
    """Plain dicts (time, who, action, project, detail) for a table or a CSV."""
    return [
        {
            "at": e.at.isoformat(sep=" ", timespec="seconds"),
            "who": e.who or "",
            "action": e.action,
            "project_id": e.project_id,
            "detail": ", ".join(f"{k}={v}" for k, v in sorted(e.detail.items())),
        }
        for e in rows
    ]


def to_csv(rows: Sequence[AuditEvent]) -> str:
    """The rows as CSV text with a header."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["at", "who", "action", "project_id", "detail"])
    writer.writeheader()
    writer.writerows(to_rows(rows))
    return out.getvalue()


def audit_view(
    engine: Engine,
    actions: Sequence[str] | None = None,
    who: str | None = None,
    project_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """What the Audit trail page shows: the filtered events as table rows and as CSV text, in one read."""
    with session_scope(engine) as session:
        rows = events(session, actions=actions, who=who, project_id=project_id, since=since, until=until)
        return to_rows(rows), to_csv(rows)


def audit_projects(engine: Engine) -> dict[int, str]:
    """Project id -> name, for the page's project filter."""
    with session_scope(engine) as session:
        return project_names(session)
