"""Export as a whole: CLI, background job, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from core.dataset.exporter import ExportError, export_dataset, export_file_name
from core.jobs import create_job, run_job
from db.engine import session_scope
from db.models import Job, JobStatus
from tests.core.dataset_factory import make_dataset

pytestmark = pytest.mark.both_databases  # the SQL of this module runs on SQLite and PostgreSQL

ROOT = Path(__file__).resolve().parents[3]


def test_export_file_names() -> None:
    assert export_file_name("a/b/c.JPG", "blobs/originals/ab/x.jpg") == "a__b__c.JPG"
    assert export_file_name("photo.jpeg", "blobs/x.jpg") == "photo.jpeg"
    assert export_file_name("scan.tif", "blobs/x.png") == "scan.png"
    assert export_file_name("noext", "blobs/x.jpg") == "noext.jpg"


def test_refusals(engine, settings, project_id, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="Unknown export format"):
        export_dataset(engine, settings, project_id, "labelme", tmp_path / "x")
    with pytest.raises(ExportError, match="add up to 1"):
        export_dataset(engine, settings, project_id, "voc", tmp_path / "x", fractions=(0.5, 0.5, 0.5))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        export_dataset(engine, settings, project_id, "voc", tmp_path / "full")


def test_export_job_runs_to_a_zip(engine, settings, project_id) -> None:
    make_dataset(engine, settings, project_id, n=6)
    with session_scope(engine) as session:
        job_id = create_job(session, "export", {"project_id": project_id, "format": "voc"}, project_id=project_id).id
    assert run_job(settings, engine, job_id) is JobStatus.SUCCEEDED
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job.progress["done"] == job.progress["total"] == 4
        path = Path(job.result["path"])
    assert path.is_file() and path.parent == settings.data_dir / "exports" and path.suffix == ".zip"


@pytest.mark.parametrize("fmt", ["tfrecord", "voc", "coco", "csv"])
def test_first_export_job_on_a_fresh_data_dir(engine, settings, project_id, fmt: str) -> None:
    """The Export page's job writes under <data dir>/exports/, which a fresh install does not have yet."""
    make_dataset(engine, settings, project_id, n=6)
    assert not (settings.data_dir / "exports").exists()
    with session_scope(engine) as session:
        job_id = create_job(session, "export", {"project_id": project_id, "format": fmt}, project_id=project_id).id
    status = run_job(settings, engine, job_id)
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert status is JobStatus.SUCCEEDED, job.error
        path = Path(job.result["path"])
    assert path.is_file() and path.parent == settings.data_dir / "exports"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no scratch folder left behind


def test_cli_tfrecord_export_into_a_folder_that_does_not_exist(engine, settings, project_id, tmp_path: Path) -> None:
    """What a user types first: a zip in folders not made yet, relative to where they are."""
    make_dataset(engine, settings, project_id, n=6)
    cwd = tmp_path / "work"
    cwd.mkdir()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "export",
            "tfrecord",
            "new/folder/out.zip",
            "--db",
            settings.db_url,
            "--data-dir",
            str(settings.data_dir),
            "--project",
            str(project_id),
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr
    out = cwd / "new" / "folder" / "out.zip"
    assert (cwd / json.loads(proc.stdout)["path"]).resolve() == out.resolve()
    with zipfile.ZipFile(out) as zf:
        assert "label_map.pbtxt" in zf.namelist()
    assert [p.name for p in out.parent.iterdir()] == ["out.zip"]


def test_cli_export(engine, settings, project_id, tmp_path: Path) -> None:
    make_dataset(engine, settings, project_id, n=6)
    out = tmp_path / "cli-out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "export",
            "tfrecord",
            str(out),
            "--db",
            settings.db_url,
            "--data-dir",
            str(settings.data_dir),
            "--project",
            str(project_id),
            "--fractions",
            "0.5,0.25,0.25",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["images"] == 4 and (out / "label_map.pbtxt").exists()
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "export",
            "tfrecord",
            str(out),
            "--db",
            settings.db_url,
            "--data-dir",
            str(settings.data_dir),
            "--project",
            str(project_id),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 1 and "not empty" in bad.stderr


@pytest.mark.parametrize("fmt", ["tfrecord", "coco"])
def test_chunked_reading_changes_nothing(engine, settings, project_id, tmp_path: Path, monkeypatch, fmt: str) -> None:
    """Images and boxes are read CHUNK images at a time (keyset pages): tiny pages give the same files."""
    import core.dataset.exporter

    make_dataset(engine, settings, project_id, n=12)
    whole = export_dataset(engine, settings, project_id, fmt, tmp_path / "whole")
    monkeypatch.setattr(core.dataset.exporter, "CHUNK", 2)
    paged = export_dataset(engine, settings, project_id, fmt, tmp_path / "paged")
    assert paged["images"] == whole["images"] == 10 and paged["boxes"] == whole["boxes"] > 0
    files = sorted(p.relative_to(tmp_path / "whole") for p in (tmp_path / "whole").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "paged") for p in (tmp_path / "paged").rglob("*") if p.is_file())
    for rel in files:
        assert (tmp_path / "paged" / rel).read_bytes() == (tmp_path / "whole" / rel).read_bytes(), rel
