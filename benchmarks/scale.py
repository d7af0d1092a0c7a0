"""Every page and common action at size: ``python benchmarks/scale.py [--images N] [--db sqlite,postgresql]``.

Builds a project of N images (default 100,000), 5N boxes and 10N predictions with
``benchmarks/scale_build.py`` (bulk inserts of the rows the write paths make; see there for
how the image files are shared), on a SQLite file and on a throwaway PostgreSQL server
(``tests/postgres_server.py``), then runs the **real app** (``app.py`` and its pages) in
Streamlit's AppTest, in-process, and times each page run server-side (the script run: every
query, every widget; not the browser's painting):

* a page's **first run** is a new browser session (a new AppTest) opening it: Home (its
  counts), Annotate, Review, Evaluate, Train, Export, Import annotations, Add images;
* an **action** is the run that follows a click or an input in an open session: Annotate
  save (the Save button, a real ``save_boxes``), next, filter by label, filter by status,
  jump by name; Review next item (Skip); Export start (queues the export job and starts its
  worker, which the harness cancels at once so it does not load the machine).

Each is repeated ``--repeats`` times; p50 and p95 are printed, and whether p95 is under the
issue's 300 ms. The time is the script runner's (``exec_func_with_error_handling``, summed
over the reruns an action causes), not AppTest's round trip, whose harness alone costs about
as much as a small page on this machine; the floor (a one-line script) is printed for scale. Like a running server, the harness compiles each script once (see benchmarks/annotate.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.annotate import _floor_script, _shared_script_cache, _stable_navigation  # noqa: E402
from benchmarks.scale_build import build  # noqa: E402
from core.database import open_database  # noqa: E402
from core.settings import Settings  # noqa: E402

TARGET_MS = 300.0
PAGES = {
    "Annotate": "pages/annotate.py",
    "Review": "pages/review.py",
    "Evaluate": "pages/evaluate.py",
    "Train": "pages/train.py",
    "Export": "pages/export.py",
    "Import annotations": "pages/import_annotations.py",
    "Add images": "pages/upload.py",
}


def _pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))]


_SCRIPT_S = [0.0]


def _time_script_runs() -> None:
    """Adds up the time the script runner spends running the app's script (every rerun of one action).

    That is the server-side time of a page run: every query and widget of app.py and the page,
    without AppTest's own harness (its thread hand-offs and result parsing, the "floor").
    """
    from streamlit.runtime.scriptrunner import script_runner

    original = script_runner.exec_func_with_error_handling

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _SCRIPT_S[0] += time.perf_counter() - t

    script_runner.exec_func_with_error_handling = timed


def _timed(fn: Callable[[], Any]) -> float:
    """Server-side milliseconds of the script runs ``fn`` causes."""
    before = _SCRIPT_S[0]
    fn()
    return (_SCRIPT_S[0] - before) * 1000


def _check(at: Any, what: str) -> None:
    if at.exception:
        raise RuntimeError(f"{what}: {at.exception}")


def _new_session(user: str) -> Any:
    from streamlit.testing.v1 import AppTest

    os.environ["TAGRACK_USER"] = user
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    return at


def measure(repeats: int, built: dict[str, Any]) -> dict[str, list[float]]:
    """Times every page's first run and every action; returns milliseconds per name."""
    from core.jobs import cancel
    from db.engine import session_scope
    from ui.context import get_context

    pid = built["project_id"]
    out: dict[str, list[float]] = {}

    def add(name: str, ms: float) -> None:
        out.setdefault(name, []).append(ms)

    floor = _new_session("floor")
    from streamlit.testing.v1 import AppTest

    floor = AppTest.from_function(_floor_script)
    floor.run()
    # One warm-up session: the process-wide context (engine, migrations check) and imports.
    warm = _new_session("warm").run()
    _check(warm, "warm-up")
    for page in PAGES.values():
        warm.switch_page(page).run()
        _check(warm, page)
    for r in range(repeats):
        add("AppTest floor (one-line script)", _timed(floor.run))
        at = _new_session(f"bench{r:02d}")
        add("Home first run (counts)", _timed(at.run))
        _check(at, "Home")
        for name, page in PAGES.items():
            s = _new_session(f"bench{r:02d}")
            s.run()
            add(f"{name} first run", _timed(lambda s=s, page=page: s.switch_page(page).run()))
            _check(s, name)
            if name == "Annotate":
                _annotate_actions(s, pid, built, r, add)
            elif name == "Review":
                skip = next((b for b in s.button if b.label == "Skip"), None)
                if skip is None:
                    raise RuntimeError("Review shows no item: " + " | ".join(m.value for m in s.markdown)[:500])
                add("Review next item (Skip)", _timed(skip.click().run))
                _check(s, "Review skip")
            elif name == "Export":
                button = next(b for b in s.button if b.label == "Export")
                add("Export start (queue the job)", _timed(button.click().run))
                _check(s, "Export start")
                job_id = s.session_state[f"export_job_{pid}"]
                with session_scope(get_context().engine) as session:
                    try:
                        cancel(session, job_id)
                    except Exception:  # noqa: BLE001 - it may have ended already; nothing to stop then
                        pass
    return out


def _annotate_actions(s: Any, pid: int, built: dict[str, Any], r: int, add: Callable[[str, float], None]) -> None:
    def button(label: str) -> Any:
        found = next((b for b in s.button if b.label == label), None)
        if found is None:
            raise RuntimeError(
                f"no {label!r} button on Annotate: "
                + " | ".join(str(x.value)[:200] for x in [*s.error, *s.warning, *s.info, *s.markdown][:12])
            )
        return found

    add("Annotate save", _timed(button("Save").click().run))
    _check(s, "Annotate save")
    if not any("Saved revision" in m.value for m in s.success):
        raise RuntimeError("Annotate save did not save: " + " | ".join(e.value for e in s.error))
    add("Annotate next", _timed(button("Next").click().run))
    _check(s, "Annotate next")
    label_id = built["labels"][r % len(built["labels"])]
    add("Annotate filter by label", _timed(s.multiselect(key=f"ann_f_label_{pid}").set_value([label_id]).run))
    _check(s, "Annotate filter by label")
    add("Annotate filter by status", _timed(s.multiselect(key=f"ann_f_status_{pid}").set_value(["done"]).run))
    _check(s, "Annotate filter by status")
    s.multiselect(key=f"ann_f_status_{pid}").set_value([]).run()
    s.multiselect(key=f"ann_f_label_{pid}").set_value([]).run()
    # A name far into the queue (by name order), as someone sent a file name would type it.
    i = (r * 7919 + built["images"] // 2) % built["images"]
    name = f"img_{i:06d}.jpg"
    jump = next(t for t in s.text_input if t.label == "Jump to image (name)")
    add("Annotate jump by name", _timed(s.text_input(key=jump.key).input(name).run))
    _check(s, "Annotate jump")
    header = next(m.value for m in s.markdown if " · image " in m.value)
    if name not in header:
        raise RuntimeError(f"jump to {name} shows {header}")


def _export_check(url: str, data_dir: Path, out: Path) -> dict[str, float]:
    """The whole project exported to a zip by ``python -m core export`` (the export job's code) in a child process.

    Its peak resident memory (``wait4``'s rusage of that one process) against the zip's size
    shows whether the export streams: a writer that held the images would grow with them.
    """
    import subprocess

    t = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core",
            "export",
            "voc",
            str(out),
            "--db",
            url,
            "--data-dir",
            str(data_dir),
            "--project",
            "Scale",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    _pid, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise RuntimeError(f"export exited with status {status}")
    return {
        "seconds": time.perf_counter() - t,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "zip_mb": out.stat().st_size / 1e6,
    }


def _run_one(
    db: str, images: int, repeats: int, work: Path, export: bool = False
) -> tuple[dict[str, Any], dict[str, list[float]]]:
    from ui.context import reset_context

    server = None
    if db == "postgresql":
        from tests.postgres_server import start_server

        server = start_server()
        url = server.new_database()
    else:
        url = f"sqlite:///{work / 'tagrack.db'}"
    settings = Settings.resolve(url, work / "data")
    try:
        engine = open_database(settings)
        t = time.perf_counter()
        built = build(engine, settings, images)
        built["build_s"] = time.perf_counter() - t
        engine.dispose()
        os.environ.update(TAGRACK_DATA_DIR=str(settings.data_dir), TAGRACK_DB_URL=url)
        reset_context()
        from ui.context import get_context  # noqa: F401 - the page runs open it

        # The first session picks the project: the newest (the scale project) is what the picker shows.
        times = measure(repeats, built)
        reset_context()
        if export:
            built["export"] = _export_check(url, settings.data_dir, work / "export.zip")
        return built, times
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=100_000, help="images in the project (boxes 5x, predictions 10x)")
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--export-on", default="", help="comma-separated databases to also export the project on (memory check)"
    )
    args = parser.parse_args()
    sys.argv = sys.argv[:1]  # the app reads --db from the command line (ui/context.py): not ours
    # One person on loopback (``--no-auth``), as the page tests run: the sign-in gate's session
    # check (one indexed read per run) is left out of the times; signing in is not a page.
    os.environ["TAGRACK_NO_AUTH"] = "1"
    from streamlit import config

    config.set_option("server.address", "127.0.0.1")

    _stable_navigation()
    _shared_script_cache()
    _time_script_runs()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    failures = 0
    for db in [d.strip() for d in args.db.split(",") if d.strip()]:
        with tempfile.TemporaryDirectory() as tmp:
            built, times = _run_one(db, args.images, args.repeats, Path(tmp), export=db in args.export_on.split(","))
        print()
        print(
            f"{db}: {built['images']} images, {built['boxes']} boxes, {built['predictions']} predictions; "
            f"built in {built['build_s']:.0f} s; {args.repeats} repeats"
        )
        print(f"{'page or action':<36}{'p50 ms':>9}{'p95 ms':>9}  < {TARGET_MS:.0f} ms at p95")
        for name, xs in times.items():
            p95 = _pct(xs, 0.95)
            ok = name.startswith("AppTest") or p95 < TARGET_MS
            failures += not ok
            print(f"{name:<36}{statistics.median(xs):>9.1f}{p95:>9.1f}  {'yes' if ok else 'NO'}")
        if "export" in built:
            e = built["export"]
            print(
                f"export of the whole project (voc zip): {e['seconds']:.0f} s, zip {e['zip_mb']:.0f} MB, "
                f"peak memory of the exporting process {e['peak_rss_mb']:.0f} MB"
            )
        print(f"load average now: {', '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    print(f"\nload average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
