"""Redis adapter: a few long-lived connections shared by every request, multiplexed.

Each connection is an ``asyncio.Protocol`` with a hiredis reader.  Commands submitted
during one event-loop tick are written with a single ``transport.write``; replies are
matched to requests in order (Redis answers a connection's commands in order).  A
transaction is written as one contiguous MULTI ... EXEC block.

A request whose caller gives up (timeout, cancellation) stays in the reply queue so
that its replies are consumed and never handed to the next request on the connection.

When Redis goes away each connection slot reconnects with jittered exponential backoff
(:class:`kvgate.adapters.redis_pool.NodePool`, shared with the cluster backend);
meanwhile requests fail fast with :class:`BackendUnavailable` (HTTP 503).  A bound on
commands in flight turns overload into :class:`BackendOverloaded` (503) instead of an
unbounded queue.

The commands served are the server's own: on each connection of the first slot the
backend reads ``COMMAND`` and ``COMMAND DOCS`` and merges them over the baseline table,
so module commands (RedisJSON's ``JSON.SET``) and commands of newer Redis or Valkey
versions pass through with their real arity, flags and keys, under kvgate's policy.

Databases of one Redis server (``/1`` and ``/2``) are kept apart by kvgate's policy for
the commands it reads, but a Lua script's ``redis.call`` names its commands at run time,
where kvgate cannot see them.  Redis's ACLs can: they hold inside scripts.  So when
another database of this kvgate lives on the same server, scripts go through connections
of their own that kvgate confines to the database: after the usual handshake they switch
to an ACL user that kvgate (re)creates and that may run neither SELECT nor anything else
that reaches another database (:data:`CONFINED_RULES`).  Where that cannot be done (the
URL's user may not create ACL users, a server without ACLs), the database refuses scripts
and says why at start-up.  README: "Databases that share one Redis".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
import weakref
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
from kvgate.adapters.json_commands import json_command_entries
from kvgate.adapters.redis_pool import GiveUp, NodePool
from kvgate.adapters.redis_pubsub import RedisSubscription
from kvgate.adapters.resp_skim import RespError, Skimmer
from kvgate.commands import CommandTable, default_table, entries_from_reply
from kvgate.errors import (
    BackendError,
    BackendOverloaded,
    BackendTimeout,
    BackendUnavailable,
    ReplyError,
)
from kvgate.protocol import Args, Reply
from kvgate.reply_limit import UNLIMITED, ReplyTooLarge, reply_size

log = logging.getLogger("kvgate.redis")

#: Seconds to open a connection (and authenticate) before trying again.
CONNECT_TIMEOUT = 5.0

#: The ACL rules of the user scripts run as on a Redis shared with another database: every
#: key, channel and command but those that reach another database or administer the
#: server (SLOWLOG GET shows other clients' commands).  COPY goes whole: ACLs cannot refuse
#: its DB option alone.
CONFINED_RULES = (
    "~*",
    "&*",
    "+@all",
    "-@admin",
    "-select",
    "-swapdb",
    "-flushall",
    "-move",
    "-copy",
    "-migrate",
)
#: Subcommands that change the server's one function library, which every database shares.
FUNCTION_WRITERS = ("function|load", "function|delete", "function|flush", "function|restore")
#: Run on a confined connection after it switched user: it must fail (ACL), else the
#: connection is not confined.  Harmless if it ran: it selects the connection's own database.
CONFINEMENT_PROBE = b"return redis.pcall('SELECT', ARGV[1])"
#: Connections per database kept for scripts when they must be confined.
CONFINED_POOL_SIZE = 2

#: The Redis backends started in this process (on one event loop: one Gateway, one
#: config, as ``kvgate serve`` runs it), to find the databases that share a server.
_LIVE: weakref.WeakSet[RedisBackend] = weakref.WeakSet()


class _NotConfined(GiveUp):
    """A connection that cannot be confined to its database; the text says why."""


#: Bytes past the last reply boundary after which a connection follows its replies with
#: a :class:`Skimmer` too, to notice one past its request's ``max_reply_bytes``.
SKIM_AFTER = 1024 * 1024


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[list[Reply]]
    expected: int
    started: float
    limit: int  # the request's max_reply_bytes (UNLIMITED for kvgate's own commands)
    budget: int  # what is left of it
    replies: list[Reply] = field(default_factory=list)


class _Connection(asyncio.Protocol):
    """One pipelined connection.  Not used directly by requests: see :class:`RedisBackend`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._reader = hiredis.Reader(replyError=ReplyError)
        # Following big replies (see _receive): the bytes since the last reply boundary
        # and the count of replies at it, until a skimmer follows them instead.
        self._replies = 0
        self._window: list[bytes] = []
        self._window_bytes = 0
        self._window_start = 0
        self._window_limit = 0  # when an array began the window: its request's budget
        self._skimmer: Skimmer | None = None
        self._skipping = False
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self.pending: deque[_Pending] = deque()
        self.closed: asyncio.Future[None] = loop.create_future()

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            if self._skipping:
                data = self._skip(data)
            if data:
                self._receive(data)
        except (hiredis.ProtocolError, RespError, IndexError) as exc:
            log.error("protocol error from redis, dropping the connection: %r", exc)
            self.abort()

    def _receive(self, data: bytes) -> None:
        """Replies to requests, in order, each counted against its request's budget.

        hiredis parses.  Around a big reply a :class:`Skimmer` follows the same bytes, so
        that one past its request's budget is noticed while it arrives (a bulk string from
        its header) and skipped rather than buffered.  The skimmer must start at a reply
        boundary, which hiredis does not report: it is known exactly when a reply ends
        with the data fed (``has_data()`` is false just after it), and the bytes since
        then are kept (``_window``, references to the chunks) to replay into a skimmer
        once they pass ``SKIM_AFTER``.  Small replies never meet a skimmer.

        A skimmer reads an array element by element, in Python: for a big array within
        its budget that would cost many times hiredis's work.  So it leaves a reply that
        is an array to hiredis, and the window then starts at that array, to be replayed
        only once its bytes pass the request's budget (``_window_limit``): by then it is
        almost surely oversized, and the skimmer decides exactly."""
        reader = self._reader
        reader.feed(data)
        skimmer = self._skimmer
        if skimmer is None:
            self._window.append(data)
            self._window_bytes += len(data)
        pending = self.pending
        while (reply := reader.gets()) is not False:
            head = pending[0]
            size = reply_size(reply)
            if size > head.budget:
                reply = ReplyTooLarge(head.limit)
            else:
                head.budget -= size
            self._deliver(head, reply)
            if skimmer is None and not reader.has_data():  # a boundary
                self._window_from(self._replies)
        if skimmer is None:
            if not pending:
                return
            limit = self._window_limit or min(SKIM_AFTER, pending[0].budget)
            if self._window_bytes <= limit:
                return
            skimmer = self._skimmer = Skimmer()
            skimmer.replies = self._window_start
            # An array that outgrew its budget is read whole this time.
            skimmer.suspend_at = UNLIMITED if self._window_limit else self._replies
            chunks = self._window
            self._window_from(self._replies)
        else:
            skimmer.suspend_at = self._replies
            chunks = [data]
        for i, chunk in enumerate(chunks):
            skimmer.feed(chunk)
            if skimmer.suspended:  # an array in progress: hiredis alone, as said above
                self._skimmer = None
                self._window_from(skimmer.replies, [chunk[skimmer.reply_start :], *chunks[i + 1 :]])
                self._window_limit = max(1, pending[0].budget)
                return
        if skimmer.replies != self._replies:  # a bug: replies could reach the wrong request
            raise RespError(f"hiredis read {self._replies} replies, the skimmer {skimmer.replies}")
        if skimmer.in_reply and skimmer.size > pending[0].budget:
            # Past the budget: drop what hiredis holds of it and skip the rest unread.
            self._reader = hiredis.Reader(replyError=ReplyError)
            self._skipping = True
            skimmer.suspend_at = UNLIMITED
        elif not skimmer.in_reply:
            # A boundary after a big reply: a fresh reader gives back hiredis's big buffer.
            self._reader = hiredis.Reader(replyError=ReplyError)
            self._skimmer = None
            self._window_from(self._replies)
        elif skimmer.reply_start >= 0:  # the reply in progress began in this chunk: small
            self._skimmer = None
            self._window_from(self._replies, [data[skimmer.reply_start :]])

    def _window_from(self, replies: int, chunks: list[bytes] | None = None) -> None:
        """Start the window at a reply boundary: ``replies`` replies before it, ``chunks``
        the bytes since."""
        self._window = chunks or []
        self._window_bytes = sum(map(len, self._window))
        self._window_start = replies
        self._window_limit = 0

    def _skip(self, data: bytes) -> bytes:
        """Pass over the oversized reply in progress; return the bytes after its end."""
        skimmer = self._skimmer
        assert skimmer is not None
        end = skimmer.feed(data, stop_after_reply=True)
        if skimmer.in_reply:
            return b""
        head = self.pending[0]
        self._deliver(head, ReplyTooLarge(head.limit))
        self._skipping = False
        self._skimmer = None
        self._window_from(self._replies)
        return data[end:]

    def _deliver(self, head: _Pending, reply: Reply) -> None:
        head.replies.append(reply)
        self._replies += 1
        if len(head.replies) == head.expected:
            self.pending.popleft()
            if not head.future.done():
                head.future.set_result(head.replies)

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

    def submit(self, payload: bytes, expected: int, limit: int = UNLIMITED) -> asyncio.Future[list[Reply]]:
        """Send commands; their ``expected`` replies together may hold ``limit`` bytes
        (``max_reply_bytes``), past which a reply is :class:`ReplyTooLarge`."""
        return self.submit_pending(payload, expected, limit).future

    def submit_pending(self, payload: bytes, expected: int, limit: int = UNLIMITED) -> _Pending:
        """:meth:`submit`, returning the request's record: once its future is done,
        ``limit - budget`` is what its replies counted (the cluster backend adds up its
        nodes' batches with it)."""
        future: asyncio.Future[list[Reply]] = self._loop.create_future()
        pending = _Pending(future, expected, self._loop.time(), limit, limit)
        self.pending.append(pending)
        self._out.append(payload)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return pending

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


def tls_context(url_scheme_tls: bool, cert_reqs: str | None) -> ssl.SSLContext | None:
    """The TLS context of a ``rediss://`` URL (``ssl_cert_reqs=none``: no verification)."""
    if not url_scheme_tls:
        return None
    context = ssl.create_default_context()
    if cert_reqs in ("none", "optional"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def open_connection(
    address: tuple[str, str | int],
    tls: ssl.SSLContext | None,
    commands: list[Args],
    timeout: float,
) -> tuple[_Connection, list[Reply]]:
    """A multiplexed connection to ``address`` (``("unix", path)`` or ``(host, port)``)
    and the replies to ``commands`` (AUTH, SELECT...), sent in one round trip; the
    connection is dropped when it fails, and the caller checks the replies."""
    loop = asyncio.get_running_loop()
    host, port = address
    if host == "unix":
        connect = loop.create_unix_connection(lambda: _Connection(loop), str(port))
    else:
        connect = loop.create_connection(lambda: _Connection(loop), host, int(port), ssl=tls)
    _, conn = await asyncio.wait_for(connect, timeout)
    if not commands:
        return conn, []
    try:
        replies = await asyncio.wait_for(conn.submit(resp.encode_many(commands), len(commands)), timeout)
    except BaseException:
        conn.abort()
        raise
    return conn, replies


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
        self._pool = NodePool(
            lambda: self._open(), self.pool_size, self._target, on_reconnect=self._relearn_commands
        )
        self._confined_pool: NodePool | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight = 0
        self._closing = False
        self._ssl = tls_context(urlsplit(url).scheme == "rediss", params.get("ssl_cert_reqs"))
        self._handshake = self._handshake_commands(params)
        self._pubsub_client: redis.asyncio.Redis | None = None
        self._db = int(params.get("db") or 0)
        self._server = self._server_address(params)
        self._run_id: bytes | None = None
        self._answered = False  # the server answered COMMAND
        self._loop: asyncio.AbstractEventLoop | None = None
        # Scripts on a server shared with another database: see the module docstring.
        self._shared_with: list[str] = []  # the other databases' targets
        self._confined_user, self._confinement = self._confinement_commands(params, self._db)
        self._confinement_settled: asyncio.Future[None] | None = None
        self._scripts_refused: str | None = None  # why kvgate could not confine them
        self._served = self._commands
        self._script_names: frozenset[bytes] = frozenset()
        self._refresh_table()

    @classmethod
    def parse_url(cls, url: str) -> dict[str, Any]:
        """redis-py's reading of redis://, rediss:// and unix:// URLs."""
        return parse_url(url)

    @property
    def commands(self) -> CommandTable:
        return self._served

    @property
    def _conns(self) -> list[_Connection]:
        return self._pool.conns

    @property
    def _confined(self) -> list[_Connection]:
        return self._confined_pool.conns if self._confined_pool is not None else []

    @property
    def _last_error(self) -> str:
        return self._pool.last_error

    def _refresh_table(self) -> None:
        """The table served: the server's, with the refusals of a shared server."""
        table = self._commands
        self._script_names = frozenset(c.name.encode() for c in table if "@scripting" in c.categories)
        if table.get("json.get") is None:  # no JSON module: JSON.* refused with a word on where documents are
            json_commands = json_command_entries()
            table = table.merged(json_commands, "JSON.* (no JSON module)").refusing(
                json_commands, error_texts.JSON_UNAVAILABLE, "no JSON module"
            )
        if self._shared_with:
            table = table.refusing(FUNCTION_WRITERS, error_texts.FUNCTIONS_SERVER_WIDE, "shared server")
        if self._scripts_refused is not None:
            scripts = [name.decode() for name in sorted(self._script_names)]
            table = table.refusing(scripts, error_texts.SCRIPTS_NOT_CONFINED, "scripts not confined")
        self._served = table

    @staticmethod
    def _describe(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{parts.path}"

    @staticmethod
    def _server_address(params: dict[str, Any]) -> tuple[str, str | int]:
        if "path" in params:
            return ("unix", params["path"])
        return (str(params.get("host", "localhost")).lower(), int(params.get("port", 6379)))

    @staticmethod
    def _confinement_commands(params: dict[str, Any], db: int) -> tuple[str, list[Args]]:
        """The ACL user scripts run as on a shared server, and the commands that switch a
        connection to it.  Its name and password derive from the URL's credentials, so that
        every worker and every kvgate with the same URL (re)creates the same user without
        undoing another's, and only whoever holds the URL's password can compute them."""
        secret = b"\0".join(
            [
                b"kvgate-confined",
                (params.get("username") or "").encode(),
                (params.get("password") or "").encode(),
            ]
        )
        user = "kvgate-confined-" + hashlib.sha256(b"user\0" + secret).hexdigest()[:16]
        password = hashlib.sha256(b"password\0" + secret).hexdigest().encode()
        setuser: Args = [b"ACL", b"SETUSER", user.encode(), b"reset", b"on"]
        setuser += [b"#" + hashlib.sha256(password).hexdigest().encode()]
        setuser += [rule.encode() for rule in CONFINED_RULES]
        probe: Args = [b"EVAL", CONFINEMENT_PROBE, b"0", str(db).encode()]
        return user, [setuser, [b"AUTH", user.encode(), password], probe]

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
        self._loop = asyncio.get_running_loop()
        self._pool.start()
        self._tasks.append(asyncio.create_task(self._watch_timeouts()))
        await self._pool.wait_first(self.connect_timeout)
        if self._conns:
            await self._learn_commands()
        else:
            log.warning(
                "redis at %s is not reachable yet (%s); answering 503 until it is",
                self._target,
                self._last_error,
            )
        await self._find_neighbours()

    async def _learn_run_id(self) -> None:
        """The server's ``run_id``: two URLs naming one server (localhost, 127.0.0.1) show
        the same.  Stays None where INFO is refused, and is not asked of a server that has
        not answered yet (a hung one would hold start-up)."""
        if self._run_id is not None or not self._answered:
            return
        with contextlib.suppress(BackendError, TimeoutError):
            (info,) = await asyncio.wait_for(
                self._run(resp.encode([b"INFO", b"server"]), 1, 1), self.connect_timeout
            )
            if isinstance(info, bytes):
                for line in info.splitlines():
                    if line.startswith(b"run_id:"):
                        self._run_id = line.partition(b":")[2].strip() or None

    def _same_server(self, other: RedisBackend) -> bool:
        if other._server == self._server:
            return True
        return self._run_id is not None and self._run_id == other._run_id

    async def _find_neighbours(self) -> None:
        """Confine scripts here, and on every database of this process that turns out to
        share the server, before serving; wait (a bounded time) to know how it went."""
        others = [other for other in _LIVE if other._loop is self._loop and not other._closing]
        _LIVE.add(self)
        if any(other._server != self._server for other in others):  # maybe a second name
            await asyncio.gather(*(b._learn_run_id() for b in (self, *others)))
        neighbours = [other for other in others if self._same_server(other)]
        for other in neighbours:
            self._share_with(other)
            other._share_with(self)
        waiting = [  # a server not reachable yet settles it when it is
            b._confinement_settled
            for b in (self, *neighbours)
            if b._confinement_settled is not None and b._conns
        ]
        if waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(asyncio.gather(*waiting)), self.connect_timeout)

    def _share_with(self, other: RedisBackend) -> None:
        """Note that ``other`` holds a database on this server; on the first such, start
        the confined connections scripts will use."""
        self._shared_with.append(other._target)
        self._refresh_table()
        if self._confinement_settled is not None:
            return
        assert self._loop is not None
        self._confinement_settled = self._loop.create_future()
        self._confined_pool = NodePool(
            lambda: self._open(confined=True),
            min(CONFINED_POOL_SIZE, self.pool_size),
            self._target,
            reports=False,  # the main pool reports outages
            on_open=self._confined_ok,
            on_give_up=self._refuse_scripts,  # ends the slot for good
        )
        self._confined_pool.start()

    def _confined_ok(self) -> None:
        if self._confinement_settled is not None and not self._confinement_settled.done():
            self._confinement_settled.set_result(None)
            log.info(
                "redis at %s shares its server with another database of this kvgate (%s): "
                "scripts run as the ACL user %s, which cannot leave database %d",
                self._target,
                ", ".join(self._shared_with),
                self._confined_user,
                self._db,
            )

    def _refuse_scripts(self, why: str) -> None:
        """Fail closed: scripts are refused from now on (a restart tries again)."""
        if self._scripts_refused is not None:
            return
        self._scripts_refused = why
        self._refresh_table()
        if self._confinement_settled is not None and not self._confinement_settled.done():
            self._confinement_settled.set_result(None)
        log.warning(
            "redis at %s shares its server with another database of this kvgate (%s), and kvgate "
            "cannot confine scripts to database %d (%s): scripts are refused on it (%s)",
            self._target,
            ", ".join(self._shared_with),
            self._db,
            why,
            ", ".join(sorted(name.decode().upper() for name in self._script_names)),
        )

    async def close(self) -> None:
        self._closing = True
        _LIVE.discard(self)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._pool.close()
        if self._confined_pool is not None:
            await self._confined_pool.close()
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
        self._answered = True
        self._refresh_table()
        known = {c.name for c in default_table()}
        added = sorted(name for name in entries if name not in known)
        if added:
            log.info("redis at %s adds %d commands: %s", self._target, len(added), ", ".join(added[:20]))

    async def _open(self, confined: bool = False) -> _Connection:
        """A connection, authenticated and on its database; ``confined``: then switched to
        the confined user, or :class:`_NotConfined` when that fails."""
        # One round trip: should a step fail, the next ones are harmless (AUTH fails, the
        # probe selects the connection's own database) and the connection is dropped.
        commands = self._handshake + (self._confinement if confined else [])
        conn, replies = await open_connection(self._server, self._ssl, commands, self.connect_timeout)
        if commands:
            for reply in replies[: len(self._handshake)]:
                if isinstance(reply, ReplyError):
                    conn.abort()
                    raise reply
            if confined:
                setuser, auth, probe = replies[len(self._handshake) :]
                why = (
                    f"ACL SETUSER answered: {setuser}"
                    if isinstance(setuser, ReplyError)
                    else f"AUTH as {self._confined_user} answered: {auth}"
                    if isinstance(auth, ReplyError)
                    else None
                    if isinstance(probe, ReplyError)
                    else "a script could still run SELECT as that user"
                )
                if why is not None:
                    conn.abort()
                    raise _NotConfined(why)
        return conn

    def _relearn_commands(self) -> None:
        """Back after an outage: the server may have changed (upgraded, a module loaded)."""
        self._tasks.append(asyncio.create_task(self._learn_commands()))

    async def _watch_timeouts(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.settings.timeout
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            now = loop.time()
            self._pool.expire(now, timeout)
            if self._confined_pool is not None:
                self._confined_pool.expire(now, timeout)

    # -- requests
    def _pick(self, confined: bool) -> _Connection:
        pool = self._confined_pool if confined else self._pool
        conn = pool.pick() if pool is not None else None
        if conn is None:
            detail = (
                "no connection confined to this database for scripts yet" if confined else self._last_error
            )
            raise BackendUnavailable(error_texts.backend_unavailable(detail))
        return conn

    async def _run(
        self, payload: bytes, expected: int, weight: int, confined: bool = False, limit: int = UNLIMITED
    ) -> list[Reply]:
        # Admitted while fewer than max_inflight commands are in flight, whatever its size:
        # a batch at the batch limit is never refused for being large (the bound may
        # overshoot by one batch), so the two limits cannot contradict.
        if self._inflight >= self.settings.max_inflight:
            raise BackendOverloaded(error_texts.BACKEND_OVERLOADED)
        conn = self._pick(confined)
        self._inflight += weight
        try:
            return await conn.submit(payload, expected, limit)
        finally:
            self._inflight -= weight

    def _needs_confinement(self, commands: list[Args]) -> bool:
        """Whether a batch runs a script on a shared server.  The whole batch then goes to
        a confined connection: a pipeline keeps its order, a transaction its atomicity."""
        if self._confinement_settled is None:
            return False
        names = self._script_names
        return any(args[0].lower() in names for args in commands)

    async def execute(self, commands: list[Args]) -> list[Reply]:
        payload = resp.encode(commands[0]) if len(commands) == 1 else resp.encode_many(commands)
        confined = self._needs_confinement(commands)
        return await self._run(payload, len(commands), len(commands), confined, self.settings.max_reply_bytes)

    async def transaction(self, commands: list[Args]) -> list[Reply]:
        replies = await self._run(
            resp.encode_transaction(commands),
            len(commands) + 2,
            len(commands),
            self._needs_confinement(commands),
            self.settings.max_reply_bytes,
        )
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
