"""Annotation import of third-party files with refused boxes, orphan COCO annotations and label spellings.

A refusal is never turned into data: an image whose boxes were all refused is left to annotate
(status new) with the reason on the image, not marked "no garments".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from core.annotate.state import load_image
from core.dataset.importer import import_annotations
from core.project.projects import create_project
from db.engine import session_scope
from db.models import Image, ImageStatus, Label
from tests.core.dataset_factory import jpeg_bytes, voc_folder, voc_obj, voc_xml

pytestmark = pytest.mark.both_databases  # the SQL of this module runs on SQLite and PostgreSQL


def _project(engine, name: str = "imported", labels=()) -> int:
    with session_scope(engine) as session:
        return create_project(session, name, labels=list(labels)).id


def _images(engine, project_id: int) -> dict[str, tuple[str, list[tuple[str, tuple]], str | None]]:
    """original name -> (status, [(label, box)], import note)."""
    out = {}
    with session_scope(engine) as session:
        for img in session.scalars(select(Image).where(Image.project_id == project_id)):
            boxes = sorted((b.label.name, (b.x_min, b.y_min, b.x_max, b.y_max)) for b in img.boxes)
            out[img.original_name] = (img.status.value, boxes, img.import_note)
    return out


def _generate_tfrecord(path: Path, count: int = 50) -> None:
    """A record file as the TF Object Detection API tutorial's ``generate_tfrecord.py`` writes it.

    One box per image from a CSV row; every other row has its xmin and xmax swapped (a
    labelling tool that let the drag go right to left), so half the boxes have xmax < xmin.
    """
    import tensorflow as tf

    def b(v):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=v))

    def f(v):
        return tf.train.Feature(float_list=tf.train.FloatList(value=v))

    def i(v):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=v))

    width, height = 64, 48
    with tf.io.TFRecordWriter(str(path)) as writer:
        for n in range(count):
            xmin, xmax = (8, 40) if n % 2 == 0 else (40, 8)
            filename = f"photo_{n:02d}.jpg".encode()
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "image/height": i([height]),
                        "image/width": i([width]),
                        "image/filename": b([filename]),
                        "image/source_id": b([filename]),
                        "image/encoded": b([jpeg_bytes(width, height, 500 + n)]),
                        "image/format": b([b"jpeg"]),
                        "image/object/bbox/xmin": f([xmin / width]),
                        "image/object/bbox/xmax": f([xmax / width]),
                        "image/object/bbox/ymin": f([4 / height]),
                        "image/object/bbox/ymax": f([30 / height]),
                        "image/object/class/text": b([b"Shirts"]),
                        "image/object/class/label": i([1]),
                    }
                )
            )
            writer.write(example.SerializeToString())


def test_tfrecord_with_inverted_boxes_leaves_those_images_to_annotate(engine, settings, tmp_path: Path) -> None:
    record = tmp_path / "train.record"
    _generate_tfrecord(record)
    pid = _project(engine)
    report = import_annotations(engine, settings, pid, "tfrecord", record)
    summary = report.summary()
    assert summary["imported"] == 50 and summary["boxes"] == 25 and summary["failed"] == 0
    assert summary["boxes_refused"] == 25
    assert summary["left_to_annotate"] == 25
    assert "25 images had all their boxes refused" in report.refusals_message()
    images = _images(engine, pid)
    assert len(images) == 50
    for n in range(50):
        status, boxes, note = images[f"photo_{n:02d}.jpg"]
        if n % 2 == 0:
            assert (status, len(boxes), note) == ("done", 1, None)
        else:  # never "no objects": that would be ground truth of an empty photo
            assert status == "new" and boxes == []
            assert "box 1 (Shirts) left out: box has zero or negative area" in note
    odd = next(o for o in report.outcomes if o.source == "train.record#2")
    assert odd.outcome == "imported" and odd.boxes == 0 and odd.boxes_refused == 1
    assert "left to annotate" in odd.message
    with session_scope(engine) as session:
        assert session.scalar(select(Image).where(Image.status == ImageStatus.NO_OBJECTS)) is None
        image_id = session.scalar(select(Image.id).where(Image.original_name == "photo_01.jpg"))
        assert "zero or negative area" in load_image(session, image_id).import_note  # what Annotate shows

    # Importing the same file again adds nothing, loses nothing and calls the refused ones duplicates too.
    again = import_annotations(engine, settings, pid, "tfrecord", record)
    assert _images(engine, pid) == images
    assert again.summary()["imported"] == 0 and again.summary()["boxes"] == 0
    assert again.count("duplicate") == 50


def test_voc_refusals_keep_images_to_annotate(engine, settings, tmp_path: Path) -> None:
    root = voc_folder(
        tmp_path,
        {
            "JPEGImages/only_inverted.jpg": jpeg_bytes(64, 48, 1),
            "JPEGImages/partly.jpg": jpeg_bytes(64, 48, 2),
            "JPEGImages/empty.jpg": jpeg_bytes(64, 48, 3),
            "JPEGImages/unreadable.jpg": jpeg_bytes(64, 48, 4),
            "Annotations/only_inverted.xml": voc_xml("only_inverted.jpg", voc_obj("Shirts", 40, 5, 10, 30)),
            # Object 1 has no number (the reader leaves it out), object 2 is fine, object 3 lies outside.
            "Annotations/partly.xml": voc_xml(
                "partly.jpg",
                "<object><name>Jeans</name><bndbox><xmin></xmin></bndbox></object>"
                + voc_obj("Shirts", 2, 2, 20, 20)
                + voc_obj("Shirts", 100, 100, 120, 120),
            ),
            "Annotations/empty.xml": voc_xml("empty.jpg", ""),  # an annotation with no object: no garments
            "Annotations/unreadable.xml": voc_xml(
                "unreadable.jpg", "<object><name>Jeans</name><bndbox><xmin>x</xmin></bndbox></object>"
            ),
        },
    )
    pid = _project(engine, labels=("Shirts", "Jeans"))
    report = import_annotations(engine, settings, pid, "voc", root)
    by = {o.source: o for o in report.outcomes}
    images = _images(engine, pid)

    status, boxes, note = images["only_inverted.jpg"]
    assert (status, boxes) == ("new", [])
    assert "object 1 (Shirts) left out: box has zero or negative area" in note
    assert by["Annotations/only_inverted.xml"].boxes_refused == 1

    # Some kept, some refused: the kept box is stored, the image waits for a look (in progress, not done).
    status, boxes, note = images["partly.jpg"]
    assert status == "in_progress" and [label for label, _b in boxes] == ["Shirts"]
    assert "object 1 (Jeans): <bndbox> lacks a number" in note
    assert "object 3 (Shirts) left out: box lies entirely outside" in note
    assert "2 of 3 boxes" in note
    assert by["Annotations/partly.xml"].boxes_refused == 2 and by["Annotations/partly.xml"].boxes == 1

    assert images["empty.jpg"] == ("no_objects", [], None)  # said so by the file: ground truth
    assert images["unreadable.jpg"][:2] == ("new", [])  # a box the reader could not read is a refusal too
    assert report.summary()["left_to_annotate"] == 2
    assert report.summary()["partly_refused"] == 1

    again = import_annotations(engine, settings, pid, "voc", root)
    assert _images(engine, pid) == images
    assert again.count("duplicate") == 4 and again.summary()["boxes"] == 0


def test_coco_orphan_annotations_reported_by_source_id(engine, settings, tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(jpeg_bytes(50, 40, 61))
    doc = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 50, "height": 40},
            {"id": 2, "file_name": "gone.jpg", "width": 50, "height": 40},
        ],
        "annotations": [
            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [30, 5, -10, 10]},  # negative width: refused
            {"id": 12, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 10]},
            {"id": 13, "image_id": 1, "category_id": 1, "bbox": [5, 5, 0, 10]},  # zero width: refused
            {"id": 20, "image_id": 99, "category_id": 1, "bbox": [1, 1, 5, 5]},  # no image 99
            {"id": 21, "image_id": 99, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 22, "category_id": 1, "bbox": [1, 1, 5, 5]},  # no image_id at all
            {"id": 30, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]},  # its image file is missing
        ],
        "categories": [{"id": 1, "name": "Shirts"}],
    }
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    pid = _project(engine)
    report = import_annotations(engine, settings, pid, "coco", path, images=images)
    messages = "\n".join(f"{o.source} {o.outcome}: {o.message}" for o in report.outcomes)
    a = next(o for o in report.outcomes if o.source == "c.json#1")
    # Numbered by the source's annotation ids, not by the position among the kept boxes.
    assert "annotation 11 (Shirts) left out" in a.message and "annotation 13 (Shirts) left out" in a.message
    assert a.boxes == 1 and a.boxes_refused == 2
    assert "annotations 20, 21" in messages and "image_id 99" in messages
    assert "annotation 22" in messages and "no image_id" in messages
    gone = next(o for o in report.outcomes if o.source == "c.json#2")
    assert gone.outcome == "failed" and "annotation 30" in gone.message
    dropped = [o for o in report.outcomes if o.source not in ("c.json#1", "c.json#2")]
    assert all(o.outcome == "skipped" for o in dropped) and len(dropped) == 2
    assert _images(engine, pid)["a.jpg"][0] == "in_progress"


def test_labels_matched_ignoring_case_and_spaces(engine, settings, tmp_path: Path) -> None:
    root = voc_folder(
        tmp_path,
        {
            "JPEGImages/a.jpg": jpeg_bytes(64, 48, 71),
            "JPEGImages/b.jpg": jpeg_bytes(64, 48, 72),
            "Annotations/a.xml": voc_xml(
                "a.jpg", voc_obj("sunglasses", 2, 2, 20, 20) + voc_obj("  SHIRTS ", 5, 5, 30, 30)
            ),
            "Annotations/b.xml": voc_xml("b.jpg", voc_obj("Ponchos", 2, 2, 20, 20) + voc_obj("ponchos", 5, 5, 30, 30)),
        },
    )
    pid = _project(engine, labels=("Shirts", "Sunglasses"))
    report = import_annotations(engine, settings, pid, "voc", root)
    with session_scope(engine) as session:
        names = sorted(session.scalars(select(Label.name).where(Label.project_id == pid)))
    assert names == ["Ponchos", "Shirts", "Sunglasses"]  # the project's spelling; one new label, not two
    assert _images(engine, pid)["a.jpg"][1] == [
        ("Shirts", (4.0, 4.0, 30.0, 30.0)),
        ("Sunglasses", (1.0, 1.0, 20.0, 20.0)),
    ]
    assert sorted(label for label, _ in _images(engine, pid)["b.jpg"][1]) == ["Ponchos", "Ponchos"]
    assert report.summary()["labels_added"] == ["Ponchos"]
    assert report.summary()["labels_matched"] == {"SHIRTS": "Shirts", "ponchos": "Ponchos", "sunglasses": "Sunglasses"}
    message = report.labels_message()
    assert "'sunglasses' as the project's 'Sunglasses'" in message and "'SHIRTS' as the project's 'Shirts'" in message

    # COCO keeps category names as written: surrounding spaces do not make a new label either.
    (tmp_path / "c" / "images").mkdir(parents=True)
    (tmp_path / "c" / "images" / "c.jpg").write_bytes(jpeg_bytes(64, 48, 73))
    doc = {
        "images": [{"id": 1, "file_name": "c.jpg"}],
        "categories": [{"id": 1, "name": " tshirts  "}],
        "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [1, 1, 9, 9]}],
    }
    (tmp_path / "c" / "c.json").write_text(json.dumps(doc))
    with session_scope(engine) as session:
        session.add(Label(project_id=pid, name="Tshirts", colour="#000000", order=9))
    coco = import_annotations(engine, settings, pid, "coco", tmp_path / "c" / "c.json")
    assert coco.summary()["labels_matched"] == {" tshirts  ": "Tshirts"} and coco.summary()["labels_added"] == []
    assert _images(engine, pid)["c.jpg"][1] == [("Tshirts", (1.0, 1.0, 10.0, 10.0))]

    # Refusing unknown labels uses the same matching: a different spelling is not unknown.
    other = _project(engine, "strict", labels=("Shirts", "Sunglasses"))
    strict = import_annotations(engine, settings, other, "voc", root, add_labels=False)
    by = {o.source: o.outcome for o in strict.outcomes}
    assert by == {"Annotations/a.xml": "imported", "Annotations/b.xml": "skipped"}
