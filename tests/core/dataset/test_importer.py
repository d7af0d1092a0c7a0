"""Annotation import: export -> import round trips, idempotency, quirky and hostile inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from core.dataset.exporter import export_dataset
from core.dataset.importer import AnnotationImportError, import_annotations
from core.project.projects import create_project
from db.engine import session_scope
from db.models import BoxRow, Image, ImageStatus, Label
from tests.core.dataset_factory import jpeg_bytes, make_dataset, voc_folder, voc_obj, voc_xml

pytestmark = pytest.mark.both_databases  # the SQL of this module runs on SQLite and PostgreSQL

ROOT = Path(__file__).resolve().parents[3]


def _new_project(engine, name: str, labels=("Shirts",)) -> int:
    with session_scope(engine) as session:
        return create_project(session, name, labels=list(labels)).id


def _content(engine, project_id: int) -> dict[str, tuple]:
    """sha256 -> (status, split-free sorted boxes with label names, attributes)."""
    out = {}
    with session_scope(engine) as session:
        for img in session.scalars(select(Image).where(Image.project_id == project_id)):
            boxes = sorted(
                (lab, round(b.x_min, 6), round(b.y_min, 6), round(b.x_max, 6), round(b.y_max, 6))
                for b, lab in session.execute(
                    select(BoxRow, Label.name).join(Label, Label.id == BoxRow.label_id).where(BoxRow.image_id == img.id)
                )
            )
            # "done with no boxes" and "no objects" are the same ground truth; formats carry only the boxes.
            status = "no_objects" if img.status is ImageStatus.DONE and not boxes else img.status.value
            out[img.sha256] = (status, boxes, dict(img.attributes or {}))
    return out


def _ground_truth(engine, project_id: int) -> dict[str, tuple]:
    return {k: v for k, v in _content(engine, project_id).items() if v[0] in ("done", "no_objects")}


def _close(a: dict[str, tuple], b: dict[str, tuple], tol: float) -> None:
    assert a.keys() == b.keys()
    for key in a:
        sa, ba, aa = a[key]
        sb, bb, ab = b[key]
        assert sa == sb and aa == ab, key
        assert len(ba) == len(bb)
        for x, y in zip(ba, bb, strict=True):
            assert x[0] == y[0]
            assert x[1:] == pytest.approx(y[1:], abs=tol)


@pytest.mark.parametrize(
    ("fmt", "tol", "archive"),
    [("voc", 0.5, False), ("voc", 0.5, True), ("tfrecord", 1e-3, False), ("coco", 1e-9, False)],
)
def test_export_then_import_is_lossless(
    engine, settings, project_id, tmp_path: Path, fmt: str, tol: float, archive: bool
) -> None:
    make_dataset(engine, settings, project_id, n=12)
    out = tmp_path / ("export.zip" if archive else "export")
    export_dataset(engine, settings, project_id, fmt, out, archive=archive)
    target = _new_project(engine, f"copy {fmt}", labels=())
    if fmt == "coco":
        for split in ("train", "val", "test"):
            import_annotations(engine, settings, target, "coco", out / "annotations" / f"instances_{split}.json")
    else:
        report = import_annotations(engine, settings, target, fmt, out)
        assert report.count("failed") == 0, report.as_dict()
    # VOC keeps integer pixels: lossless up to the half pixel of rounding; TFRecord keeps float32.
    _close(_ground_truth(engine, project_id), _content(engine, target), tol)
    with session_scope(engine) as session:
        src = [
            lab.name
            for lab in session.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.order))
        ]
        got = {lab.name for lab in session.scalars(select(Label).where(Label.project_id == target))}
    assert got <= set(src)


@pytest.mark.parametrize("fmt", ["voc", "tfrecord"])
def test_import_twice_adds_nothing(engine, settings, project_id, tmp_path: Path, fmt: str) -> None:
    make_dataset(engine, settings, project_id, n=8)
    export_dataset(engine, settings, project_id, fmt, tmp_path / "e")
    target = _new_project(engine, "twice", labels=())
    first = import_annotations(engine, settings, target, fmt, tmp_path / "e")
    before = _content(engine, target)
    second = import_annotations(engine, settings, target, fmt, tmp_path / "e")
    assert _content(engine, target) == before
    assert second.summary()["imported"] == 0 and second.summary()["boxes"] == 0
    assert second.count("duplicate") == first.count("imported")
    assert "its boxes are left as they are" in second.outcomes[0].message


def test_unknown_labels_refused_by_option(engine, settings, project_id, tmp_path: Path) -> None:
    root = voc_folder(
        tmp_path,
        {
            "JPEGImages/a.jpg": jpeg_bytes(64, 48, 1),
            "JPEGImages/b.jpg": jpeg_bytes(64, 48, 2),
            "Annotations/a.xml": voc_xml("a.jpg", voc_obj("Ponchos", 1, 1, 10, 10) + voc_obj("Capes", 1, 1, 10, 10)),
            "Annotations/b.xml": voc_xml("b.jpg", voc_obj("Shirts", 1, 1, 10, 10)),
        },
    )
    report = import_annotations(engine, settings, project_id, "voc", root, add_labels=False)
    by = {o.source: o for o in report.outcomes}
    assert by["Annotations/a.xml"].outcome == "skipped"
    assert by["Annotations/a.xml"].message.startswith("labels not in the project: Capes, Ponchos")
    assert by["Annotations/b.xml"].outcome == "imported"
    with session_scope(engine) as session:
        assert session.scalar(select(Image).where(Image.original_name == "a.jpg")) is None  # nothing half-stored
        assert session.scalar(select(Label).where(Label.name == "Ponchos")) is None


def test_tfrecord_bad_records_reported(engine, settings, project_id, tmp_path: Path) -> None:
    import tensorflow as tf

    from core.boxes import Box as CBox
    from core.formats.tfrecord.wire import ExampleObject
    from tests.core.formats.tfrecord_oracle import build_example, example_image

    path = tmp_path / "in.record"
    ok, ok2 = jpeg_bytes(40, 40, 21), jpeg_bytes(40, 40, 22)
    with tf.io.TFRecordWriter(str(path)) as w:
        objs = [ExampleObject(CBox(4, 4, 20, 20), "Shirts", 3)]
        w.write(build_example(ok, example_image(ok, 40, 40, "ok.jpg", "1", objs)).SerializeToString())
        w.write(b"garbage that is not an Example")
        w.write(build_example(ok2, example_image(ok2, 40, 40, "ok2.jpg", "2")).SerializeToString())
    report = import_annotations(engine, settings, project_id, "tfrecord", path)
    outcomes = [(o.source, o.outcome) for o in report.outcomes]
    assert outcomes == [("in.record#1", "imported"), ("in.record#2", "failed"), ("in.record#3", "imported")]
    assert "not an OD API example" in report.outcomes[1].message
    # A truncated file: what can be read imports, the rest is reported.
    data = path.read_bytes()
    cut = tmp_path / "cut" / "cut.record"
    cut.parent.mkdir()
    cut.write_bytes(data[: len(data) - 10])
    other = _new_project(engine, "cut")
    rep2 = import_annotations(engine, settings, other, "tfrecord", cut.parent)
    assert rep2.outcomes[0].outcome == "imported"
    assert rep2.outcomes[-1].outcome == "failed" and "corrupt TFRecord" in rep2.outcomes[-1].message


def test_inputs_refused_as_a_whole(engine, settings, project_id, tmp_path: Path) -> None:
    with pytest.raises(AnnotationImportError, match="does not exist"):
        import_annotations(engine, settings, project_id, "voc", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnnotationImportError, match="no .xml annotation files"):
        import_annotations(engine, settings, project_id, "voc", tmp_path / "empty")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(AnnotationImportError, match="not readable JSON"):
        import_annotations(engine, settings, project_id, "coco", tmp_path / "x.json")
    with pytest.raises(AnnotationImportError, match="Unknown import format"):
        import_annotations(engine, settings, project_id, "labelme", tmp_path / "x.json")


def test_cli_import(engine, settings, project_id, tmp_path: Path) -> None:
    make_dataset(engine, settings, project_id, n=6)
    export_dataset(engine, settings, project_id, "voc", tmp_path / "e")
    target = _new_project(engine, "cli target")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "import",
            "voc",
            str(tmp_path / "e"),
            "--db",
            settings.db_url,
            "--data-dir",
            str(settings.data_dir),
            "--project",
            "cli target",
            "--refuse-unknown-labels",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["imported"] + summary["skipped"] == 4
    if summary["skipped"]:
        assert "labels not in the project" in proc.stderr
    with session_scope(engine) as session:  # into the project named on the command line
        landed = session.scalars(select(Image).where(Image.project_id == target)).all()
    assert len(landed) == summary["imported"]


def test_tfrecord_with_numeric_labels_needs_the_label_map(engine, settings, project_id, tmp_path: Path) -> None:
    import tensorflow as tf

    from core.boxes import Box as CBox
    from core.formats.label_map import write_label_map
    from core.formats.tfrecord.wire import ExampleObject
    from tests.core.formats.tfrecord_oracle import build_example, example_image

    data = jpeg_bytes(40, 40, 31)
    objs = [ExampleObject(CBox(4, 4, 20, 20), "x", 2)]
    example = build_example(data, example_image(data, 40, 40, "n.jpg", "7", objs))
    del example.features.feature["image/object/class/text"]  # other pipelines may write ids only
    folder = tmp_path / "recs"
    folder.mkdir()
    with tf.io.TFRecordWriter(str(folder / "train.record-00000-of-00001")) as w:
        w.write(example.SerializeToString())
    report = import_annotations(engine, settings, project_id, "tfrecord", folder)
    assert report.outcomes[0].outcome == "failed"
    assert "no label_map.pbtxt to name them" in report.outcomes[0].message
    write_label_map(["Jackets", "Jeans"], folder / "label_map.pbtxt")
    report = import_annotations(engine, settings, project_id, "tfrecord", folder)
    assert report.outcomes[0].outcome == "imported" and report.outcomes[0].boxes == 1
    with session_scope(engine) as session:
        (box,) = session.scalar(select(Image).where(Image.original_name == "n.jpg")).boxes
        assert box.label.name == "Jeans"
