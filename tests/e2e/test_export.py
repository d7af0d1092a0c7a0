"""Exporting from the Export page in a real browser: the job runs, the zip downloads and is a dataset."""

from __future__ import annotations

import zipfile

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import AppServer, screenshot, wait_for_app

pytestmark = pytest.mark.e2e


def test_export_voc_and_download(app_server: AppServer, page, tmp_path) -> None:
    page.goto(f"{app_server.url}/export")
    wait_for_app(page, timeout=180_000)
    page.get_by_text("ground-truth images").first.wait_for()
    page.get_by_text("Pascal VOC (LabelImg layout").click()
    page.get_by_role("button", name="Export").click()
    button = page.get_by_role("button", name="Download the export")
    button.wait_for(timeout=120_000)
    page.get_by_text("Exported 200 images", exact=False).wait_for()
    screenshot(page, "export-done")
    wait_for_app(page)  # the page reran once when the job ended: click the button of the settled page
    with page.expect_download(timeout=60_000) as info:
        button.click()
    # The split table above now shows the splits this export gave (its cells are hidden grid cells).
    expect(page.get_by_text("not yet assigned")).to_have_count(0)
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    assert path.name.endswith(".zip")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
    assert "labels.txt" in names and "ImageSets/Main/test.txt" in names
    assert sum(n.startswith("Annotations/") for n in names) == 200
    assert sum(n.startswith("JPEGImages/") for n in names) == 200
