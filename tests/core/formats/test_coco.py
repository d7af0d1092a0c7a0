"""COCO: the export read back by pycocotools, the reference COCO reader; a COCO file with its images in a zip."""

from __future__ import annotations

import contextlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from core.boxes import Box
from core.dataset.exporter import export_dataset
from core.dataset.importer import import_annotations
from core.formats.coco import box_from_coco, box_to_coco
from db.engine import session_scope
from db.models import Image, Label
from tests.core.dataset_factory import jpeg_bytes, make_dataset


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


@pytest.mark.both_databases
def test_coco_with_images_in_a_zip(engine, settings, project_id, tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "images.zip", "w") as zf:
        zf.writestr("photos/p1.jpg", jpeg_bytes(50, 40, 41))
    doc = {
        "images": [
            {"id": 1, "file_name": "C:\\\\export\\\\p1.jpg", "width": 50, "height": 40},
            {"id": 2, "file_name": "gone.jpg"},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [5, 5, 60, 10]},
            {"id": 2, "image_id": 1, "category_id": 99, "bbox": [1, 1, 2, 2]},
        ],
        "categories": [{"id": 3, "name": "Shirts"}],
    }
    (tmp_path / "c.json").write_text(json.dumps(doc))
    report = import_annotations(
        engine, settings, project_id, "coco", tmp_path / "c.json", images=tmp_path / "images.zip"
    )
    first, second = report.outcomes
    assert first.outcome == "imported" and first.boxes == 1
    assert "unknown category_id 99" in first.message and "went past the 50x40 image edge" in first.message
    assert second.outcome == "failed" and "image 'gone.jpg' not found" in second.message
