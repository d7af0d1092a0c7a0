"""A project's own vocabulary: stored, used by the check, exported and imported through the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, select

from core.catalogue.check import run_check, stored_results
from core.catalogue.importer import import_catalogue
from core.catalogue.settings import is_default_vocabulary, project_vocabulary, save_vocabulary
from core.catalogue.vocabulary import Vocabulary
from core.settings import Settings
from db.engine import session_scope
from db.models import Image as ImageRow
from tests.core.catalogue.factory import photo_folder, predict, tags_version

ROOT = Path(__file__).resolve().parents[3]


def test_an_edited_vocabulary_is_what_the_check_reads(
    engine: Engine, settings: Settings, project_id: int, tmp_path: Path
) -> None:
    photos = photo_folder(tmp_path / "p", ["k.jpg"])
    import_catalogue(engine, settings.data_dir, project_id, b"sku,image,title\nK1,k.jpg,Fleece kangaroo top\n", photos)
    version = tags_version(engine, project_id)
    with session_scope(engine) as session:
        image_id = session.scalar(select(ImageRow.id))
    predict(engine, version, image_id, "category", {"Shoes": 0.9, "Hoodie": 0.05})
    run_check(engine, project_id, version)
    with session_scope(engine) as session:
        first = stored_results(session, project_id, version)[0]
    # the shipped vocabulary reads "top" (Top), which this head lacks: nothing compared
    assert first["mismatch_score"] is None and "has no value Top" in first["claims"][0]["note"]
    with session_scope(engine) as session:
        assert is_default_vocabulary(session, project_id)
        save_vocabulary(session, project_id, Vocabulary.from_csv("tag,value,phrase\ncategory,Hoodie,kangaroo top\n"))
    run_check(engine, project_id, version)
    with session_scope(engine) as session:
        assert not is_default_vocabulary(session, project_id)
        again = stored_results(session, project_id, version)[0]
        assert again["reasons"] == ['title says "kangaroo top" (Hoodie) · photo looks like Shoes (0.90)']
        save_vocabulary(session, project_id, None)
        assert len(project_vocabulary(session, project_id).rows) == len(Vocabulary.default().rows)


def test_cli_vocabulary_export_import_and_a_bad_file(settings: Settings, project_id: int, tmp_path: Path) -> None:
    base = ["--db", settings.db_url, "--data-dir", str(settings.data_dir), "--project", "Test project"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "core", "catalogue", "vocabulary", *args, *base],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )

    exported = run()
    assert exported.returncode == 0 and exported.stdout.startswith("tag,value,phrase,family\n")
    assert "category,T-Shirt,tee,tops\n" in exported.stdout
    (tmp_path / "mine.csv").write_text("tag,value,phrase\ncategory,Hoodie,kangaroo top\n")
    assert run("--import", str(tmp_path / "mine.csv")).returncode == 0
    assert run().stdout == "tag,value,phrase\ncategory,Hoodie,kangaroo top\n"
    (tmp_path / "bad.csv").write_text("tag,value,phrase\ncategory,,hoody\n")
    bad = run("--import", str(tmp_path / "bad.csv"))
    assert bad.returncode == 1 and "row 2: tag, value and phrase must all be filled" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert run().stdout == "tag,value,phrase\ncategory,Hoodie,kangaroo top\n"  # a bad file changes nothing
