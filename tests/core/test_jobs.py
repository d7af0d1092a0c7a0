"""Background jobs: a real detached worker process, heartbeat, stale detection, cancel."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from core.jobs import JobError, cancel, create_job, launch, reap_stale, run_job
from core.settings import Settings
from db.engine import session_scope
from db.models import Job, JobStatus, utcnow

pytestmark = pytest.mark.both_databases  # the SQL of this module runs on SQLite and PostgreSQL


def wait_for(engine: Engine, job_id: int, predicate, timeout: float = 60.0) -> Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(engine) as session:
            job = session.get(Job, job_id)
            if predicate(job):
                return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never reached the expected state")


def test_detached_worker_runs_to_success_with_progress(engine: Engine, settings: Settings, project_id: int) -> None:
    with session_scope(engine) as session:
        job_id = create_job(session, "sleep", {"seconds": 0.5}, project_id=project_id).id
    launch(settings, job_id, engine)
    job = wait_for(engine, job_id, lambda j: j.status.is_final)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.result == {"slept": 0.5}
    assert job.progress["done"] == job.progress["total"] == 5
    assert job.started_at and job.finished_at and job.pid
    assert "ended: succeeded" in open(job.log_path).read()


def test_failure_is_recorded_with_its_message(engine: Engine, settings: Settings) -> None:
    with session_scope(engine) as session:
        job_id = create_job(session, "sleep", {"seconds": 0.1, "fail": True}).id
    assert run_job(settings, engine, job_id) is JobStatus.FAILED
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job.status is JobStatus.FAILED
        assert "asked to fail" in job.error


def test_cancel_stops_a_running_worker(engine: Engine, settings: Settings, project_id: int) -> None:
    with session_scope(engine) as session:
        job_id = create_job(session, "sleep", {"seconds": 30}, project_id=project_id).id
    launch(settings, job_id, engine)
    wait_for(engine, job_id, lambda j: j.status is JobStatus.RUNNING and j.progress)
    with session_scope(engine) as session:
        cancel(session, job_id)
    job = wait_for(engine, job_id, lambda j: j.finished_at is not None and j.result is None and j.status.is_final)
    assert job.status is JobStatus.CANCELLED
    with session_scope(engine) as session:
        with pytest.raises(JobError, match="already cancelled"):
            cancel(session, job_id)


def test_exclusive_jobs_refuse_a_second_request(engine: Engine, project_id: int) -> None:
    with session_scope(engine) as session:
        create_job(session, "sleep", {}, project_id=project_id, exclusive=True)
    with session_scope(engine) as session, pytest.raises(JobError, match="already queued"):
        create_job(session, "sleep", {}, project_id=project_id, exclusive=True)


def test_stale_heartbeat_marks_the_job_failed(engine: Engine, project_id: int) -> None:
    with session_scope(engine) as session:
        job = create_job(session, "sleep", {}, project_id=project_id)
        job.status = JobStatus.RUNNING
        job.heartbeat_at = utcnow() - timedelta(minutes=5)
        fresh = create_job(session, "sleep", {}, project_id=project_id)
        fresh.status = JobStatus.RUNNING
        fresh.heartbeat_at = utcnow()
        stale_id, fresh_id = job.id, fresh.id
    with session_scope(engine) as session:
        assert reap_stale(session) == [stale_id]
    with session_scope(engine) as session:
        assert session.get(Job, stale_id).status is JobStatus.FAILED
        assert "stopped answering" in session.get(Job, stale_id).error
        assert session.get(Job, fresh_id).status is JobStatus.RUNNING


def test_unknown_kind_is_refused(engine: Engine) -> None:
    with session_scope(engine) as session, pytest.raises(JobError, match="Unknown job kind"):
        create_job(session, "make-coffee", {})
