"""Server-side time of the Evaluate page on a big project: ``python benchmarks/evaluate.py [--rounds N]``.

Builds (bulk SQL inserts, no image files: the page reads none) a project of 20,000 images
with 3 boxes each (80/10/10 train/val/test, 90% done), two model versions with 100,000
predictions between them (50,000 each: every image predicted, test images included),
runs the ``evaluate`` step for both (the one-off cost, timed), then runs the real app
(app.py routed to pages/evaluate.py) in Streamlit's AppTest, in-process, and times,
interleaved round by round:

* **Evaluate page run**: every tab is computed on each run (Streamlit runs all tabs), so
  this is the whole page: versions table, per-class chart, PR curves, confusion matrix,
  error gallery (20 rows, names looked up), dataset health (grouped queries, box geometry
  of all 60,000 boxes, charts);
* **Home page run** and the **AppTest floor** (a one-line script), for ratios side by side.

Like a running server, the harness compiles each script once (see benchmarks/annotate.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert, select  # noqa: E402

from benchmarks.annotate import _floor_script, _shared_script_cache, _stable_navigation  # noqa: E402
from core.database import open_database  # noqa: E402
from core.model.evaluation import evaluate_model_version  # noqa: E402
from core.project.projects import create_project  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.engine import session_scope  # noqa: E402
from db.models import BoxRow, Image, ImageStatus, Label, ModelVersion, Prediction, Split, utcnow  # noqa: E402

IMAGES = 20_000
BOXES_PER_IMAGE = 3
PREDICTIONS = 100_000
VERSIONS = 2


def _prepare(work: Path) -> tuple[Settings, list[int]]:
    settings = Settings.resolve(f"sqlite:///{work / 'tagrack.db'}", work / "data")
    engine = open_database(settings)
    rng = random.Random(0)
    with session_scope(engine) as session:
        pid = create_project(session, "Big").id
    with session_scope(engine) as session:
        label_ids = list(session.scalars(select(Label.id).where(Label.project_id == pid).order_by(Label.order)))
        now = utcnow()
        splits = [Split.TRAIN] * 8 + [Split.VAL, Split.TEST]
        session.execute(
            insert(Image),
            [
                dict(
                    project_id=pid,
                    sha256=f"{i:064x}",
                    stored_path=f"o/{i}.jpg",
                    display_path=f"d/{i}.jpg",
                    width=800,
                    height=1000,
                    original_name=f"photo_{i:05d}.jpg",
                    split=splits[i % 10],
                    status=ImageStatus.DONE if i % 10 != 3 else ImageStatus.NEW,
                    revision=1,
                    attributes={},
                    created_at=now,
                    updated_at=now,
                )
                for i in range(IMAGES)
            ],
        )
        image_ids = list(session.scalars(select(Image.id).where(Image.project_id == pid).order_by(Image.id)))
        boxes = []
        for n, image_id in enumerate(image_ids):
            for _ in range(BOXES_PER_IMAGE):
                w, h = rng.uniform(80, 400), rng.uniform(80, 500)
                x, y = rng.uniform(0, 800 - w), rng.uniform(0, 1000 - h)
                boxes.append(
                    dict(
                        image_id=image_id,
                        label_id=rng.choice(label_ids),
                        x_min=x,
                        y_min=y,
                        x_max=x + w,
                        y_max=y + h,
                        created_by=f"annotator{n % 4}",
                        created_at=now,
                        updated_at=now,
                    )
                )
        session.execute(insert(BoxRow), boxes)
        versions = []
        for v in range(VERSIONS):
            version = ModelVersion(
                project_id=pid, name=f"big v{v + 1}", path="missing/model.keras", params={}, metrics={}
            )
            session.add(version)
            session.flush()
            versions.append(version.id)
            preds = []
            per_version = PREDICTIONS // VERSIONS
            for k in range(per_version):
                b = boxes[k * len(boxes) // per_version]  # evenly spread: every image gets predictions
                hit = rng.random() < 0.8
                j = 10 if hit else 150
                preds.append(
                    dict(
                        model_version_id=version.id,
                        image_id=b["image_id"],
                        label_id=b["label_id"] if rng.random() < 0.9 else rng.choice(label_ids),
                        x_min=b["x_min"] + rng.uniform(-j, j),
                        y_min=b["y_min"] + rng.uniform(-j, j),
                        x_max=b["x_max"] + rng.uniform(-j, j),
                        y_max=b["y_max"] + rng.uniform(-j, j),
                        score=rng.uniform(0.05, 1.0),
                        created_at=now,
                    )
                )
            session.execute(insert(Prediction), preds)
    engine.dispose()
    return settings, versions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    from streamlit.testing.v1 import AppTest

    _stable_navigation()
    _shared_script_cache()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        settings, versions = _prepare(Path(tmp))
        build_s = time.perf_counter() - t
        engine = open_database(settings)
        eval_s = []
        for v in versions:
            t = time.perf_counter()
            result = evaluate_model_version(engine, settings, v)
            eval_s.append(time.perf_counter() - t)
            assert result["newly_predicted"] == 0, result["newly_predicted"]
        engine.dispose()
        os.environ.update(TAGRACK_DATA_DIR=str(settings.data_dir), TAGRACK_DB_URL=settings.db_url, TAGRACK_USER="bench")
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        home = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        at.switch_page("pages/evaluate.py").run()
        assert not at.exception, at.exception
        assert any("COCO mAP@0.5" in d.value.columns for d in at.dataframe)
        floor = AppTest.from_function(_floor_script)
        floor.run()
        page_ms: list[float] = []
        home_ms: list[float] = []
        floor_ms: list[float] = []
        for _ in range(args.rounds):
            for app, xs in ((floor, floor_ms), (home, home_ms), (at, page_ms)):
                t = time.perf_counter()
                app.run()
                xs.append((time.perf_counter() - t) * 1000)
            assert not at.exception, at.exception

    med = statistics.median
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(
        f"project: {IMAGES} images, {IMAGES * BOXES_PER_IMAGE} boxes, {VERSIONS} model versions, "
        f"{PREDICTIONS} predictions; built in {build_s:.1f} s"
    )
    print(f"evaluate step per version (one-off, stored): {', '.join(f'{s:.1f} s' for s in eval_s)}")
    print(f"rounds: {args.rounds}")
    print(f"{'what (same run)':<44}{'median ms':>10}{'max ms':>9}{'/ floor':>9}")
    for name, xs in [
        ("Evaluate page run (target < 2000 ms)", page_ms),
        ("Home page run", home_ms),
        ("AppTest floor (one-line script)", floor_ms),
    ]:
        print(f"{name:<44}{med(xs):>10.1f}{max(xs):>9.1f}{med(xs) / med(floor_ms):>8.1f}x")


if __name__ == "__main__":
    main()
