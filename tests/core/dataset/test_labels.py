"""Image-level labels in: CSV shapes, class-folder trees, bad rows, schema growth, the CLI."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from core.cli import main
from core.dataset.items import AnnotationImportError
from core.dataset.labels import import_labels
from core.project.imagestore import ImageStore
from core.project.ingest import ingest_one
from core.project.projects import create_project
from db.engine import session_scope
from db.models import Image, ImageStatus, Project
from tests.core.dataset_factory import jpeg_bytes

pytestmark = pytest.mark.both_databases


def _project(engine, schema=None) -> int:
    with session_scope(engine) as session:
        return create_project(session, "tags", labels=(), attribute_schema=schema or {"colour": ["red", "blue"]}).id


def _store(engine, settings, project_id, names) -> None:
    with session_scope(engine) as session:
        for seed, name in enumerate(names):
            assert ingest_one(
                session, ImageStore(settings.data_dir), project_id, name, jpeg_bytes(40, 30, seed)
            ).image_id


def _tags(engine, project_id) -> dict[str, dict]:
    with session_scope(engine) as session:
        return {
            i.original_name: dict(i.attributes or {})
            for i in session.scalars(select(Image).where(Image.project_id == project_id))
        }


def _schema(engine, project_id) -> dict:
    with session_scope(engine) as session:
        return dict(session.get(Project, project_id).attribute_schema)


def _by_source(report) -> dict[str, tuple[str, str]]:
    return {o.source: (o.outcome, o.message) for o in report.outcomes}


def test_csv_bad_rows_get_messages_and_the_rest_come_in(engine, settings, tmp_path: Path) -> None:
    pid = _project(engine)
    _store(engine, settings, pid, ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"])
    path = tmp_path / "labels.csv"
    path.write_text(
        "image,label\n"
        "a.jpg,Shirt\n"  # 2
        "ghost.jpg,Shirt\n"  # 3 unknown image
        "b.jpg,\n"  # 4 empty value
        "a.jpg,Shirt\n"  # 5 duplicate row
        'c.jpg,"Shirt, formal"\n'  # 6 quoted comma: fine
        "d.jpg,Shirt, formal\n"  # 7 unquoted comma
        "a.jpg,Shorts\n"  # 8 conflicts with line 2
        "e.jpg," + "x" * (5 * 1024 * 1024) + "\n"  # 9 a 5 MB line
        "b.jpg,Shorts\n"  # 10 after the long line, still read
        "photos/e.jpg,Shoes\n",  # 11 a path: found by its base name
        encoding="utf-8",
    )
    report = import_labels(engine, settings, pid, path)
    got = _by_source(report)
    assert got["labels.csv line 2"][0] == "updated"
    assert got["labels.csv line 3"] == (
        "failed",
        "unknown image 'ghost.jpg': no image of that name in the project (upload it first, or give the images "
        "with the labels)",
    )
    assert got["labels.csv line 4"] == ("failed", "b.jpg: every label cell is empty (empty values)")
    assert got["labels.csv line 5"] == ("duplicate", "a.jpg: repeats labels.csv line 2; nothing added")
    assert got["labels.csv line 6"][0] == "updated"
    assert got["labels.csv line 7"][0] == "failed"
    assert "double quotes" in got["labels.csv line 7"][1]
    assert got["labels.csv line 8"][0] == "failed"
    assert "conflicts with category='Shirt' on labels.csv line 2" in got["labels.csv line 8"][1]
    assert got["labels.csv line 9"][0] == "failed"
    assert "5,242,887 characters long" in got["labels.csv line 9"][1]
    assert got["labels.csv line 10"][0] == "updated"
    assert got["labels.csv line 11"][0] == "updated"
    tags = _tags(engine, pid)
    assert tags["a.jpg"] == {"category": "Shirt"}
    assert tags["b.jpg"] == {"category": "Shorts"}
    assert tags["c.jpg"] == {"category": "Shirt, formal"}
    assert tags["d.jpg"] == {} and tags["e.jpg"] == {"category": "Shoes"}
    assert _schema(engine, pid)["category"] == ["Shirt", "Shirt, formal", "Shorts", "Shoes"]
    # The same file again adds nothing.
    again = import_labels(engine, settings, pid, path)
    assert again.count("updated") == 0 and again.count("imported") == 0
    assert _tags(engine, pid) == tags


def test_tag_value_rows_match_the_schema_and_refuse_new_values_when_asked(engine, settings, tmp_path: Path) -> None:
    pid = _project(engine)
    _store(engine, settings, pid, ["a.jpg", "b.jpg", "c.jpg"])
    path = tmp_path / "tags.csv"
    path.write_text(
        'a.jpg, colour = RED ,pattern=striped\nb.jpg,colour=,"note=red, dark"\nc.jpg,colour=green\nd.jpg\n',
        encoding="utf-8",
    )
    report = import_labels(engine, settings, pid, path, add_values=False)
    got = _by_source(report)
    assert got["tags.csv line 1"] == (
        "updated",
        "tag 'pattern' is not in the project's schema; left out (new values are refused)",
    )
    assert got["tags.csv line 2"][0] == "skipped"  # its one usable tag is refused; the empty one noted
    assert "colour has an empty value" in got["tags.csv line 2"][1]
    assert got["tags.csv line 3"][0] == "skipped"
    assert got["tags.csv line 4"] == ("failed", "d.jpg: no label (give image,label or image,tag=value)")
    tags = _tags(engine, pid)
    assert tags["a.jpg"] == {"colour": "red"}  # the schema's spelling
    assert tags["b.jpg"] == {} and tags["c.jpg"] == {}
    assert _schema(engine, pid) == {"colour": ["red", "blue"]}
    # Allowed: the new values join the schema.
    import_labels(engine, settings, pid, path)
    assert _tags(engine, pid)["b.jpg"] == {"note": "red, dark"}
    assert _schema(engine, pid) == {"colour": ["red", "blue", "green"], "pattern": ["striped"], "note": ["red, dark"]}


def test_header_columns_are_tags_and_images_come_from_a_folder(engine, settings, tmp_path: Path) -> None:
    pid = _project(engine)
    images = tmp_path / "photos"
    images.mkdir()
    (images / "x.jpg").write_bytes(jpeg_bytes(40, 30, 7))
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    path = tmp_path / "labels.csv"
    path.write_text("image,label,sender,colour\nx.jpg,Polo,138,blue\nbroken.jpg,Polo,2,red\n", encoding="utf-8")
    report = import_labels(engine, settings, pid, path, images=images, ignore_columns=["sender"])
    got = _by_source(report)
    assert got["labels.csv line 2"][0] == "imported"
    assert got["labels.csv line 3"][0] == "failed" and "broken.jpg" in got["labels.csv line 3"][1]
    assert _tags(engine, pid) == {"x.jpg": {"category": "Polo", "colour": "blue"}}
    with session_scope(engine) as session:
        assert session.scalar(select(Image.status)) is ImageStatus.NEW  # tags leave the box status alone


def _tree(root: Path) -> None:
    (root / "Shoes").mkdir(parents=True)
    (root / "Shirt").mkdir()
    (root / "Shirt" / "deeper").mkdir()
    (root / "Shoes" / "s1.jpg").write_bytes(jpeg_bytes(40, 30, 1))
    (root / "Shoes" / "s2.png").write_bytes(jpeg_bytes(40, 30, 2, "PNG"))
    (root / "Shirt" / "t1.jpg").write_bytes(jpeg_bytes(40, 30, 3))
    (root / "Shirt" / "deeper" / "t2.jpg").write_bytes(jpeg_bytes(40, 30, 4))
    (root / "Shirt" / "notes.txt").write_text("not an image")
    (root / "Shirt" / "fake.jpg").write_bytes(b"GIF89a broken")
    (root / "loose.jpg").write_bytes(jpeg_bytes(40, 30, 5))


def test_class_folder_tree_and_its_zip(engine, settings, tmp_path: Path) -> None:
    pid = _project(engine)
    root = tmp_path / "tree"
    _tree(root)
    report = import_labels(engine, settings, pid, root)
    got = _by_source(report)
    assert got["Shoes/s1.jpg"][0] == "imported" and got["Shoes/s2.png"][0] == "imported"
    assert got["Shirt/t1.jpg"][0] == "imported"
    assert got["Shirt/deeper/t2.jpg"] == (
        "failed",
        "in a nested folder (Shirt/deeper): a class-folder tree has one level, class/image",
    )
    assert got["Shirt/notes.txt"] == ("skipped", "not an image (.txt); left out")
    assert got["Shirt/fake.jpg"][0] == "failed"
    assert got["loose.jpg"][0] == "failed" and "not in a class folder" in got["loose.jpg"][1]
    assert _tags(engine, pid) == {
        "s1.jpg": {"category": "Shoes"},
        "s2.png": {"category": "Shoes"},
        "t1.jpg": {"category": "Shirt"},
    }
    assert _schema(engine, pid)["category"] == ["Shirt", "Shoes"]
    # The same tree zipped under a top folder: looked through; the photos are already there (duplicates).
    archive = tmp_path / "tree.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                zf.write(p, f"dataset/{p.relative_to(root).as_posix()}")
    report = import_labels(engine, settings, pid, archive)
    got = _by_source(report)
    assert got["dataset/Shoes/s1.jpg"][0] == "duplicate"
    assert got["dataset/Shirt/deeper/t2.jpg"][0] == "failed"
    assert got["dataset/loose.jpg"][0] == "failed"
    assert len(_tags(engine, pid)) == 3


def test_inputs_refused_as_a_whole(engine, settings, tmp_path: Path) -> None:
    pid = _project(engine)
    with pytest.raises(AnnotationImportError, match="does not exist"):
        import_labels(engine, settings, pid, tmp_path / "nothing.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("image,label\na.jpg,Caf\xe9\n".encode("latin-1"))
    with pytest.raises(AnnotationImportError, match="not UTF-8"):
        import_labels(engine, settings, pid, bad)
    odd = tmp_path / "labels.json"
    odd.write_text("{}")
    with pytest.raises(AnnotationImportError, match="give a labels .csv file"):
        import_labels(engine, settings, pid, odd)


def test_cli_import_labels(engine, settings, tmp_path: Path, capsys) -> None:
    pid = _project(engine)
    _store(engine, settings, pid, ["a.jpg"])
    path = tmp_path / "labels.csv"
    path.write_text("a.jpg,Shoes\nb.jpg,Shoes\n", encoding="utf-8")
    args = ["--db", settings.db_url, "--data-dir", str(settings.data_dir), "--project", str(pid)]
    assert main(["import", "labels", str(path), "--no-new-values", *args]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["updated"], out["skipped"], out["failed"]) == (0, 1, 1)
    assert main(["import", "labels", str(path), *args]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["added_to_schema"] == ["category=Shoes"]
    assert "unknown image 'b.jpg'" in captured.err
    assert _tags(engine, pid)["a.jpg"] == {"category": "Shoes"}


def test_cli_import_labels_creates_a_project_with_only_the_files_tags(settings, engine, tmp_path: Path, capsys) -> None:
    root = tmp_path / "tree"
    (root / "Shoes").mkdir(parents=True)
    (root / "Shoes" / "s.jpg").write_bytes(jpeg_bytes(40, 30, 1))
    args = ["--db", settings.db_url, "--data-dir", str(settings.data_dir), "--project", "from labels"]
    assert main(["import", "labels", str(root), "--create", *args]) == 0
    assert json.loads(capsys.readouterr().out)["imported"] == 1
    with session_scope(engine) as session:
        project = session.scalar(select(Project).where(Project.name == "from labels"))
        assert project.attribute_schema == {"category": ["Shoes"]}
    # A tree refused as a whole leaves no empty project behind.
    assert main(["import", "labels", str(tmp_path / "none"), "--create", *args[:-1], "other"]) == 1
    assert "does not exist" in capsys.readouterr().err
    with session_scope(engine) as session:
        assert session.scalar(select(Project).where(Project.name == "other")) is None


def test_tagged_count_follows_tags_set_and_cleared_and_reads_the_partial_index(engine, settings) -> None:
    from sqlalchemy import event

    from core.dataset.labels import tagged_image_count

    pid = _project(engine)
    _store(engine, settings, pid, ["a.jpg", "b.jpg", "c.jpg"])

    def set_attributes(name: str, attributes: dict) -> None:
        with session_scope(engine) as session:
            image = session.scalar(select(Image).where(Image.project_id == pid, Image.original_name == name))
            image.attributes = attributes

    def count() -> int:
        with session_scope(engine) as session:
            return tagged_image_count(session, pid)

    assert count() == 0
    set_attributes("a.jpg", {"colour": "red"})
    set_attributes("b.jpg", {"colour": ""})  # an emptied tag: attributes, but no tag
    set_attributes("c.jpg", {"auto_main_class": "Shoes"})  # machine keys only: no tag
    assert count() == 1
    set_attributes("a.jpg", {})
    assert count() == 0
    if engine.dialect.name == "sqlite":
        seen: list[tuple[str, object]] = []

        def keep(conn, cursor, statement, parameters, context, executemany) -> None:
            seen.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", keep)
        try:
            count()
        finally:
            event.remove(engine, "before_cursor_execute", keep)
        statement, parameters = seen[-1]
        with engine.connect() as conn:
            plan = " ".join(str(row[-1]) for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters))
        assert "ix_image_project_with_attributes" in plan, plan
