"""The export download route's tokens (ui/file_route.py): one file, for a while, never a path."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from starlette.requests import Request

from ui.file_route import ROUTE_PREFIX, grant, granted, route, serve


def _run(coro):
    """asyncio.run in a thread of its own: a browser test earlier in this process (Playwright's sync
    API) may have left an event loop running on this one, where asyncio.run refuses to start."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _get(token: str) -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": ROUTE_PREFIX + token, "path_params": {"token": token}, "headers": []}
    )


def test_a_token_grants_its_file_until_it_expires(tmp_path: Path) -> None:
    zipped = tmp_path / "export.zip"
    zipped.write_bytes(b"PK" + bytes(200_000))
    token = grant(zipped, "admin", ttl_s=60, now=1000.0)
    assert len(token) >= 40  # 256 random bits: not guessable
    assert granted(token, now=1059.0) == zipped.resolve()
    assert granted(token, now=1060.0) is None  # expired
    assert granted("made-up", now=1000.0) is None
    other = grant(zipped, "admin", now=1000.0)
    assert other != token
    zipped.unlink()
    assert granted(other, now=1001.0) is None  # the file is gone


def test_the_route_streams_the_file_from_disk_and_refuses_an_unknown_token(tmp_path: Path) -> None:
    zipped = tmp_path / "big.zip"
    data = bytes(range(256)) * 1000  # 256,000 bytes: several 64 KiB chunks
    zipped.write_bytes(data)
    token = grant(zipped, "admin")
    response = _run(serve(_get(token)))
    assert type(response).__name__ == "FileResponse"  # read from disk by chunks when sent, never held whole
    assert response.headers["content-disposition"].startswith("attachment")
    assert 'filename="big.zip"' in response.headers["content-disposition"]
    sent: list[bytes] = []
    started: list[dict] = []

    async def receive() -> dict:  # the client stays connected until the response ends
        await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            started.append(dict(message["headers"]))
        if message["type"] == "http.response.body":
            sent.append(message.get("body", b""))

    _run(response({"type": "http", "method": "GET", "path": "/", "headers": []}, receive, send))
    assert b"".join(sent) == data
    assert len([c for c in sent if c]) >= 4  # in chunks
    assert started[0][b"content-length"] == str(len(data)).encode()
    refused = _run(serve(_get("not-a-token")))
    assert refused.status_code == 404
    assert route().path == ROUTE_PREFIX + "{token}"
