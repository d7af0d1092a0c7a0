"""The Import page's image-labels section (AppTest, real database, the real import-labels job)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from streamlit.testing.v1 import AppTest

from core.jobs import create_job, run_job
from core.project.projects import create_project
from db.engine import session_scope
from db.models import Image, Project
from tests.core.dataset_factory import make_dataset
from ui.context import reset_context

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(engine, settings, monkeypatch) -> AppTest:
    with session_scope(engine) as session:
        pid = create_project(session, "Pages").id
    make_dataset(engine, settings, pid, n=3)
    monkeypatch.setenv("TAGRACK_DB_URL", settings.db_url)
    monkeypatch.setenv("TAGRACK_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TAGRACK_USER", "apptest")
    reset_context()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception
    yield at
    reset_context()


def test_labels_section_checks_paths_and_reports_the_job(app: AppTest, engine, settings, tmp_path: Path) -> None:
    app.switch_page("pages/import_annotations.py").run()
    assert not app.exception
    path = next(t for t in app.text_input if t.label.startswith("…or a labels file"))
    path.input("/no/such/labels.csv")
    next(b for b in app.button if b.label == "Import labels").click().run()
    assert any("/no/such/labels.csv does not exist on the server" in e.value for e in app.error)

    with session_scope(engine) as session:
        pid = session.scalar(select(Project.id).where(Project.name == "Pages"))
        names = list(session.scalars(select(Image.original_name).order_by(Image.id)))
    labels = tmp_path / "labels.csv"
    labels.write_text(f"image,label,sender\n{names[0]},Polo,7\nghost.jpg,Polo,7\n{names[1]},,7\n", encoding="utf-8")
    params = {"project_id": pid, "path": str(labels), "ignore_columns": ["sender"], "who": "apptest"}
    with session_scope(engine) as session:
        job_id = create_job(session, "import-labels", params, project_id=pid).id
    run_job(settings, engine, job_id)  # the real job handler, in this process
    app.session_state[f"import_labels_job_{pid}"] = job_id
    app.run()
    assert not app.exception
    assert app.success[0].value.startswith("0 new images tagged and 1 existing images tagged")
    assert "Added to the schema: category=Polo." in app.success[0].value
    problems = app.dataframe[0].value
    assert list(problems["source"]) == ["labels.csv line 3", "labels.csv line 4"]
    assert "unknown image 'ghost.jpg'" in problems["message"].iloc[0]
    with session_scope(engine) as session:
        assert session.scalar(select(Image.attributes).where(Image.original_name == names[0]))["category"] == "Polo"
    app.switch_page("pages/export.py").run()
    assert not app.exception
    # make_dataset stores attribute values on each of its three images; one of them got a category too.
    assert "tags.csv and folder per class take the 3 images with stored tags" in app.caption[0].value
