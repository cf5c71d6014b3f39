"""The web console at ``/_kvgate/console``: plain HTML, CSS and JavaScript in ``static/``
(shipped as package data; no build step, nothing fetched from the internet).

The page itself holds nothing secret.  Signing in posts a token to
``/_kvgate/console/session``, which answers the databases that token opens (path,
read-write or read-only, backend, whether it runs JSON documents); from then on the
page calls the database's REST API like any client, with that token (kept in the tab's
``sessionStorage``).  A read-only token gets a read-only console: the page hides the
editors, and the API refuses writes anyway.

Every file goes out with a strict Content-Security-Policy (scripts and styles from
kvgate only, no inline code, no framing), ``X-Content-Type-Options: nosniff`` and no
referrer.  ``console = false`` turns it off (404).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from kvgate import error_texts
from kvgate.errors import ReplyError

if TYPE_CHECKING:
    from kvgate.app import Gateway

STATIC = Path(__file__).with_name("static")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


@cache
def files() -> dict[str, tuple[bytes, str]]:
    """The console's files by name, read once."""
    out: dict[str, tuple[bytes, str]] = {}
    for file in STATIC.iterdir():
        kind = CONTENT_TYPES.get(file.suffix)
        if kind is not None and file.is_file():
            out[file.name] = (file.read_bytes(), kind)
    return out


def runs(database: object, *args: bytes) -> bool:
    """Whether the database's backend runs this command (JSON.SET on a Redis with
    RedisJSON, or on kvgate's engine once it has documents)."""
    try:
        return bool(database.backend.commands.lookup(list(args)).supported)  # type: ignore[attr-defined]
    except ReplyError:
        return False


async def serve_console(gateway: Gateway, request: web.BaseRequest, name: str) -> web.StreamResponse:
    if not gateway.config.console:
        return gateway.error(404, error_texts.CONSOLE_OFF)
    if name == "session":
        if request.method != "POST":
            return gateway.error(
                405, error_texts.method_not_allowed(request.method, here=False), {"Allow": "POST"}
            )
        return session(gateway, request)
    if request.method not in ("GET", "HEAD"):
        return gateway.error(
            405, error_texts.method_not_allowed(request.method, here=False), {"Allow": "GET, HEAD"}
        )
    found = files().get(name or "index.html")
    if found is None:
        return gateway.error(404, error_texts.CONSOLE_NO_FILE)
    body, kind = found
    headers = {"Content-Type": kind, **SECURITY_HEADERS, "Upstash-Sync-Token": gateway.sync_token()}
    return web.Response(body=body, headers=headers)


def session(gateway: Gateway, request: web.BaseRequest) -> web.StreamResponse:
    """The databases the presented token opens; 401 if none."""
    token = gateway.presented_token(request)
    found = []
    for path, database in gateway.databases:
        access = database.authenticate(token)
        if access is not None:
            found.append(
                {
                    "name": database.name,
                    "path": path,
                    "access": access.value,
                    "backend": database.backend.kind,
                    "json": runs(database, b"JSON.SET", b"k", b"$", b"1"),
                }
            )
    if not found:
        return gateway.error(401, error_texts.WRONGPASS)
    found.sort(key=lambda item: str(item["path"]))
    return gateway.json({"databases": found}, headers={"Cache-Control": "no-store"})
