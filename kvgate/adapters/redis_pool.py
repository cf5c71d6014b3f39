"""A few multiplexed connections to one Redis node, each slot reconnecting with backoff.

Both Redis backends keep their connections here: the single-Redis backend
(:mod:`kvgate.adapters.redis_mux`) one pool for its server (and one more for confined
scripts on a shared server), the cluster backend (:mod:`kvgate.adapters.redis_cluster`)
one pool per node.  A pool knows nothing of what runs on its connections: it is given an
``opener`` that returns a connection ready for requests (connected, authenticated, on its
database), and keeps ``size`` of them open:

- a slot whose connection fails to open tries again after a jittered, doubling delay
  (50 ms → 2 s); meanwhile :meth:`NodePool.pick` finds nothing and requests answer 503;
- a connection that goes away is replaced the same way (its waiting requests get
  ``BackendUnavailable`` from the connection itself);
- :meth:`NodePool.expire` fails requests older than the backend's ``timeout`` and drops a
  connection silent for three times as long (a partition gives no RST).

The connections are :class:`kvgate.adapters.redis_mux._Connection` (an asyncio protocol
with a hiredis reader); anything with the few members of :class:`PoolConnection` will do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from kvgate.errors import BackendUnavailable, ReplyError

log = logging.getLogger("kvgate.redis")

#: The first and the longest delay between two attempts to open a connection slot.
FIRST_DELAY = 0.05
MAX_DELAY = 2.0


class PoolConnection(Protocol):
    pending: Any
    closed: asyncio.Future[None]

    @property
    def is_open(self) -> bool: ...

    def expire(self, now: float, timeout: float) -> float: ...

    def abort(self) -> None: ...


class GiveUp(Exception):
    """Raised by an opener when its slot must stop trying for good (the text says why)."""


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class NodePool:
    """``size`` connection slots to one node.

    ``reports``: log outages (slot 0 reports failures to connect, every slot a lost
    connection); a quiet pool (scripts' confined connections) leaves that to another.
    Hooks: ``on_open`` after each connection opened, ``on_reconnect`` when slot 0 is back
    after an outage (the server may have changed), ``on_lost`` when a connection is lost,
    ``on_give_up`` when the opener raised :class:`GiveUp`.
    """

    def __init__(
        self,
        opener: Callable[[], Awaitable[Any]],
        size: int,
        target: str,
        *,
        reports: bool = True,
        on_open: Callable[[], None] | None = None,
        on_reconnect: Callable[[], None] | None = None,
        on_lost: Callable[[], None] | None = None,
        on_give_up: Callable[[str], None] | None = None,
    ) -> None:
        self.opener = opener
        self.size = size
        self.target = target
        self.reports = reports
        self.on_open = on_open
        self.on_reconnect = on_reconnect
        self.on_lost = on_lost
        self.on_give_up = on_give_up
        self.conns: list[Any] = []
        self.last_error = "not connected yet"
        self.first: asyncio.Future[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    def start(self) -> asyncio.Future[None]:
        """Start the slots; the future is set once a connection is open or the first
        attempt of slot 0 failed (nobody need wait longer: requests answer 503 meanwhile)."""
        loop = asyncio.get_running_loop()
        self.first = loop.create_future()
        for slot in range(self.size):
            self._tasks.append(asyncio.create_task(self._maintain(slot)))
        return self.first

    async def wait_first(self, timeout: float) -> None:
        if self.first is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.first), timeout)

    @property
    def connected(self) -> int:
        return sum(1 for c in self.conns if c.is_open)

    def pick(self) -> Any | None:
        """The open connection with the fewest requests waiting, or None."""
        conns = self.conns
        if len(conns) == 1:
            return conns[0] if conns[0].is_open else None
        best = None
        for conn in conns:
            if conn.is_open and (best is None or len(conn.pending) < len(best.pending)):
                best = conn
        return best

    def expire(self, now: float, timeout: float) -> None:
        for conn in list(self.conns):
            # A connection that has not answered for long is presumed dead (a partition
            # gives no RST): drop it so its slot reconnects.
            if conn.expire(now, timeout) > 3 * timeout:
                log.warning("redis connection silent for %.0fs; reconnecting", 3 * timeout)
                conn.abort()

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in self.conns:
            conn.abort()
        self.conns.clear()

    async def _maintain(self, slot: int) -> None:
        first = self.first
        reports = self.reports and slot == 0
        delay = FIRST_DELAY
        while not self._closing:
            try:
                conn = await self.opener()
            except GiveUp as exc:
                if self.on_give_up is not None:
                    self.on_give_up(str(exc))
                return
            except (TimeoutError, OSError, ReplyError, BackendUnavailable) as exc:
                message = describe(exc)
                if message != self.last_error and reports:
                    log.warning("cannot connect to redis at %s: %s", self.target, message)
                self.last_error = message
                if first is not None and slot == 0 and not first.done():
                    first.set_result(None)
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, MAX_DELAY)
                continue
            if self._closing:
                conn.abort()
                return
            reconnected = delay > FIRST_DELAY
            if reports and reconnected:
                log.info("connected to redis at %s", self.target)
            delay = FIRST_DELAY
            self.conns.append(conn)
            if self.on_open is not None:
                self.on_open()
            if first is not None and not first.done():
                first.set_result(None)
            elif reports and reconnected and self.on_reconnect is not None:
                self.on_reconnect()
            try:
                await conn.closed
            finally:
                if conn in self.conns:
                    self.conns.remove(conn)
            if not self._closing:
                self.last_error = "connection lost"
                if self.reports:
                    log.warning("lost connection %d to redis at %s; reconnecting", slot, self.target)
                if self.on_lost is not None:
                    self.on_lost()
