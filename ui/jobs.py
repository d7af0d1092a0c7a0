"""Starting a background job from a page and reading its state back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from core.accounts.roles import job_action
from core.jobs import JobError, create_job, launch, reap_stale
from db.engine import session_scope
from db.models import Job, JobStatus
from ui.auth import require_role
from ui.context import get_context


@dataclass(frozen=True)
class JobSnapshot:
    """A job's state, read in one short transaction (safe to use after it closes)."""

    status: JobStatus
    progress: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    params: dict[str, Any]


def start_job(kind: str, params: dict[str, Any], project_id: int | None, exclusive: bool = False) -> int | None:
    """Creates and launches a detached job; shows the refusal and returns None when it cannot start."""
    require_role(job_action(kind))
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
        return JobSnapshot(job.status, dict(job.progress or {}), job.result, job.error, dict(job.params or {}))


def progress_fraction(progress: dict[str, Any]) -> float:
    """How far a job is, from its ``done`` and ``total`` progress counts (0 while the total is unknown)."""
    done, total = progress.get("done") or 0, progress.get("total") or 0
    return min(done / total, 1.0) if total else 0.0


def _poll(
    job_id: int, text: Callable[[dict[str, Any]], str] | None, running_ui: Callable[[JobSnapshot], None] | None
) -> None:
    state = job_snapshot(job_id)
    if state is None or state.status.is_final:
        # The page shows the outcome (and what the job changed) itself; a finished job is
        # no longer polled, so nothing is redrawn under the user's next click.
        st.rerun(scope="app")
    if running_ui is not None:
        running_ui(state)
    else:
        st.progress(progress_fraction(state.progress), text=text(state.progress) if text else None)


def job_progress_ui(
    job_id: int | None,
    text: Callable[[dict[str, Any]], str] | None = None,
    *,
    done_ui: Callable[[JobSnapshot], None] | None = None,
    running_ui: Callable[[JobSnapshot], None] | None = None,
    run_every: float = 1.0,
) -> JobSnapshot | None:
    """Shows a background job: its progress while it is queued or running, its outcome once it ended.

    While it runs, a fragment polls it every ``run_every`` seconds and draws a progress bar
    captioned ``text(progress)`` (or whatever ``running_ui`` draws from the snapshot); when
    it ends, the whole page reruns once and ``done_ui`` draws the outcome. Nothing is drawn
    for no job or a job that is gone.

    Returns:
        The job's snapshot as read now, or None.
    """
    state = job_snapshot(job_id) if job_id is not None else None
    if state is None:
        return None
    if not state.status.is_final:
        st.fragment(run_every=run_every)(_poll)(job_id, text, running_ui)
    elif done_ui is not None:
        done_ui(state)
    return state


def job_ended_ui(job: JobSnapshot, what: str) -> None:
    """A job that ended without success: its error, or how it ended ("The export was cancelled.")."""
    if job.status is JobStatus.FAILED:
        st.error(f"The {what} failed: {job.error}")
    else:
        st.warning(f"The {what} was {job.status.value}.")
