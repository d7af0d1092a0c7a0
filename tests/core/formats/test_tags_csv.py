"""Tag exports: tags.csv and the folder-per-class tree, each read back through the labels import."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from core.dataset.exporter import export_dataset
from core.dataset.labels import import_labels, tagged_image_count
from core.project.imagestore import ImageStore
from core.project.ingest import ingest_one
from core.project.projects import create_project
from db.engine import session_scope
from db.models import BoxRow, Image, ImageStatus, Label
from tests.core.dataset_factory import jpeg_bytes

SCHEMA = {"colour": ["red", "blue"], "category": ["Shoes", "Shirt, formal"]}


def _tagged_project(engine, settings) -> int:
    """a: tags only (status new); b: a done image with boxes, no tags; c: nothing; d: machine keys only."""
    with session_scope(engine) as session:
        pid = create_project(session, "tagged", labels=["Shirts", "Jeans"], attribute_schema=SCHEMA).id
        store = ImageStore(settings.data_dir)
        ids = {
            name: ingest_one(session, store, pid, name, jpeg_bytes(60, 40, seed)).image_id
            for seed, name in enumerate(["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"])
        }
        images = {n: session.get(Image, i) for n, i in ids.items()}
        images["a.jpg"].attributes = {"category": "Shoes", "colour": "red"}
        images["e.jpg"].attributes = {"category": "Shirt, formal"}
        images["d.jpg"].attributes = {"auto_main_class": "Jeans", "auto_type": "bottom wear"}
        b = images["b.jpg"]
        b.status = ImageStatus.DONE
        labels = dict(session.execute(select(Label.name, Label.id).where(Label.project_id == pid)).all())
        session.add(BoxRow(image_id=b.id, label_id=labels["Jeans"], x_min=0, y_min=0, x_max=10, y_max=10))
        session.add(BoxRow(image_id=b.id, label_id=labels["Shirts"], x_min=0, y_min=0, x_max=50, y_max=30))
    return pid


def _tags(engine, pid) -> dict[str, dict]:
    with session_scope(engine) as session:
        return {
            i.original_name: dict(i.attributes or {})
            for i in session.scalars(select(Image).where(Image.project_id == pid))
        }


@pytest.mark.both_databases
def test_tags_csv_export_reads_back(engine, settings, tmp_path: Path) -> None:
    pid = _tagged_project(engine, settings)
    with session_scope(engine) as session:
        assert tagged_image_count(session, pid) == 2  # a and e; d's machine keys are no tags
    out = tmp_path / "tags"
    summary = export_dataset(engine, settings, pid, "tags-csv", out)
    assert summary["files"] == ["tags.csv"] and summary["images"] == 2
    with open(out / "tags.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["image", "split", "category", "colour"]
    body = sorted((r[0], r[2], r[3]) for r in rows[1:])
    assert body == [("a.jpg", "Shoes", "red"), ("e.jpg", "Shirt, formal", "")]
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a.jpg", "e.jpg"]
    with session_scope(engine) as session:
        other = create_project(session, "again", labels=(), attribute_schema={}).id
    report = import_labels(engine, settings, other, out / "tags.csv", images=out / "images")
    assert report.count("imported") == 2 and report.count("failed") == 0
    assert _tags(engine, other) == {
        "a.jpg": {"category": "Shoes", "colour": "red"},
        "e.jpg": {"category": "Shirt, formal"},
    }


def test_class_folders_export_reads_back(engine, settings, tmp_path: Path) -> None:
    pid = _tagged_project(engine, settings)
    out = tmp_path / "classes.zip"
    summary = export_dataset(engine, settings, pid, "class-folders", out, archive=True)
    assert summary["files"] == ["left_out.txt"] and summary["images"] == 3
    with zipfile.ZipFile(out) as zf:
        names = sorted(zf.namelist())
        left_out = zf.read("left_out.txt").decode().splitlines()[1:]
    placed = sorted(n.split("/", 1)[1] for n in names if n != "left_out.txt")
    # b has no category tag: its largest box's label places it.
    assert placed == ["Shirt, formal/e.jpg", "Shirts/b.jpg", "Shoes/a.jpg"]
    assert sorted(left_out) == ["c.jpg", "d.jpg"]
    with session_scope(engine) as session:
        other = create_project(session, "again", labels=(), attribute_schema={}).id
    report = import_labels(engine, settings, other, out)
    assert report.count("imported") == 3
    assert report.count("skipped") == 1  # left_out.txt is not an image
    assert _tags(engine, other) == {
        "a.jpg": {"category": "Shoes"},
        "b.jpg": {"category": "Shirts"},
        "e.jpg": {"category": "Shirt, formal"},
    }


def test_box_formats_still_export_ground_truth_only(engine, settings, tmp_path: Path) -> None:
    pid = _tagged_project(engine, settings)
    summary = export_dataset(engine, settings, pid, "csv", tmp_path / "csv")
    assert summary["images"] == 1  # b, the one done image; tagged-only images are not box ground truth


CLASSES = ("Hat", "Shoes", "Dress", "Polo")


def test_a_classification_project_is_split_per_category(engine, settings, tmp_path: Path) -> None:
    with session_scope(engine) as session:
        pid = create_project(session, "classes", labels=(), attribute_schema={"category": list(CLASSES)}).id
        store = ImageStore(settings.data_dir)
        for n in range(40):
            image_id = ingest_one(session, store, pid, f"{n}.jpg", jpeg_bytes(30, 20, 100 + n)).image_id
            session.get(Image, image_id).attributes = {"category": CLASSES[n // 10]}
    export_dataset(engine, settings, pid, "tags-csv", tmp_path / "out", fractions=(0.8, 0.1, 0.1))
    with open(tmp_path / "out" / "tags.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    per = {(r["category"], r["split"]) for r in rows}
    counts = {key: sum(1 for r in rows if (r["category"], r["split"]) == key) for key in per}
    # Each class 8/1/1; placed as one group of 40 (before), the classes came out uneven.
    assert counts == {(c, s): n for c in CLASSES for s, n in (("train", 8), ("val", 1), ("test", 1))}
