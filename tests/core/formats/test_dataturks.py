"""DataTurks import: names found in a folder (URLs never fetched), normalised corners, bad lines reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from core.dataset.importer import import_annotations
from db.engine import session_scope
from db.models import Image, ImageStatus
from tests.core.dataset_factory import jpeg_bytes

pytestmark = pytest.mark.both_databases  # the SQL of this module runs on SQLite and PostgreSQL


def test_dataturks(engine, settings, project_id, tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    (images / "shirt1.jpg").write_bytes(jpeg_bytes(100, 50, 11))
    (images / "plain.jpg").write_bytes(jpeg_bytes(100, 50, 12))
    lines = [
        {
            "content": "http://com.dataturks.a96-i23.open.s3.amazonaws.com/2c9fafb0/abc___shirt1.jpg",
            "annotation": [
                {
                    "label": ["Shirts"],
                    "points": [{"x": 0.5, "y": 0.8}, {"x": 0.1, "y": 0.2}],
                    "imageWidth": 100,
                    "imageHeight": 50,
                }
            ],
        },
        {"content": "C:\\data\\plain.jpg", "annotation": []},
        {"content": "https://example.com/nowhere.jpg", "annotation": []},
        {"content": "x/plain.jpg", "annotation": [{"label": ["Shirts"], "points": [{"x": 0.1}]}]},
    ]
    f = tmp_path / "dt.json"
    f.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    report = import_annotations(engine, settings, project_id, "dataturks", f, images=images)
    by = {o.source: o for o in report.outcomes}
    assert by["dt.json:1"].outcome == "imported" and by["dt.json:1"].boxes == 1
    assert by["dt.json:2"].outcome == "imported" and by["dt.json:2"].boxes == 0
    assert by["dt.json:3"].outcome == "failed" and "URLs are never downloaded" in by["dt.json:3"].message
    assert by["dt.json:4"].outcome == "duplicate"  # plain.jpg again: already annotated
    assert by["dt.json:5"].outcome == "failed" and by["dt.json:5"].message.startswith("line 5: not JSON")
    with session_scope(engine) as session:
        shirt = session.scalar(select(Image).where(Image.original_name == "shirt1.jpg"))
        (b,) = shirt.boxes
        assert (b.x_min, b.y_min, b.x_max, b.y_max) == pytest.approx((10, 10, 50, 40))
        plain = session.scalar(select(Image).where(Image.original_name == "plain.jpg"))
        assert plain.status is ImageStatus.NO_OBJECTS
