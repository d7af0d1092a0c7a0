"""Pascal VOC: the writer's layout, an independent reader (supervision), and hostile or quirky XML."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from defusedxml.ElementTree import fromstring
from sqlalchemy import select

from core.boxes import Box
from core.dataset.exporter import export_dataset
from core.dataset.importer import import_annotations
from core.formats.voc import VocError, VocObject, box_from_voc, box_to_voc, format_voc_xml, parse_voc_xml
from db.engine import session_scope
from db.models import Image, ImageStatus, Label
from tests.core.dataset_factory import jpeg_bytes, make_dataset, voc_folder, voc_obj, voc_xml


def test_voc_coordinates_are_one_based_inclusive() -> None:
    assert box_to_voc(Box(0, 0, 64, 48), 64, 48) == (1, 1, 64, 48)
    assert box_to_voc(Box(10.4, 5.6, 20.5, 30.49), 64, 48) == (11, 7, 21, 30)
    assert box_from_voc(1, 1, 64, 48) == Box(0, 0, 64, 48)
    assert box_to_voc(Box(-3, -3, 99, 99), 64, 48) == (1, 1, 64, 48)  # kept inside
    assert box_to_voc(Box(5.2, 5.2, 5.3, 5.3), 64, 48) == (6, 6, 6, 6)  # never inverted


def test_layout_is_labelimg() -> None:
    xml = format_voc_xml("a.jpg", 64, 48, [VocObject(Box(0, 0, 10, 10), "Shirts")], {"sleeve_length": "half"})
    root = fromstring(xml)
    assert [c.tag for c in root] == [
        "folder",
        "filename",
        "path",
        "source",
        "size",
        "segmented",
        "attributes",
        "object",
    ]
    assert [c.tag for c in root.find("size")] == ["width", "height", "depth"]
    obj = root.find("object")
    assert [c.tag for c in obj] == ["name", "pose", "truncated", "difficult", "bndbox"]
    assert [c.tag for c in obj.find("bndbox")] == ["xmin", "ymin", "xmax", "ymax"]
    assert root.find("size/depth").text == "3" and root.find("segmented").text == "0"
    back = parse_voc_xml(xml.encode())
    assert back.attributes == {"sleeve_length": "half"} and back.objects[0].box == Box(0, 0, 10, 10)


@pytest.mark.parametrize("archive", [False, True])
def test_voc_export_read_by_supervision(engine, settings, project_id, tmp_path: Path, archive: bool) -> None:
    import supervision as sv

    made = make_dataset(engine, settings, project_id, n=14)
    target = tmp_path / ("voc.zip" if archive else "voc")
    summary = export_dataset(engine, settings, project_id, "voc", target, archive=archive)
    root = target
    if archive:
        root = tmp_path / "unzipped"
        with zipfile.ZipFile(target) as zf:
            zf.extractall(root)
    with session_scope(engine) as session:
        label_names = [lab.name for lab in session.query(Label).filter_by(project_id=project_id).order_by(Label.order)]
        rows = {i.original_name: (i.id, i.split.value if i.split else None) for i in session.query(Image)}
    assert (root / "labels.txt").read_text().splitlines() == label_names
    listed = {s: (root / "ImageSets" / "Main" / f"{s}.txt").read_text().split() for s in ("train", "val", "test")}
    assert sum(len(v) for v in listed.values()) == summary["images"]

    ds = sv.DetectionDataset.from_pascal_voc(
        images_directory_path=str(root / "JPEGImages"), annotations_directory_path=str(root / "Annotations")
    )
    ground_truth = {i for i, (s, _b) in made.images.items() if s in (ImageStatus.DONE, ImageStatus.NO_OBJECTS)}
    assert len(ds) == len(ground_truth)
    checked = 0
    for path, _image, det in ds:
        name = Path(path).name
        image_id, split = rows[name]
        assert Path(name).stem in listed[split]
        _status, boxes = made.images[image_id]
        assert len(det) == len(boxes)
        for k, (label, b) in enumerate(boxes):
            assert ds.classes[det.class_id[k]] == label
            assert det.xyxy[k].tolist() == pytest.approx(list(b), abs=1.0)  # within 1 px
            checked += 1
    assert checked > 10


HOSTILE_BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<annotation><filename>&lol3;</filename></annotation>"""
HOSTILE_EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>&xxe;</filename></annotation>"""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (HOSTILE_BILLION_LAUGHS, "refused: the XML declares entities"),
        (HOSTILE_EXTERNAL, "refused: the XML declares entities"),
        (b"<annotation><filename>a.jpg</filename>", "malformed XML"),
        (b"<html><body/></html>", "not a Pascal VOC file"),
        (b"<annotation><size><width>3</width></size></annotation>", "neither <filename> nor <path>"),
        (b"<annotation>" + b" " * (6 * 1024 * 1024) + b"</annotation>", "too large"),
    ],
)
def test_hostile_and_malformed_xml_refused(data: bytes, message: str) -> None:
    with pytest.raises(VocError, match=message):
        parse_voc_xml(data, "x.xml")


def test_quirks_read() -> None:
    xml = b"""<annotation>
      <object><bndbox><ymax>40.7</ymax><xmin>10.2</xmin><ymin>5</ymin><xmax>30</xmax></bndbox>
        <difficult>Unspecified</difficult><name> Shirts </name></object>
      <path>C:\\Users\\anna\\Pictures\\shot 1.jpg</path>
      <size><width>Unspecified</width><height></height><depth/></size>
      <filename>C:\\Users\\anna\\Pictures\\shot 1.jpg</filename>
      <object><name>Jeans</name><bndbox><xmin></xmin><ymin>1</ymin><xmax>2</xmax><ymax>3</ymax></bndbox></object>
    </annotation>"""
    ann = parse_voc_xml(xml)
    assert ann.filename == "shot 1.jpg"
    assert ann.width is None and ann.height is None
    assert "no usable <size>: read from the image" in ann.notes
    assert "object 2 (Jeans): <bndbox> lacks a number; left out" in ann.left_out
    assert [(o.name, o.box, o.difficult) for o in ann.objects] == [("Shirts", Box(9.2, 4.0, 30.0, 40.7), 0)]
    posix = parse_voc_xml(b"<annotation><path>/home/u/data/x.png</path><filename></filename></annotation>")
    assert posix.filename == "x.png"


@pytest.mark.both_databases
def test_voc_quirks_each_reported(engine, settings, project_id, tmp_path: Path) -> None:
    root = voc_folder(
        tmp_path,
        {
            "JPEGImages/a.jpg": jpeg_bytes(64, 48, 1),
            "JPEGImages/b.jpg": jpeg_bytes(64, 48, 2),
            "JPEGImages/c.jpg": jpeg_bytes(64, 48, 3),
            "JPEGImages/d.jpg": jpeg_bytes(64, 48, 4),
            "JPEGImages/e.jpg": jpeg_bytes(64, 48, 5),
            # Windows absolute path, float coordinates, shuffled bndbox children.
            "Annotations/a.xml": voc_xml(
                "C:\\Users\\anna\\Desktop\\a.jpg",
                "<object><bndbox><ymax>40.6</ymax><xmax>30.2</xmax><ymin>5.5</ymin><xmin>10.4</xmin></bndbox><name>Shirts</name></object>",
            ),
            # POSIX absolute path only in <path>, no size at all, a box past the edge.
            "Annotations/b.xml": b"<annotation><path>/home/u/b.jpg</path><filename></filename>"
            + voc_obj("Jeans", 50, 40, 90, 60).encode()
            + b"</annotation>",
            # Unspecified size values; an unknown label; an empty box.
            "Annotations/c.xml": voc_xml(
                "c.jpg",
                voc_obj("Ponchos", 1, 1, 10, 10) + voc_obj("Shirts", 30, 20, 10, 30),
                size="<size><width>Unspecified</width><height></height></size>",
            ),
            # Billion laughs.
            "Annotations/d.xml": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><annotation><filename>&b;</filename></annotation>',
            # Malformed.
            "Annotations/e.xml": b"<annotation><filename>e.jpg</filename><object>",
            # Points at an image that is not there.
            "Annotations/f.xml": voc_xml("missing.jpg", voc_obj("Shirts", 1, 1, 5, 5)),
        },
    )
    report = import_annotations(engine, settings, project_id, "voc", root)
    by = {o.source: o for o in report.outcomes}
    assert by["Annotations/a.xml"].outcome == "imported" and by["Annotations/a.xml"].boxes == 1
    assert "went past" not in by["Annotations/a.xml"].message
    assert by["Annotations/b.xml"].outcome == "imported"
    assert "no usable <size>: read from the image" in by["Annotations/b.xml"].message
    assert "object 1 (Jeans) went past the 64x48 image edge and was clipped" in by["Annotations/b.xml"].message
    assert "label 'Ponchos' added to the project" in by["Annotations/c.xml"].message
    assert "object 2 (Shirts) left out: box has zero or negative area" in by["Annotations/c.xml"].message
    assert by["Annotations/d.xml"].outcome == "failed"
    assert "refused: the XML declares entities" in by["Annotations/d.xml"].message
    assert by["Annotations/e.xml"].outcome == "failed" and "malformed XML" in by["Annotations/e.xml"].message
    assert (
        by["Annotations/f.xml"].outcome == "failed"
        and "image 'missing.jpg' not found" in by["Annotations/f.xml"].message
    )
    assert report.summary()["labels_added"] == ["Ponchos"]
    with session_scope(engine) as session:
        a = session.scalar(select(Image).where(Image.original_name == "a.jpg"))
        (box,) = a.boxes
        assert (box.x_min, box.y_min, box.x_max, box.y_max) == pytest.approx((9.4, 4.5, 30.2, 40.6))
        assert a.status is ImageStatus.DONE
        b = session.scalar(select(Image).where(Image.original_name == "b.jpg"))
        assert [(x.x_min, x.y_min, x.x_max, x.y_max) for x in b.boxes] == [(49, 39, 64, 48)]


@pytest.mark.both_databases
def test_voc_zip_with_hostile_entries(engine, settings, project_id, tmp_path: Path) -> None:
    path = tmp_path / "in.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ds/JPEGImages/a.jpg", jpeg_bytes(64, 48, 7))
        zf.writestr("ds/Annotations/a.xml", voc_xml("a.jpg", voc_obj("Shirts", 2, 2, 20, 20)))
        zf.writestr("../evil.xml", voc_xml("a.jpg", ""))
        zf.writestr("ds/Annotations/corrupt.xml", voc_xml("bad.jpg", voc_obj("Shirts", 2, 2, 20, 20)))
        zf.writestr("ds/JPEGImages/bad.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    report = import_annotations(engine, settings, project_id, "voc", path)
    by = {o.source: o for o in report.outcomes}
    assert by["../evil.xml"].outcome == "failed" and "leaves the archive" in by["../evil.xml"].message
    assert by["ds/Annotations/a.xml"].outcome == "imported"
    assert by["ds/Annotations/corrupt.xml"].outcome == "failed"
    assert (
        "not an image" in by["ds/Annotations/corrupt.xml"].message
        or "corrupt" in by["ds/Annotations/corrupt.xml"].message
    )
