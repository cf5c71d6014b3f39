"""Subscriptions on kvgate's engine backends (SQLite, DynamoDB), behind kvgate's
:class:`~kvgate.adapters.base.Subscription`.

The backend says how a subscriber joins and leaves its database's subscribers (SQLite:
:class:`~kvgate.adapters.sqlite_pubsub.SqliteHub`, every process on the file; DynamoDB:
a :class:`~kvgate.engine.pubsub.LocalHub`, this process); messages reach the subscription
on the event loop and wait in its queue for the stream to take them.

A subscriber that does not keep up (a stalled client) is disconnected once
:data:`MAX_QUEUED` messages wait, as Redis closes one past its pub/sub output buffer
limit, rather than letting one client's backlog grow without bound.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from kvgate import error_texts
from kvgate.adapters.base import Message, Subscription
from kvgate.engine.pubsub import Deliver
from kvgate.errors import BackendOverloaded

#: Messages one subscription may have waiting before it is disconnected.
MAX_QUEUED = 100_000

Join = Callable[[Deliver, list[bytes], bool], Awaitable[None]]
Leave = Callable[[Deliver], Awaitable[None]]


class EngineSubscription(Subscription):
    def __init__(self, join: Join, leave: Leave, closed: Callable[[], None] = lambda: None) -> None:
        self._join = join
        self._leave = leave
        self._closed = closed
        self._queue: deque[Message] = deque()
        self._ready = asyncio.Event()
        self._names: set[tuple[bool, bytes]] = set()
        self._dropped = False
        self._open = True

    def deliver(self, channel: bytes, payload: bytes, pattern: bytes | None) -> None:
        if self._dropped:
            return
        if len(self._queue) >= MAX_QUEUED:
            self._dropped = True
            self._queue.clear()
        elif pattern is None:
            self._queue.append(Message(b"message", channel, payload))
        else:
            self._queue.append(Message(b"pmessage", channel, payload, pattern))
        self._ready.set()

    async def _subscribe(self, names: tuple[bytes, ...], pattern: bool) -> None:
        await self._join(self.deliver, list(names), pattern)
        kind = b"psubscribe" if pattern else b"subscribe"
        for name in names:  # Redis confirms each name, with the client's count so far
            self._names.add((pattern, name))
            self._queue.append(Message(kind, name, len(self._names)))
        self._ready.set()

    async def subscribe(self, *channels: bytes) -> None:
        await self._subscribe(channels, False)

    async def psubscribe(self, *patterns: bytes) -> None:
        await self._subscribe(patterns, True)

    async def unsubscribe(self) -> None:
        self._names.clear()
        await self._leave(self.deliver)

    async def next_message(self, timeout: float) -> Message | None:
        if not self._queue and not self._dropped:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return None
        if self._dropped:
            raise BackendOverloaded(error_texts.SUBSCRIBER_TOO_SLOW)
        return self._queue.popleft() if self._queue else None

    async def close(self) -> None:
        if self._open:
            self._open = False
            self._closed()
            await self._leave(self.deliver)
