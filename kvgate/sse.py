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
from typing import Protocol
from urllib.parse import unquote_to_bytes

from aiohttp import web

from kvgate import error_texts
from kvgate.adapters import Message, Subscription
from kvgate.database import Database
from kvgate.errors import BackendError, BackendOverloaded, BadRequest
from kvgate.metrics import Metrics

KEEPALIVE_SECONDS = 15.0
POLL_SECONDS = 1.0


class StreamHost(Protocol):
    """What a stream needs from the gateway that serves it."""

    @property
    def shutting_down(self) -> bool: ...

    def sync_token(self) -> str: ...

    @property
    def metrics(self) -> Metrics: ...


def event(message: Message) -> bytes:
    parts = [message.kind]
    if message.kind == b"pmessage" and message.pattern is not None:
        parts.append(message.pattern)
    data = message.data if isinstance(message.data, bytes) else str(message.data).encode()
    parts += [message.channel, data]
    body = b",".join(parts).replace(b"\r", b"\\r").replace(b"\n", b"\\n")
    return b"data: " + body + b"\n\n"


async def subscribe(
    host: StreamHost,
    request: web.BaseRequest,
    database: Database,
    rest: str,
    extra_headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    """Read-only tokens may subscribe: receiving messages reads, publishing writes."""
    kind, _, tail = rest.partition("/")
    names = [unquote_to_bytes(seg) for seg in tail.split("/") if seg]
    if not names:
        raise BadRequest(error_texts.subscribe_needs_names(kind))
    if not database.entry.pubsub:
        raise BadRequest(error_texts.not_supported(kind, database.backend.kind))
    subscription = database.backend.subscription()
    try:
        if kind == "subscribe":
            await subscription.subscribe(*names)
        else:
            await subscription.psubscribe(*names)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "Upstash-Sync-Token": host.sync_token(),
                **(extra_headers or {}),  # CORS, sent before the stream starts
            }
        )
        await response.prepare(request)
        subscribers = host.metrics.subscribers.labels(database.name)
        subscribers.inc()
        try:
            with contextlib.suppress(ConnectionResetError):  # the client left
                await stream(host, request, response, subscription)
        finally:
            subscribers.dec()
        return response
    finally:
        await subscription.close()


async def stream(
    host: StreamHost, request: web.BaseRequest, response: web.StreamResponse, subscription: Subscription
) -> None:
    """Copy messages to the client until it leaves, the backend goes, or kvgate stops."""
    idle = 0.0
    while not host.shutting_down:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        try:
            message = await subscription.next_message(timeout=POLL_SECONDS)
        except BackendOverloaded as exc:  # an engine backend's subscriber fell too far behind
            await response.write(b": " + exc.message.encode() + b"\n\n")
            return
        except BackendError:
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
