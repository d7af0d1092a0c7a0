"""An import while others annotate: real processes on one database.

``python -m core import-images`` (and ``import voc``, the annotation import) runs as a user runs it while saver processes save boxes
through :func:`core.annotate.save.save_boxes` in a loop, two savers per image (so the
optimistic lock is exercised too). Every file must be imported, no file or save may fail
for a lock, and every save a saver was told succeeded must be in the database.
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import queue
import random
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from core.annotate.errors import StaleRevisionError
from core.annotate.save import save_boxes
from core.annotate.state import DraftBox, load_image
from core.boxes import Box
from core.database import open_database
from core.project.imagestore import ImageStore
from core.project.ingest import ingest_one, ingest_sources, sources_from_uploads
from core.project.projects import create_project
from core.settings import Settings
from db.engine import make_engine, session_scope
from db.models import BoxChange, Image

pytestmark = pytest.mark.both_databases

ROOT = Path(__file__).resolve().parents[3]
PHOTOS = 300
SAVER_IMAGES = 2
SAVERS_PER_IMAGE = 2


def _jpeg(n: int) -> bytes:
    # Noise seeded by n: distinct bytes per n (flat colours a shade apart can encode alike).
    buf = io.BytesIO()
    PILImage.frombytes("RGB", (48, 40), random.Random(n).randbytes(48 * 40 * 3)).save(buf, format="JPEG")
    return buf.getvalue()


def _saver(url: str, image_id: int, tag: int, ready: Any, stop: Any, results: Any) -> None:
    """Loads the image and saves a box, as the Annotate page does (two sessions), until told to stop."""
    engine = make_engine(url)
    saved: list[int] = []  # the revision each successful save produced
    conflicts = 0
    errors: list[str] = []
    n = 0
    try:
        while not stop.is_set():
            n += 1
            try:
                with session_scope(engine) as session:
                    state = load_image(session, image_id)
                box = Box(1 + n % 20, 1 + tag, 25 + n % 20, 30)
                with session_scope(engine) as session:
                    result = save_boxes(session, image_id, state.revision, [DraftBox("Shirts", box)], f"saver{tag}")
                saved.append(result.revision)
                if len(saved) == 1:
                    ready.put(tag)
            except StaleRevisionError:
                conflicts += 1  # the other saver on this image won; a refusal, not a loss
            except Exception as exc:  # noqa: BLE001 - every other failure is what the test counts
                errors.append(f"{type(exc).__name__}: {exc}"[:300])
                if len(errors) == 1 and not saved:
                    ready.put(tag)  # do not keep the test waiting for a saver that cannot save
    finally:
        results.put({"tag": tag, "image_id": image_id, "saved": saved, "conflicts": conflicts, "errors": errors})
        engine.dispose()


def _voc_annotation(name: str) -> str:
    return (
        f"<annotation><filename>{name}</filename><size><width>48</width><height>40</height><depth>3</depth></size>"
        "<object><name>Shirts</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>30</xmax><ymax>30</ymax></bndbox>"
        "</object></annotation>"
    )


@pytest.mark.parametrize("command", ["import-images", "import voc"])
def test_import_while_others_annotate_loses_nothing(
    settings, engine, project_id, tmp_path: Path, command, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A spawned child first re-runs the parent's __main__. After an AppTest in the same process
    # (pytest-xdist runs modules in any order) that is app.py, which would open the default
    # database in every saver; a bare __main__ gives the children nothing to re-run.
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in range(PHOTOS):
        (folder / f"p{n:04d}.jpg").write_bytes(_jpeg(n))
        if command == "import voc":  # each photo with one box beside it, as LabelImg saves them
            (folder / f"p{n:04d}.xml").write_text(_voc_annotation(f"p{n:04d}.jpg"))
    with session_scope(engine) as session:
        store = ImageStore(settings.data_dir)
        targets = [
            ingest_one(session, store, project_id, f"annotated{i}.jpg", _jpeg(10_000 + i)).image_id
            for i in range(SAVER_IMAGES)
        ]

    ctx = mp.get_context("spawn")
    ready, stop, results = ctx.Queue(), ctx.Event(), ctx.Queue()
    savers = [
        ctx.Process(target=_saver, args=(settings.db_url, image_id, tag, ready, stop, results))
        for tag, image_id in enumerate(image_id for image_id in targets for _ in range(SAVERS_PER_IMAGE))
    ]
    for p in savers:
        p.start()
    try:
        for _ in savers:
            ready.get(timeout=120)  # every saver is saving before the import starts
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "core",
                *command.split(),
                str(folder),
                "--project",
                str(project_id),
                "--db",
                settings.db_url,
                "--data-dir",
                str(settings.data_dir),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        stop.set()
        reports = []
        for _ in savers:
            try:
                reports.append(results.get(timeout=60))
            except queue.Empty:
                break
        for p in savers:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()

    assert run.returncode == 0, run.stderr
    assert "locked" not in run.stderr, run.stderr[-2000:]
    summary = json.loads(run.stdout)
    assert (summary["imported"], summary["failed"], summary["skipped"]) == (PHOTOS, 0, 0), run.stderr[-2000:]
    assert len(reports) == len(savers)
    assert [r["errors"] for r in reports] == [[] for _ in reports]
    assert all(r["saved"] for r in reports)
    with session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Image).where(Image.project_id == project_id)) == (
            PHOTOS + SAVER_IMAGES
        )
        for image_id in targets:
            claimed = sorted(rev for r in reports if r["image_id"] == image_id for rev in r["saved"])
            revision = session.get(Image, image_id).revision
            # No save lost and none counted twice: the successful saves are exactly revisions 1..N.
            assert claimed == list(range(1, revision + 1))
            history = session.scalars(select(BoxChange.revision).where(BoxChange.image_id == image_id)).all()
            assert set(history) == set(claimed)


def test_an_import_outwaits_a_lock_held_past_the_busy_timeout(tmp_path: Path, monkeypatch) -> None:
    """Another process holding the write lock longer than the busy timeout delays the import; no file fails."""
    import core.project.ingest
    import db.engine
    from db.engine import write_scope

    monkeypatch.setattr(db.engine, "SQLITE_BUSY_TIMEOUT_MS", 200)  # the engine below waits 0.2 s, not 30
    settings = Settings.resolve(db_url=f"sqlite:///{tmp_path / 't.db'}", data_dir=tmp_path / "data")
    engine = open_database(settings)
    with session_scope(engine) as session:
        project_id = create_project(session, "P").id
    holder = write_scope(engine)
    held = holder.__enter__()
    held.execute(select(1))  # BEGIN IMMEDIATE: the write lock is taken until the holder lets go
    seen: list[BaseException] = []
    real = core.project.ingest.is_lock_error

    def lets_go_after_the_first_lock_error(exc: BaseException) -> bool:
        if real(exc) and not seen:
            seen.append(exc)
            holder.__exit__(None, None, None)
        return real(exc)

    monkeypatch.setattr(core.project.ingest, "is_lock_error", lets_go_after_the_first_lock_error)
    files = [(f"p{n}.jpg", _jpeg(n)) for n in range(3)]
    report = ingest_sources(engine, settings.data_dir, project_id, sources_from_uploads(files))
    engine.dispose()
    assert seen, "the import never met the lock"
    assert report.summary() == {"imported": 3, "duplicate": 0, "failed": 0, "skipped": 0}
