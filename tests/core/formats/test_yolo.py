"""YOLO: CLI export and import, a round trip within 1 px, a real YOLO folder against its VOC twin, bad lines."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from xml.etree.ElementTree import fromstring

import pytest
from sqlalchemy import select

from core.boxes import Box
from core.cli import main
from core.dataset.importer import import_annotations
from core.formats import registry
from core.formats.yolo import box_from_yolo, box_to_yolo, format_data_yaml, label_rel_candidates, parse_data_yaml
from core.project.projects import create_project
from db.engine import session_scope
from db.models import Image, ImageStatus, Label, Project
from tests.conftest import SHARED_DATA
from tests.core.dataset_factory import jpeg_bytes, make_dataset

ROOT = Path(__file__).resolve().parents[3]
CCP = SHARED_DATA / "ccp-detection"


def _boxes(engine, project_id: int) -> dict[str, tuple[str | None, str, list[tuple[str, Box]]]]:
    """Image name -> (split, status, sorted (label, box)) of a project."""
    with session_scope(engine) as session:
        images = session.scalars(select(Image).where(Image.project_id == project_id)).all()
        return {
            i.original_name: (
                i.split.value if i.split else None,
                i.status.value,
                sorted(((b.label.name, Box(b.x_min, b.y_min, b.x_max, b.y_max)) for b in i.boxes), key=str),
            )
            for i in images
        }


def _project_id(engine, name: str) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(Project.id).where(Project.name == name))


def test_conversion_is_centre_size_normalised() -> None:
    assert box_to_yolo(Box(10, 20, 30, 60), 100, 80) == pytest.approx((0.2, 0.5, 0.2, 0.5))
    b = box_from_yolo(0.2, 0.5, 0.2, 0.5).scaled(100, 80)
    assert (b.x_min, b.y_min, b.x_max, b.y_max) == pytest.approx((10, 20, 30, 60))


def test_registered_beside_the_others() -> None:
    assert "yolo" in registry.readers() and "yolo" in registry.writers()


def test_cli_export_then_import_round_trip(engine, settings, project_id, tmp_path: Path) -> None:
    """`python -m core export yolo OUT`, then `import yolo OUT --create`: every box within 1 px, splits kept."""
    make_dataset(engine, settings, project_id, n=12)
    out = tmp_path / "yolo"
    common = ["--db", settings.db_url, "--data-dir", str(settings.data_dir)]
    proc = subprocess.run(
        [sys.executable, "-m", "core", "export", "yolo", str(out), *common, "--project", str(project_id)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["files"] == ["data.yaml", "classes.txt"]
    config = parse_data_yaml((out / "data.yaml").read_text())
    with session_scope(engine) as session:
        labels = session.scalars(select(Label.name).where(Label.project_id == project_id).order_by(Label.order)).all()
    assert config["names"] == {str(i): n for i, n in enumerate(labels)}
    for split, n in summary["splits"].items():
        assert len(list((out / "images" / split).glob("*"))) == n
        assert len(list((out / "labels" / split).glob("*.txt"))) == n
        assert (config.get(split) == f"images/{split}") == bool(n)

    assert main(["import", "yolo", str(out), *common, "--project", "yolo copy", "--create"]) == 0
    before, after = _boxes(engine, project_id), _boxes(engine, _project_id(engine, "yolo copy"))
    exported = {name: v for name, v in before.items() if v[1] in ("done", "no_objects")}
    assert set(after) == set(exported)
    for name, (split, status, boxes) in exported.items():
        got_split, got_status, got = after[name]
        # An image marked done with no boxes is a negative example: it comes back as no garments, as from VOC.
        assert (got_split, got_status) == (split, status if boxes else "no_objects"), name
        assert [lab for lab, _b in got] == [lab for lab, _b in boxes], name
        for (_l, a), (_m, b) in zip(boxes, got, strict=True):
            assert (
                max(abs(a.x_min - b.x_min), abs(a.y_min - b.y_min), abs(a.x_max - b.x_max), abs(a.y_max - b.y_max)) <= 1
            ), name


def _voc_twin_and_yolo(tmp_path: Path, n: int = 4) -> tuple[Path, Path]:
    """A VOC folder of a few real CCP photos, and its YOLO twin: the same boxes, written independently.

    The YOLO side is classes.txt + labels/*.txt beside JPEGImages/ (no splits, no data.yaml), as
    LabelImg's YOLO mode keeps them. A 1-based inclusive VOC box covers pixel edges xmin - 1 ..
    xmax (the VOC devkit's reading), so its centre is (xmin - 1 + xmax) / 2 and its width
    xmax - xmin + 1. (Ultralytics' own VOC script drops that pixel, ``w = xmax - xmin``; a box
    converted by it comes in one pixel narrower.)
    """
    if not CCP.is_dir():
        pytest.skip(f"the real VOC dataset is absent ({CCP}); it lives outside the repository")
    names = [line.strip() for line in (CCP / "labels.txt").read_text().splitlines() if line.strip()]
    voc, yolo = tmp_path / "voc", tmp_path / "yolo"
    for folder in (voc / "Annotations", voc / "JPEGImages", yolo / "JPEGImages", yolo / "labels"):
        folder.mkdir(parents=True)
    (yolo / "labels" / "classes.txt").write_text("".join(f"{name}\n" for name in names))  # as LabelImg keeps it
    for xml in sorted((CCP / "Annotations").glob("*.xml"))[:n]:
        root = fromstring(xml.read_bytes())
        image = root.findtext("filename")
        (voc / "Annotations" / xml.name).write_bytes(xml.read_bytes())
        for side in (voc, yolo):
            (side / "JPEGImages" / image).write_bytes((CCP / "JPEGImages" / image).read_bytes())
        w, h = int(root.findtext("size/width")), int(root.findtext("size/height"))
        lines = []
        for obj in root.iter("object"):
            b = [float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "xmax", "ymin", "ymax")]
            cx, cy, bw, bh = (b[0] - 1 + b[1]) / 2, (b[2] - 1 + b[3]) / 2, b[1] - b[0] + 1, b[3] - b[2] + 1
            lines.append(f"{names.index(obj.findtext('name'))} {cx / w:.6f} {cy / h:.6f} {bw / w:.6f} {bh / h:.6f}\n")
        (yolo / "labels" / f"{Path(image).stem}.txt").write_text("".join(lines))
    return voc, yolo


def test_real_yolo_folder_imports_the_boxes_of_its_voc_twin(engine, settings, tmp_path: Path) -> None:
    voc, yolo = _voc_twin_and_yolo(tmp_path)
    with session_scope(engine) as session:
        from_voc, from_yolo = create_project(session, "voc twin").id, create_project(session, "yolo twin").id
    assert import_annotations(engine, settings, from_voc, "voc", voc).count("imported") == 4
    report = import_annotations(engine, settings, from_yolo, "yolo", yolo)
    assert report.count("imported") == 4 and report.count("failed") == report.count("skipped") == 0
    a, b = _boxes(engine, from_voc), _boxes(engine, from_yolo)
    assert set(a) == set(b) and sum(len(v[2]) for v in a.values()) > 4
    for name in a:
        assert a[name][1] == b[name][1] == "done"
        assert [lab for lab, _x in a[name][2]] == [lab for lab, _x in b[name][2]]
        for (_l, p), (_m, q) in zip(a[name][2], b[name][2], strict=True):
            # The same boxes, to the 6 decimals of the label files (under 0.01 px at 550x832).
            assert (
                max(abs(p.x_min - q.x_min), abs(p.y_min - q.y_min), abs(p.x_max - q.x_max), abs(p.y_max - q.y_max))
                < 0.01
            )


def test_bad_lines_empty_and_missing_label_files(engine, settings, project_id, tmp_path: Path) -> None:
    root = tmp_path / "ds"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("Shirts\nJeans\n")
    for i, name in enumerate(["bad", "empty", "missing", "good"]):
        (root / "images" / f"{name}.jpg").write_bytes(jpeg_bytes(100, 50, 60 + i))
    (root / "labels" / "bad.txt").write_text(
        "0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2\n7 0.5 0.5 0.2 0.2\n1 0.5 1.5 0.2 0.2\n0 a 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2 0.9\n"
    )
    (root / "labels" / "empty.txt").write_text("")
    (root / "labels" / "good.txt").write_text("1 0.5 0.5 1 1\n\n")
    (root / "labels" / "ghost.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with zipfile.ZipFile(tmp_path / "ds.zip", "w") as zf:  # the same dataset as an upload
        for p in root.rglob("*"):
            if p.is_file():
                zf.write(p, f"ds/{p.relative_to(root).as_posix()}")
    report = import_annotations(engine, settings, project_id, "yolo", tmp_path / "ds.zip")
    by = {o.source: o for o in report.outcomes}
    bad = by["ds/labels/bad.txt"]
    assert bad.outcome == "imported" and bad.boxes == 1 and bad.boxes_refused == 5
    for message in (
        "ds/labels/bad.txt:2: 4 fields, not 5",
        "ds/labels/bad.txt:3: class 7 out of range (0..1)",
        "ds/labels/bad.txt:4 (Jeans): coordinates outside [0, 1]",
        "ds/labels/bad.txt:5 (Shirts): coordinates are not numbers",
        "ds/labels/bad.txt:6: 6 fields, not 5",
    ):
        assert message in bad.message
    assert by["ds/labels/good.txt"].boxes == 1 and "went past" not in by["ds/labels/good.txt"].message
    assert "1 label files have no image" in by["labels"].message and "ghost.txt" in by["labels"].message
    status = {name: v[1] for name, v in _boxes(engine, project_id).items()}
    # Some boxes refused: in progress for a look; an empty file: no garments; no file: not annotated yet.
    assert status == {"bad.jpg": "in_progress", "empty.jpg": "no_objects", "missing.jpg": "new", "good.jpg": "done"}
    with session_scope(engine) as session:
        good = session.scalar(select(Image).where(Image.original_name == "good.jpg"))
        assert [(b.x_min, b.y_min, b.x_max, b.y_max) for b in good.boxes] == [(0, 0, 100, 50)]
        assert good.status is ImageStatus.DONE


def test_data_yaml_forms_and_list_files(engine, settings, project_id, tmp_path: Path) -> None:
    """names as a flow list, splits as list files and a folder, keys we do not read (a download script) skipped."""
    root = tmp_path / "ds"
    for split in ("train", "valid"):
        (root / split / "images").mkdir(parents=True)
        (root / split / "labels").mkdir(parents=True)
    (root / "train" / "images" / "a.jpg").write_bytes(jpeg_bytes(64, 48, 71))
    (root / "train" / "labels" / "a.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (root / "valid" / "images" / "b.png").write_bytes(jpeg_bytes(64, 48, 72, "PNG"))
    (root / "valid" / "labels" / "b.txt").write_text("0 0.25 0.25 0.5 0.5\n")
    (root / "train.txt").write_text("./train/images/a.jpg\n")
    (root / "data.yaml").write_text(
        "# Roboflow-like\npath: ../datasets/somewhere  # not inside the dataset: ignored\n"
        "train: train.txt\nval: valid/images\n\nnc: 2\nnames: ['Jeans: blue', \"Shirts # 1\"]\n"
        "download: |\n  from x import y\n  y('http://example.com')\nroboflow:\n  project: z\n"
    )
    report = import_annotations(engine, settings, project_id, "yolo", root / "data.yaml")
    assert report.count("imported") == 2, report.as_dict()
    got = _boxes(engine, project_id)
    assert got["a.jpg"][0] == "train" and got["a.jpg"][2][0][0] == "Shirts # 1"
    assert got["b.png"][0] == "val" and got["b.png"][2] == [("Jeans: blue", Box(0, 0, 32, 24))]


def test_yaml_writer_and_reader_agree_on_awkward_names() -> None:
    names = ["Jeans: blue", "it's", 'say "hi"', "# not a comment", "  spaced  "]
    text = format_data_yaml(names, ["train", "val"])
    doc = parse_data_yaml(text)
    assert doc["names"] == {str(i): n for i, n in enumerate(names)}
    assert doc["train"] == "images/train" and "test" not in doc
    assert parse_data_yaml("names:\n  - a\n  - 'b c'\n")["names"] == ["a", "b c"]
    assert parse_data_yaml("names: {0: a, 1: 'b, c'}\n")["names"] == {"0": "a", "1": "b, c"}


def test_label_paths_follow_ultralytics_then_the_folder_beside() -> None:
    assert label_rel_candidates("d/images/train/a.jpg")[0] == "d/labels/train/a.txt"
    assert label_rel_candidates("VOC/JPEGImages/a.jpg")[0] == "VOC/labels/a.txt"
