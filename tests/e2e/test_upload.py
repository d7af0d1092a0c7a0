"""Uploading in a real browser: good files come in, bad ones are listed with their message."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image
from sqlalchemy import select

from db.engine import make_engine, session_scope
from db.models import Image as ImageRow
from db.models import Job
from tests.e2e.conftest import AppServer, screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def jpeg(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (120, 90), colour).save(buf, format="JPEG")
    return buf.getvalue()


def test_upload_files_and_zip(app_server: AppServer, page, tmp_path) -> None:
    (tmp_path / "red.jpg").write_bytes(jpeg((220, 20, 20)))
    (tmp_path / "fake.jpg").write_bytes(b"just text")
    with zipfile.ZipFile(tmp_path / "batch.zip", "w") as zf:
        zf.writestr("blue.jpg", jpeg((20, 20, 220)))
        zf.writestr("../evil.jpg", jpeg((1, 2, 3)))
    page.goto(f"{app_server.url}/upload")
    wait_for_app(page, timeout=120_000)
    page.locator('input[type="file"]').set_input_files(
        [str(tmp_path / "red.jpg"), str(tmp_path / "fake.jpg"), str(tmp_path / "batch.zip")]
    )
    page.get_by_text("red.jpg").first.wait_for()
    page.get_by_role("button", name="Import").click()
    page.get_by_text("Imported 2 images").wait_for(timeout=60_000)
    summary = page.get_by_text("Imported 2 images").inner_text()
    assert "2 failed" in summary  # the text file named .jpg and the zip entry escaping with ..
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    screenshot(page, "upload-report")

    engine = make_engine(app_server.db_url)
    with session_scope(engine) as session:
        names = set(
            session.scalars(select(ImageRow.original_name).where(ImageRow.original_name.in_(["red.jpg", "blue.jpg"])))
        )
        jobs = session.scalars(select(Job).where(Job.kind == "import-images")).all()
    engine.dispose()
    assert names == {"red.jpg", "blue.jpg"}
    failed = {f["name"]: f["message"] for f in jobs[-1].result["files"] if f["outcome"] == "failed"}
    assert "not an image" in failed["fake.jpg"]
    assert "leaves the archive" in failed["batch.zip/../evil.jpg"]
