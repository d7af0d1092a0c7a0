"""Read queries the pages and the CLI share (counts, feeds), each one SQL round trip."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Activity, BoxRow, Image, ImageStatus, Job, Label, Split


def images_by_status(session: Session, project_id: int) -> dict[str, int]:
    """Image count per status, every status present (zero when none)."""
    rows = session.execute(
        select(Image.status, func.count()).where(Image.project_id == project_id).group_by(Image.status)
    ).all()
    counts = {s.value: 0 for s in ImageStatus}
    counts.update({status.value: n for status, n in rows})
    return counts


def images_by_split(session: Session, project_id: int) -> dict[str, int]:
    """Image count per split ("unassigned" for none)."""
    rows = session.execute(
        select(Image.split, func.count()).where(Image.project_id == project_id).group_by(Image.split)
    ).all()
    counts = {s.value: 0 for s in Split} | {"unassigned": 0}
    counts.update({(split.value if split else "unassigned"): n for split, n in rows})
    return counts


def boxes_by_label(session: Session, project_id: int) -> dict[str, int]:
    """BoxRow count per label in label order, zero for unused labels."""
    rows = session.execute(
        select(Label.name, func.count(BoxRow.id))
        .select_from(Label)
        .outerjoin(BoxRow, BoxRow.label_id == Label.id)
        .where(Label.project_id == project_id)
        .group_by(Label.id, Label.name, Label.order)
        .order_by(Label.order)
    ).all()
    return {name: n for name, n in rows}


def project_stats(session: Session, project_id: int) -> dict[str, Any]:
    """Counts for the home page and ``python -m core stats``."""
    by_status = images_by_status(session, project_id)
    by_label = boxes_by_label(session, project_id)
    return {
        "images": sum(by_status.values()),
        "boxes": sum(by_label.values()),
        "images_by_status": by_status,
        "images_by_split": images_by_split(session, project_id),
        "boxes_by_label": by_label,
    }


def recent_activity(session: Session, project_id: int, limit: int = 20) -> list[Activity]:
    """The newest activity entries of a project."""
    return list(
        session.scalars(
            select(Activity)
            .where(Activity.project_id == project_id)
            .order_by(Activity.created_at.desc(), Activity.id.desc())
            .limit(limit)
        )
    )


def recent_jobs(session: Session, project_id: int, limit: int = 10) -> list[Job]:
    """The newest jobs of a project."""
    return list(
        session.scalars(select(Job).where(Job.project_id == project_id).order_by(Job.id.desc()).limit(limit))
    )
