"""Nothing calls out: every request a page makes goes to the app's own server (fonts and icons included)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import AppServer, wait_for_app

pytestmark = pytest.mark.e2e

# Every page of app.py, by its URL path.
PAGES = ("", "annotate", "review", "upload", "import_annotations", "export", "train", "evaluate", "catalogue")


def test_every_page_requests_only_the_apps_own_server(page, models_server: AppServer) -> None:  # type: ignore[no-untyped-def]
    own = urlsplit(models_server.url).netloc
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    for path in PAGES:
        page.goto(f"{models_server.url}/{path}")
        wait_for_app(page, timeout=180_000)
        page.wait_for_timeout(1500)  # the favicon, fonts and components load after the script has run
        wait_for_app(page)
    assert any(urlsplit(u).netloc == own for u in requests)
    # data: and blob: URLs are made in the page itself, not fetched.
    outside = sorted({u for u in requests if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).netloc != own})
    assert outside == [], f"requests that leave the app's server: {outside}"
