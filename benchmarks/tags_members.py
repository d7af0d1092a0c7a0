"""Members side by side: K tops from different seeds on one cached feature pass, each alone and averaged.

Run ``benchmarks/tags.py --keep DIR --runs default`` first (it imports clothing-catalogue through
``import labels``, splits it by sender and leaves the default job's cached features in
``DIR/data/jobs/train-tags-N/features``), then::

    python benchmarks/tags_members.py DIR --job train-tags-1 --seeds 0,1,2 --minutes 4

Each seed trains the default top (:func:`core.model.tags.train.train_tags`, one member) for
``--minutes`` on those features, is calibrated on validation and scored on test as the
``train-tags`` job does; after each seed the logits of all seeds so far are averaged and scored
the same way (what ``members=K`` saves). Same split, same features, one after the other, so the
seed-to-seed spread of one top and the gain of averaging are measured on the same footing.

Prints one JSON line per seed and per average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from core.database import open_database  # noqa: E402
from core.model.pretrained.offline_weights import cache_dir_for  # noqa: E402
from core.model.tags.calibration import calibrate_heads  # noqa: E402
from core.model.tags.data import load_tags_data  # noqa: E402
from core.model.tags.evaluation import evaluate_heads  # noqa: E402
from core.model.tags.jobs import CONFIG_KEYS, DEFAULTS, SPEC_KEYS  # noqa: E402
from core.model.tags.model import TagsSpec  # noqa: E402
from core.model.tags.train import TagsTrainConfig, train_tags  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.engine import session_scope  # noqa: E402
from db.models import Project  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("keep", type=Path, help="the --keep folder of a benchmarks/tags.py run")
    parser.add_argument("--job", default="train-tags-1", help="job folder whose cached features to reuse")
    parser.add_argument("--seeds", default="0,1,2", help="comma list of seeds, one top each")
    parser.add_argument("--minutes", type=float, default=4.0, help="budget of each top")
    args = parser.parse_args()
    settings = Settings.resolve(db_url=f"sqlite:///{args.keep / 'tagrack.db'}", data_dir=args.keep / "data")
    engine = open_database(settings)
    with session_scope(engine) as session:
        pid = session.scalar(select(Project.id).where(Project.name == "catalogue"))
        if pid is None:
            raise SystemExit(f"{args.keep} holds no catalogue project: run benchmarks/tags.py --keep first")
        data = load_tags_data(session, pid, settings.data_dir, assign_splits=False)
    source = settings.jobs_dir / args.job / "features"
    if not any(source.glob("*.npy")):
        raise SystemExit(f"{source} holds no cached features")
    spec = TagsSpec(heads=data.heads, **{k: DEFAULTS[k] for k in SPEC_KEYS if k not in ("weights", "members")})
    val, test = data.subset("val"), data.subset("test")

    def score(val_logits: list[np.ndarray], test_logits: list[np.ndarray]) -> dict[str, float]:
        temps = calibrate_heads({"category": val_logits[0]}, {"category": val.labels[:, 0]})
        head = evaluate_heads(test_logits, test.labels, data.heads, test.image_ids, temps)["category"]
        return {k: round(head[k], 4) for k in ("top1", "top5", "balanced_accuracy", "ece_before", "ece_after")}

    vals, tests = [], []
    for seed in (int(s) for s in args.seeds.split(",")):
        work = settings.jobs_dir / f"members-seed-{seed}"
        shutil.rmtree(work, ignore_errors=True)
        (work / "features").mkdir(parents=True)
        for f in source.glob("*.npy"):
            os.link(f, work / "features" / f.name)
        config = TagsTrainConfig.from_dict(
            {**{k: DEFAULTS[k] for k in CONFIG_KEYS}, "budget_minutes": args.minutes, "seed": seed}
        )
        t0 = time.perf_counter()
        r = train_tags(spec, config, data.subset("train"), val, work, cache_dir_for(settings.data_dir), test=test)
        vals.append(r.val_logits)
        tests.append(r.test_logits)
        print(
            json.dumps(
                {
                    "seed": seed,
                    **score(r.val_logits, r.test_logits),
                    "epochs": len(r.history),
                    "best_epoch": r.best_epoch,
                    "stopped": r.stopped,
                    "s": round(time.perf_counter() - t0),
                    "load": os.getloadavg(),
                }
            ),
            flush=True,
        )
        if len(vals) > 1:

            def mean(logits: list[list[np.ndarray]]) -> list[np.ndarray]:
                return [np.mean([lg[j] for lg in logits], axis=0) for j in range(len(logits[0]))]

            print(json.dumps({"average_of": len(vals), **score(mean(vals), mean(tests))}), flush=True)


if __name__ == "__main__":
    main()
