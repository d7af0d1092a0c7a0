"""Many people at once in real browsers: ``python benchmarks/load_browser.py [--annotators 20] [--reviewers 2] [--seconds 300] [--db sqlite|postgresql]``.

The issue's load run. One ``streamlit run app.py`` server (on loopback, ``--no-auth``: one
account name for everyone, each session on its own images) over a project built by
``benchmarks/scale_build.py`` (``--images``), and one headless Chromium (Debian's
``/usr/bin/chromium``) driven by Playwright with one **browser context per person** in this
process (asyncio; a context is a separate browser profile: its own cookies, websocket and
Streamlit session):

* each annotator opens Annotate, jumps to one of its own images by name, draws a box on the
  canvas with the mouse and clicks Save, then the next image (``--think`` seconds between);
* each reviewer opens Review and clicks "Accept as is" on the item shown (the queue is the
  predicted images the annotators also work on, so some saves come second and must be refused);
* beside them, a prediction writer inserts 500 prediction rows per transaction every 0.5 s and a
  job writer updates a running training job's progress and heartbeat every 0.2 s, as the
  prediction and training workers do (the rows, not TensorFlow: a real training on the same
  2 cores would measure TensorFlow's CPU use, not the database).

Counts, from what each page showed after its click: saves attempted, saved ("Saved revision N"),
refused with the conflict message ("Not saved: ... was saved by"), "database is locked" shown,
other errors, and **lost**: a save the page reported as revision N of an image with no such
revision in the database's box history at the end. Save time is the browser's: from the click
to the message on the page (the whole rerun, websocket and painting included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import re
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
from core.database import open_database  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.engine import session_scope  # noqa: E402
from db.models import BoxChange, Image, ImageStatus, Job, JobStatus  # noqa: E402
from tests.app_server import start_server as start_app  # noqa: E402
from tests.app_server import stop_server as stop_app  # noqa: E402

CHROMIUM = os.environ.get("TAGRACK_CHROMIUM", "/usr/bin/chromium")
SAVED = re.compile(r"Saved revision (\d+)")


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts = {"attempted": 0, "saved": 0, "refused_conflict": 0, "locked_shown": 0, "other": 0}
        self.save_ms: list[float] = []
        self.reported: list[tuple[str, int]] = []  # (image name, revision) the page said it saved
        self.others: list[str] = []

    def outcome(self, name: str, text: str, ms: float, role: str = "annotator") -> None:
        with self.lock:
            self.counts["attempted"] += 1
            self.counts[f"{role}_attempted"] = self.counts.get(f"{role}_attempted", 0) + 1
            if "database is locked" in text.lower():
                self.counts["locked_shown"] += 1
            elif m := SAVED.search(text):
                self.counts["saved"] += 1
                self.save_ms.append(ms)
                self.reported.append((name, int(m.group(1))))
            elif "Not saved:" in text and "was saved by" in text:
                self.counts["refused_conflict"] += 1
            else:
                self.counts["other"] += 1
                self.others.append(text[:160])


async def _wait_app(page) -> None:  # type: ignore[no-untyped-def]
    await page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=180_000)


async def _outcome_after(page, name: str) -> str:  # type: ignore[no-untyped-def]
    """The message the page shows about ``name`` after a click (success, conflict or error)."""
    alert = page.locator('[data-testid="stAlert"], [data-testid="stException"]').filter(has_text=name)
    failure = page.locator('[data-testid="stException"]')
    await alert.or_(failure).first.wait_for(timeout=180_000)
    return await alert.or_(failure).first.inner_text()


async def _annotator(page, url: str, names: list[str], end: float, think: float, tally: Tally, k: int) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(k)
    await page.goto(f"{url}/annotate")
    await _wait_app(page)
    await page.get_by_text("Queue filters").click()  # the jump field sits in this sidebar expander
    i = 0
    while time.monotonic() < end:
        name = names[i % len(names)]
        i += 1
        jump = page.get_by_label("Jump to image (name)")
        await jump.fill(name)
        await jump.press("Enter")
        await page.locator("strong", has_text=name).first.wait_for()
        await _wait_app(page)
        await asyncio.sleep(think * rng.uniform(0.5, 1.5))
        canvas = page.locator(".dc-container canvas").last
        await canvas.scroll_into_view_if_needed()
        box = await canvas.bounding_box()
        x0, y0 = (
            round(box["x"] + rng.uniform(10, box["width"] * 0.5)),
            round(box["y"] + rng.uniform(10, box["height"] * 0.5)),
        )
        await page.mouse.move(x0, y0)
        await page.mouse.down()
        await page.mouse.move(x0 + 60, y0 + 50, steps=5)
        await page.mouse.up()
        await page.get_by_text("Unsaved changes").first.wait_for()
        await _wait_app(page)
        t = time.perf_counter()
        await page.get_by_role("button", name=re.compile(r"^Save")).first.click()  # its name ends with the shortcut
        text = await _outcome_after(page, name)
        tally.outcome(name, text, (time.perf_counter() - t) * 1000)
        await _wait_app(page)


async def _reviewer(page, url: str, end: float, think: float, tally: Tally, k: int) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(100 + k)
    last = ""
    await page.goto(f"{url}/review")
    await _wait_app(page)
    while time.monotonic() < end:
        # .first: during a rerun Streamlit briefly shows the old and the new button together.
        accept = page.get_by_role("button", name="Accept as is").first
        await accept.wait_for()
        header = await page.locator("strong", has_text=re.compile(r"\.jpg$")).first.inner_text()
        for _ in range(600):  # the rerun after the last click may not have drawn the next item yet
            if header != last:
                break
            await asyncio.sleep(0.1)
            header = await page.locator("strong", has_text=re.compile(r"\.jpg$")).first.inner_text()
        last = header
        await asyncio.sleep(think * rng.uniform(0.5, 1.5))
        t = time.perf_counter()
        await accept.click()
        text = await _outcome_after(page, header)
        await _wait_app(page)
        if "nothing on the canvas" in text:
            # No prediction above the threshold: Accept refuses (nothing saved); a person skips it.
            with tally.lock:
                tally.counts["nothing_shown_skipped"] = tally.counts.get("nothing_shown_skipped", 0) + 1
            await page.get_by_role("button", name=re.compile(r"^Skip")).first.click()
            await _wait_app(page)
            continue
        tally.outcome(header, text, (time.perf_counter() - t) * 1000, "reviewer")


async def _session(browser, role: str, k: int, body, *args) -> None:  # type: ignore[no-untyped-def]
    """One person: a browser context of their own; a screenshot where it got stuck, for the log."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(120_000)
    page = await context.new_page()
    try:
        await asyncio.sleep(0.5 * k)  # people arrive a little apart, not in the same millisecond
        await body(page, *args)
    except BaseException:
        try:
            await page.screenshot(path=f"/tmp/load_browser_{role}{k}.png")
        except Exception:  # noqa: BLE001 - a diagnosis only
            pass
        raise
    finally:
        await context.close()


async def _drive(url: str, names: list[list[str]], reviewers: int, seconds: float, think: float, tally: Tally) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
        )
        # The server's first script run registers app.py's navigation; a session that arrives at a
        # page URL before it lands on the bare pages/ file ("Create a project first"): open once.
        warm = await browser.new_page()
        await warm.goto(url)
        await _wait_app(warm)
        await warm.close()
        end = time.monotonic() + seconds
        tasks = [
            _session(browser, "annotator", k, _annotator, url, mine, end, think, tally, k)
            for k, mine in enumerate(names)
        ]
        tasks += [_session(browser, "reviewer", k, _reviewer, url, end, think, tally, k) for k in range(reviewers)]
        # A session stuck past the end (a page that never answered) is cut off 120 s after it and reported.
        running = [asyncio.ensure_future(t) for t in tasks]
        await asyncio.wait(running, timeout=seconds + 120)
        for task in running:
            task.cancel()
        results = await asyncio.gather(*running, return_exceptions=True)
        for r in results:
            if isinstance(r, asyncio.CancelledError):
                tally.others.append("session cut off 120 s after the end (a page that did not answer)")
            elif isinstance(r, BaseException):
                tally.others.append(f"session ended early: {type(r).__name__}: {str(r)[:200]}")
        await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--annotators", type=int, default=20)
    parser.add_argument("--reviewers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds a person looks before drawing/accepting")
    parser.add_argument("--images", type=int, default=5_000)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    args = parser.parse_args()

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load average at start {os.getloadavg()}", flush=True)
    server = app = None
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.db == "postgresql":
            from tests.postgres_server import start_server

            server = start_server()
            url = server.new_database()
        else:
            url = f"sqlite:///{work / 'tagrack.db'}"
        try:
            settings = Settings.resolve(url, work / "data")
            engine = open_database(settings)
            built = build(engine, settings, args.images)
            with session_scope(engine) as session:
                new = session.execute(
                    select(Image.id, Image.original_name).where(Image.status == ImageStatus.NEW).order_by(Image.id)
                ).all()
                job = Job(kind="train", project_id=built["project_id"], status=JobStatus.RUNNING)
                session.add(job)
                session.flush()
                job_id = job.id
            # Annotators on the new (predicted) images, each its own slice, in the order Review ranks
            # nothing in particular: reviewers' items are sometimes an annotator's image too.
            names = [[n for _i, n in new[k :: args.annotators]][:200] for k in range(args.annotators)]
            app = start_app(
                settings.data_dir,
                db_url=url,
                extra_env={"TAGRACK_USER": "loadtest"},
                log_path=work.parent / f"load_browser_{os.getpid()}.log",
            )
            app_url = app.url
            stop = threading.Event()
            writers = background_writers(engine, built, stop, job_id, [i for i, _n in new], max_score=0.3)
            for t in writers:
                t.start()
            tally = Tally()
            t0 = time.monotonic()
            try:
                asyncio.run(_drive(app_url, names, args.reviewers, args.seconds, args.think, tally))
            finally:
                stop.set()
                for t in writers:
                    t.join()
            wall = time.monotonic() - t0
            lost = 0
            with session_scope(engine) as session:
                by_name = dict(session.execute(select(Image.original_name, Image.id)).all())
                for name, revision in tally.reported:
                    held = session.scalar(
                        select(BoxChange.id)
                        .where(BoxChange.image_id == by_name[name], BoxChange.revision == revision)
                        .limit(1)
                    )
                    current = session.scalar(select(Image.revision).where(Image.id == by_name[name]))
                    if held is None or current < revision:
                        lost += 1
            engine.dispose()
        finally:
            if app is not None:
                stop_app(app)
            if server is not None:
                server.stop()
    c = tally.counts
    ms = sorted(tally.save_ms)
    p95 = ms[min(len(ms) - 1, max(0, round(0.95 * len(ms)) - 1))] if ms else float("nan")
    print(
        f"{args.db}: {args.annotators} annotators + {args.reviewers} reviewers (browser contexts) + prediction and job "
        f"writers, {wall:.0f} s wall, think {args.think} s, {built['images']} images"
    )
    print(
        f"  attempted {c['attempted']}, saved {c['saved']}, refused with the conflict message {c['refused_conflict']}, "
        f"'database is locked' shown {c['locked_shown']}, other {c['other']}, lost {lost}; "
        f"review items with nothing above the threshold skipped {c.get('nothing_shown_skipped', 0)}; "
        f"attempts by annotators {c.get('annotator_attempted', 0)}, by reviewers {c.get('reviewer_attempted', 0)}"
    )
    if ms:
        print(f"  save time in the browser (click to message): p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms")
    for line in tally.others[:10]:
        print("  other:", line)
    print(f"load average at end {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
