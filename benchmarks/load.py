"""Many writers at once, headless: ``python benchmarks/load.py [--annotators 5] [--seconds 60] [--db sqlite|postgresql]``.

Not the browser run the issue asks for (Playwright contexts): this drives the same write path
the Annotate and Review pages call (``core.annotate.save.save_boxes`` in a ``session_scope``, as
``pages/annotate.py`` does) from threads of one process, on a project built by
``benchmarks/scale_build.py`` (``--images``, default 10,000):

* ``--annotators`` threads, each on its own images: load, move one box, save; then the next;
* 2 reviewer threads saving images the annotators also work on (so stale saves happen and must
  be refused with the conflict message, never written over);
* a prediction-like writer inserting 500 predictions per transaction, and a job-like writer
  updating a job row's progress every 0.2 s, as the training and prediction workers do.

Counts saves attempted, saved, refused with the conflict message, failed otherwise (any
"database is locked" is counted apart), and lost: a save reported saved whose revision and boxes
are not what the database holds at the end for an image nobody saved after it.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from benchmarks.load_writers import background_writers  # noqa: E402
from benchmarks.scale_build import build  # noqa: E402
from core.annotate.errors import StaleRevisionError  # noqa: E402
from core.annotate.save import save_boxes  # noqa: E402
from core.annotate.state import DraftBox, load_image  # noqa: E402
from core.boxes import Box  # noqa: E402
from core.database import open_database  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.engine import session_scope  # noqa: E402
from db.models import Image, ImageStatus, Job, JobStatus  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    args = parser.parse_args()

    server = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.db == "postgresql":
            from tests.postgres_server import start_server

            server = start_server()
            url = server.new_database()
        else:
            url = f"sqlite:///{Path(tmp) / 'tagrack.db'}"
        try:
            settings = Settings.resolve(url, Path(tmp) / "data")
            engine = open_database(settings)
            built = build(engine, settings, args.images)
            result = _run(engine, built, args.annotators, args.seconds)
            engine.dispose()
        finally:
            if server is not None:
                server.stop()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at end")
    print(
        f"{args.db}: {args.annotators} annotators + 2 reviewers + prediction and job writers, "
        f"{args.seconds:.0f} s, {built['images']} images"
    )
    for k, v in result.items():
        print(f"  {k}: {v}")


def _run(engine, built, annotators: int, seconds: float) -> dict[str, object]:  # type: ignore[no-untyped-def]
    with session_scope(engine) as session:
        todo = list(
            session.scalars(
                select(Image.id).where(Image.status.in_([ImageStatus.DONE, ImageStatus.IN_PROGRESS])).order_by(Image.id)
            )
        )
        job = Job(kind="train", project_id=built["project_id"], status=JobStatus.RUNNING)
        session.add(job)
        session.flush()
        job_id = job.id
    stop = threading.Event()
    lock = threading.Lock()
    stats = {"attempted": 0, "saved": 0, "refused_conflict": 0, "locked": 0, "other_errors": 0}
    save_ms: list[float] = []
    last_saved: dict[int, tuple[int, tuple[Box, ...]]] = {}
    errors: list[str] = []
    current = {k: todo[k] for k in range(annotators)}  # the image each annotator has open

    def save_once(rng: random.Random, image_id: int, who: str) -> None:
        with session_scope(engine) as session:
            state = load_image(session, image_id)
        if not state.boxes:
            return
        dx = rng.uniform(-1, 1)
        drafts = [
            DraftBox(b.label, Box(b.box.x_min + dx, b.box.y_min, b.box.x_max + dx, b.box.y_max), b.id)
            if i == 0
            else DraftBox(b.label, b.box, b.id)
            for i, b in enumerate(state.boxes)
        ]
        time.sleep(rng.uniform(0.05, 0.3))  # the person drawing: others save meanwhile
        t = time.perf_counter()
        try:
            with session_scope(engine) as session:
                res = save_boxes(session, image_id, state.revision, drafts, who)
        except StaleRevisionError:
            with lock:
                stats["attempted"] += 1
                stats["refused_conflict"] += 1
            return
        except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
            with lock:
                stats["attempted"] += 1
                stats["locked" if "locked" in str(exc).lower() else "other_errors"] += 1
                errors.append(str(exc)[:200])
            return
        ms = (time.perf_counter() - t) * 1000
        with session_scope(engine) as session:
            saved_boxes = tuple(b.box for b in load_image(session, image_id).boxes)
        with lock:
            stats["attempted"] += 1
            stats["saved"] += 1
            save_ms.append(ms)
            prev = last_saved.get(image_id)
            if prev is None or res.revision > prev[0]:
                last_saved[image_id] = (res.revision, saved_boxes)

    def annotator(k: int) -> None:
        rng = random.Random(k)
        mine = todo[k::annotators]
        i = 0
        while not stop.is_set():
            current[k] = mine[i % len(mine)]
            save_once(rng, current[k], f"annotator{k:02d}")
            i += 1

    def reviewer(k: int) -> None:
        rng = random.Random(100 + k)
        while not stop.is_set():
            # An image an annotator has open right now: some of these saves come second and must be refused.
            save_once(rng, current[rng.randrange(annotators)], f"reviewer{k}")

    threads = [threading.Thread(target=annotator, args=(k,)) for k in range(annotators)]
    threads += [threading.Thread(target=reviewer, args=(k,)) for k in range(2)]
    threads += background_writers(engine, built, stop, job_id, todo, max_score=1.0)
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    lost = 0
    with session_scope(engine) as session:
        for image_id, (revision, boxes) in last_saved.items():
            state = load_image(session, image_id)
            if state.revision != revision or tuple(b.box for b in state.boxes) != boxes:
                lost += 1
    p95 = sorted(save_ms)[max(0, round(0.95 * len(save_ms)) - 1)] if save_ms else float("nan")
    return {
        **stats,
        "lost": lost,
        "save p50 ms": round(statistics.median(save_ms), 1) if save_ms else None,
        "save p95 ms": round(p95, 1),
        "first errors": errors[:3],
    }


if __name__ == "__main__":
    main()
