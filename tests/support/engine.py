"""Differential testing of kvgate's engine: the same commands to a real Redis (the oracle)
and to the engine on each store, replies compared exactly, error texts included."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from kvgate.adapters import REGISTRY
from kvgate.adapters.dynamodb import now_ms
from kvgate.adapters.dynamodb_txn import Need, Snapshot, SnapshotTxn
from kvgate.commands import default_table
from kvgate.engine import Engine
from kvgate.engine.memory import MemoryStore
from kvgate.engine.storage import Txn
from kvgate.errors import ReplyError
from kvgate.protocol import Reply
from tests.support.servers import RedisServer

Arg = str | bytes | int | float


def encode(args: Sequence[Arg]) -> list[bytes]:
    out = []
    for a in args:
        if isinstance(a, bytes):
            out.append(a)
        elif isinstance(a, str):
            out.append(a.encode())
        else:
            out.append(str(a).encode())
    return out


def normalize(reply: object) -> Reply:
    """hiredis's reply types to kvgate's (its ReplyError to ours)."""
    if type(reply).__name__ == "ReplyError" and not isinstance(reply, ReplyError):
        return ReplyError(str(reply))
    if isinstance(reply, list):
        return [normalize(r) for r in reply]
    return reply  # type: ignore[return-value]


def comparable(reply: Reply) -> object:
    """Replies compared by value (two ReplyError objects are never ``==``)."""
    if isinstance(reply, ReplyError):
        return ("error", reply.message)
    if isinstance(reply, list):
        return [comparable(r) for r in reply]
    return reply


class EngineClient:
    """Runs one command per unit on a store, as a backend does, validating it against the
    command table first (unknown command, arity), as the gateway does."""

    def __init__(self, units: Callable[[bool], AbstractContextManager[Txn]], name: str) -> None:
        self.units = units
        self.name = name
        self.engine = Engine(name)
        self.table = default_table()

    def __call__(self, *args: Arg) -> Reply:
        cmd = encode(args)
        try:
            self.table.lookup(cmd)
        except ReplyError as exc:
            return exc
        # as the SQLite backend routes: only the engine's reads run on a read unit
        with self.units(not self.engine.is_read(cmd)) as t:
            return self.engine.execute(t, cmd)


class _MemoryUnits:
    def __init__(self) -> None:
        self.store = MemoryStore()
        self.clock: int | None = None  # tests may fix the time

    def __call__(self, write: bool) -> AbstractContextManager[Txn]:
        from contextlib import nullcontext

        return nullcontext(self.store.txn(self.clock))


def memory_client() -> EngineClient:
    return EngineClient(_MemoryUnits(), "memory")


def sqlite_client(path: Path) -> EngineClient:
    from kvgate.adapters.sqlite_store import SqliteStore

    store = SqliteStore(str(path))
    return EngineClient(store.unit, "sqlite")


class DynamoEngineClient(EngineClient):
    """The engine on DynamoDB, through the backend itself (its units are asynchronous:
    reads, the engine, conditional writes), driven from a private event loop."""

    def __init__(self, url: str) -> None:
        import asyncio

        from kvgate.adapters.dynamodb import DynamoBackend

        super().__init__(self._unit, "dynamodb")
        self.loop = asyncio.new_event_loop()
        self.backend = DynamoBackend(url)
        self.loop.run_until_complete(self.backend.start())

    @contextmanager
    def _unit(self, write: bool, now: int | None = None) -> Iterator[Txn]:
        """A unit for store-level checks in tests: fetches what it lacks as it goes, and
        commits (conditionally, as the backend does) at the end."""
        txn = FetchingTxn(self, write, now)
        yield txn
        if write:
            self.loop.run_until_complete(self.backend._commit(txn, txn.snapshot))

    def __call__(self, *args: Arg) -> Reply:
        cmd = encode(args)
        try:
            self.table.lookup(cmd)
        except ReplyError as exc:
            return exc
        return self.loop.run_until_complete(self.backend.execute([cmd]))[0]

    def close(self) -> None:
        self.loop.run_until_complete(self.backend.close())
        self.loop.close()


def _fetching(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` of a :class:`SnapshotTxn`, fetching (synchronously) what it lacks."""

    def fetch_then(self: FetchingTxn, *args: Any) -> Any:
        while True:
            try:
                return method(self, *args)
            except Need as need:
                run = self.client.backend._satisfy(self.snapshot, need.request, self.writable)
                self.client.loop.run_until_complete(run)

    return fetch_then


class FetchingTxn(SnapshotTxn):
    def __init__(self, client: DynamoEngineClient, writable: bool, now: int | None = None) -> None:
        super().__init__(Snapshot(), now_ms() if now is None else now, writable, client.backend.scripting)
        self.client = client

    _entry = _fetching(SnapshotTxn._entry)
    _from_keyspace = _fetching(SnapshotTxn._from_keyspace)
    script_get = _fetching(SnapshotTxn.script_get)


STORES = ("memory", "sqlite", "dynamodb")
#: Backends that run kvgate's own engine (a documented subset of the commands).
ENGINE_BACKENDS = tuple(entry.name for entry in REGISTRY if entry.engine)


def make_client(kind: str, tmp_path: Path) -> EngineClient:
    if kind == "memory":
        return memory_client()
    return sqlite_client(tmp_path / "engine.db")


class Oracle:
    """A real Redis, flushed before use."""

    def __init__(self, server: RedisServer) -> None:
        self.server = server
        server.command("FLUSHALL")

    def __call__(self, *args: Arg) -> Reply:
        return normalize(self.server.command(*encode(args)))


def run_both(
    oracle: Oracle, engine: EngineClient, commands: Sequence[Sequence[Arg]]
) -> Iterator[tuple[Any, ...]]:
    """Yield ``(command, redis reply, engine reply)`` for each command that differs."""
    for cmd in commands:
        expected, actual = oracle(*cmd), engine(*cmd)
        if comparable(expected) != comparable(actual):
            yield cmd, comparable(expected), comparable(actual)


def assert_same(
    oracle: Oracle,
    engine: EngineClient,
    commands: Sequence[Sequence[Arg]],
    unordered: Callable[[Sequence[Arg]], bool] = lambda cmd: False,
) -> None:
    """Every reply equal; for commands where ``unordered(cmd)`` (SMEMBERS...), compared as
    sorted lists."""
    bad = []
    for cmd in commands:
        expected, actual = comparable(oracle(*cmd)), comparable(engine(*cmd))
        if unordered(cmd) and isinstance(expected, list) and isinstance(actual, list):
            expected, actual = sorted(expected, key=repr), sorted(actual, key=repr)
        if expected != actual:
            bad.append(f"{list(cmd)}:\n    redis  {expected!r}\n    {engine.name:6} {actual!r}")
    assert not bad, f"{len(bad)} of {len(commands)} differ on {engine.name}:\n" + "\n".join(bad)
