"""Catalogue import on a real database: bad rows get messages, the rest come in; re-import updates by SKU."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from core.catalogue.decisions import decide
from core.catalogue.importer import CatalogueImportError, import_catalogue
from core.project.ingest import ingest_sources, sources_from_paths
from core.settings import Settings
from db.engine import session_scope
from db.models import CatalogueDecision, CatalogueItem
from db.models import Image as ImageRow
from tests.core.catalogue.factory import jpeg, photo_folder

pytestmark = pytest.mark.both_databases


def _items(engine: Engine, project_id: int) -> dict[str, tuple[str, list[str], dict[str, str]]]:
    with session_scope(engine) as session:
        names = dict(session.execute(select(ImageRow.id, ImageRow.original_name)).all())
        return {
            i.sku: (i.title, [names[p.image_id] for p in i.images], dict(i.structured))
            for i in session.scalars(select(CatalogueItem).where(CatalogueItem.project_id == project_id))
        }


def test_bad_rows_get_messages_and_the_rest_come_in(
    engine: Engine, settings: Settings, project_id: int, tmp_path: Path
) -> None:
    photos = photo_folder(tmp_path / "photos", ["a.jpg", "b.jpg", "c.jpg", "d.jpg"])
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    csv_text = (
        "SKU,Image,Title,Description,Colour,Price\n"
        "S1,a.jpg;b.jpg,Grey hoodie,Soft fleece,multicolour,10\n"
        "S2,missing.jpg,Tee,,,5\n"
        ",c.jpg,No SKU here,,,1\n"
        "S1,c.jpg,Repeat,,,1\n"
        "S3,c.jpg,,,,1\n"
        "S4,broken.jpg,Socks,,,1\n"
        'S5,d.jpg,"Dress, red",' + "x" * 30_000 + ",,1\n"
        "S6,d.jpg,Red dress,Flowing,,2\n"
    )
    data = csv_text.encode() + b"S7,c.jpg,Caf\xe9 shirt,,,1\n"
    report = import_catalogue(engine, settings.data_dir, project_id, data, photos)
    out = report.as_dict()
    assert (out["added"], out["refused"]) == (2, 7)
    messages = {r["row"]: r["message"] for r in out["rows"]}
    assert "'missing.jpg' is not in the project or the images given" in messages[3]
    assert messages[4] == "no SKU"
    assert "repeats row 2" in messages[5]
    assert messages[6] == "no title"
    assert "could not be read" in messages[7]
    assert "description longer than" in messages[8]
    assert "not UTF-8 (byte 0xe9" in messages[10]
    assert any("'Price'" in n for n in out["notes"])
    items = _items(engine, project_id)
    assert items["S1"] == ("Grey hoodie", ["a.jpg", "b.jpg"], {"colour": "multicolour"})
    assert items["S6"][1] == ["d.jpg"]


def test_reimport_updates_by_sku_and_keeps_decisions(
    engine: Engine, settings: Settings, project_id: int, tmp_path: Path
) -> None:
    photos = photo_folder(tmp_path / "photos", ["a.jpg", "b.jpg"])
    first = b"sku,image,title,description\nS1,a.jpg,Grey hoodie,Soft\nS2,b.jpg,Jeans,Blue\n"
    import_catalogue(engine, settings.data_dir, project_id, first, photos)
    with session_scope(engine) as session:
        item_id = session.scalar(select(CatalogueItem.id).where(CatalogueItem.sku == "S1"))
        decide(session, item_id, "fine", who="ana")
    # The photos are in the project now: a re-import without --images finds them by name.
    second = b"sku,image,title,description\nS1,a.jpg;b.jpg,Grey hoodie,Softer\nS2,b.jpg,Jeans,Blue\nS3,a.jpg,Tee,\n"
    report = import_catalogue(engine, settings.data_dir, project_id, second, None).as_dict()
    assert (report["added"], report["updated"], report["unchanged"], report["refused"]) == (1, 1, 1, 0)
    assert report["rows"][0]["message"] == "changed: description, photos"
    with session_scope(engine) as session:
        assert session.scalar(select(CatalogueItem.id).where(CatalogueItem.sku == "S1")) == item_id
        assert [d.decision for d in session.scalars(select(CatalogueDecision))] == ["fine"]
    assert _items(engine, project_id)["S1"][1] == ["a.jpg", "b.jpg"]


def test_photos_match_by_content_hash_from_a_zip(
    engine: Engine, settings: Settings, project_id: int, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "studio-0001.jpg").write_bytes(jpeg((200, 10, 10)))
    ingest_sources(engine, settings.data_dir, project_id, sources_from_paths([tmp_path / "in"]))
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("export/SKU1-front.jpg", jpeg((200, 10, 10)))  # the same picture under the seller's name
    report = import_catalogue(
        engine, settings.data_dir, project_id, b"sku,image,title\nSKU1,SKU1-front.jpg,Tee\n", archive
    )
    assert report.as_dict()["images"]["duplicate"] == 1
    assert _items(engine, project_id)["SKU1"][1] == ["studio-0001.jpg"]
    with session_scope(engine) as session:
        assert session.scalar(select(ImageRow.id).where(ImageRow.original_name == "SKU1-front.jpg")) is None


def test_a_file_without_the_columns_is_refused_whole(engine: Engine, settings: Settings, project_id: int) -> None:
    with pytest.raises(CatalogueImportError, match="missing: image"):
        import_catalogue(engine, settings.data_dir, project_id, b"sku,title\nS1,Tee\n")
    with pytest.raises(CatalogueImportError, match="empty"):
        import_catalogue(engine, settings.data_dir, project_id, b"")


def test_the_import_job_reports_and_removes_its_staged_files(
    engine: Engine, settings: Settings, project_id: int, tmp_path: Path
) -> None:
    from core.jobs import create_job, run_job
    from db.models import Job, JobStatus

    staged = tmp_path / "staged"
    photo_folder(staged / "photos", ["a.jpg"])
    (staged / "catalogue.csv").write_bytes(b"sku,image,title\nS1,a.jpg,Tee\nS2,zz.jpg,Tee\n")
    params = {
        "project_id": project_id,
        "csv_path": str(staged / "catalogue.csv"),
        "images": str(staged / "photos"),
        "who": "ana",
        "cleanup": [str(staged)],
    }
    with session_scope(engine) as session:
        job_id = create_job(session, "catalogue-import", params, project_id=project_id).id
    assert run_job(settings, engine, job_id) is JobStatus.SUCCEEDED
    with session_scope(engine) as session:
        result = session.get(Job, job_id).result
    assert (result["added"], result["refused"]) == (1, 1)
    assert not staged.exists()
