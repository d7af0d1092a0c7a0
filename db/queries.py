"""Read queries the pages and the CLI share (counts, feeds), each one SQL round trip."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.counts import ProjectCounts, project_counts
from db.models import Activity, Image, Job, JobStatus, Label, ModelKind, ModelVersion, Project


def images_by_status(session: Session, project_id: int) -> dict[str, int]:
    """Image count per status, every status present (zero when none); kept on write (``db.counts``)."""
    return project_counts(session, project_id).by_status()


def images_by_split(session: Session, project_id: int) -> dict[str, int]:
    """Image count per split ("unassigned" for none); kept on write (``db.counts``)."""
    return project_counts(session, project_id).by_split()


def boxes_by_label(session: Session, project_id: int, counts: ProjectCounts | None = None) -> dict[str, int]:
    """Box count per label in label order, zero for unused labels; kept on write (``db.counts``)."""
    counts = counts or project_counts(session, project_id)
    labels = session.execute(
        select(Label.id, Label.name).where(Label.project_id == project_id).order_by(Label.order)
    ).all()
    return {name: counts.boxes.get(label_id, 0) for label_id, name in labels}


def project_stats(session: Session, project_id: int) -> dict[str, Any]:
    """Counts for the home page and ``python -m core stats`` (one read of the kept counts)."""
    counts = project_counts(session, project_id)
    by_status = counts.by_status()
    by_label = boxes_by_label(session, project_id, counts)
    return {
        "images": sum(by_status.values()),
        "boxes": sum(by_label.values()),
        "images_by_status": by_status,
        "images_by_split": counts.by_split(),
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
    return list(session.scalars(select(Job).where(Job.project_id == project_id).order_by(Job.id.desc()).limit(limit)))


ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


def latest_job(session: Session, kind: str, project_id: int | None = None, active: bool = False) -> Job | None:
    """The newest job of a kind (of one project when ``project_id`` is given); only queued or running ones
    when ``active``. Pages reap stale workers first (core.jobs.reap_stale) so a dead one does not count."""
    query = select(Job).where(Job.kind == kind)
    if project_id is not None:
        query = query.where(Job.project_id == project_id)
    if active:
        query = query.where(Job.status.in_(ACTIVE_JOB_STATUSES))
    return session.scalar(query.order_by(Job.id.desc()).limit(1))


def followed_job(session: Session, kind: str, project_id: int, job_id: int | None) -> Job | None:
    """The job a page follows (``job_id``, when it is this project's job of ``kind``), else the project's latest."""
    job = session.get(Job, job_id) if job_id else None
    if job is not None and job.kind == kind and job.project_id == project_id:
        return job
    return latest_job(session, kind, project_id)


def model_versions(session: Session, project_id: int) -> list[ModelVersion]:
    """The project's model versions, newest first."""
    return list(
        session.scalars(
            select(ModelVersion).where(ModelVersion.project_id == project_id).order_by(ModelVersion.id.desc())
        )
    )


def model_version_names(session: Session, project_id: int, kind: ModelKind | None = None) -> dict[int, str]:
    """The project's model versions (of one kind, if given), newest first, as id -> name.

    Neither metrics nor params are loaded.
    """
    query = select(ModelVersion.id, ModelVersion.name).where(ModelVersion.project_id == project_id)
    if kind is not None:
        query = query.where(ModelVersion.kind == kind)
    rows = session.execute(query.order_by(ModelVersion.id.desc())).all()
    return {vid: name for vid, name in rows}


def image_names(session: Session, image_ids: Iterable[int]) -> dict[int, str]:
    """Original file name per image id (ids that do not exist are left out)."""
    return dict(session.execute(select(Image.id, Image.original_name).where(Image.id.in_(list(image_ids)))).all())


def display_paths(session: Session, image_ids: Iterable[int]) -> dict[int, str]:
    """image id -> its display copy's path (relative to the data folder); ids that do not exist are left out."""
    rows = session.execute(select(Image.id, Image.display_path).where(Image.id.in_(list(image_ids))))
    return dict(rows.all())


def attribute_schema(session: Session, project_id: int) -> dict[str, list[str]]:
    """The project's tag schema ``{tag: [values]}`` (empty when it has none or does not exist)."""
    schema = session.scalar(select(Project.attribute_schema).where(Project.id == project_id))
    return {str(k): [str(v) for v in vals] for k, vals in (schema or {}).items()}


def project_names(session: Session) -> dict[int, str]:
    """Every project as id -> name, oldest first."""
    return dict(session.execute(select(Project.id, Project.name).order_by(Project.id)).all())
