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
    link = page.get_by_role("link", name="Download the export")
    link.wait_for(timeout=120_000)
    page.get_by_text("Exported 200 images", exact=False).wait_for()
    screenshot(page, "export-done")
    wait_for_app(page)  # the page reran once when the job ended: click the link of the settled page
    href = link.get_attribute("href")
    assert href and href.startswith("/_tagrack/file/"), href  # served from disk by the file route
    # What the link's new tab gets from the real server: the zip as an attachment, read from disk.
    response = page.request.get(app_server.url + href)
    assert response.ok and response.headers["content-disposition"].startswith("attachment")
    assert response.headers["accept-ranges"] == "bytes"  # a broken download can resume
    # The split table above now shows the splits this export gave (its cells are hidden grid cells).
    expect(page.get_by_text("not yet assigned")).to_have_count(0)
    path = tmp_path / "export.zip"
    path.write_bytes(response.body())
    # A made-up token is refused (the link is a capability, not a path on the server).
    assert page.request.get(f"{app_server.url}/_tagrack/file/not-a-token").status == 404
    assert path.name.endswith(".zip")
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert zf.testzip() is None
    assert "labels.txt" in names and "ImageSets/Main/test.txt" in names
    assert sum(n.startswith("Annotations/") for n in names) == 200
    assert sum(n.startswith("JPEGImages/") for n in names) == 200
