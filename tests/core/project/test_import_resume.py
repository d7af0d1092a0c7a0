"""An image import killed half way (SIGKILL, no clean-up) and started again ends with every file exactly once."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import Engine, func, select

from core.settings import Settings
from db.engine import session_scope
from db.models import Image

pytestmark = pytest.mark.both_databases

ROOT = Path(__file__).resolve().parents[3]
FILES = 400


def _folder(path: Path) -> set[str]:
    """FILES distinct real JPEGs in two sub-folders; returns their SHA-256s."""
    hashes = set()
    for i in range(FILES):
        buf = io.BytesIO()
        PILImage.new("RGB", (320, 240), (i % 256, (i * 7) % 256, i // 256 * 40)).save(buf, format="JPEG", quality=90)
        data = buf.getvalue()
        target = path / f"shoot_{i % 2}" / f"img_{i:04d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        hashes.add(hashlib.sha256(data).hexdigest())
    return hashes


def _import(settings: Settings, folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "core", "import-images", str(folder), "--project", "Resume", "--create"]
        + ["--db", settings.db_url, "--data-dir", str(settings.data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def _count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return int(session.scalar(select(func.count()).select_from(Image)) or 0)


def test_killed_import_restarted_has_every_file_once(tmp_path: Path, settings: Settings, engine: Engine) -> None:
    folder = tmp_path / "photos"
    hashes = _folder(folder)
    proc = _import(settings, folder)
    # Kill it (SIGKILL: no handler, no clean-up) once some batches are committed and before the end.
    killed_at = None
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        n = _count(engine)
        if n >= 50:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = n
            break
        time.sleep(0.01)
    proc.wait()
    assert killed_at is not None, f"the import ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"  # type: ignore[union-attr]
    left = _count(engine)
    assert left < FILES, "the import had finished when it was killed: nothing to resume"

    rerun = _import(settings, folder)
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err.decode()[-2000:]

    with session_scope(engine) as session:
        rows = session.execute(select(Image.sha256, Image.original_name)).all()
    assert len(rows) == FILES, f"{len(rows)} rows for {FILES} files (killed with {left} in)"
    assert {sha for sha, _ in rows} == hashes  # every file, none twice, no hole
    assert len({name for _, name in rows}) == FILES
    # The files the first run had committed come back as duplicates, not as second copies.
    assert json.loads(out)["duplicate"] == left
