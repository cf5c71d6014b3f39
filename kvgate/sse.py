"""``/subscribe/<channel>`` and ``/psubscribe/<pattern>`` as Server-Sent Events.

Lines follow Upstash: ``data: subscribe,chat,1``, ``data: message,chat,<payload>``,
``data: pmessage,<pattern>,<channel>,<payload>``.  Payloads are sent as they are (not
base64), except that CR and LF become the two characters ``\\r`` and ``\\n``: the official
JS client takes every ``data:`` line for a message of its own, so a raw line break would
cut a payload short or let a publisher forge a message on another channel.  A
``: keepalive`` comment goes out every 15 seconds.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import redis.exceptions
from aiohttp import web

from kvgate.database import Database
from kvgate.errors import BackendOverloaded, BackendUnavailable, BadRequest

if TYPE_CHECKING:
    from kvgate.app import Gateway

KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 1.0


def _text(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def event(message: dict[str, object]) -> bytes:
    parts = [_text(message["type"])]
    if message.get("pattern") is not None and message["type"] == "pmessage":
        parts.append(_text(message["pattern"]))
    parts += [_text(message["channel"]), _text(message["data"])]
    body = b",".join(parts).replace(b"\r", b"\\r").replace(b"\n", b"\\n")
    return b"data: " + body + b"\n\n"


async def subscribe(
    gateway: Gateway, request: web.BaseRequest, database: Database, rest: str
) -> web.StreamResponse:
    """Read-only tokens may subscribe: receiving messages reads, publishing writes."""
    kind, _, tail = rest.partition("/")
    names = [unquote_to_bytes(seg) for seg in tail.split("/") if seg]
    if not names:
        raise BadRequest(f"ERR {kind} needs at least one name: /{kind}/<name>")
    pubsub = database.backend.pubsub()
    try:
        try:
            if kind == "subscribe":
                await pubsub.subscribe(*names)
            else:
                await pubsub.psubscribe(*names)
        except (redis.exceptions.ConnectionError, OSError) as exc:
            if "Too many connections" in str(exc):
                raise BackendOverloaded(
                    "ERR too many open subscriptions on this kvgate process; retry later"
                ) from None
            raise BackendUnavailable(f"ERR backend unavailable ({exc}); retry later") from None
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "Upstash-Sync-Token": gateway.sync_token(),
            }
        )
        await response.prepare(request)
        with contextlib.suppress(ConnectionResetError):  # the client left
            await stream(gateway, request, response, pubsub)
        return response
    finally:
        await pubsub.aclose()


async def stream(
    gateway: Gateway, request: web.BaseRequest, response: web.StreamResponse, pubsub: Any
) -> None:
    """Copy messages to the client until it leaves, the backend goes, or kvgate stops."""
    idle = 0.0
    while not gateway.shutting_down:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        try:
            message = await pubsub.get_message(timeout=POLL_SECONDS)
        except (redis.exceptions.ConnectionError, OSError):
            await response.write(b": backend connection lost\n\n")
            return
        if message is None:
            idle += POLL_SECONDS
            if idle >= KEEPALIVE_SECONDS:
                idle = 0.0
                await response.write(b": keepalive\n\n")
            continue
        idle = 0.0
        await response.write(event(message))
