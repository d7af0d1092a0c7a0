"""COCO export read back by pycocotools, the reference COCO reader."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from core.boxes import Box
from core.dataset.exporter import export_dataset
from core.formats.coco import box_from_coco, box_to_coco
from db.engine import session_scope
from db.models import Image, Label
from tests.core.dataset_factory import make_dataset


def test_xywh_conversion() -> None:
    assert box_to_coco(Box(10, 20, 40, 80)) == [10, 20, 30, 60]
    assert box_from_coco([10, 20, 30, 60]) == Box(10, 20, 40, 80)
    with pytest.raises(ValueError, match="four numbers"):
        box_from_coco([1, 2, 3])


def test_coco_export_read_by_pycocotools(engine, settings, project_id, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    made = make_dataset(engine, settings, project_id, n=12)
    out = tmp_path / "coco"
    summary = export_dataset(engine, settings, project_id, "coco", out)
    with session_scope(engine) as session:
        labels = [lab.name for lab in session.query(Label).filter_by(project_id=project_id).order_by(Label.order)]
        rows = {i.id: (i.split.value if i.split else None, i.attributes) for i in session.query(Image)}
    seen = 0
    for split in ("train", "val", "test"):
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(out / "annotations" / f"instances_{split}.json"))
        assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == labels
        for image_id in coco.getImgIds():
            info = coco.loadImgs(image_id)[0]
            assert rows[image_id][0] == split == info["split"]
            assert info["attributes"] == rows[image_id][1]
            assert (out / "images" / info["file_name"]).is_file()
            anns = coco.loadAnns(coco.getAnnIds(imgIds=image_id))
            _status, boxes = made.images[image_id]
            assert len(anns) == len(boxes)
            for ann, (label, b) in zip(anns, boxes, strict=True):
                assert coco.loadCats(ann["category_id"])[0]["name"] == label
                assert box_from_coco(ann["bbox"]) == Box(*b)
                assert ann["area"] == pytest.approx(Box(*b).area)
            seen += 1
    assert seen == summary["images"]


def test_csv_export_rows(engine, settings, project_id, tmp_path: Path) -> None:
    import csv

    from core.formats.csv_boxes import CSV_HEADER
    from core.formats.voc import box_to_voc

    made = make_dataset(engine, settings, project_id, n=8)
    out = tmp_path / "csv"
    export_dataset(engine, settings, project_id, "csv", out)
    rows = []
    for split in ("train", "val", "test"):
        with open(out / f"{split}_labels.csv", newline="") as fh:
            reader = csv.reader(fh)
            assert tuple(next(reader)) == CSV_HEADER
            rows.extend(reader)
    with session_scope(engine) as session:
        sizes = {i.original_name: (i.width, i.height) for i in session.query(Image)}
        names = {i.id: i.original_name for i in session.query(Image)}
    expected = sorted(
        [names[i], str(sizes[names[i]][0]), str(sizes[names[i]][1]), label,
         *map(str, box_to_voc(Box(*b), *sizes[names[i]]))]
        for i, (status, boxes) in made.images.items() if status.value in ("done", "no_objects")
        for label, b in boxes
    )  # fmt: skip
    assert sorted(rows) == expected
    assert all((out / "images" / r[0]).is_file() for r in rows)
