"""Redis adapter: a few long-lived connections shared by every request, multiplexed.

Each connection is an ``asyncio.Protocol`` with a hiredis reader.  Commands submitted
during one event-loop tick are written with a single ``transport.write``; replies are
matched to requests in order (Redis answers a connection's commands in order).  A
transaction is written as one contiguous MULTI ... EXEC block.

A request whose caller gives up (timeout, cancellation) stays in the reply queue so
that its replies are consumed and never handed to the next request on the connection.

When Redis goes away each connection slot reconnects with jittered exponential backoff;
meanwhile requests fail fast with :class:`BackendUnavailable` (HTTP 503).  A bound on
commands in flight turns overload into :class:`BackendOverloaded` (503) instead of an
unbounded queue.

The commands served are the server's own: on each connection of the first slot the
backend reads ``COMMAND`` and ``COMMAND DOCS`` and merges them over the baseline table,
so module commands (RedisJSON's ``JSON.SET``) and commands of newer Redis or Valkey
versions pass through with their real arity, flags and keys, under kvgate's policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import hiredis
import redis.asyncio
from redis.connection import parse_url

from kvgate import error_texts
from kvgate.adapters import resp
from kvgate.adapters.base import Backend, BackendSettings, Health, Subscription
from kvgate.adapters.redis_pubsub import RedisSubscription
from kvgate.commands import CommandTable, default_table, entries_from_reply
from kvgate.errors import (
    BackendError,
    BackendOverloaded,
    BackendTimeout,
    BackendUnavailable,
    ReplyError,
)
from kvgate.protocol import Args, Reply

log = logging.getLogger("kvgate.redis")

#: Seconds to open a connection (and authenticate) before trying again.
CONNECT_TIMEOUT = 5.0


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[list[Reply]]
    expected: int
    started: float
    replies: list[Reply] = field(default_factory=list)


class _Connection(asyncio.Protocol):
    """One pipelined connection.  Not used directly by requests: see :class:`RedisBackend`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._reader = hiredis.Reader(replyError=ReplyError)
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self.pending: deque[_Pending] = deque()
        self.closed: asyncio.Future[None] = loop.create_future()

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self._reader
        try:
            reader.feed(data)
            pending = self.pending
            while (reply := reader.gets()) is not False:
                head = pending[0]
                head.replies.append(reply)
                if len(head.replies) == head.expected:
                    pending.popleft()
                    if not head.future.done():
                        head.future.set_result(head.replies)
        except (hiredis.ProtocolError, IndexError) as exc:
            log.error("protocol error from redis, dropping the connection: %r", exc)
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        while self.pending:
            head = self.pending.popleft()
            if not head.future.done():
                head.future.set_exception(BackendUnavailable(error_texts.BACKEND_CONNECTION_LOST))
        if not self.closed.done():
            self.closed.set_result(None)

    # -- submitting
    @property
    def is_open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def submit(self, payload: bytes, expected: int) -> asyncio.Future[list[Reply]]:
        future: asyncio.Future[list[Reply]] = self._loop.create_future()
        self.pending.append(_Pending(future, expected, self._loop.time()))
        self._out.append(payload)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._transport is not None and self._out:
            self._transport.write(b"".join(self._out))
        self._out.clear()

    def expire(self, now: float, timeout: float) -> float:
        """Fail requests older than ``timeout`` (their replies are still consumed when they
        arrive); return the age of the oldest request still waiting."""
        for head in self.pending:
            age = now - head.started
            if age < timeout:
                break
            if not head.future.done():
                head.future.set_exception(BackendTimeout(error_texts.backend_timeout(timeout)))
        return now - self.pending[0].started if self.pending else 0.0

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class RedisBackend(Backend):
    kind = "redis"

    def __init__(
        self, url: str, settings: BackendSettings | None = None, *, connect_timeout: float = CONNECT_TIMEOUT
    ) -> None:
        super().__init__(url, settings)
        self.connect_timeout = connect_timeout
        params = self.parse_url(url)
        self._params = params
        self._commands = default_table()
        self._target = self._describe(url)
        self._conns: list[_Connection] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight = 0
        self._last_error = "not connected yet"
        self._closing = False
        self._ssl: ssl.SSLContext | None = None
        if urlsplit(url).scheme == "rediss":
            self._ssl = ssl.create_default_context()
            if params.get("ssl_cert_reqs") in ("none", "optional"):
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        self._handshake = self._handshake_commands(params)
        self._pubsub_client: redis.asyncio.Redis | None = None

    @classmethod
    def parse_url(cls, url: str) -> dict[str, Any]:
        """redis-py's reading of redis://, rediss:// and unix:// URLs."""
        return parse_url(url)

    @property
    def commands(self) -> CommandTable:
        return self._commands

    @staticmethod
    def _describe(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{parts.path}"

    @staticmethod
    def _handshake_commands(params: dict[str, Any]) -> list[Args]:
        commands: list[Args] = []
        password = params.get("password")
        if password:
            user = params.get("username")
            auth = [b"AUTH", user.encode(), password.encode()] if user else [b"AUTH", password.encode()]
            commands.append(auth)
        db = int(params.get("db") or 0)
        if db:
            commands.append([b"SELECT", str(db).encode()])
        return commands

    # -- lifecycle
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        first = loop.create_future()
        for slot in range(self.pool_size):
            self._tasks.append(asyncio.create_task(self._maintain(slot, first)))
        self._tasks.append(asyncio.create_task(self._watch_timeouts()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(first), self.connect_timeout)
        if self._conns:
            await self._learn_commands()
        else:
            log.warning(
                "redis at %s is not reachable yet (%s); answering 503 until it is",
                self._target,
                self._last_error,
            )

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for conn in self._conns:
            conn.abort()
        self._conns.clear()
        if self._pubsub_client is not None:
            await self._pubsub_client.aclose()

    async def _learn_commands(self) -> None:
        """Serve the server's own commands (see the module docstring).  On failure the
        table stays as it was: the baseline, or what an earlier connection reported."""
        try:
            infos, docs = await asyncio.wait_for(
                self._run(resp.encode_many([[b"COMMAND"], [b"COMMAND", b"DOCS"]]), 2, 2), self.connect_timeout
            )
            if isinstance(infos, ReplyError) or not isinstance(infos, list):
                raise ValueError(f"COMMAND answered {infos!r}")
            entries = entries_from_reply(infos, docs)
        except (BackendError, TimeoutError, ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning(
                "cannot read the commands of redis at %s (%s); serving the baseline", self._target, exc
            )
            return
        self._commands = default_table().merged(entries, f"{len(entries)} from the server at {self._target}")
        known = {c.name for c in default_table()}
        added = sorted(name for name in entries if name not in known)
        if added:
            log.info("redis at %s adds %d commands: %s", self._target, len(added), ", ".join(added[:20]))

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        params = self._params
        if "path" in params:
            connect = loop.create_unix_connection(lambda: _Connection(loop), params["path"])
        else:
            connect = loop.create_connection(
                lambda: _Connection(loop),
                params.get("host", "localhost"),
                int(params.get("port", 6379)),
                ssl=self._ssl,
            )
        _, conn = await asyncio.wait_for(connect, self.connect_timeout)
        if self._handshake:
            try:
                replies = await asyncio.wait_for(
                    conn.submit(resp.encode_many(self._handshake), len(self._handshake)),
                    self.connect_timeout,
                )
            except BaseException:
                conn.abort()
                raise
            for reply in replies:
                if isinstance(reply, ReplyError):
                    conn.abort()
                    raise reply
        return conn

    async def _maintain(self, slot: int, first: asyncio.Future[None]) -> None:
        delay = 0.05
        while not self._closing:
            try:
                conn = await self._open()
            except (TimeoutError, OSError, ReplyError, BackendUnavailable) as exc:
                message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if message != self._last_error and slot == 0:
                    log.warning("cannot connect to redis at %s: %s", self._target, message)
                self._last_error = message
                if slot == 0 and not first.done():
                    first.set_result(None)  # start() need not wait: we answer 503 meanwhile
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 2.0)
                continue
            reconnected = delay > 0.05
            if slot == 0 and reconnected:
                log.info("connected to redis at %s", self._target)
            delay = 0.05
            self._conns.append(conn)
            if not first.done():
                first.set_result(None)
            elif slot == 0 and reconnected:  # the server may have changed (upgraded, a module loaded)
                self._tasks.append(asyncio.create_task(self._learn_commands()))
            try:
                await conn.closed
            finally:
                if conn in self._conns:
                    self._conns.remove(conn)
            if not self._closing:
                self._last_error = "connection lost"
                log.warning("lost connection %d to redis at %s; reconnecting", slot, self._target)

    async def _watch_timeouts(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.settings.timeout
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            now = loop.time()
            for conn in list(self._conns):
                # A connection that has not answered for long is presumed dead (a
                # partition gives no RST): drop it so its slot reconnects.
                if conn.expire(now, timeout) > 3 * timeout:
                    log.warning("redis connection silent for %.0fs; reconnecting", 3 * timeout)
                    conn.abort()

    # -- requests
    def _pick(self) -> _Connection:
        conns = self._conns
        if not conns:
            raise BackendUnavailable(error_texts.backend_unavailable(self._last_error))
        if len(conns) == 1:
            return conns[0]
        best = conns[0]
        for conn in conns[1:]:
            if len(conn.pending) < len(best.pending):
                best = conn
        return best

    async def _run(self, payload: bytes, expected: int, weight: int) -> list[Reply]:
        # Admitted while fewer than max_inflight commands are in flight, whatever its size:
        # a batch at the batch limit is never refused for being large (the bound may
        # overshoot by one batch), so the two limits cannot contradict.
        if self._inflight >= self.settings.max_inflight:
            raise BackendOverloaded(error_texts.BACKEND_OVERLOADED)
        conn = self._pick()
        if not conn.is_open:
            raise BackendUnavailable(error_texts.backend_unavailable(self._last_error))
        self._inflight += weight
        try:
            return await conn.submit(payload, expected)
        finally:
            self._inflight -= weight

    async def execute(self, commands: list[Args]) -> list[Reply]:
        payload = resp.encode(commands[0]) if len(commands) == 1 else resp.encode_many(commands)
        return await self._run(payload, len(commands), len(commands))

    async def transaction(self, commands: list[Args]) -> list[Reply]:
        replies = await self._run(resp.encode_transaction(commands), len(commands) + 2, len(commands))
        return resp.exec_replies(replies)

    def health(self) -> Health:
        connected = sum(1 for c in self._conns if c.is_open)
        return Health(
            ok=connected > 0,
            detail="ok" if connected else self._last_error,
            gauges={
                "connections_open": connected,
                "connections_configured": self.pool_size,
                "commands_in_flight": self._inflight,
            },
        )

    def subscription(self) -> Subscription:
        # Subscriptions hold a connection each, so they get redis-py's pool, not the mux.
        if self._pubsub_client is None:
            self._pubsub_client = redis.asyncio.from_url(
                self.url,
                max_connections=self.settings.max_subscriptions,
                socket_connect_timeout=self.connect_timeout,
            )
        return RedisSubscription(self._pubsub_client.pubsub())
