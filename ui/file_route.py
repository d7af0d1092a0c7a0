"""Big files (exports) downloaded straight from disk in chunks, never through the server's memory.

Streamlit's ``download_button`` takes the file's bytes: its media store keeps the whole file in
the server's memory for the session (a 100,000-image export is gigabytes). Its static folder
serves from disk but from one folder beside the app, to anyone, without a sign-in. So the
server gets one route of ours, ``/_tagrack/file/<token>``: a Starlette ``FileResponse`` that
reads the file 64 KiB at a time (and answers Range requests, so a broken download resumes). The
token is a random 256-bit capability that one signed-in person's page asked for, for one file,
and it expires after :data:`TOKEN_TTL_S`; the server keeps the map in its own memory (the page
and the route run in the same process).

Streamlit 1.67 offers custom routes only to an ``st.App`` entry point, and Tagrack is started
with ``streamlit run app.py``; the route is therefore added to the running server's Starlette
router (found once per process). Where there is no such server (AppTest, the CLI, a later
Streamlit that moved it) :func:`offer` returns None and the page says where the file is on the
server instead.
"""

from __future__ import annotations

import gc
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROUTE_PREFIX = "/_tagrack/file/"
TOKEN_TTL_S = 3600.0


@dataclass(frozen=True)
class _Grant:
    path: Path
    who: str | None
    expires: float


_GRANTS: dict[str, _Grant] = {}
_LOCK = threading.Lock()
_INSTALLED: list[bool] = []  # [] not tried yet, [True] route installed, [False] no server to install on


def grant(path: Path, who: str | None, ttl_s: float = TOKEN_TTL_S, now: float | None = None) -> str:
    """A new token that lets its holder download ``path`` until ``ttl_s`` from now."""
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    with _LOCK:
        for key in [k for k, g in _GRANTS.items() if g.expires <= now]:
            del _GRANTS[key]
        _GRANTS[token] = _Grant(Path(path).resolve(), who, now + ttl_s)
    return token


def granted(token: str, now: float | None = None) -> Path | None:
    """The file ``token`` grants, or None when it is unknown, expired or the file is gone."""
    now = time.time() if now is None else now
    with _LOCK:
        g = _GRANTS.get(token)
    if g is None or g.expires <= now or not g.path.is_file():
        return None
    return g.path


async def serve(request: Any) -> Any:
    """The route: the granted file from disk, in chunks, as an attachment; 404 otherwise."""
    from starlette.responses import FileResponse, PlainTextResponse

    path = granted(request.path_params["token"])
    if path is None:
        return PlainTextResponse("This download link is unknown or has expired: export again.", status_code=404)
    return FileResponse(path, filename=path.name, media_type="application/zip")


def route() -> Any:
    """The Starlette route serving granted files (also what tests mount on their own app)."""
    from starlette.routing import Route

    return Route(ROUTE_PREFIX + "{token}", serve, methods=["GET", "HEAD"])


def _starlette_app() -> Any | None:
    try:
        from streamlit.web.server.starlette.starlette_server import UvicornServer
    except ImportError:
        return None
    for obj in gc.get_objects():
        if isinstance(obj, UvicornServer):
            server = getattr(obj, "_server", None)
            app = getattr(getattr(server, "config", None), "app", None)
            if app is not None and hasattr(app, "router"):
                return app
    return None


def install() -> bool:
    """Adds the route to the running Streamlit server once per process; False when there is none."""
    with _LOCK:
        if not _INSTALLED:
            app = _starlette_app()
            if app is not None:
                # First, ahead of Streamlit's catch-all routes (its index page for any path).
                app.router.routes.insert(0, route())
            _INSTALLED.append(app is not None)
        return _INSTALLED[0]


def offer(path: Path, who: str | None) -> str | None:
    """A relative URL that downloads ``path`` from disk, or None where the route cannot be served."""
    if not install():
        return None
    from streamlit import config

    base = (config.get_option("server.baseUrlPath") or "").strip("/")
    return ("/" + base if base else "") + ROUTE_PREFIX + grant(path, who)
