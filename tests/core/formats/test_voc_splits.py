"""VOC import keeps the dataset's fixed split (ImageSets/Main/{train,val,test}.txt) on the images."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from core.dataset.exporter import export_dataset
from core.dataset.importer import import_annotations
from core.project.projects import create_project
from core.project.splits import assign_splits
from db.engine import session_scope
from db.models import Image, ImageStatus, Split
from tests.conftest import shared_data
from tests.core.dataset_factory import jpeg_bytes, make_dataset

pytestmark = pytest.mark.both_databases  # the SQL of this module runs on SQLite and PostgreSQL

ROOT = Path(__file__).resolve().parents[3]


def _new_project(engine, name: str, labels=("Shirts",)) -> int:
    with session_scope(engine) as session:
        return create_project(session, name, labels=list(labels)).id


def _xml(filename: str) -> bytes:
    return (
        f"<annotation><filename>{filename}</filename><size><width>64</width><height>48</height><depth>3</depth></size>"
        "<object><name>Shirts</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>30</xmax><ymax>40</ymax></bndbox>"
        "</object></annotation>"
    ).encode()


def _voc_files(ids: list[str], lists: dict[str, str], prefix: str = "", seed: int = 0) -> dict[str, bytes]:
    """A VOC dataset: one real JPEG + XML per id, and the given ImageSets/Main files (name -> text)."""
    files: dict[str, bytes] = {}
    for n, i in enumerate(ids):
        files[f"{prefix}JPEGImages/{i}.jpg"] = jpeg_bytes(64, 48, seed * 100 + n)
        files[f"{prefix}Annotations/{i}.xml"] = _xml(f"{i}.jpg")
    for name, text in lists.items():
        files[f"{prefix}ImageSets/Main/{name}"] = text.encode()
    return files


def _write_folder(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _splits_by_name(engine, project_id: int) -> dict[str, str | None]:
    with session_scope(engine) as session:
        return {
            img.original_name: img.split.value if img.split else None
            for img in session.scalars(select(Image).where(Image.project_id == project_id))
        }


def test_split_lists_applied(engine, settings, project_id, tmp_path: Path) -> None:
    ids = ["a", "b", "c", "d", "e", "f"]
    # Trailing whitespace, CRLF, blank lines and a UTF-8 BOM are all VOC files seen in the wild.
    lists = {"train.txt": "\ufeffa\nb  \r\n\n", "val.txt": "c\t\n", "test.txt": "\n d\ne\n"}
    root = _write_folder(tmp_path / "voc", _voc_files(ids, lists))
    report = import_annotations(engine, settings, project_id, "voc", root)
    assert report.count("failed") == 0 and report.count("imported") == 6, report.as_dict()
    assert _splits_by_name(engine, project_id) == {
        "a.jpg": "train",
        "b.jpg": "train",
        "c.jpg": "val",
        "d.jpg": "test",
        "e.jpg": "test",
        "f.jpg": None,
    }
    summary = report.summary()
    assert summary["splits_from_file"] == {"train": 2, "val": 1, "test": 2}
    assert summary["splits_message"] == "splits from ImageSets/Main: 2 train, 1 val, 2 test"
    # Applying a split adds no note: the page lists only records with something to say.
    assert all(o.message == "" for o in report.outcomes)
    # The unlisted image is placed later, and the listed ones stay where the dataset put them.
    with session_scope(engine) as session:
        placed = assign_splits(session, project_id)
    assert sum(placed.values()) == 1
    assert {k: v for k, v in _splits_by_name(engine, project_id).items() if k != "f.jpg"} == {
        "a.jpg": "train",
        "b.jpg": "train",
        "c.jpg": "val",
        "d.jpg": "test",
        "e.jpg": "test",
    }


def test_any_subset_of_lists_and_no_lists(engine, settings, project_id, tmp_path: Path) -> None:
    only_test = _write_folder(tmp_path / "t", _voc_files(["a", "b"], {"test.txt": "b\n"}, seed=1))
    report = import_annotations(engine, settings, project_id, "voc", only_test)
    assert _splits_by_name(engine, project_id) == {"a.jpg": None, "b.jpg": "test"}
    assert report.summary()["splits_message"] == "splits from ImageSets/Main: 1 test"
    none = _write_folder(tmp_path / "n", _voc_files(["c"], {}, seed=2))
    report = import_annotations(engine, settings, project_id, "voc", none)
    assert report.summary()["splits_from_file"] == {"train": 0, "val": 0, "test": 0}
    assert report.summary()["splits_message"] == ""
    assert _splits_by_name(engine, project_id)["c.jpg"] is None


def test_export_then_import_keeps_every_split(engine, settings, project_id, tmp_path: Path) -> None:
    make_dataset(engine, settings, project_id, n=16)
    summary = export_dataset(engine, settings, project_id, "voc", tmp_path / "e", fractions=(0.5, 0.25, 0.25))
    assert all(summary["splits"].values()), summary  # all three splits are exercised
    with session_scope(engine) as session:
        source = {
            img.sha256: img.split
            for img in session.scalars(select(Image).where(Image.project_id == project_id))
            if img.status in (ImageStatus.DONE, ImageStatus.NO_OBJECTS)
        }
    target = _new_project(engine, "copy", labels=())
    report = import_annotations(engine, settings, target, "voc", tmp_path / "e")
    assert report.count("failed") == 0, report.as_dict()
    with session_scope(engine) as session:
        copied = {img.sha256: img.split for img in session.scalars(select(Image).where(Image.project_id == target))}
    assert copied == source and None not in copied.values()
    assert report.summary()["splits_from_file"] == summary["splits"]


def test_id_in_two_lists_goes_to_the_safer_split(engine, settings, project_id, tmp_path: Path) -> None:
    lists = {"train.txt": "a\nb\nc\n", "val.txt": "b\nc\n", "test.txt": "a\n"}
    root = _write_folder(tmp_path / "voc", _voc_files(["a", "b", "c"], lists))
    report = import_annotations(engine, settings, project_id, "voc", root)
    assert _splits_by_name(engine, project_id) == {"a.jpg": "test", "b.jpg": "val", "c.jpg": "val"}
    by = {o.source: o for o in report.outcomes}
    assert by["Annotations/a.xml"].outcome == "imported"
    assert "listed in test.txt and train.txt of ImageSets/Main; taken as test" in by["Annotations/a.xml"].message
    assert "listed in val.txt and train.txt of ImageSets/Main; taken as val" in by["Annotations/b.xml"].message


def test_per_class_and_trainval_lists_ignored(engine, settings, project_id, tmp_path: Path) -> None:
    lists = {
        "train.txt": "a\n",
        # VOC's per-class lists ("id  1/-1/0") and trainval (train + val) must not place anything.
        "dog_train.txt": "a -1\nb  1\n",
        "dog_test.txt": "b  1\nc -1\n",
        "trainval.txt": "a\nb\nc\n",
    }
    root = _write_folder(tmp_path / "voc", _voc_files(["a", "b", "c"], lists))
    report = import_annotations(engine, settings, project_id, "voc", root)
    assert report.count("failed") == 0 and report.count("skipped") == 0, report.as_dict()
    assert _splits_by_name(engine, project_id) == {"a.jpg": "train", "b.jpg": None, "c.jpg": None}


def test_zip_nested_one_folder(engine, settings, project_id, tmp_path: Path) -> None:
    files = _voc_files(["x1", "x2", "x3"], {"train.txt": "x1\nx2\n", "test.txt": "x3\n"}, prefix="VOCdevkit/")
    path = tmp_path / "voc.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in files.items():
            zf.writestr(rel, data)
    report = import_annotations(engine, settings, project_id, "voc", path)
    assert report.count("imported") == 3, report.as_dict()
    assert _splits_by_name(engine, project_id) == {"x1.jpg": "train", "x2.jpg": "train", "x3.jpg": "test"}
    assert report.summary()["splits_message"] == "splits from ImageSets/Main: 2 train, 1 test"


def test_two_datasets_in_one_zip_use_their_own_lists(engine, settings, project_id, tmp_path: Path) -> None:
    files = {
        **_voc_files(["p"], {"train.txt": "p\n"}, prefix="one/", seed=1),
        **_voc_files(["q"], {"test.txt": "q\n"}, prefix="two/", seed=2),
    }
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for rel, data in files.items():
            zf.writestr(rel, data)
    import_annotations(engine, settings, project_id, "voc", path)
    assert _splits_by_name(engine, project_id) == {"p.jpg": "train", "q.jpg": "test"}


def test_listed_ids_without_annotation_are_reported(engine, settings, project_id, tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "voc", _voc_files(["a"], {"test.txt": "a\nghost1\nghost2\n"}))
    report = import_annotations(engine, settings, project_id, "voc", root)
    by = {o.source: o for o in report.outcomes}
    assert by["ImageSets/Main/test.txt"].outcome == "skipped"
    assert "2 listed image ids have no annotation XML" in by["ImageSets/Main/test.txt"].message
    assert "ghost1, ghost2" in by["ImageSets/Main/test.txt"].message


def test_unreadable_list_reported_and_the_rest_imports(engine, settings, project_id, tmp_path: Path) -> None:
    files = _voc_files(["a", "b"], {"train.txt": "a\n"})
    files["ImageSets/Main/test.txt"] = b"\xff\xfe b\x00\n\x80\x81"  # not UTF-8
    report = import_annotations(engine, settings, project_id, "voc", _write_folder(tmp_path / "voc", files))
    by = {o.source: o for o in report.outcomes}
    assert by["ImageSets/Main/test.txt"].outcome == "failed"
    assert "split list not readable" in by["ImageSets/Main/test.txt"].message
    assert report.count("imported") == 2
    assert _splits_by_name(engine, project_id) == {"a.jpg": "train", "b.jpg": None}


def test_reimport_never_changes_a_split(engine, settings, project_id, tmp_path: Path) -> None:
    ids = ["a", "b", "c"]
    first = _write_folder(tmp_path / "first", _voc_files(ids, {"train.txt": "a\nb\n"}))
    import_annotations(engine, settings, project_id, "voc", first)
    assert _splits_by_name(engine, project_id) == {"a.jpg": "train", "b.jpg": "train", "c.jpg": None}
    # The same pictures again, now with a listing that moves a and b and places c.
    second = _write_folder(tmp_path / "second", _voc_files(ids, {"train.txt": "b\n", "test.txt": "a\nc\n"}))
    report = import_annotations(engine, settings, project_id, "voc", second)
    assert _splits_by_name(engine, project_id) == {"a.jpg": "train", "b.jpg": "train", "c.jpg": "test"}
    by = {o.source: o for o in report.outcomes}
    assert all(o.outcome == "duplicate" for o in by.values()), report.as_dict()
    assert "ImageSets/Main puts it in test, but it is already in train; kept train" in by["Annotations/a.xml"].message
    assert "already in" not in by["Annotations/b.xml"].message  # same split: nothing to say
    assert "its split was not set yet: test from ImageSets/Main" in by["Annotations/c.xml"].message
    assert report.summary()["splits_from_file"] == {"train": 0, "val": 0, "test": 1}
    # Idempotent: a third import changes nothing and places nothing.
    third = import_annotations(engine, settings, project_id, "voc", second)
    assert _splits_by_name(engine, project_id) == {"a.jpg": "train", "b.jpg": "train", "c.jpg": "test"}
    assert third.summary()["splits_message"] == ""


def test_unannotated_image_gets_the_split_with_its_boxes(engine, settings, project_id, tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "voc", _voc_files(["a"], {"val.txt": "a\n"}))
    from core.project.imagestore import ImageStore
    from core.project.ingest import ingest_one

    with session_scope(engine) as session:  # the picture was uploaded earlier, without boxes or split
        ingest_one(
            session, ImageStore(settings.data_dir), project_id, "a.jpg", (root / "JPEGImages/a.jpg").read_bytes()
        )
    report = import_annotations(engine, settings, project_id, "voc", root)
    assert [o.outcome for o in report.outcomes] == ["updated"]
    assert report.outcomes[0].split == "val"
    assert _splits_by_name(engine, project_id) == {"a.jpg": "val"}


def test_cli_prints_the_splits(engine, settings, project_id, tmp_path: Path) -> None:
    root = _write_folder(tmp_path / "voc", _voc_files(["a", "b", "c"], {"train.txt": "a\nb\n", "test.txt": "c\n"}))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "import",
            "voc",
            str(root),
            "--db",
            settings.db_url,
            "--data-dir",
            str(settings.data_dir),
            "--project",
            "Test project",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "splits from ImageSets/Main: 2 train, 1 test" in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["splits_from_file"] == {"train": 2, "val": 0, "test": 1}


def test_real_ccp_dataset_keeps_its_804_200_split(engine, settings, project_id) -> None:
    root = shared_data("ccp-detection")
    listed = {
        split: {
            line.strip() for line in (root / "ImageSets/Main" / f"{split}.txt").read_text().splitlines() if line.strip()
        }
        for split in ("train", "test")
    }
    assert (len(listed["train"]), len(listed["test"])) == (804, 200)
    report = import_annotations(engine, settings, project_id, "voc", root)
    assert report.count("failed") == 0 and report.count("imported") == 1004, report.summary()
    assert report.summary()["splits_message"] == "splits from ImageSets/Main: 804 train, 200 test"
    with session_scope(engine) as session:
        got = {
            Path(name).stem: split
            for name, split in session.execute(
                select(Image.original_name, Image.split).where(Image.project_id == project_id)
            )
        }
    assert {i for i, s in got.items() if s is Split.TRAIN} == listed["train"]
    assert {i for i, s in got.items() if s is Split.TEST} == listed["test"]
