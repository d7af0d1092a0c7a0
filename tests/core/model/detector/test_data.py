"""Input pipeline: real TFRecords from our export, letterbox and augmentation keep boxes on their objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select

from core.dataset.exporter import export_dataset
from core.model.detector.data import (
    Augment,
    detection_batches,
    eval_batches,
    letterbox_numpy,
    memory_dataset,
    read_class_names,
    tfrecord_dataset,
    tfrecord_files,
)
from core.project.projects import create_project
from core.settings import Settings
from db.engine import session_scope
from db.models import BoxRow, Image
from tests.core.model.detector.scenes import CLASSES, store_scenes


def _white_box_scenes(n: int, seed: int = 0) -> tuple[list, list, list]:
    rng = np.random.default_rng(seed)
    images, boxes, labels = [], [], []
    for _ in range(n):
        h, w = int(rng.integers(120, 260)), int(rng.integers(120, 260))
        img = np.zeros((h, w, 3), np.uint8)
        x0, y0 = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
        x1, y1 = x0 + int(rng.integers(24, w // 2)), y0 + int(rng.integers(24, h // 2))
        img[y0:y1, x0:x1] = 255
        images.append(img)
        boxes.append(np.array([[x0, y0, x1, y1]], np.float32))
        labels.append(np.array([0]))
    return images, boxes, labels


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.parametrize("training", [False, True])
def test_boxes_stay_on_their_objects_through_letterbox_and_augmentation(training: bool) -> None:
    ds = detection_batches(
        memory_dataset(*_white_box_scenes(16)),
        96,
        128,
        4,
        training=training,
        seed=3,
        augment=Augment(colour=0.0),  # colour jitter would blur the white/black threshold
    )
    edges, ious = [], []
    for x, y in ds.as_numpy_iterator():
        assert x.shape == (4, 96, 128, 3)
        for img, boxes, labels in zip(x, y["boxes"], y["labels"], strict=True):
            if labels[0] < 0:  # zoomed/shifted out of frame: marked as padding
                continue
            ys, xs = np.nonzero(img[..., 0] > 128)
            truth = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)
            edges.append(float(np.abs(truth - boxes[0]).max()))
            if min(truth[2] - truth[0], truth[3] - truth[1]) >= 8:
                ious.append(_iou(truth, boxes[0]))
    # Every edge within a pixel and a half of its object (0.56-0.84 px at worst under eight global
    # seeds). An IoU bound alone failed on a sliver a shift leaves at the border: 2 px wide, its
    # box 0.3 px off, IoU 0.79; which batches arrive depends on the process's global seed.
    assert len(edges) >= 12 and max(edges) <= 1.5, edges
    assert ious and min(ious) > 0.85, ious


def test_letterbox_keeps_aspect_and_pads_bottom_right() -> None:
    img = np.full((100, 300, 3), 200, np.uint8)
    out, scale = letterbox_numpy(img, 96, 128)
    assert scale == pytest.approx(128 / 300)
    assert out.shape == (96, 128, 3)
    assert out[:42, :, 0].min() > 150 and out[44:, :, 0].max() == 0  # 100 * 0.4267 = 42.7 rows of image


def test_pipeline_reads_the_exported_tfrecords_in_original_pixels(
    engine: Engine, settings: Settings, tmp_path: Path
) -> None:
    with session_scope(engine) as session:
        pid = create_project(session, "Scenes", labels=list(CLASSES)).id
    store_scenes(engine, settings, pid, n=12)
    out = tmp_path / "export"
    export_dataset(engine, settings, pid, "tfrecord", out)
    assert read_class_names(out / "label_map.pbtxt") == list(CLASSES)
    with session_scope(engine) as session:
        expected = {
            str(img.id): sorted(
                (b.label_id, round(b.x_min, 1), round(b.y_max, 1))
                for b in session.scalars(select(BoxRow).where(BoxRow.image_id == img.id))
            )
            for img in session.scalars(select(Image).where(Image.project_id == pid))
        }
        label_index = {lab_id: i for i, lab_id in enumerate(sorted({b[0] for v in expected.values() for b in v}))}
    seen = 0
    for split in ("train", "val", "test"):
        files = tfrecord_files(out, split)
        if not files:
            continue
        for batch in eval_batches(tfrecord_dataset(files), 96, 128, 5).as_numpy_iterator():
            for sid, boxes, labels, size in zip(
                batch["source_id"], batch["boxes"], batch["labels"], batch["size"], strict=True
            ):
                assert tuple(size) == (120.0, 160.0)  # original height, width
                got = sorted(
                    (int(lab), round(float(b[0]), 1), round(float(b[3]), 1))
                    for b, lab in zip(boxes, labels, strict=True)
                    if lab >= 0
                )
                want = sorted((label_index[lid], x0, y1) for lid, x0, y1 in expected[sid.decode()])
                assert [g[0] for g in got] == [w[0] for w in want]
                np.testing.assert_allclose([g[1:] for g in got], [w[1:] for w in want], atol=0.15)
                seen += 1
    assert seen == 12
