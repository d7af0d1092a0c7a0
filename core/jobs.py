"""Background jobs: detached worker processes tracked in the ``job`` table.

Long work (training, prediction, big imports and exports) never runs in a thread of a
Streamlit page: a page (or the CLI) creates a job row and :func:`launch` starts
``python -m core run-job ID`` in a new process session, so closing the browser or
restarting the Streamlit server neither stops nor orphans it. The worker writes a
heartbeat every few seconds; a job whose heartbeat goes stale (or whose process is gone)
is marked failed by :func:`reap_stale`, which every page that lists jobs calls.

States follow FiftyOne's delegated operations: queued -> running -> succeeded | failed |
cancelled. Handlers are registered by kind in :data:`HANDLERS` as ``"module:function"``
strings so that a worker imports only what its kind needs (an import job never loads
TensorFlow).
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from core.settings import Settings
from db.engine import session_scope
from db.models import Job, JobStatus, utcnow

HEARTBEAT_SECONDS = 5.0
STALE_AFTER = timedelta(seconds=60)
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)

# kind -> "module:function"; the function takes (JobContext, params) and returns a
# JSON-able result dict. Later features add their kinds here.
HANDLERS: dict[str, str] = {
    "import-images": "core.project.ingest:import_images_job",
    "export": "core.dataset.exporter:export_job",
    "import-annotations": "core.dataset.importer:import_annotations_job",
    "import-labels": "core.dataset.labels:import_labels_job",
    "sleep": "core.jobs:sleep_job",
    "train": "core.model.training:train_job",
    "predict": "core.model.prediction:predict_job",
    "evaluate": "core.model.evaluation:evaluate_job",
    "prepare-weights": "core.model.pretrained.offline_weights:prepare_weights_job",
    "catalogue-check": "core.catalogue.check:catalogue_check_job",
    "catalogue-import": "core.catalogue.importer:import_catalogue_job",
    "train-tags": "core.model.tags.jobs:train_tags_job",
    "predict-tags": "core.model.tags.jobs:predict_tags_job",
    "evaluate-tags": "core.model.tags.jobs:evaluate_tags_job",
    "export-model": "core.model.export.job:export_model_job",
}


class JobError(RuntimeError):
    """A job request that cannot be honoured (the message says why)."""


class JobCancelled(Exception):
    """Raised inside a worker when its job was cancelled."""


def create_job(
    session: Session,
    kind: str,
    params: dict[str, Any] | None = None,
    project_id: int | None = None,
    exclusive: bool = False,
) -> Job:
    """Creates a queued job row.

    Args:
        session: Open session; the caller commits.
        kind: A key of :data:`HANDLERS`.
        params: JSON-able parameters handed to the handler.
        project_id: Project the job belongs to.
        exclusive: Refuse when a job of this kind is already queued or running for the
            project (one training per project at a time).

    Raises:
        JobError: Unknown kind, or an active job of the same kind exists.
    """
    if kind not in HANDLERS:
        raise JobError(f"Unknown job kind {kind!r}.")
    if exclusive:
        active = session.scalar(
            select(Job).where(Job.kind == kind, Job.project_id == project_id, Job.status.in_(ACTIVE))
        )
        if active is not None:
            raise JobError(
                f"A {kind} job (#{active.id}) is already {active.status.value} for this project; "
                "wait for it to finish or cancel it."
            )
    job = Job(kind=kind, params=dict(params or {}), project_id=project_id)
    session.add(job)
    session.flush()
    if kind in AUDITED_KINDS:
        # Every import, export and training enters here (pages and CLI alike): the audit trail's one door.
        from core.accounts import audit

        detail = {
            k: v for k, v in job.params.items() if k not in ("who", "project_id", "paths", "cleanup") and _small(v)
        }
        audit.record(session, kind, job.params.get("who"), project_id, job_id=job.id, **detail)
    return job


AUDITED_KINDS = frozenset({"import-images", "import-annotations", "export", "train"})


def _small(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | type(None)) or (isinstance(value, list) and len(value) <= 10)


def launch(settings: Settings, job_id: int, engine: Engine) -> int:
    """Starts the detached worker for a queued job and records its pid and log path.

    Returns:
        The worker's process id.
    """
    settings.jobs_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.jobs_dir / f"job-{job_id}.log"
    project_root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project_root), env.get("PYTHONPATH")]))
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "core",
                "run-job",
                str(job_id),
                "--db",
                settings.db_url,
                "--data-dir",
                str(settings.data_dir),
            ],
            cwd=project_root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # survives the Streamlit server and its signals
            close_fds=True,
        )
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.pid = proc.pid
        job.log_path = str(log_path)
        job.heartbeat_at = utcnow()  # the worker has STALE_AFTER to send its first beat
    return proc.pid


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        # A zombie child of this very process still "exists"; reap it if it is ours.
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale(session: Session, now_fn: Callable[[], Any] = utcnow) -> list[int]:
    """Marks running or launched jobs failed when their heartbeat is stale.

    Returns:
        Ids of the jobs marked failed.
    """
    now = now_fn()
    failed = []
    for job in session.scalars(select(Job).where(Job.status.in_(ACTIVE), Job.heartbeat_at.is_not(None))):
        stale = job.heartbeat_at is not None and now - job.heartbeat_at > STALE_AFTER
        if stale or (job.pid and not _pid_alive(job.pid) and job.status is JobStatus.QUEUED):
            job.status = JobStatus.FAILED
            job.error = (
                f"The worker stopped answering (last heartbeat {job.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC); "
                "it probably crashed or the machine restarted. See the log."
            )
            job.finished_at = now
            failed.append(job.id)
    return failed


def cancel(session: Session, job_id: int) -> Job:
    """Cancels a queued or running job: marks it and sends the worker SIGTERM.

    Raises:
        JobError: When the job does not exist or has already ended.
    """
    job = session.get(Job, job_id)
    if job is None:
        raise JobError(f"No job #{job_id}.")
    if job.status.is_final:
        raise JobError(f"Job #{job_id} has already {job.status.value}.")
    job.status = JobStatus.CANCELLED
    job.finished_at = utcnow()
    if job.pid and _pid_alive(job.pid):
        try:
            os.killpg(job.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    return job


@dataclass
class JobContext:
    """What a handler gets to report progress, log, and notice cancellation."""

    job_id: int
    engine: Engine
    settings: Settings
    _cancelled: threading.Event = field(default_factory=threading.Event)
    _last_write: float = 0.0

    def log(self, message: str) -> None:
        """Writes a line to the job's log.

        On stderr: a detached worker's stdout and stderr both go to its log file, and a job the
        CLI runs in-process must leave stdout to the command's JSON (scripts parse it).
        """
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def progress(self, done: int | float, total: int | float | None = None, message: str = "", **extra: Any) -> None:
        """Records progress; throttled to a few writes a second unless forced by ``total`` reached.

        Raises:
            JobCancelled: When the job was cancelled meanwhile.
        """
        self.check_cancelled()
        now = time.monotonic()
        if now - self._last_write < 0.25 and (total is None or done < total):
            return
        self._last_write = now
        payload = {"done": done, "total": total, "message": message, **extra}
        with session_scope(self.engine) as session:
            job = session.get(Job, self.job_id)
            if job is not None:
                job.progress = payload
                job.heartbeat_at = utcnow()

    def check_cancelled(self) -> None:
        """Raises :class:`JobCancelled` when the job was cancelled."""
        if self._cancelled.is_set():
            raise JobCancelled()


def _heartbeat(ctx: JobContext, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            with session_scope(ctx.engine) as session:
                job = session.get(Job, ctx.job_id)
                if job is None or job.status is JobStatus.CANCELLED:
                    ctx._cancelled.set()
                    return
                job.heartbeat_at = utcnow()
        except Exception as exc:  # a locked database must not kill the worker
            print(f"heartbeat failed: {exc}", file=sys.stderr, flush=True)


def resolve_handler(kind: str) -> Callable[[JobContext, dict[str, Any]], dict[str, Any] | None]:
    """Imports the handler registered for ``kind``."""
    module_name, func_name = HANDLERS[kind].split(":")
    return getattr(importlib.import_module(module_name), func_name)


def run_job(settings: Settings, engine: Engine, job_id: int) -> JobStatus:
    """Runs a job in this process (the worker's body): heartbeat, handler, final state."""
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise JobError(f"No job #{job_id}.")
        if job.status is not JobStatus.QUEUED:
            raise JobError(f"Job #{job_id} is {job.status.value}, not queued.")
        job.status = JobStatus.RUNNING
        job.pid = os.getpid()
        job.started_at = job.heartbeat_at = utcnow()
        kind, params = job.kind, dict(job.params)
    ctx = JobContext(job_id=job_id, engine=engine, settings=settings)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(ctx, stop), daemon=True)
    beat.start()

    def _on_term(_sig: int, _frame: Any) -> None:
        ctx._cancelled.set()
        raise JobCancelled()

    signal.signal(signal.SIGTERM, _on_term)
    status, result, error = JobStatus.SUCCEEDED, None, None
    try:
        ctx.log(f"job #{job_id} ({kind}) started with {params}")
        result = resolve_handler(kind)(ctx, params)
    except JobCancelled:
        status = JobStatus.CANCELLED
        ctx.log("cancelled")
    except Exception as exc:
        status, error = JobStatus.FAILED, f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    finally:
        stop.set()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        if job.status is not JobStatus.CANCELLED:  # a cancel from the page wins
            job.status = status
        job.result = result
        job.error = error
        job.finished_at = utcnow()
        job.heartbeat_at = utcnow()
        final = job.status
    ctx.log(f"job #{job_id} ended: {final.value}")
    return final


def sleep_job(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    """A job that counts for ``params['seconds']``: used to test the job machinery itself."""
    steps = int(params.get("seconds", 1) * 10)
    for i in range(steps):
        time.sleep(0.1)
        ctx.progress(i + 1, steps, "sleeping")
    if params.get("fail"):
        raise RuntimeError("asked to fail")
    return {"slept": steps / 10}
