"""The Export and Import annotations pages render and validate, through Streamlit's AppTest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.project.projects import create_project
from db.engine import session_scope
from tests.core.dataset_factory import make_dataset
from ui.context import reset_context

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(engine, settings, monkeypatch) -> AppTest:
    """The app on the fixture's database, which already has a project (so no demo is generated)."""
    with session_scope(engine) as session:
        pid = create_project(session, "Pages").id
    make_dataset(engine, settings, pid, n=6)
    monkeypatch.setenv("TAGRACK_DB_URL", settings.db_url)
    monkeypatch.setenv("TAGRACK_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TAGRACK_USER", "apptest")
    reset_context()  # the context is cached per process: make it open this database
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    yield at
    reset_context()


def test_export_page_renders_and_checks_shares(app: AppTest) -> None:
    app.switch_page("pages/export.py")
    app.run()
    assert not app.exception
    assert app.title[0].value == "Export"
    assert "4 ground-truth images" in app.caption[0].value
    assert len(app.radio) == 1 and app.radio[0].value == "tfrecord"
    assert [n.label for n in app.number_input][:3] == ["Train share", "Validation share", "Test share"]
    next(n for n in app.number_input if n.label == "Train share").set_value(0.9)  # 0.9 + 0.1 + 0.1
    next(b for b in app.button if b.label == "Export").click()
    app.run()
    assert not app.exception
    assert any("must add up to 1" in e.value for e in app.error)


def test_import_page_renders_and_asks_for_files(app: AppTest) -> None:
    app.switch_page("pages/import_annotations.py")
    app.run()
    assert not app.exception
    assert app.title[0].value == "Import annotations"
    app.radio[0].set_value("coco")
    app.run()
    assert not app.exception
    server_path = next(t for t in app.text_input if t.label.startswith("…or a path on the server"))
    server_path.input("/no/such/place.json")
    next(b for b in app.button if b.label == "Import").click()
    app.run()
    assert not app.exception
    assert any("does not exist on the server" in e.value for e in app.error)
    assert any(c.label == "Add labels the project does not have yet" for c in app.checkbox)


def test_import_page_report_shows_the_splits_from_the_dataset(app: AppTest, engine, settings, tmp_path: Path) -> None:
    from sqlalchemy import select

    from core.jobs import create_job, run_job
    from db.models import Project
    from tests.core.dataset_factory import jpeg_bytes

    root = tmp_path / "voc"
    for n, i in enumerate(["a", "b", "c"]):
        (root / "JPEGImages").mkdir(parents=True, exist_ok=True)
        (root / "Annotations").mkdir(exist_ok=True)
        (root / "JPEGImages" / f"{i}.jpg").write_bytes(jpeg_bytes(64, 48, 900 + n))
        (root / "Annotations" / f"{i}.xml").write_text(f"<annotation><filename>{i}.jpg</filename></annotation>")
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\nb\n")
    (root / "ImageSets" / "Main" / "test.txt").write_text("c\n")
    with session_scope(engine) as session:
        pid = session.scalar(select(Project.id).where(Project.name == "Pages"))
        params = {"project_id": pid, "format": "voc", "path": str(root), "add_labels": True, "who": "apptest"}
        job_id = create_job(session, "import-annotations", params, project_id=pid).id
    run_job(settings, engine, job_id)  # the real job handler, in this process
    app.switch_page("pages/import_annotations.py")
    app.session_state[f"import_annotations_job_{pid}"] = job_id
    app.run()
    assert not app.exception
    assert "Splits from ImageSets/Main: 2 train, 1 test." in app.success[0].value


def test_import_page_report_shows_refused_boxes_and_matched_labels(
    app: AppTest, engine, settings, tmp_path: Path
) -> None:
    from sqlalchemy import select

    from core.jobs import create_job, run_job
    from db.models import Project
    from tests.core.dataset_factory import jpeg_bytes

    root = tmp_path / "voc"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    box = "<object><name>{}</name><bndbox><xmin>{}</xmin><ymin>2</ymin><xmax>{}</xmax><ymax>20</ymax></bndbox></object>"
    for n, (name, label, x0, x1) in enumerate([("a", "shirts", 2, 30), ("b", "Shirts", 30, 2)]):
        (root / "JPEGImages" / f"{name}.jpg").write_bytes(jpeg_bytes(64, 48, 950 + n))
        (root / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename>{box.format(label, x0, x1)}</annotation>"
        )
    with session_scope(engine) as session:
        pid = session.scalar(select(Project.id).where(Project.name == "Pages"))
        params = {"project_id": pid, "format": "voc", "path": str(root), "add_labels": True, "who": "apptest"}
        job_id = create_job(session, "import-annotations", params, project_id=pid).id
    run_job(settings, engine, job_id)
    app.switch_page("pages/import_annotations.py")
    app.session_state[f"import_annotations_job_{pid}"] = job_id
    app.run()
    assert not app.exception
    warnings = " ".join(w.value for w in app.warning)
    assert "1 image had all their boxes refused and is left to annotate" in warnings
    assert "'shirts' as the project's 'Shirts'" in " ".join(i.value for i in app.info)
