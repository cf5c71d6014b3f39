"""Differential testing of kvgate's engine: the same commands to a real Redis (the oracle)
and to the engine on each store, replies compared exactly, error texts included."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from kvgate.commands import default_table
from kvgate.engine import Engine
from kvgate.engine.memory import MemoryStore
from kvgate.engine.storage import Txn
from kvgate.errors import ReplyError
from kvgate.protocol import Reply
from tests.servers import RedisServer

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
            command = self.table.lookup(cmd)
        except ReplyError as exc:
            return exc
        # as the SQLite backend routes: only commands flagged readonly run on a read unit
        with self.units("readonly" not in command.flags) as t:
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


STORES = ("memory", "sqlite")


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
