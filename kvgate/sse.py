"""``/subscribe/<channel>`` and ``/psubscribe/<pattern>`` as Server-Sent Events.

Lines follow Upstash: ``data: subscribe,chat,1``, ``data: message,chat,<payload>``,
``data: pmessage,<pattern>,<channel>,<payload>``.  Payloads are sent as they are (not
base64); a payload with line breaks is split over several ``data:`` lines, which SSE
clients join back with ``\\n``.  A ``: keepalive`` comment goes out every 15 seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

import redis.exceptions
from aiohttp import web

from kvgate.errors import BackendUnavailable, BadRequest
from kvgate.gateway import Database

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
    body = b",".join(parts)
    return b"".join(b"data: " + line + b"\n" for line in body.split(b"\n")) + b"\n"


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
            raise BackendUnavailable(f"ERR backend unavailable ({exc}); retry later") from None
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "Upstash-Sync-Token": gateway.sync_token(),
            }
        )
        await response.prepare(request)
        idle = 0.0
        while not gateway.shutting_down:
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            try:
                message = await pubsub.get_message(timeout=POLL_SECONDS)
            except (redis.exceptions.ConnectionError, OSError):
                await response.write(b": backend connection lost\n\n")
                break
            if message is None:
                idle += POLL_SECONDS
                if idle >= KEEPALIVE_SECONDS:
                    idle = 0.0
                    await response.write(b": keepalive\n\n")
                continue
            idle = 0.0
            await response.write(event(message))
        return response
    finally:
        await pubsub.aclose()
