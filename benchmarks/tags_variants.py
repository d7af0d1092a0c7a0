"""Quick side-by-side comparisons of tags-model recipes on one prepared catalogue project.

Run ``benchmarks/tags.py --runs "" --keep DIR`` first (it imports clothing-catalogue through
``import labels`` and splits it by sender), then::

    python benchmarks/tags_variants.py DIR --size 224 --minutes 1.5

One trunk pass per input size computes, for every image, the features at the cuts of blocks 11
and 13 (one forward pass gives both): train images in 4 views (the image, its mirror, and two
seeded random resized crops, one mirrored; no colour change), validation and test images in 2
(the image and its mirror, for test-time flip averaging). Then each variant trains its top with
:func:`core.model.tags.train.train_tags` on those features with a short budget, and is calibrated
on validation and scored on test the way the ``train-tags`` job does, with and without flip
averaging (logits of the image and its mirror averaged). Same split, same features, one after
the other: the ratios between variants are what this measures, not the 15-minute figures.

Prints one JSON line per variant on stderr and all of them as JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
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
from core.model.tags.data import load_image, load_tags_data  # noqa: E402
from core.model.tags.evaluation import evaluate_heads  # noqa: E402
from core.model.tags.model import TagsSpec, _cut_layer, build_base  # noqa: E402
from core.model.tags.train import TagsTrainConfig, predict_logits, train_tags  # noqa: E402
from core.settings import Settings  # noqa: E402
from db.engine import session_scope  # noqa: E402
from db.models import Project  # noqa: E402

CUTS = (11, 13)


def random_crop(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random resized crop (area 55-100 %, aspect 3:4 to 4:3) scaled back to the image's size."""
    from PIL import Image as PILImage

    s = image.shape[0]
    area = rng.uniform(0.55, 1.0)
    ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    w = min(s, int(round(s * np.sqrt(area * ratio))))
    h = min(s, int(round(s * np.sqrt(area / ratio))))
    x = int(rng.integers(0, s - w + 1))
    y = int(rng.integers(0, s - h + 1))
    return np.asarray(PILImage.fromarray(image[y : y + h, x : x + w]).resize((s, s), PILImage.BILINEAR))


def views_of(image: np.ndarray, n: int, seed: int) -> list[np.ndarray]:
    """0: the image, 1: mirrored, 2..: random resized crops (odd ones mirrored)."""
    rng = np.random.default_rng(seed)
    out = [image, image[:, ::-1]][:n]
    for v in range(2, n):
        crop = random_crop(image, rng)
        out.append(crop[:, ::-1] if v % 2 else crop)
    return out


def features(trunk, paths: list[Path], size: int, views: int) -> list[np.ndarray]:
    """Per cut: ``(images, views, h, w, c)`` float16."""
    from concurrent.futures import ThreadPoolExecutor

    per = max(1, 32 // views)
    outs: list[list[np.ndarray]] = [[] for _ in CUTS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(paths), per):
            chunk = paths[start : start + per]
            images = list(pool.map(lambda p: load_image(p, size), chunk))
            stack = np.stack([v for k, im in enumerate(images) for v in views_of(im, views, seed=start + k)]).astype(
                np.float32
            )
            got = trunk(stack, training=False)
            for j, g in enumerate(got):
                g = np.asarray(g, dtype=np.float16)
                outs[j].append(g.reshape((len(images), views) + g.shape[1:]))
    return [np.concatenate(o) for o in outs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path, help="the --keep folder of benchmarks/tags.py")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--minutes", type=float, default=1.5, help="budget of each variant's top training")
    parser.add_argument("--variants", default="base,crops,deep,deep2", help="comma list")
    args = parser.parse_args()
    settings = Settings.resolve(db_url=f"sqlite:///{args.root / 'tagrack.db'}", data_dir=args.root / "data")
    engine = open_database(settings)
    with session_scope(engine) as session:
        pid = session.scalar(select(Project.id).where(Project.name == "catalogue"))
        data = load_tags_data(session, pid, settings.data_dir, assign_splits=False)
    train, val, test = data.subset("train"), data.subset("val"), data.subset("test")
    weights = cache_dir_for(settings.data_dir)
    work = args.root / f"variants-{args.size}"
    feats_file = {(split, cut): work / f"{split}-cut{cut}.npy" for split in ("train", "val", "test") for cut in CUTS}
    report: dict = {"load_start": os.getloadavg(), "size": args.size, "minutes": args.minutes}
    if not all(f.exists() for f in feats_file.values()):
        import keras

        work.mkdir(parents=True, exist_ok=True)
        base = build_base(TagsSpec(heads=data.heads, image_size=args.size, weights="imagenet-offline"), weights)
        trunk = keras.Model(base.input, [base.get_layer(_cut_layer(c)).output for c in CUTS])
        t0 = time.perf_counter()
        n = 0
        for split, part, views in (("train", train, 4), ("val", val, 2), ("test", test, 2)):
            for cut, f in zip(CUTS, features(trunk, part.paths, args.size, views), strict=True):
                np.save(feats_file[(split, cut)], f)
            n += len(part.paths) * views
        report["feature_views_per_s"] = round(n / (time.perf_counter() - t0), 1)
        print(json.dumps({"features": report["feature_views_per_s"]}), file=sys.stderr)

    variants = {
        "base": {"split_block": 13, "train_views": 2},  # the current default's views (image, mirror)
        "crops": {"split_block": 13, "train_views": 4},
        "deep": {"split_block": 11, "train_views": 4},
        "deep2": {"split_block": 11, "train_views": 4, "learning_rate": 1.5e-4},
        "lowlr": {"split_block": 13, "train_views": 4, "learning_rate": 1.5e-4},
        "nosmooth": {"split_block": 13, "train_views": 4, "label_smoothing": 0.0},
        "drop4": {"split_block": 13, "train_views": 4, "dropout": 0.4},
    }
    report["variants"] = {}
    for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
        v = variants[name]
        cut = 11 if v["split_block"] == 11 else 13
        folder = work / name
        (folder / "features").mkdir(parents=True, exist_ok=True)
        for stale in ("state.json", "best.weights.h5"):
            (folder / stale).unlink(missing_ok=True)
        if (folder / "backup").exists():
            import shutil

            shutil.rmtree(folder / "backup")
        tv = v["train_views"]
        np.save(folder / "features" / f"train-{args.size}-{tv}.npy", np.load(feats_file[("train", cut)])[:, :tv])
        val_f, test_f = np.load(feats_file[("val", cut)]), np.load(feats_file[("test", cut)])
        np.save(folder / "features" / f"val-{args.size}-1.npy", val_f[:, :1])
        np.save(folder / "features" / f"test-{args.size}-1.npy", test_f[:, :1])
        spec = TagsSpec(
            heads=data.heads,
            image_size=args.size,
            weights="imagenet-offline",
            split_block=v["split_block"],
            dropout=v.get("dropout", 0.2),
        )
        config = TagsTrainConfig(
            budget_minutes=args.minutes,
            views=tv,
            learning_rate=v.get("learning_rate", 3e-4),
            label_smoothing=v.get("label_smoothing", 0.1),
        )
        t0 = time.perf_counter()
        result = train_tags(spec, config, train, val, folder, weights, test=test)
        wall = time.perf_counter() - t0
        row: dict = {"epochs": len(result.history), "best_epoch": result.best_epoch, "wall_s": round(wall, 1)}
        val_m = predict_logits(result.top, val_f[:, 1:2])
        test_m = predict_logits(result.top, test_f[:, 1:2])
        for mode, vl, tl in (
            ("plain", result.val_logits, result.test_logits),
            (
                "flip_avg",
                [(a + b) / 2 for a, b in zip(result.val_logits, val_m, strict=True)],
                [(a + b) / 2 for a, b in zip(result.test_logits, test_m, strict=True)],
            ),
        ):
            temps = calibrate_heads({"category": vl[0]}, {"category": val.labels[:, 0]})
            head = evaluate_heads(tl, test.labels, data.heads, test.image_ids, temps)["category"]
            vhead = evaluate_heads(vl, val.labels, data.heads, val.image_ids, temps)["category"]
            row[mode] = {
                "top1": round(head["top1"], 4),
                "top5": round(head["top5"], 4),
                "balanced": round(head["balanced_accuracy"], 4),
                "ece_after": round(head["ece_after"], 4),
                "val_top1": round(vhead["top1"], 4),
            }
        report["variants"][name] = row
        print(json.dumps({name: row}), file=sys.stderr)
    report["load_end"] = os.getloadavg()
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
