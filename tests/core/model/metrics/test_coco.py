"""Our COCO-style metrics against pycocotools' COCOeval on the same data, to 0.001."""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest

from core.boxes import Box
from core.model.metrics.coco import evaluate
from core.model.metrics.types import Detection, GroundTruth

pycocotools = pytest.importorskip("pycocotools", reason="pycocotools is a test dependency (requirements-dev.txt)")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

LABELS = ["Jackets", "Jeans", "Shoes"]


def coco_reference(gts: list[GroundTruth], dts: list[Detection], image_ids: list[int]) -> dict[str, float]:
    """AP, AP50, AP75 and the area ranges' AP overall, and AP, AP50, AP75 and small AP per class, from pycocotools."""
    cat_ids = {name: i + 1 for i, name in enumerate(LABELS)}
    dataset = {
        "images": [{"id": i, "width": 1000, "height": 1000} for i in image_ids],
        "categories": [{"id": cid, "name": n} for n, cid in cat_ids.items()],
        "annotations": [
            {
                "id": k + 1,
                "image_id": g.image,
                "category_id": cat_ids[g.label],
                "bbox": [g.box.x_min, g.box.y_min, g.box.width, g.box.height],
                "area": g.box.width * g.box.height,
                "iscrowd": 0,
            }
            for k, g in enumerate(gts)
        ],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
        results = [
            {
                "image_id": d.image,
                "category_id": cat_ids[d.label],
                "bbox": [d.box.x_min, d.box.y_min, d.box.width, d.box.height],
                "score": d.score,
            }
            for d in dts
        ]
        coco_dt = coco.loadRes(results) if results else COCO()
        if not results:
            coco_dt.dataset = {"images": dataset["images"], "categories": dataset["categories"], "annotations": []}
            coco_dt.createIndex()
        ev = COCOeval(coco, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    # stats: AP, AP50, AP75, APsmall, APmedium, APlarge (-1 where undefined)
    out = dict(
        zip(("map_50_95", "map_50", "map_75", "map_small", "map_medium", "map_large"), ev.stats[:6], strict=True)
    )
    out = {k: float("nan") if v == -1 else v for k, v in out.items()}
    precision = ev.eval["precision"]  # [T, R, K, A, M]; area 0 all, 1 small

    def mean_defined(p: np.ndarray) -> float:
        return float(np.mean(p[p > -1])) if (p > -1).any() else float("nan")

    for name, cid in cat_ids.items():
        k = ev.params.catIds.index(cid)
        out[f"ap_50_95/{name}"] = mean_defined(precision[:, :, k, 0, 2])
        out[f"ap_50/{name}"] = mean_defined(precision[0, :, k, 0, 2])
        out[f"ap_75/{name}"] = mean_defined(precision[5, :, k, 0, 2])
        out[f"ap_small/{name}"] = mean_defined(precision[:, :, k, 1, 2])
    return out


def assert_close(value: float, reference: float, key: str) -> None:
    if math.isnan(reference):
        assert math.isnan(value), key
    else:
        assert value == pytest.approx(reference, abs=1e-3), key


def assert_matches(gts: list[GroundTruth], dts: list[Detection], image_ids: list[int]) -> None:
    ours = evaluate(gts, dts, LABELS)
    ref = coco_reference(gts, dts, image_ids)
    for key in ("map_50", "map_50_95", "map_75", "map_small", "map_medium", "map_large"):
        assert_close(getattr(ours, key), ref[key], key)
    for name in LABELS:
        for field in ("ap_50", "ap_50_95", "ap_75", "ap_small"):
            assert_close(getattr(ours, field)[name], ref[f"{field}/{name}"], f"{field}/{name}")


def scene(seed: int, n_images: int = 20) -> list[GroundTruth]:
    rng = np.random.default_rng(seed)
    gts = []
    for image_id in range(1, n_images + 1):
        for _ in range(rng.integers(1, 5)):
            x, y = rng.uniform(0, 700, 2)
            w, h = rng.uniform(20, 300, 2)
            gts.append(GroundTruth(image_id, LABELS[rng.integers(0, 3)], Box(x, y, x + w, y + h)))
    return gts


def test_perfect_predictions() -> None:
    gts = scene(1)
    dts = [Detection(g.image, g.label, g.box, 0.9) for g in gts]
    ours = evaluate(gts, dts, LABELS)
    assert ours.map_50 == pytest.approx(1.0) and ours.map_50_95 == pytest.approx(1.0)
    assert_matches(gts, dts, list(range(1, 21)))
    assert ours.confusion[:3, :3].trace() == len(gts) and ours.confusion[3].sum() == 0


def test_no_predictions() -> None:
    gts = scene(2)
    ours = evaluate(gts, [], LABELS)
    assert ours.map_50 == 0 and ours.map_50_95 == 0
    assert_matches(gts, [], list(range(1, 21)))
    assert ours.confusion[:3, 3].sum() == len(gts)  # all missed


def test_shifted_boxes() -> None:
    gts = scene(3)
    rng = np.random.default_rng(3)
    dts = []
    for g in gts:
        shift = rng.uniform(0, 0.4) * g.box.width
        dts.append(
            Detection(
                g.image,
                g.label,
                Box(g.box.x_min + shift, g.box.y_min, g.box.x_max + shift, g.box.y_max),
                float(rng.uniform(0.1, 1)),
            )
        )
    assert_matches(gts, dts, list(range(1, 21)))


def test_wrong_classes() -> None:
    gts = scene(4)
    dts = [
        Detection(g.image, LABELS[(LABELS.index(g.label) + (i % 2)) % 3], g.box, 0.5 + 0.01 * (i % 40))
        for i, g in enumerate(gts)
    ]
    ours = evaluate(gts, dts, LABELS)
    assert_matches(gts, dts, list(range(1, 21)))
    off_diagonal = ours.confusion[:3, :3].sum() - ours.confusion[:3, :3].trace()
    assert off_diagonal == sum(1 for i in range(len(gts)) if i % 2)


def test_duplicates_count_as_false_positives() -> None:
    gts = scene(5)
    dts = [Detection(g.image, g.label, g.box, 0.9) for g in gts]
    dts += [Detection(g.image, g.label, g.box.scaled(1.01, 1.0), 0.95) for g in gts[::2]]
    ours = evaluate(gts, dts, LABELS)
    assert ours.map_50 < 1.0
    assert_matches(gts, dts, list(range(1, 21)))
    assert ours.confusion[3, :3].sum() == len(gts[::2])  # duplicates are false positives


def test_random_detections_with_ties_and_a_class_without_ground_truth() -> None:
    gts = [g for g in scene(6, 30) if g.label != "Shoes"]
    rng = np.random.default_rng(6)
    dts = []
    for g in gts:
        for _ in range(rng.integers(0, 3)):
            jitter = rng.normal(0, 15, 4)
            b = Box(
                g.box.x_min + jitter[0],
                g.box.y_min + jitter[1],
                g.box.x_max + abs(jitter[2]) + 1,
                g.box.y_max + abs(jitter[3]) + 1,
            )
            dts.append(Detection(g.image, LABELS[rng.integers(0, 3)], b, float(np.round(rng.uniform(0, 1), 1))))
    assert_matches(gts, dts, list(range(1, 31)))
    assert math.isnan(evaluate(gts, dts, LABELS).ap_50["Shoes"])


def mixed_sizes_scene(seed: int, n_images: int = 25) -> list[GroundTruth]:
    """Boxes of every COCO area range, some right on its edges (32² and 96² pixels)."""
    rng = np.random.default_rng(seed)
    sides = [(8, 12), (20, 30), (32, 32), (30, 60), (96, 96), (120, 200), (400, 300)]
    gts = []
    for image_id in range(1, n_images + 1):
        for _ in range(rng.integers(1, 7)):
            w, h = sides[rng.integers(0, len(sides))]
            x, y = rng.uniform(0, 550, 2)
            gts.append(GroundTruth(image_id, LABELS[rng.integers(0, 3)], Box(x, y, x + w, y + h)))
    return gts


def test_area_ranges_and_ap75_follow_cocoeval() -> None:
    """AP75 and the small/medium/large APs with COCOeval's ignore rules: detections matched to
    a box outside the range and unmatched detections outside it are ignored, and a detection
    takes an out-of-range box only when no box in range qualifies."""
    gts = mixed_sizes_scene(7)
    rng = np.random.default_rng(7)
    dts = []
    for g in gts:
        # A loose or tight copy (IoU spread over 0.5..0.95), sometimes of another class.
        grow = rng.uniform(1.0, 1.6)
        label = g.label if rng.uniform() < 0.8 else LABELS[rng.integers(0, 3)]
        dts.append(Detection(g.image, label, g.box.scaled(grow, grow), float(rng.uniform(0.05, 1))))
        # A small box inside a large one: outside "large", it may only be matched or ignored.
        if g.box.area > 96**2 and rng.uniform() < 0.5:
            x, y = g.box.x_min + 5, g.box.y_min + 5
            dts.append(Detection(g.image, g.label, Box(x, y, x + 25, y + 25), float(rng.uniform(0, 1))))
    for image_id in range(1, 26, 3):  # unmatched detections of every size
        for w in (10, 50, 150):
            x, y = rng.uniform(600, 800, 2)
            dts.append(Detection(image_id, LABELS[rng.integers(0, 3)], Box(x, y, x + w, y + w), float(rng.uniform())))
    # A small box nested in a just-medium one, and a detection closer to the medium one: for
    # "small" it must take the small box (IoU 0.85), not the out-of-range one (IoU 0.97).
    for image_id in (2, 9, 17):
        gts += [
            GroundTruth(image_id, "Shoes", Box(900, 900, 930, 930)),
            GroundTruth(image_id, "Shoes", Box(900, 900, 933, 933)),
        ]
        dts.append(Detection(image_id, "Shoes", Box(900, 900, 932.5, 932.5), 0.7))
    ours = evaluate(gts, dts, LABELS)
    assert not math.isnan(ours.map_small) and 0 < ours.map_75 < ours.map_50
    assert_matches(gts, dts, list(range(1, 26)))


def test_no_small_ground_truth_leaves_small_ap_undefined() -> None:
    gts = [GroundTruth(1, "Jackets", Box(0, 0, 200, 200))]
    dts = [Detection(1, "Jackets", Box(0, 0, 200, 200), 0.9), Detection(1, "Jeans", Box(300, 300, 310, 310), 0.8)]
    ours = evaluate(gts, dts, LABELS)
    assert math.isnan(ours.map_small) and math.isnan(ours.ap_small["Jackets"]) and ours.map_large == pytest.approx(1.0)
    assert_matches(gts, dts, [1])
