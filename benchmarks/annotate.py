"""Server-side time of the annotate page: ``python benchmarks/annotate.py [--rounds N]``.

Builds a fresh project whose current image is a 4000x3000 JPEG photo-like picture with
eight boxes (plus 300 small images, so the queue and progress queries have rows to
count), then runs the real app (app.py routed to pages/annotate.py) in Streamlit's
AppTest, in-process, and times, interleaved round by round:

* **save + rerun**: pressing Save (the save transaction, then the rerun that shows the
  new revision) — the figure the target (< 150 ms median) is about;
* **plain rerun**: one page run with nothing to do — what every canvas edit costs;
* **AppTest floor**: a one-line script through the same harness, the reference for
  what AppTest itself costs.

Like a running server, the harness compiles each script once (AppTest would recompile the
page on every run, about 30 ms here; ``--appTest-compiles`` keeps that to compare).

Also reports ``save_boxes`` alone with all eight boxes moved (the database write).
Browser work (sending the page, painting the canvas) is not included.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from core.annotate.save import save_boxes  # noqa: E402
from core.annotate.state import DraftBox, load_image  # noqa: E402
from core.boxes import Box  # noqa: E402
from core.database import open_database  # noqa: E402
from core.project.imagestore import ImageStore  # noqa: E402
from core.project.ingest import ingest_one  # noqa: E402
from core.project.projects import create_project  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.engine import session_scope  # noqa: E402

BIG = "a-photo-4000x3000.jpg"


def _photo(width: int, height: int, seed: int) -> bytes:
    """A photo-like JPEG (smooth gradients plus sensor-like noise), so sizes are realistic."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([xx / width * 200, yy / height * 180, (xx + yy) / (width + height) * 160], axis=-1)
    noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _prepare(work: Path) -> tuple[Settings, int]:
    settings = Settings.resolve(db_url=f"sqlite:///{work / 'bench.db'}", data_dir=work / "data")
    engine = open_database(settings)
    store = ImageStore(settings.data_dir)
    with session_scope(engine) as session:
        pid = create_project(session, "bench").id
        big = ingest_one(session, store, pid, BIG, _photo(4000, 3000, 0))
        assert big.image_id is not None, big
        for i in range(300):
            ingest_one(session, store, pid, f"z-small-{i:03d}.jpg", _photo(64, 48, i + 1))
    boxes = [DraftBox("Shirts" if i % 2 else "Jeans", Box(100 + 450 * i, 200, 500 + 450 * i, 2600)) for i in range(8)]
    with session_scope(engine) as session:
        save_boxes(session, big.image_id, 0, boxes, "bench")
    engine.dispose()
    return settings, big.image_id


def _stable_navigation() -> None:
    # As tests/pages/conftest.py: keep AppTest out of the legacy pages/ mode between runs,
    # so widget ids (and a clicked button) survive from one run to the next.
    from streamlit.runtime.pages_manager import PagesManager

    original = PagesManager.__init__

    def init(self: PagesManager, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    PagesManager.__init__ = init  # type: ignore[method-assign]


def _shared_script_cache() -> None:
    # A running server compiles each page once and keeps the bytecode in one ScriptCache;
    # AppTest makes a new cache (and recompiles, magic included) on every run. Share one,
    # so the figure is the server's rerun, not AppTest's compile.
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    shared = ScriptCache()
    app_test.ScriptCache = local_script_runner.ScriptCache = lambda: shared  # type: ignore[assignment]


def _floor_script() -> None:
    import streamlit as st

    st.write("floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument(
        "--appTest-compiles", action="store_true", help="keep AppTest's per-run recompile of the page (slower)"
    )
    args = parser.parse_args()

    from streamlit.testing.v1 import AppTest

    _stable_navigation()
    if not args.appTest_compiles:
        _shared_script_cache()
    with tempfile.TemporaryDirectory() as tmp:
        settings, image_id = _prepare(Path(tmp))
        os.environ.update(TAGRACK_DATA_DIR=str(settings.data_dir), TAGRACK_DB_URL=settings.db_url, TAGRACK_USER="bench")
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        at.switch_page("pages/annotate.py").run()
        assert not at.exception, at.exception
        jump = next(t for t in at.text_input if t.label == "Jump to image (name)")
        at.text_input(key=jump.key).input(BIG).run()
        header = next(m.value for m in at.markdown if " · image " in m.value)
        assert header.startswith(f"**{BIG}**"), header
        floor = AppTest.from_function(_floor_script)
        floor.run()

        save_ms: list[float] = []
        rerun_ms: list[float] = []
        floor_ms: list[float] = []
        for _ in range(args.rounds):
            t = time.perf_counter()
            floor.run()
            floor_ms.append((time.perf_counter() - t) * 1000)

            t = time.perf_counter()
            at.run()
            rerun_ms.append((time.perf_counter() - t) * 1000)

            button = next(b for b in at.button if b.label == "Save")
            t = time.perf_counter()
            button.click().run()
            save_ms.append((time.perf_counter() - t) * 1000)
            assert not at.exception and any("Saved revision" in s.value for s in at.success), at.exception

        engine = open_database(settings)
        write_ms: list[float] = []
        for _ in range(args.rounds):
            with session_scope(engine) as session:
                state = load_image(session, image_id)
            moved = [
                DraftBox(b.label, Box(b.box.x_min + 1, b.box.y_min, b.box.x_max + 1, b.box.y_max), b.id)
                for b in state.boxes
            ]
            t = time.perf_counter()
            with session_scope(engine) as session:
                save_boxes(session, image_id, state.revision, moved, "bench")
            write_ms.append((time.perf_counter() - t) * 1000)
        engine.dispose()

    med = statistics.median
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"script cache: {'new per run (AppTest default)' if args.appTest_compiles else 'shared, as a server'}")
    print(f"rounds: {args.rounds}; 4000x3000 JPEG current image, 8 boxes, 301 images in the project")
    print(f"{'what (same run)':<44}{'median ms':>10}{'p90 ms':>9}{'/ floor':>9}")
    for name, xs in [
        ("save + rerun (target < 150 ms)", save_ms),
        ("plain rerun of the annotate page", rerun_ms),
        ("AppTest floor (one-line script)", floor_ms),
        ("save_boxes alone, 8 boxes moved", write_ms),
    ]:
        p90 = sorted(xs)[max(0, round(0.9 * len(xs)) - 1)]
        print(f"{name:<44}{med(xs):>10.1f}{p90:>9.1f}{med(xs) / med(floor_ms):>8.1f}x")


if __name__ == "__main__":
    main()
