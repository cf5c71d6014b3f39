"""SQLite backend (``sqlite:///path/to/file.db``): kvgate's engine over a local file.

Threads, so that no request holds the event loop and the loop never waits on SQLite:

* **one writer thread** owns the write connection.  It takes every write job queued since
  its last round, runs them in one ``BEGIN IMMEDIATE`` transaction (each job inside its
  own savepoint) and commits once: a group commit.  A job's reply is sent only after the
  commit, so an acknowledged write is in the WAL and survives a crash of the process.
  Scripts that may write (EVAL, EVALSHA) run there.
* **point reads** (:data:`LOOP_READS`, at most :data:`LOOP_ARGS` arguments in the whole
  request) run on the event loop on a read-only connection: WAL readers never wait for the
  writer, and such a read costs less on the loop than a hop to a thread (measured: GET
  p50 9 us on the loop, 57 us through a reader thread).
* **every other read** (read-only scripts, SCAN/KEYS/SMEMBERS/ranges, anything counting a
  collection, a big MGET or EXISTS, a pipeline of many reads) runs on one of
  :data:`READERS` reader threads, each with its own read-only connection and its own Lua
  runtime.  A job is one read transaction (one consistent snapshot), as on the loop.
  ``max_inflight`` counts reader and writer jobs together; a job not answered within
  ``timeout`` answers 504, and a reader skips a job whose request has given up.

Several kvgate processes may share one file: ``BEGIN IMMEDIATE`` serializes writers
across processes (waiting up to ``busy_timeout``), and every unit reads what committed
before it.  Expired keys are invisible to reads and deleted by writes that meet them and
by a sweeper every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from kvgate import error_texts
from kvgate.adapters import entry_named
from kvgate.adapters.base import Backend, BackendSettings, Health, Subscription
from kvgate.adapters.engine_pubsub import EngineSubscription
from kvgate.adapters.sqlite_pubsub import SqliteHub, wake
from kvgate.adapters.sqlite_store import SchemaError, SqliteStore, SqliteTxn, now_ms
from kvgate.commands import CommandTable
from kvgate.engine import Engine, command_table
from kvgate.engine.scripting import Scripting
from kvgate.errors import BackendOverloaded, BackendTimeout, BackendUnavailable, StartupError
from kvgate.protocol import Args, Reply
from kvgate.reply_limit import ReplyBudget

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: SQLite's own busy wait only
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("kvgate.sqlite")

#: Write jobs committed together, at most.
MAX_GROUP = 256
#: Reader threads per database and process.  A script holds one for up to its time limit,
#: so a few slow scripts still leave room; each has its own connection and Lua runtime.
READERS = 4
#: Reads that cost one index lookup per argument on SQLite: these (and only these) may run
#: on the event loop.  The counts (HLEN, SCARD, LLEN, ZCARD) read one kept count since
#: schema 2 but are not among them yet; DBSIZE also counts the expired keys not yet swept,
#: ZRANK and LINDEX sum block counts (tens of microseconds), ZCOUNT and ZLEXCOUNT walk rows.
LOOP_READS = frozenset(
    b"get mget exists touch type ttl pttl expiretime pexpiretime strlen hget hmget hexists "
    b"hstrlen sismember smismember zscore zmscore ping echo time".split()
)
#: Most arguments, over the whole request, for a read on the event loop: 64 lookups take
#: about 0.25 ms there; a larger request takes a reader thread.
LOOP_ARGS = 64
SWEEP_INTERVAL = 1.0
SWEEP_BATCH = 1000


def _retrieve(future: asyncio.Future[list[Reply]]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a reply nobody waits for any more is not an error


@dataclass(frozen=True)
class SqliteURL:
    """What a ``sqlite://`` URL says (its options' defaults are in the registry entry)."""

    path: str
    busy_timeout_ms: int
    synchronous: str  # NORMAL, or FULL: also survives power loss, at a cost per commit


def parse_url(url: str) -> SqliteURL:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, with ``?busy_timeout_ms=``
    and ``?synchronous=``."""
    parts = urlsplit(url)
    if parts.netloc:
        raise ValueError(
            "a sqlite URL has no host: sqlite:///relative/path.db or sqlite:////absolute/path.db"
        )
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path or path == ":memory:":
        raise ValueError("a sqlite URL needs a file path: sqlite:///kvgate.db")
    options = entry_named("sqlite").read_options(parts.query)
    try:
        busy_timeout_ms = int(options["busy_timeout_ms"] or "")
    except ValueError:
        raise ValueError("busy_timeout_ms must be a whole number of milliseconds") from None
    return SqliteURL(path, busy_timeout_ms, options["synchronous"] or "")


class _Job:
    """Work for the writer thread: ``run`` gets the unit and returns the replies."""

    __slots__ = ("future", "loop", "run")

    def __init__(self, run: Callable[[SqliteTxn], list[Reply]], loop: asyncio.AbstractEventLoop) -> None:
        self.run = run
        self.loop = loop
        self.future: asyncio.Future[list[Reply]] = loop.create_future()

    def finish(self, replies: list[Reply] | None, error: BaseException | None) -> None:
        self.loop.call_soon_threadsafe(_settle, self.future, replies, error)


def _settle(
    future: asyncio.Future[list[Reply]], replies: list[Reply] | None, error: BaseException | None
) -> None:
    if future.done():  # the request went away; the write happened all the same
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(replies)  # type: ignore[arg-type]


class WriterTurn:
    """Whose turn it is to write, among the kvgate processes on one file.

    SQLite's own wait for its write lock (``busy_timeout``) sleeps in steps of up to
    100 ms, so two busy writers give each other latency spikes of hundreds of ms.  An
    exclusive ``flock`` on a side file, taken by the writer thread around each group,
    hands the turn over as soon as it is released (waiters sleep in the kernel, not in
    timed steps).  ``BEGIN IMMEDIATE`` still guards against writers that are not kvgate.
    """

    def __init__(self, path: str) -> None:
        self._fd: int | None = None
        if fcntl is not None:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class SqliteBackend(Backend):
    kind = "sqlite"
    knows_shebang = True  # the engine's scripting reads "#!lua flags=..." as Redis 7.0 does

    def __init__(self, url: str, settings: BackendSettings | None = None) -> None:
        super().__init__(url, settings)
        self.where = parse_url(url)
        self.path = self.where.path
        # point reads run on the event loop, other reads on reader threads, writes on the writer
        self.engine = Engine(self.kind)
        self.scripting = Scripting()  # this database's Lua runtimes, limits, unsaved scripts
        self._store: SqliteStore | None = None
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._read_queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._readers: list[threading.Thread] = []
        self._sweeper: asyncio.Task[None] | None = None
        self.hub = SqliteHub(self.path, self._hub_write)  # pub/sub: sqlite_pubsub
        self._subscriptions = 0
        self._inflight = 0
        self._closing = False
        self._last_error = ""
        self.commits = 0
        self.grouped = 0

    @classmethod
    def parse_url(cls, url: str) -> SqliteURL:
        return parse_url(url)

    @property
    def commands(self) -> CommandTable:
        return command_table()

    # -- lifecycle
    def preflight(self) -> None:
        """Open the file once (creating the schema) and close it: fails with one line."""
        self._open().close()

    def _open(self) -> SqliteStore:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise StartupError(f"sqlite: cannot create {self.path}: directory {directory} does not exist")
        try:
            return SqliteStore(self.path, self.where.busy_timeout_ms, scripting=self.scripting)
        except (sqlite3.Error, SchemaError, OSError) as exc:
            raise StartupError(f"sqlite: cannot open {self.path}: {exc}") from None

    async def start(self) -> None:
        self._store = await asyncio.to_thread(self._open)
        self._turn = WriterTurn(self.path + "-kvgate.lock")
        if self.where.synchronous == "FULL":
            self._store.writer.execute("PRAGMA synchronous = FULL")
        self._writer = threading.Thread(target=self._write_loop, name="kvgate-sqlite-writer", daemon=True)
        self._writer.start()
        for n in range(READERS):
            reader = threading.Thread(target=self._read_loop, name=f"kvgate-sqlite-reader-{n}", daemon=True)
            reader.start()
            self._readers.append(reader)
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def close(self) -> None:
        # Before anything else: the sweeper's loop ends on it even if a cancellation is
        # swallowed (wait_for may return a result that raced with the cancel).
        await self.hub.close(write=self._writer is not None)  # its rows go while the writer runs
        self._closing = True  # no new jobs from here on
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._writer is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        for _ in self._readers:
            self._read_queue.put(None)
        for reader in self._readers:
            await asyncio.to_thread(reader.join)
        self._readers.clear()
        closed = BackendUnavailable(error_texts.BACKEND_CLOSED)
        for pending in (self._queue, self._read_queue):
            while True:  # jobs queued behind the stop sentinels: answer them, never leave them hanging
                try:
                    job = pending.get_nowait()
                except queue.Empty:
                    break
                if job is not None and not job.future.done():
                    job.future.set_exception(closed)
        if self._store is not None:
            self._store.close()
            self._store = None
            self._turn.close()

    def health(self) -> Health:
        alive = self._writer is not None and self._writer.is_alive()
        return Health(
            ok=alive,
            detail=self.path if alive else f"writer stopped {self._last_error}".strip(),
            gauges={"inflight": self._inflight, "commits": self.commits, "grouped_jobs": self.grouped},
        )

    # -- pub/sub (sqlite_pubsub): subscriptions of every process on the file
    def subscription(self) -> Subscription:
        self._require_store()
        if self._subscriptions >= self.settings.max_subscriptions:
            raise BackendOverloaded(error_texts.TOO_MANY_SUBSCRIPTIONS)
        self._subscriptions += 1
        return EngineSubscription(self.hub.join, self.hub.leave, self._subscription_closed)

    def _subscription_closed(self) -> None:
        self._subscriptions -= 1

    async def _hub_write(self, run: Callable[[SqliteTxn], int]) -> int:
        """A pub/sub registration on the writer (housekeeping: not in ``max_inflight``)."""
        write = self._write(lambda t: [run(t)], counted=False)
        try:
            (reply,) = await asyncio.wait_for(asyncio.shield(write), self.settings.timeout)
        except TimeoutError:
            raise BackendTimeout(error_texts.sqlite_writer_timeout(self.settings.timeout)) from None
        assert isinstance(reply, int)
        return reply

    # -- commands
    async def execute(self, commands: list[Args]) -> list[Reply]:
        return await self._run(commands, self.reply_budget())

    async def transaction(self, commands: list[Args]) -> list[Reply]:
        # a job runs inside one savepoint: the commands apply together or not at all
        budget = self.reply_budget()
        replies = await self._run(commands, budget)
        budget.check()
        return replies

    async def _run(self, commands: list[Args], budget: ReplyBudget) -> list[Reply]:
        # Each reply is counted as it is made, so an oversized one is dropped at once.
        if not all(self.engine.is_read(c) for c in commands):
            return await self._submit(commands, budget)
        if self.on_loop(commands):
            return self._read(commands, budget)
        return await self._submit_read(commands, budget)

    @staticmethod
    def on_loop(commands: list[Args]) -> bool:
        """Whether these reads are cheap enough for the event loop: point reads only, and
        few arguments in all (see :data:`LOOP_READS`, :data:`LOOP_ARGS`)."""
        budget = LOOP_ARGS
        for args in commands:
            budget -= len(args)
            if budget < 0 or args[0].lower() not in LOOP_READS:
                return False
        return True

    def _read(self, commands: list[Args], budget: ReplyBudget) -> list[Reply]:
        store = self._require_store()
        try:
            with store.unit(False) as t:
                return [budget.admit(self.engine.execute(t, c)) for c in commands]
        except sqlite3.Error as exc:
            raise BackendUnavailable(error_texts.sqlite_read_failed(exc)) from None

    def _require_store(self) -> SqliteStore:
        if self._store is None or self._closing:
            raise BackendUnavailable(error_texts.BACKEND_CLOSED)
        return self._store

    def _require_writer(self) -> None:
        self._require_store()
        if self._writer is None or not self._writer.is_alive():
            raise BackendUnavailable(error_texts.sqlite_writer_stopped(self._last_error or "unknown"))

    async def _submit(self, commands: list[Args], budget: ReplyBudget) -> list[Reply]:
        # Jobs count until the writer has run them, even when their request gave up: the
        # queue itself is bounded, not only the requests still waiting.
        if self._inflight >= self.settings.max_inflight:
            raise BackendOverloaded(error_texts.SQLITE_WRITER_BUSY)
        engine = self.engine
        future = self._write(lambda t: [budget.admit(engine.execute(t, c)) for c in commands])
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.settings.timeout)
        except TimeoutError:
            raise BackendTimeout(error_texts.sqlite_writer_timeout(self.settings.timeout)) from None

    async def _submit_read(self, commands: list[Args], budget: ReplyBudget) -> list[Reply]:
        """Reads for a reader thread.  A job counts in ``max_inflight`` until it is answered
        or its request gives up (a reader then skips it: reading changes nothing)."""
        self._require_store()
        if self._inflight >= self.settings.max_inflight:
            raise BackendOverloaded(error_texts.SQLITE_READERS_BUSY)
        engine = self.engine
        job = _Job(
            lambda t: [budget.admit(engine.execute(t, c)) for c in commands], asyncio.get_running_loop()
        )
        self._inflight += 1
        job.future.add_done_callback(self._job_done)
        self._read_queue.put(job)
        try:
            return await asyncio.wait_for(job.future, self.settings.timeout)
        except TimeoutError:
            raise BackendTimeout(error_texts.sqlite_readers_timeout(self.settings.timeout)) from None

    def _write(
        self, run: Callable[[SqliteTxn], list[Reply]], *, counted: bool = True
    ) -> asyncio.Future[list[Reply]]:
        """Queue ``run`` for the writer.  Housekeeping (``counted=False``) takes no place in
        ``max_inflight``: the expiry sweep never turns a client's command away."""
        self._require_writer()
        job = _Job(run, asyncio.get_running_loop())
        if counted:
            self._inflight += 1
            job.future.add_done_callback(self._job_done)
        else:
            job.future.add_done_callback(_retrieve)
        self._queue.put(job)
        return job.future

    def _job_done(self, future: asyncio.Future[list[Reply]]) -> None:
        self._inflight -= 1
        _retrieve(future)

    # -- the reader threads
    def _read_loop(self) -> None:
        assert self._store is not None
        store = self._store
        try:
            while True:
                job = self._read_queue.get()
                if job is None:
                    return
                if job.future.done():  # its request gave up (timeout): a read need not run
                    continue
                try:
                    with store.unit(False) as t:
                        replies = job.run(t)
                except sqlite3.Error as exc:
                    job.finish(None, BackendUnavailable(error_texts.sqlite_read_failed(exc)))
                except Exception as exc:  # a bug: answer, keep the thread
                    log.exception("sqlite read job failed")
                    job.finish(None, BackendUnavailable(error_texts.sqlite_read_failed(exc)))
                else:
                    job.finish(replies, None)
        finally:
            store.close_reader()

    # -- the writer thread
    def _write_loop(self) -> None:
        assert self._store is not None
        conn = self._store.writer
        while True:
            first = self._queue.get()
            if first is None:
                return
            group: list[_Job] = [first]
            stop = False
            while len(group) < MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                group.append(nxt)
            try:
                with self._turn:
                    self._run_group(conn, group)
            except Exception as exc:  # the file itself failed (I/O error...): answer, go on
                log.exception("sqlite writer: a group of %d jobs failed", len(group))
                self._last_error = str(exc)
                with contextlib.suppress(sqlite3.Error):
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                error = BackendUnavailable(error_texts.sqlite_write_failed(exc))
                for job in group:
                    job.finish(None, error)  # a job answered already keeps its first answer
            if stop:
                return

    def _run_group(self, conn: sqlite3.Connection, group: list[_Job]) -> None:
        results: list[tuple[_Job, list[Reply] | None, BaseException | None]] = []
        wakeups: set[bytes] = set()  # pub/sub listeners to wake once the group commits
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._last_error = str(exc)
            error = BackendUnavailable(error_texts.sqlite_busy(exc))
            for job in group:
                job.finish(None, error)
            return
        for job in group:
            conn.execute("SAVEPOINT job")
            try:
                t = SqliteTxn(conn, now_ms(), writable=True, scripting=self.scripting)
                replies = job.run(t)
                t.settle()  # counts held during the job are written inside its savepoint
                conn.execute("RELEASE job")
                wakeups |= t.wakeups
                results.append((job, replies, None))
            except Exception as exc:  # a store failure or a bug: this job applies nothing
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                log.exception("sqlite write job failed")
                results.append(
                    (job, None, BackendUnavailable(error_texts.sqlite_write_failed(exc, applied=True)))
                )
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._last_error = str(exc)
            error = BackendUnavailable(error_texts.sqlite_commit_failed(exc))
            results = [(job, None, error) for job, _, _ in results]
        else:
            self.commits += 1
            self.grouped += len(group)
            wake(wakeups)
        for job, answer, failure in results:
            job.finish(answer, failure)

    # -- expiry
    async def _sweep_forever(self) -> None:
        while not self._closing:
            try:
                write = self._write(lambda t: [t.sweep(SWEEP_BATCH)], counted=False)
                (swept,) = await asyncio.wait_for(asyncio.shield(write), self.settings.timeout)
            except (BackendUnavailable, TimeoutError):
                swept = 0
            if swept != SWEEP_BATCH:  # a full batch: more may be waiting, go again at once
                await asyncio.sleep(SWEEP_INTERVAL)
