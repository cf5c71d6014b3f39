"""Subscriptions on a Redis (or fakeredis) through redis-py's ``PubSub``, behind kvgate's
:class:`~kvgate.adapters.base.Subscription`: redis-py's objects and exceptions stay here.

A subscription holds a connection of its own for as long as it lasts, so subscriptions
use redis-py's connection pool (bounded by ``max_subscriptions``), not the multiplexer.
"""

from __future__ import annotations

from typing import Any

import redis.exceptions

from kvgate import error_texts
from kvgate.adapters.base import Message, Subscription
from kvgate.errors import BackendError, BackendOverloaded, BackendUnavailable


def _bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _failure(exc: Exception) -> BackendError:
    if "Too many connections" in str(exc):
        return BackendOverloaded(error_texts.TOO_MANY_SUBSCRIPTIONS)
    return BackendUnavailable(error_texts.backend_unavailable(str(exc)))


class RedisSubscription(Subscription):
    """``pubsub`` is a redis-py asyncio ``PubSub`` (fakeredis's has the same API)."""

    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub

    async def subscribe(self, *channels: bytes) -> None:
        try:
            await self._pubsub.subscribe(*channels)
        except (redis.exceptions.ConnectionError, OSError) as exc:
            raise _failure(exc) from None

    async def psubscribe(self, *patterns: bytes) -> None:
        try:
            await self._pubsub.psubscribe(*patterns)
        except (redis.exceptions.ConnectionError, OSError) as exc:
            raise _failure(exc) from None

    async def unsubscribe(self) -> None:
        try:
            await self._pubsub.unsubscribe()
            await self._pubsub.punsubscribe()
        except (redis.exceptions.ConnectionError, OSError) as exc:
            raise _failure(exc) from None

    async def next_message(self, timeout: float) -> Message | None:
        try:
            raw = await self._pubsub.get_message(timeout=timeout)
        except (redis.exceptions.ConnectionError, OSError) as exc:
            raise _failure(exc) from None
        if raw is None:
            return None
        pattern = raw.get("pattern")
        data = raw["data"]
        return Message(
            kind=_bytes(raw["type"]),
            channel=_bytes(raw["channel"]),
            data=data if isinstance(data, int) else _bytes(data),
            pattern=_bytes(pattern) if pattern is not None else None,
        )

    async def close(self) -> None:
        await self._pubsub.aclose()
