"""Differential tests of the list commands: kvgate's engine (memory and SQLite stores)
against a real Redis 7.0, replies and error texts compared exactly, plus checks of the
position layout the engine keeps in the store (renumbering when floats run out)."""

from __future__ import annotations

import struct
import time
from collections.abc import Sequence
from itertools import pairwise

import pytest

from kvgate.engine import lists
from kvgate.engine.storage import Key, KeyType, Member, Txn
from tests.support.engine import Arg, EngineClient, Oracle, assert_same

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"


# --- helpers that do not depend on other command families --------------------------------


def set_string(oracle: Oracle, engine: EngineClient, name: str, value: str) -> None:
    """A string key on both sides (written to the store directly on the engine's side)."""
    oracle("SET", name, value)
    with engine.units(True) as t:
        t.set_string(name.encode(), value.encode(), None)


def expire_soon(oracle: Oracle, engine: EngineClient, name: str) -> None:
    """Make ``name`` expire in 1 ms on both sides, then let it expire."""
    assert oracle("PEXPIRE", name, 1) == 1
    with engine.units(True) as t:
        key = t.lookup(name.encode())
        assert key is not None
        t.set_expire(key, t.now + 1)
    time.sleep(0.01)


def exists(engine: EngineClient, name: str) -> bool:
    with engine.units(False) as t:
        return t.lookup(name.encode()) is not None


def assert_exists(oracle: Oracle, engine: EngineClient, names: Sequence[str]) -> None:
    for name in names:
        assert exists(engine, name) == bool(oracle("EXISTS", name)), name


def layout(engine: EngineClient, name: str) -> list[float]:
    """The positions of a list, checked against the storage contract: strictly ascending,
    ``member`` the packed position."""
    if engine.name == "dynamodb":
        pytest.skip("DynamoDB keeps a list as its elements in order: positions restart at 0 on every read")
    with engine.units(False) as t:
        key = t.lookup(name.encode())
        assert key is not None and key.type is KeyType.LIST
        items = t.ordered(key)
    scores = [m.score for m in items]
    assert all(a < b for a, b in pairwise(scores)), scores
    assert all(m.member == struct.pack(">d", m.score) for m in items)
    return scores


def same(oracle: Oracle, engine: EngineClient, commands: Sequence[Sequence[Arg]]) -> None:
    assert_same(oracle, engine, commands)


# --- push, pop, length, range --------------------------------------------------------------


def test_push_order_and_length(oracle: Oracle, engine: EngineClient) -> None:
    same(
        oracle,
        engine,
        [
            ["LPUSH", "l", "a", "b", "c"],
            ["LRANGE", "l", 0, -1],
            ["RPUSH", "l", "d", "e"],
            ["LPUSH", "l", "f"],
            ["LRANGE", "l", 0, -1],
            ["LLEN", "l"],
            ["LLEN", "missing"],
            ["RPUSH", "r", "1", "2", "3", "", "-0", "007"],
            ["LRANGE", "r", 0, -1],
            ["LPUSHX", "missing", "a"],
            ["RPUSHX", "missing", "a", "b"],
            ["LRANGE", "missing", 0, -1],
            ["LPUSHX", "l", "x", "y"],
            ["RPUSHX", "l", "z"],
            ["LRANGE", "l", 0, -1],
            ["LPUSH", "bin", b"\x00\xff", b"\r\n", "\u00e9"],
            ["LRANGE", "bin", 0, -1],
        ],
    )
    assert not exists(engine, "missing")
    layout(engine, "l")


def test_lrange_clamping(oracle: Oracle, engine: EngineClient) -> None:
    commands: list[list[Arg]] = [["RPUSH", "l", *"abcdefg"]]
    for start, end in [
        (0, -1),
        (0, 0),
        (2, 4),
        (-3, -1),
        (-100, 2),
        (-100, -100),
        (5, 100),
        (7, 10),
        (4, 2),
        (-1, -2),
        (0, -8),
        (0, -7),
        (-7, 0),
        (6, 6),
        ("-9223372036854775808", "9223372036854775807"),
    ]:
        commands.append(["LRANGE", "l", start, end])
    commands += [
        ["LRANGE", "l", "a", 1],
        ["LRANGE", "l", 0, "1.5"],
        ["LRANGE", "l", "01", 1],
        ["LRANGE", "l", "9223372036854775808", 1],
        ["LRANGE", "missing", 0, -1],
        ["LRANGE", "missing", "x", -1],
    ]
    same(oracle, engine, commands)


def test_lpop_rpop(oracle: Oracle, engine: EngineClient) -> None:
    same(
        oracle,
        engine,
        [
            ["RPUSH", "l", *"abcdefgh"],
            ["LPOP", "l"],
            ["RPOP", "l"],
            ["LPOP", "l", 2],
            ["RPOP", "l", 2],
            ["LPOP", "l", 0],
            ["RPOP", "l", 0],
            ["LRANGE", "l", 0, -1],
            ["LPOP", "l", -1],
            ["LPOP", "l", "abc"],
            ["RPOP", "l", "1.0"],
            ["LPOP", "l", 1, 2],
            ["RPOP", "l", "x", "y"],
            ["LPOP", "missing", 1, 2],
            ["LPOP", "missing"],
            ["RPOP", "missing"],
            ["LPOP", "missing", 2],
            ["RPOP", "missing", 0],
            ["LPOP", "missing", -1],
            ["RPOP", "l", 100],
            ["LLEN", "l"],
            ["RPUSH", "m", "x"],
            ["RPOP", "m"],
            ["RPUSH", "n", "x", "y"],
            ["LPOP", "n", "9223372036854775807"],
        ],
    )
    assert_exists(oracle, engine, ["l", "m", "n"])


def test_pop_to_empty_drops_key_and_ttl(oracle: Oracle, engine: EngineClient) -> None:
    same(oracle, engine, [["RPUSH", "l", "a", "b"]])
    oracle("PEXPIRE", "l", 100000)
    with engine.units(True) as t:
        key = t.lookup(b"l")
        assert key is not None
        t.set_expire(key, t.now + 100000)
    same(oracle, engine, [["LPOP", "l", 2], ["RPUSH", "l", "c"]])
    assert oracle("PTTL", "l") == -1
    with engine.units(False) as t:
        key = t.lookup(b"l")
        assert key is not None and key.expire_at is None


def test_push_on_expired_key(oracle: Oracle, engine: EngineClient) -> None:
    same(oracle, engine, [["RPUSH", "l", "old1", "old2"]])
    expire_soon(oracle, engine, "l")
    same(
        oracle,
        engine,
        [
            ["LLEN", "l"],
            ["RPUSHX", "l", "x"],
            ["LRANGE", "l", 0, -1],
            ["LPUSH", "l", "new"],
            ["LRANGE", "l", 0, -1],
        ],
    )
    set_string(oracle, engine, "s", "v")
    expire_soon(oracle, engine, "s")
    same(oracle, engine, [["LPUSH", "s", "a"], ["LRANGE", "s", 0, -1]])


# --- index access ----------------------------------------------------------------------------


def test_lindex(oracle: Oracle, engine: EngineClient) -> None:
    commands: list[list[Arg]] = [["RPUSH", "l", *"abcde"]]
    for index in [0, 1, 4, 5, 100, -1, -5, -6, -100, "9223372036854775807", "-9223372036854775808"]:
        commands.append(["LINDEX", "l", index])
    commands += [
        ["LINDEX", "l", "x"],
        ["LINDEX", "l", "+1"],
        ["LINDEX", "missing", 0],
        ["LINDEX", "missing", "x"],
    ]
    same(oracle, engine, commands)


def test_lset(oracle: Oracle, engine: EngineClient) -> None:
    same(
        oracle,
        engine,
        [
            ["RPUSH", "l", *"abcde"],
            ["LSET", "l", 0, "A"],
            ["LSET", "l", -1, "E"],
            ["LSET", "l", 2, "C"],
            ["LSET", "l", -5, "AA"],
            ["LSET", "l", 5, "x"],
            ["LSET", "l", -6, "x"],
            ["LSET", "l", "9223372036854775807", "x"],
            ["LSET", "l", "-9223372036854775808", "x"],
            ["LSET", "l", "x", "x"],
            ["LRANGE", "l", 0, -1],
            ["LSET", "missing", 0, "x"],
            ["LSET", "missing", "x", "x"],
            ["LLEN", "l"],
        ],
    )
    layout(engine, "l")


# --- insert ------------------------------------------------------------------------------------


def test_linsert(oracle: Oracle, engine: EngineClient) -> None:
    same(
        oracle,
        engine,
        [
            ["RPUSH", "l", "a", "b", "c", "b"],
            ["LINSERT", "l", "BEFORE", "b", "x"],
            ["LINSERT", "l", "after", "b", "y"],
            ["LINSERT", "l", "Before", "a", "head"],
            ["LINSERT", "l", "AFTER", "c", "mid"],
            ["LINSERT", "l", "AFTER", "b", "z"],
            ["LRANGE", "l", 0, -1],
            ["LINSERT", "l", "BEFORE", "nope", "x"],
            ["LINSERT", "l", "MIDDLE", "a", "x"],
            ["LINSERT", "l", "MIDDLE", "nope", "x"],
            ["LINSERT", "missing", "BEFORE", "a", "x"],
            ["LINSERT", "missing", "MIDDLE", "a", "x"],
            ["RPUSH", "t", "only"],
            ["LINSERT", "t", "AFTER", "only", "tail"],
            ["LINSERT", "t", "AFTER", "tail", "tail2"],
            ["LINSERT", "t", "BEFORE", "only", "h"],
            ["LRANGE", "t", 0, -1],
            ["LLEN", "l"],
        ],
    )
    assert not exists(engine, "missing")
    layout(engine, "l")
    layout(engine, "t")


def test_linsert_same_spot_renumbers(
    oracle: Oracle, engine: EngineClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repeated inserts at one spot run out of floats between two neighbours (about 52
    halvings next to a non-zero integer position); the engine renumbers the list and
    keeps the order Redis has."""
    renumbered: list[int] = []
    real = lists._renumber

    def spy(t: Txn, key: Key) -> list[Member]:
        renumbered.append(t.count(key))
        return real(t, key)

    monkeypatch.setattr(lists, "_renumber", spy)
    commands: list[list[Arg]] = [["RPUSH", "l", "a", "b", "p", "c"]]
    for i in range(120):
        commands.append(["LINSERT", "l", "BEFORE", "p", f"x{i}"])
    for i in range(60):
        commands.append(["LINSERT", "l", "AFTER", "a", f"y{i}"])
    commands += [["LRANGE", "l", 0, -1], ["LLEN", "l"], ["LINDEX", "l", 100], ["LPOS", "l", "x57"]]
    same(oracle, engine, commands)
    scores = layout(engine, "l")
    assert len(scores) == 184
    assert len(renumbered) >= 2, renumbered
    same(oracle, engine, [["LPUSH", "l", "h"], ["RPUSH", "l", "t"], ["LRANGE", "l", 0, -1]])


def test_push_at_float_limit_renumbers(engine: EngineClient) -> None:
    """A list whose ends sit where ``pos + 1 == pos`` is renumbered before pushing."""
    big = float(2**60)
    with engine.units(True) as t:
        key = t.create(b"l", KeyType.LIST)
        for pos, value in [(-big, b"a"), (0.0, b"b"), (big, b"c")]:
            t.put(key, struct.pack(">d", pos), value, pos)
    assert engine("RPUSH", "l", "d", "e") == 5
    assert engine("LPUSH", "l", "z") == 6
    assert engine("LRANGE", "l", 0, -1) == [b"z", b"a", b"b", b"c", b"d", b"e"]
    assert layout(engine, "l") == [-1.0, 0.0, 1.0, 2.0, 3.0, 4.0]
    with engine.units(True) as t:
        key = t.create(b"m", KeyType.LIST)
        for pos, value in [(big, b"a"), (big + 256, b"b")]:
            t.put(key, struct.pack(">d", pos), value, pos)
    assert engine("LINSERT", "m", "AFTER", "a", "x") == 3
    assert engine("LINSERT", "m", "BEFORE", "a", "y") == 4
    assert engine("LRANGE", "m", 0, -1) == [b"y", b"a", b"x", b"b"]
    layout(engine, "m")


# --- remove, trim ------------------------------------------------------------------------------


def test_lrem(oracle: Oracle, engine: EngineClient) -> None:
    same(
        oracle,
        engine,
        [
            ["RPUSH", "l", *"axbxcxdx"],
            ["LREM", "l", 2, "x"],
            ["LRANGE", "l", 0, -1],
            ["LREM", "l", -1, "x"],
            ["LRANGE", "l", 0, -1],
            ["RPUSH", "l", "x", "x", "a"],
            ["LREM", "l", -2, "x"],
            ["LRANGE", "l", 0, -1],
            ["LREM", "l", 0, "a"],
            ["LRANGE", "l", 0, -1],
            ["LREM", "l", 0, "nope"],
            ["LREM", "l", "x", "a"],
            ["LREM", "l", "1.0", "a"],
            ["LREM", "missing", 0, "a"],
            ["LREM", "missing", "x", "a"],
            ["RPUSH", "e", "v", "v", "v"],
            ["LREM", "e", 0, "v"],
            ["RPUSH", "f", "v", "v", "w"],
            ["LREM", "f", "-9223372036854775808", "v"],
            ["LRANGE", "f", 0, -1],
        ],
    )
    assert_exists(oracle, engine, ["l", "e", "f", "missing"])
    layout(engine, "l")


def test_ltrim(oracle: Oracle, engine: EngineClient) -> None:
    commands: list[list[Arg]] = []
    cases: list[tuple[Arg, Arg]] = [
        (1, -2),
        (0, -1),
        (2, 2),
        (-3, -1),
        (-100, 100),
        (0, 0),
        (5, 3),
        (10, 20),
        (-1, -2),
        (0, -10),
        ("-9223372036854775808", "9223372036854775807"),
    ]
    for i, (start, end) in enumerate(cases):
        name = f"l{i}"
        commands += [["RPUSH", name, *"abcdefg"], ["LTRIM", name, start, end], ["LRANGE", name, 0, -1]]
    commands += [
        ["LTRIM", "l0", "x", 1],
        ["LTRIM", "l0", 0, "y"],
        ["LTRIM", "missing", 0, 1],
        ["LTRIM", "missing", "x", 1],
        ["LLEN", "l0"],
    ]
    same(oracle, engine, commands)
    assert_exists(oracle, engine, [f"l{i}" for i in range(len(cases))] + ["missing"])


# --- LPOS ----------------------------------------------------------------------------------------


def test_lpos(oracle: Oracle, engine: EngineClient) -> None:
    commands: list[list[Arg]] = [["RPUSH", "l", *"abacabca"]]
    options: list[list[Arg]] = [
        [],
        ["RANK", 1],
        ["RANK", 2],
        ["RANK", 4],
        ["RANK", 5],
        ["RANK", -1],
        ["RANK", -2],
        ["RANK", -5],
        ["COUNT", 0],
        ["COUNT", 2],
        ["COUNT", 10],
        ["RANK", 2, "COUNT", 2],
        ["RANK", -2, "COUNT", 0],
        ["RANK", -1, "COUNT", 3],
        ["MAXLEN", 3],
        ["MAXLEN", 1],
        ["MAXLEN", 0],
        ["COUNT", 0, "MAXLEN", 5],
        ["RANK", -1, "MAXLEN", 2],
        ["RANK", -1, "MAXLEN", 2, "COUNT", 0],
        ["RANK", 3, "RANK", 1],
        ["count", 1, "rank", "-2", "maxlen", "6"],
        ["RANK", "9223372036854775807"],
        ["RANK", "-9223372036854775807", "COUNT", 0],
        ["RANK", "-9223372036854775808"],
        ["RANK", "-9223372036854775808", "COUNT", 1],
        ["RANK", "-9223372036854775808", "COUNT", 2, "MAXLEN", 5],
    ]
    for opts in options:
        for element in ["a", "c", "z"]:
            commands.append(["LPOS", "l", element, *opts])
    same(oracle, engine, commands)


def test_lpos_errors_and_missing(oracle: Oracle, engine: EngineClient) -> None:
    set_string(oracle, engine, "s", "v")
    commands: list[list[Arg]] = [["RPUSH", "l", "a", "b"]]
    for key in ["l", "missing", "s"]:
        commands += [
            ["LPOS", key, "a", "RANK", 0],
            ["LPOS", key, "a", "RANK", "x"],
            ["LPOS", key, "a", "COUNT", -1],
            ["LPOS", key, "a", "COUNT", "x"],
            ["LPOS", key, "a", "MAXLEN", -1],
            ["LPOS", key, "a", "MAXLEN", "1.5"],
            ["LPOS", key, "a", "RANK"],
            ["LPOS", key, "a", "COUNT"],
            ["LPOS", key, "a", "FOO", 1],
            ["LPOS", key, "a", "RANK", 0, "COUNT", -1],
            ["LPOS", key, "a", "COUNT", -1, "RANK", 0],
            ["LPOS", key, "a", "RANK", 1, "BAR"],
            ["LPOS", key, "a"],
            ["LPOS", key, "a", "COUNT", 0],
            ["LPOS", key, "a", "RANK", -1, "COUNT", 1],
        ]
    same(oracle, engine, commands)


# --- LMOVE, RPOPLPUSH, LMPOP ----------------------------------------------------------------------


def test_lmove(oracle: Oracle, engine: EngineClient) -> None:
    commands: list[list[Arg]] = [["RPUSH", "src", *"abcdef"]]
    for wherefrom in ["LEFT", "RIGHT"]:
        for whereto in ["LEFT", "right"]:
            commands += [["LMOVE", "src", "dst", wherefrom, whereto], ["LRANGE", "dst", 0, -1]]
    commands += [
        ["LRANGE", "src", 0, -1],
        ["LMOVE", "src", "src", "LEFT", "RIGHT"],
        ["LRANGE", "src", 0, -1],
        ["LMOVE", "src", "src", "RIGHT", "LEFT"],
        ["LMOVE", "src", "src", "RIGHT", "LEFT"],
        ["LRANGE", "src", 0, -1],
        ["LMOVE", "src", "src", "LEFT", "LEFT"],
        ["LMOVE", "src", "src", "RIGHT", "RIGHT"],
        ["LRANGE", "src", 0, -1],
        ["LMOVE", "src", "dst", "UP", "LEFT"],
        ["LMOVE", "src", "dst", "LEFT", "DOWN"],
        ["LMOVE", "missing", "dst", "LEFT", "LEFT"],
        ["LMOVE", "missing", "dst", "UP", "LEFT"],
        ["LMOVE", "missing", "missing", "LEFT", "LEFT"],
        ["RPUSH", "one", "x"],
        ["LMOVE", "one", "one", "LEFT", "RIGHT"],
        ["LRANGE", "one", 0, -1],
        ["LMOVE", "one", "other", "LEFT", "RIGHT"],
        ["LRANGE", "other", 0, -1],
        ["LLEN", "one"],
        ["LMOVE", "dst", "src", "RIGHT", "LEFT"],
        ["LRANGE", "src", 0, -1],
        ["LRANGE", "dst", 0, -1],
    ]
    same(oracle, engine, commands)
    assert_exists(oracle, engine, ["src", "dst", "one", "other", "missing"])
    layout(engine, "src")


def test_lmove_wrongtype(oracle: Oracle, engine: EngineClient) -> None:
    set_string(oracle, engine, "s", "v")
    same(
        oracle,
        engine,
        [
            ["RPUSH", "l", "a", "b"],
            ["LMOVE", "l", "s", "LEFT", "RIGHT"],
            ["RPOPLPUSH", "l", "s"],
            ["LRANGE", "l", 0, -1],
            ["LMOVE", "s", "l", "LEFT", "RIGHT"],
            ["LMOVE", "s", "s", "LEFT", "RIGHT"],
            ["LMOVE", "s", "l", "UP", "RIGHT"],
            ["LMOVE", "missing", "s", "LEFT", "RIGHT"],
            ["RPOPLPUSH", "s", "l"],
            ["RPOPLPUSH", "missing", "s"],
        ],
    )


def test_rpoplpush(oracle: Oracle, engine: EngineClient) -> None:
    same(
        oracle,
        engine,
        [
            ["RPUSH", "a", "1", "2", "3"],
            ["RPOPLPUSH", "a", "b"],
            ["RPOPLPUSH", "a", "b"],
            ["LRANGE", "a", 0, -1],
            ["LRANGE", "b", 0, -1],
            ["RPOPLPUSH", "b", "b"],
            ["LRANGE", "b", 0, -1],
            ["RPOPLPUSH", "a", "a"],
            ["RPOPLPUSH", "a", "b"],
            ["LRANGE", "b", 0, -1],
            ["RPOPLPUSH", "a", "b"],
            ["RPOPLPUSH", "missing", "b"],
        ],
    )
    assert_exists(oracle, engine, ["a", "b"])


def test_lmpop(oracle: Oracle, engine: EngineClient) -> None:
    set_string(oracle, engine, "s", "v")
    same(
        oracle,
        engine,
        [
            ["RPUSH", "a", *"abcde"],
            ["RPUSH", "b", "x", "y"],
            ["LMPOP", 1, "a", "LEFT"],
            ["LMPOP", 1, "a", "right"],
            ["LMPOP", 2, "missing", "a", "LEFT", "COUNT", 2],
            ["LMPOP", 2, "a", "b", "RIGHT", "COUNT", 10],
            ["LMPOP", 2, "a", "b", "LEFT", "COUNT", 1],
            ["LMPOP", 3, "missing", "a", "b", "LEFT"],
            ["LMPOP", 2, "missing", "other", "LEFT"],
            ["LMPOP", 1, "b", "left", "count", "9223372036854775807"],
            ["LMPOP", 2, "missing", "s", "LEFT"],
            ["RPUSH", "c", "1"],
            ["LMPOP", 2, "c", "s", "LEFT"],
            ["LMPOP", 2, "s", "c", "LEFT"],
            ["LRANGE", "c", 0, -1],
            # argument errors, in Redis's checking order
            ["LMPOP", 0, "a", "LEFT"],
            ["LMPOP", -1, "a", "LEFT"],
            ["LMPOP", "x", "a", "LEFT"],
            ["LMPOP", "9223372036854775807", "a", "LEFT"],
            ["LMPOP", 5, "a", "LEFT"],
            ["LMPOP", 2, "a", "LEFT"],
            ["LMPOP", 1, "a", "MIDDLE"],
            ["LMPOP", 1, "s", "MIDDLE"],
            ["LMPOP", 1, "a", "LEFT", "COUNT", 0],
            ["LMPOP", 1, "a", "LEFT", "COUNT", -1],
            ["LMPOP", 1, "a", "LEFT", "COUNT", "x"],
            ["LMPOP", 1, "s", "LEFT", "COUNT", 0],
            ["LMPOP", 1, "a", "LEFT", "COUNT"],
            ["LMPOP", 1, "a", "LEFT", "COUNT", 1, "COUNT", 1],
            ["LMPOP", 1, "a", "LEFT", "FOO"],
            ["LMPOP", 1, "s", "LEFT", "COUNT", 1],
        ],
    )
    assert_exists(oracle, engine, ["a", "b", "c"])


# --- wrong types -------------------------------------------------------------------------------


def test_wrongtype_everywhere(oracle: Oracle, engine: EngineClient) -> None:
    set_string(oracle, engine, "s", "v")
    commands: list[list[Arg]] = [
        ["LPUSH", "s", "a"],
        ["RPUSH", "s", "a"],
        ["LPUSHX", "s", "a"],
        ["RPUSHX", "s", "a"],
        ["LPOP", "s"],
        ["RPOP", "s"],
        ["LPOP", "s", 2],
        ["RPOP", "s", 0],
        ["LLEN", "s"],
        ["LRANGE", "s", 0, -1],
        ["LINDEX", "s", 0],
        ["LSET", "s", 0, "x"],
        ["LINSERT", "s", "BEFORE", "v", "x"],
        ["LREM", "s", 0, "v"],
        ["LTRIM", "s", 0, 1],
        ["LPOS", "s", "v"],
        ["LMOVE", "s", "d", "LEFT", "LEFT"],
        ["RPOPLPUSH", "s", "d"],
        ["LMPOP", 1, "s", "LEFT"],
    ]
    replies = [oracle(*cmd) for cmd in commands]
    assert all(getattr(r, "message", None) == WRONGTYPE for r in replies), replies
    # argument errors that Redis reports before looking at the key
    commands += [
        ["LPOP", "s", -1],
        ["LRANGE", "s", "x", 1],
        ["LINDEX", "s", "x"],
        ["LSET", "s", "x", "x"],
        ["LINSERT", "s", "MIDDLE", "v", "x"],
        ["LREM", "s", "x", "v"],
        ["LTRIM", "s", 0, "x"],
        ["LPOS", "s", "v", "RANK", 0],
        ["LMOVE", "s", "d", "UP", "LEFT"],
        ["LMPOP", 1, "s", "UP"],
    ]
    same(oracle, engine, commands)
    with engine.units(False) as t:
        key = t.lookup(b"s")
        assert key is not None and key.type is KeyType.STRING and key.value == b"v"
    assert not exists(engine, "d")


def test_queue_usage_keeps_layout(oracle: Oracle, engine: EngineClient) -> None:
    """A long mix of pushes, pops and inserts that depend on earlier state."""
    commands: list[list[Arg]] = []
    for i in range(40):
        commands.append(["RPUSH", "q", f"v{i}", f"w{i}"])
        commands.append(["LPOP", "q"])
        if i % 3 == 0:
            commands.append(["LPUSH", "q", f"h{i}"])
            commands.append(["LINSERT", "q", "AFTER", f"h{i}", f"i{i}"])
        if i % 5 == 0:
            commands.append(["RPOP", "q", 2])
            commands.append(["LTRIM", "q", 1, -1])
    commands += [["LRANGE", "q", 0, -1], ["LLEN", "q"], ["LINDEX", "q", -3], ["LPOS", "q", "w20"]]
    same(oracle, engine, commands)
    layout(engine, "q")
