"""Ingest throughput on real photos: ``python benchmarks/ingest.py``.

Imports ``../shared/data/clothing-photos/images`` into a fresh SQLite database and reports
images per second, side by side in the same run with two references on the same files:
a plain byte copy (the disk's limit) and a bare Pillow decode (the decoder's limit). The
ratios say how much our checks, hashing, display copies and database rows cost on top.
Skips with a message when the shared folder is absent.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from core.database import open_database  # noqa: E402
from core.project.ingest import ingest_sources, sources_from_paths  # noqa: E402
from core.project.projects import create_project  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.engine import session_scope  # noqa: E402

DEFAULT_FOLDER = ROOT.parent / "shared" / "data" / "clothing-photos" / "images"


def _copy(files: list[Path], out: Path) -> float:
    start = time.perf_counter()
    for f in files:
        (out / f.name).write_bytes(f.read_bytes())
    return time.perf_counter() - start


def _decode(files: list[Path]) -> float:
    start = time.perf_counter()
    for f in files:
        with Image.open(f) as im:
            im.load()
    return time.perf_counter() - start


def _ingest(files: list[Path], work: Path) -> tuple[float, dict[str, int]]:
    settings = Settings.resolve(db_url=f"sqlite:///{work / 'bench.db'}", data_dir=work / "data")
    engine = open_database(settings)
    with session_scope(engine) as session:
        pid = create_project(session, "bench").id
    start = time.perf_counter()
    report = ingest_sources(engine, settings.data_dir, pid, sources_from_paths(files))
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed, report.summary()


def main() -> int:
    """Runs the benchmark and prints a Markdown table row set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=DEFAULT_FOLDER)
    parser.add_argument("--rounds", type=int, default=3, help="repeat and keep the median")
    args = parser.parse_args()
    if not args.folder.is_dir():
        print(f"skipped: {args.folder} is absent (the shared data folder beside the checkout)")
        return 0
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    mb = sum(f.stat().st_size for f in files) / 1e6
    runs: dict[str, list[float]] = {"copy": [], "decode": [], "ingest": []}
    summary: dict[str, int] = {}
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "copy").mkdir()
            runs["copy"].append(_copy(files, work / "copy"))
            runs["decode"].append(_decode(files))
            elapsed, summary = _ingest(files, work)
            runs["ingest"].append(elapsed)
            shutil.rmtree(work / "copy")
    med = {k: sorted(v)[len(v) // 2] for k, v in runs.items()}
    n = len(files)
    print(f"machine: {platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}")
    print(f"{n} files, {mb:.1f} MB; ingest outcome: {summary}")
    print("| step | images/s | MB/s | ingest time / step time |")
    print("|---|---|---|---|")
    for k in ("copy", "decode", "ingest"):
        print(f"| {k} | {n / med[k]:.0f} | {mb / med[k]:.1f} | {med['ingest'] / med[k]:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
