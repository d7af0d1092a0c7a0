"""Starting a background job from a page and reading its state back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from core.jobs import JobError, create_job, launch, reap_stale
from db.engine import session_scope
from db.models import Job, JobStatus
from ui.context import get_context


@dataclass(frozen=True)
class JobSnapshot:
    """A job's state, read in one short transaction (safe to use after it closes)."""

    status: JobStatus
    progress: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None


def start_job(kind: str, params: dict[str, Any], project_id: int | None, exclusive: bool = False) -> int | None:
    """Creates and launches a detached job; shows the refusal and returns None when it cannot start."""
    ctx = get_context()
    try:
        with session_scope(ctx.engine) as session:
            job_id = create_job(session, kind, params, project_id=project_id, exclusive=exclusive).id
        launch(ctx.settings, job_id, ctx.engine)
    except JobError as exc:
        st.error(str(exc))
        return None
    return job_id


def job_snapshot(job_id: int) -> JobSnapshot | None:
    """The job's current state (stale workers are marked failed first), or None if it is gone."""
    with session_scope(get_context().engine) as session:
        reap_stale(session)
        job = session.get(Job, job_id)
        if job is None:
            return None
        return JobSnapshot(job.status, dict(job.progress), job.result, job.error)
