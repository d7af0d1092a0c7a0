"""A fresh install's first exports from the Export page: every format, TFRecord first, each a dataset.

The module has its own app server, so the data folder is new: no ``exports/`` folder yet,
which is what made the first TFRecord export fail while VOC, COCO and CSV created it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.e2e.conftest import AppServer, screenshot, wait_for_app

pytestmark = pytest.mark.e2e

DEMO_IMAGES = 200  # ground-truth images of the demo project the first start creates
SPLITS = ("train", "val", "test")
# The order matters: TFRecord first, before any other format has made the exports folder.
FORMATS = {
    "tfrecord": "TFRecord (TensorFlow Object Detection API)",
    "voc": "Pascal VOC (LabelImg layout",
    "coco": "COCO JSON",
    "csv": "CSV, one row per box",
}


def _contents(fmt: str, zf: zipfile.ZipFile, tmp_path: Path) -> tuple[int | None, int]:
    """Images and boxes of the exported dataset, read the way its users read it (CSV: boxes only)."""
    names = zf.namelist()
    if fmt == "tfrecord":
        from core.formats.tfrecord.parse import parse_example
        from core.formats.tfrecord.records import iter_records

        assert "label_map.pbtxt" in names
        examples = []
        for name in (n for n in names if ".record-" in n):
            zf.extract(name, tmp_path)
            examples += [parse_example(r) for r in iter_records(str(tmp_path / name))]
        assert all(e["width"] > 1 and e["encoded"] for e in examples)
        return len(examples), sum(len(e["boxes"]) for e in examples)
    if fmt == "voc":
        assert "labels.txt" in names and "ImageSets/Main/test.txt" in names
        assert sum(n.startswith("JPEGImages/") for n in names) == DEMO_IMAGES
        xmls = [zf.read(n).decode() for n in names if n.startswith("Annotations/")]
        return len(xmls), sum(x.count("<object>") for x in xmls)
    if fmt == "coco":
        files = [json.loads(zf.read(f"annotations/instances_{s}.json")) for s in SPLITS]
        return sum(len(f["images"]) for f in files), sum(len(f["annotations"]) for f in files)
    rows = [line for s in SPLITS for line in zf.read(f"{s}_labels.csv").decode().splitlines()[1:] if line]
    return None, len(rows)  # one row per box; an image without boxes has none


def test_each_format_exports_on_a_fresh_install(app_server: AppServer, page, tmp_path: Path) -> None:
    page.goto(f"{app_server.url}/export")
    wait_for_app(page, timeout=180_000)
    page.get_by_text("ground-truth images").first.wait_for()
    assert not (app_server.data_dir / "exports").exists(), "not a fresh install: the exports folder is there"
    for fmt, label in FORMATS.items():
        page.get_by_text(label).click()
        page.get_by_role("button", name="Export", exact=True).click()
        done = page.get_by_text(f"boxes as {fmt} (")
        failed = page.get_by_text("The export failed")
        done.or_(failed).first.wait_for(timeout=180_000)
        assert not failed.count(), f"{fmt}: {failed.first.inner_text()}"
        message = done.inner_text()
        assert message.startswith(f"Exported {DEMO_IMAGES} images and "), message
        boxes = int(message.split(" and ")[1].split()[0])
        screenshot(page, f"export-fresh-{fmt}")
        wait_for_app(page)  # the page reran once when the job ended: use the settled page's button
        # The link is served from disk by the server's file route (ui/file_route.py).
        href = page.get_by_role("link", name="Download the export").get_attribute("href")
        response = page.request.get(app_server.url + href)
        assert response.ok and "attachment" in response.headers["content-disposition"], fmt
        path = tmp_path / f"{fmt}.zip"
        path.write_bytes(response.body())
        with zipfile.ZipFile(path) as zf:
            assert zf.testzip() is None
            images, boxes_in_file = _contents(fmt, zf, tmp_path / fmt)
        assert images in (DEMO_IMAGES, None) and boxes_in_file == boxes > 0, (fmt, images, boxes_in_file, boxes)
    exports = sorted(p.name for p in (app_server.data_dir / "exports").iterdir())
    assert len(exports) == len(FORMATS) and all(name.endswith(".zip") for name in exports), exports
