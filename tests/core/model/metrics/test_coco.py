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
    """AP and AP50 overall and per class from pycocotools."""
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
    out = {"map_50_95": ev.stats[0], "map_50": ev.stats[1]}
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    for name, cid in cat_ids.items():
        k = ev.params.catIds.index(cid)
        p_all = precision[:, :, k, 0, 2]
        out[f"ap_50_95/{name}"] = float(np.mean(p_all[p_all > -1])) if (p_all > -1).any() else float("nan")
        p50 = precision[0, :, k, 0, 2]
        out[f"ap_50/{name}"] = float(np.mean(p50[p50 > -1])) if (p50 > -1).any() else float("nan")
    return out


def assert_matches(gts: list[GroundTruth], dts: list[Detection], image_ids: list[int]) -> None:
    ours = evaluate(gts, dts, LABELS)
    ref = coco_reference(gts, dts, image_ids)
    assert ours.map_50 == pytest.approx(ref["map_50"], abs=1e-3)
    assert ours.map_50_95 == pytest.approx(ref["map_50_95"], abs=1e-3)
    for name in LABELS:
        for key, value in ((f"ap_50/{name}", ours.ap_50[name]), (f"ap_50_95/{name}", ours.ap_50_95[name])):
            if math.isnan(ref[key]):
                assert math.isnan(value), key
            else:
                assert value == pytest.approx(ref[key], abs=1e-3), key


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
