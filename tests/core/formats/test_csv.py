"""CSV export: one row per box in VOC's pixel indices."""

from __future__ import annotations

from pathlib import Path

from core.boxes import Box
from core.dataset.exporter import export_dataset
from db.engine import session_scope
from db.models import Image
from tests.core.dataset_factory import make_dataset


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
        [
            names[i],
            str(sizes[names[i]][0]),
            str(sizes[names[i]][1]),
            label,
            *map(str, box_to_voc(Box(*b), *sizes[names[i]])),
        ]
        for i, (status, boxes) in made.images.items()
        if status.value in ("done", "no_objects")
        for label, b in boxes
    )
    assert sorted(rows) == expected
    assert all((out / "images" / r[0]).is_file() for r in rows)
