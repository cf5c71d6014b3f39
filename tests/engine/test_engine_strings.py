"""Differential tests of the string commands (and PING/ECHO/TIME) against a real Redis,
plus direct tests of :mod:`kvgate.engine.longdouble` against Redis's INCRBYFLOAT."""

from __future__ import annotations

import random
import time
from fractions import Fraction

import pytest

from kvgate.engine import longdouble
from kvgate.engine.memory import MemoryStore
from kvgate.engine.storage import KeyType
from tests.support.engine import Arg, EngineClient, Oracle, assert_same

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
OTHER_TYPES = {"list": KeyType.LIST, "set": KeyType.SET, "hash": KeyType.HASH, "zset": KeyType.ZSET}


def seed_other_types(oracle: Oracle, engine: EngineClient) -> None:
    """Keys ``list``, ``set``, ``hash``, ``zset`` of those types on both sides (made through
    the store on the engine side: these tests must not depend on the other families)."""
    oracle("RPUSH", "list", "a")
    oracle("SADD", "set", "a")
    oracle("HSET", "hash", "f", "v")
    oracle("ZADD", "zset", 1, "a")
    with engine.units(True) as t:
        for name, type_ in OTHER_TYPES.items():
            key = t.create(name.encode(), type_)
            # a hash member's score is its field's expiry (0: none), a list's its position
            t.put(key, b"a", b"v", 0.0 if type_ is KeyType.HASH else 1.0)


def engine_pexpiretime(engine: EngineClient, name: str) -> int:
    """PEXPIRETIME as the store holds it: -2 missing, -1 no expiry, else absolute ms."""
    with engine.units(False) as t:
        key = t.lookup(name.encode())
    if key is None:
        return -2
    return -1 if key.expire_at is None else key.expire_at


def assert_same_expiry(oracle: Oracle, engine: EngineClient, name: str, tolerance: int = 0) -> None:
    expected = oracle("PEXPIRETIME", name)
    actual = engine_pexpiretime(engine, name)
    assert isinstance(expected, int)
    if expected < 0 or tolerance == 0:
        assert actual == expected, (name, expected, actual)
    else:
        assert abs(actual - expected) <= tolerance, (name, expected, actual)


# --- SET ----------------------------------------------------------------------------


def test_set_get_basics(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["GET", "k"],
            ["SET", "k", "v"],
            ["GET", "k"],
            ["SET", "k", ""],
            ["GET", "k"],
            ["STRLEN", "k"],
            ["SET", "k", b"bin\x00\xff\r\n"],
            ["GET", "k"],
            ["set", "K", "upper"],
            ["get", "K"],
            ["GET", "k"],
            ["SET", "n", "12"],
            ["GET", "n"],
            ["SET", "k"],
            ["GET"],
            ["GET", "k", "x"],
        ],
    )


def test_set_option_parsing(oracle: Oracle, engine: EngineClient) -> None:
    cmds: list[list[Arg]] = [
        ["SET", "k", "v", "NX", "XX"],
        ["SET", "k", "v", "XX", "NX"],
        ["SET", "k", "v", "nx", "nx"],
        ["SET", "k", "v", "EX"],
        ["SET", "k", "v", "PX"],
        ["SET", "k", "v", "EXAT"],
        ["SET", "k", "v", "PXAT"],
        ["SET", "k", "v", "EX", "10", "PX", "100"],
        ["SET", "k", "v", "PX", "100", "EX", "10"],
        ["SET", "k", "v", "EX", "10", "EXAT", "99999999999"],
        ["SET", "k", "v", "PXAT", "99999999999999", "PX", "10"],
        ["SET", "k", "v", "EX", "10", "KEEPTTL"],
        ["SET", "k", "v", "KEEPTTL", "PX", "10"],
        ["SET", "k", "v", "PERSIST"],
        ["SET", "k", "v", "FOO"],
        ["SET", "k", "v", "EX", "10", "EX", "20"],
        ["SET", "k", "v", "px", "100", "px", "200"],
        ["SET", "k", "v", "GET", "GET"],
        ["SET", "k", "v", "KEEPTTL", "KEEPTTL"],
        ["SET", "k", "v", "NXX"],
        ["SET", "k", "v", b"nx\x00junk"],
        ["SET", "k", "v", b"ex\x00", "10"],
        ["SET", "k", "v", ""],
        ["SET", "k", "v", "EX", "abc"],
        ["SET", "k", "v", "EX", "abc", "NX", "XX"],
        ["SET", "k", "v", "EX", "1.5"],
        ["SET", "k", "v", "EX", "0"],
        ["SET", "k", "v", "EX", "-5"],
        ["SET", "k", "v", "PX", "0"],
        ["SET", "k", "v", "EXAT", "0"],
        ["SET", "k", "v", "PXAT", "-1"],
        ["SET", "k", "v", "EX", str(INT64_MAX)],
        ["SET", "k", "v", "EX", str(INT64_MAX // 1000)],
        ["SET", "k", "v", "EX", str(INT64_MAX // 1000 + 1)],
        ["SET", "k", "v", "PX", str(INT64_MAX)],
        ["SET", "k", "v", "EXAT", str(INT64_MAX // 1000 + 1)],
        ["SET", "k", "v", "EX", str(INT64_MAX + 1)],
        ["SET", "k", "v", "EX", "10", "PX"],
        ["GET", "k"],
    ]
    assert_same(oracle, engine, cmds)


def test_set_nx_xx_get(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["SET", "k", "v1", "XX"],
            ["GET", "k"],
            ["SET", "k", "v1", "XX", "GET"],
            ["SET", "k", "v1", "NX"],
            ["SET", "k", "v2", "NX"],
            ["GET", "k"],
            ["SET", "k", "v2", "XX"],
            ["GET", "k"],
            ["SET", "k", "v3", "GET"],
            ["SET", "k", "v4", "NX", "GET"],
            ["GET", "k"],
            ["SET", "k", "v5", "XX", "GET"],
            ["SET", "new", "v", "NX", "GET"],
            ["GET", "new"],
            ["SET", "new2", "v", "GET", "EX", "100"],
            ["GET", "new2"],
            ["SET", "k", "v6", "get", "px", "100000"],
            ["SET", "k", "v7", "Get", "kEePtTl", "xX"],
            ["SET", "k", "v8", "eX", "100", "Nx"],
            ["SET", "k", "v9", "PxAt", "99999999999999", "gEt"],
            ["GET", "k"],
        ],
    )


def test_set_on_other_types(oracle: Oracle, engine: EngineClient) -> None:
    seed_other_types(oracle, engine)
    cmds: list[list[Arg]] = []
    for name in OTHER_TYPES:
        cmds += [
            ["SET", name, "v", "GET"],
            ["SET", name, "v", "NX", "GET"],
            ["SET", name, "v", "EX", "0", "GET"],
            ["SET", name, "v", "BAD", "GET"],
            ["SET", name, "v", "NX"],
            ["GET", name],
        ]
    cmds += [["SET", name, "v", "XX"] for name in OTHER_TYPES]  # plain SET replaces any type
    cmds += [["GET", name] for name in OTHER_TYPES]
    assert_same(oracle, engine, cmds)


def test_set_ttl_handling(oracle: Oracle, engine: EngineClient) -> None:
    seed_other_types(oracle, engine)
    steps: list[tuple[list[Arg], str, int]] = [
        (["SET", "k", "v", "EX", "100"], "k", 1000),
        (["SET", "k", "v2", "KEEPTTL"], "k", 1000),
        (["SET", "k", "v3"], "k", 0),  # plain SET clears the TTL
        (["SET", "k", "v", "PX", "123456"], "k", 1000),
        (["SET", "k", "v", "XX", "GET", "KEEPTTL"], "k", 1000),
        (["SET", "k", "v", "EXAT", "4102444800"], "k", 0),
        (["SET", "k", "v", "PXAT", "4102444800123"], "k", 0),
        (["SET", "k", "v", "NX", "EX", "5"], "k", 0),  # not written: keeps the PXAT
        (["SET", "k", "v", "EXAT", str(INT64_MAX // 1000)], "k", 0),
        (["SET", "fresh", "v", "KEEPTTL"], "fresh", 0),
        (["PEXPIRE", "list", "100000"], "list", 1000),
        (["SET", "list", "v", "KEEPTTL"], "list", 1000),  # keeps the TTL of another type
        (["PEXPIRE", "set", "100000"], "set", 1000),
        (["SET", "set", "v"], "set", 0),
    ]
    for cmd, name, tolerance in steps:
        if cmd[0] == "PEXPIRE":  # set the TTL on both sides without the keys family
            oracle(*cmd)
            with engine.units(True) as t:
                key = t.lookup(name.encode())
                assert key is not None
                t.set_expire(key, t.now + int(cmd[2]))
            continue
        assert_same(oracle, engine, [cmd])
        assert_same_expiry(oracle, engine, name, tolerance)


def test_set_past_expiry_and_expired_keys(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["SET", "k", "v", "EXAT", "1"],
            ["GET", "k"],
            ["SET", "k", "v", "PXAT", "1000"],
            ["SET", "k", "new", "NX"],
            ["GET", "k"],
            ["SET", "gone", "v", "PX", "1"],
            ["SET", "keep", "v", "PX", "30"],
            ["SET", "keep", "v2"],
            ["SET", "kt", "v", "PX", "30"],
            ["SET", "kt", "v2", "KEEPTTL"],
            ["SET", "n", "5", "PX", "30"],
            ["INCR", "n"],
            ["SET", "a", "x", "PX", "30"],
            ["APPEND", "a", "y"],
        ],
    )
    time.sleep(0.06)
    assert_same(
        oracle,
        engine,
        [
            ["GET", "gone"],
            ["SET", "gone", "v", "XX"],
            ["SET", "gone", "v", "NX", "GET"],
            ["GET", "keep"],
            ["GET", "kt"],
            ["GET", "n"],
            ["GET", "a"],
            ["INCR", "n"],
        ],
    )


# --- SETNX / SETEX / PSETEX / GETSET / MSET / MSETNX -------------------------------


def test_setnx_setex_psetex(oracle: Oracle, engine: EngineClient) -> None:
    seed_other_types(oracle, engine)
    assert_same(
        oracle,
        engine,
        [
            ["SETNX", "k", "v"],
            ["SETNX", "k", "w"],
            ["GET", "k"],
            ["SETNX", "list", "w"],
            ["SETEX", "k", "100", "v2"],
            ["GET", "k"],
            ["SETEX", "k", "0", "v"],
            ["SETEX", "k", "-1", "v"],
            ["SETEX", "k", "x", "v"],
            ["SETEX", "k", str(INT64_MAX // 1000 + 1), "v"],
            ["PSETEX", "k", "0", "v"],
            ["PSETEX", "k", "1.5", "v"],
            ["PSETEX", "k", str(INT64_MAX), "v"],
            ["PSETEX", "k", "100000", "v3"],
            ["GET", "k"],
            ["SETEX", "hash", "100", "now a string"],
            ["GET", "hash"],
            ["SETEX", "k", "100"],
        ],
    )
    assert_same(oracle, engine, [["SETEX", "e", "100", "v"]])
    assert_same_expiry(oracle, engine, "e", 1000)
    assert_same(oracle, engine, [["PSETEX", "p", "5000", "v"]])
    assert_same_expiry(oracle, engine, "p", 1000)
    assert_same_expiry(oracle, engine, "hash", 1000)


def test_getset_getdel(oracle: Oracle, engine: EngineClient) -> None:
    seed_other_types(oracle, engine)
    assert_same(
        oracle,
        engine,
        [
            ["GETSET", "k", "v1"],
            ["GETSET", "k", "v2"],
            ["GET", "k"],
            ["GETSET", "set", "v"],
            ["GETDEL", "k"],
            ["GETDEL", "k"],
            ["GET", "k"],
            ["GETDEL", "zset"],
            ["SET", "d", "v", "EX", "100"],
            ["GETDEL", "d"],
            ["GET", "d"],
            ["SET", "t", "v", "EX", "100"],
            ["GETSET", "t", "w"],
        ],
    )
    assert_same_expiry(oracle, engine, "t")  # GETSET clears the TTL


def test_mget_mset_msetnx(oracle: Oracle, engine: EngineClient) -> None:
    seed_other_types(oracle, engine)
    assert_same(
        oracle,
        engine,
        [
            ["MSET", "a", "1", "b", "2", "a", "3"],
            ["MGET", "a", "b", "c", "list", "hash", "a"],
            ["MSET", "a", "1", "b"],
            ["MSETNX", "a", "1", "b"],
            ["MSETNX", "x", "1", "a", "2"],
            ["MGET", "x"],
            ["MSETNX", "x", "1", "y", "2", "x", "3"],
            ["MGET", "x", "y"],
            ["MSETNX", "z", "1", "set", "2"],
            ["MGET", "z"],
            ["MSET", "zset", "now a string"],
            ["SET", "old", "v", "PX", "1"],
            ["MGET", "zset"],
            ["SET", "t", "v", "EX", "100"],
            ["MSET", "t", "w"],
        ],
    )
    assert_same_expiry(oracle, engine, "t")
    time.sleep(0.01)
    assert_same(oracle, engine, [["MSETNX", "old", "1", "other", "2"], ["MGET", "old", "other"]])


# --- GETEX --------------------------------------------------------------------------


def test_getex(oracle: Oracle, engine: EngineClient) -> None:
    seed_other_types(oracle, engine)
    cmds: list[list[Arg]] = [
        ["GETEX", "missing"],
        ["GETEX", "missing", "EX", "abc"],
        ["GETEX", "missing", "EX", "0"],
        ["GETEX", "missing", "BAD"],
        ["GETEX", "list"],
        ["GETEX", "list", "EX", "0"],
        ["GETEX", "list", "BAD"],
        ["SET", "k", "v"],
        ["GETEX", "k"],
        ["GETEX", "k", "EX", "0"],
        ["GETEX", "k", "EX", "-1"],
        ["GETEX", "k", "EX", "x"],
        ["GETEX", "k", "PX", str(INT64_MAX)],
        ["GETEX", "k", "EXAT", str(INT64_MAX // 1000 + 1)],
        ["GETEX", "k", "EX"],
        ["GETEX", "k", "NX"],
        ["GETEX", "k", "KEEPTTL"],
        ["GETEX", "k", "GET"],
        ["GETEX", "k", "PERSIST", "EX", "10"],
        ["GETEX", "k", "EX", "10", "PERSIST"],
        ["GETEX", "k", "EX", "10", "PX", "10"],
        ["GETEX", "k", "PERSIST", "PERSIST"],
        ["GETEX", "k", "EX", "10", "EX", "20"],
    ]
    assert_same(oracle, engine, cmds)
    steps: list[tuple[list[Arg], int]] = [
        (["GETEX", "k", "EX", "100"], 1000),
        (["GETEX", "k"], 1000),
        (["GETEX", "k", "PERSIST"], 0),
        (["GETEX", "k", "PERSIST"], 0),
        (["GETEX", "k", "PX", "50000"], 1000),
        (["GETEX", "k", "EXAT", "4102444800"], 0),
        (["GETEX", "k", "pxat", "4102444800999"], 0),
        (["GETEX", "k", "PXAT", "1000"], 0),  # in the past: deleted
        (["GETEX", "k"], 0),
    ]
    for cmd, tolerance in steps:
        assert_same(oracle, engine, [cmd])
        assert_same_expiry(oracle, engine, "k", tolerance)
    assert_same(oracle, engine, [["SET", "k", "v"], ["GETEX", "k", "EXAT", "1"], ["GET", "k"]])


def test_getex_expiry_takes_effect(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["SET", "a", "1"],
            ["GETEX", "a", "PX", "30"],
            ["SET", "b", "2", "PX", "30"],
            ["GETEX", "b", "PERSIST"],
        ],
    )
    time.sleep(0.06)
    assert_same(oracle, engine, [["GET", "a"], ["GET", "b"], ["GETEX", "a", "PERSIST"]])


# --- APPEND / STRLEN / GETRANGE / SETRANGE -----------------------------------------


def test_append_strlen(oracle: Oracle, engine: EngineClient) -> None:
    seed_other_types(oracle, engine)
    assert_same(
        oracle,
        engine,
        [
            ["STRLEN", "k"],
            ["APPEND", "k", "hello"],
            ["APPEND", "k", " world"],
            ["APPEND", "k", ""],
            ["GET", "k"],
            ["STRLEN", "k"],
            ["APPEND", "e", ""],
            ["GET", "e"],
            ["STRLEN", "e"],
            ["SET", "n", "12"],
            ["APPEND", "n", "3"],
            ["INCR", "n"],
            ["STRLEN", "n"],
            ["APPEND", "hash", "x"],
            ["STRLEN", "hash"],
            ["SET", "t", "v", "EX", "100"],
            ["APPEND", "t", "w"],
        ],
    )
    assert_same_expiry(oracle, engine, "t", 1000)  # APPEND keeps the TTL


def test_getrange_substr(oracle: Oracle, engine: EngineClient) -> None:
    seed_other_types(oracle, engine)
    cmds: list[list[Arg]] = [["SET", "k", "Hello World"], ["SET", "empty", ""], ["SET", "n", "12345"]]
    ranges = [
        (0, 4),
        (0, -1),
        (-3, -1),
        (-1, -3),
        (5, 3),
        (-100, 100),
        (100, 200),
        (0, 0),
        (-1, -1),
        (3, -100),
        (-100, -100),
        (-100, -50),
        (10, 10),
        (11, 11),
        (-11, 0),
        (INT64_MIN, INT64_MAX),
        (INT64_MAX, INT64_MIN),
    ]
    for name in ("k", "empty", "n", "missing"):
        for start, end in ranges:
            cmds.append(["GETRANGE", name, start, end])
    cmds += [
        ["SUBSTR", "k", 0, 4],
        ["SUBSTR", "k", -5, -1],
        ["GETRANGE", "k", "a", 1],
        ["GETRANGE", "k", 1, "b"],
        ["GETRANGE", "missing", "a", 1],
        ["GETRANGE", "list", 0, 1],
        ["GETRANGE", "list", "x", 1],
        ["SUBSTR", "zset", 0, 1],
        ["GETRANGE", "k", str(INT64_MAX + 1), 1],
    ]
    assert_same(oracle, engine, cmds)


def test_setrange(oracle: Oracle, engine: EngineClient) -> None:
    seed_other_types(oracle, engine)
    assert_same(
        oracle,
        engine,
        [
            ["SETRANGE", "k", "0", ""],
            ["GET", "k"],
            ["SETRANGE", "k", "5", ""],
            ["SETRANGE", "k", "-1", "x"],
            ["SETRANGE", "k", "-1", ""],
            ["SETRANGE", "k", "x", "v"],
            ["SETRANGE", "k", "3", "abc"],
            ["GET", "k"],
            ["SETRANGE", "k", "1", "Z"],
            ["GET", "k"],
            ["SETRANGE", "k", "5", "long tail"],
            ["GET", "k"],
            ["SETRANGE", "k", "100", ""],
            ["STRLEN", "k"],
            ["SETRANGE", "k", "536870912", "x"],
            ["SETRANGE", "k", "536870911", "xy"],
            ["SETRANGE", "k", "536870912", ""],
            ["SETRANGE", "big", "536870912", "x"],
            ["SETRANGE", "big", str(INT64_MAX), "x"],
            ["GET", "big"],
            ["SETRANGE", "list", "0", "x"],
            ["SETRANGE", "list", "0", ""],
            ["SETRANGE", "list", "-1", "x"],
            ["SETRANGE", "list", "a", "x"],
            ["SETRANGE", "list", "536870912", "x"],
            ["SET", "n", "123"],
            ["SETRANGE", "n", "1", "9"],
            ["INCR", "n"],
            ["SET", "t", "hello", "EX", "100"],
            ["SETRANGE", "t", "0", "J"],
            ["GET", "t"],
        ],
    )
    assert_same_expiry(oracle, engine, "t", 1000)  # SETRANGE keeps the TTL
    assert_same_expiry(oracle, engine, "big")


# --- counters -----------------------------------------------------------------------


def test_incr_decr(oracle: Oracle, engine: EngineClient) -> None:
    seed_other_types(oracle, engine)
    cmds: list[list[Arg]] = [
        ["INCR", "c"],
        ["INCR", "c"],
        ["DECR", "c"],
        ["DECR", "d"],
        ["INCRBY", "c", "10"],
        ["INCRBY", "c", "-100"],
        ["DECRBY", "c", "5"],
        ["DECRBY", "c", "-5"],
        ["GET", "c"],
        ["INCRBY", "c", "0"],
        ["INCRBY", "c", "abc"],
        ["INCRBY", "c", "1.5"],
        ["INCRBY", "c", " 1"],
        ["INCRBY", "c", str(INT64_MAX + 1)],
        ["DECRBY", "c", str(INT64_MIN)],
        ["DECRBY", "c", str(INT64_MAX)],
        ["INCRBY", "list", "x"],
        ["DECRBY", "list", str(INT64_MIN)],
        ["INCR", "list"],
        ["DECR", "set"],
        ["INCRBY", "hash", "1"],
        ["DECRBY", "zset", "1"],
        ["SET", "max", str(INT64_MAX)],
        ["INCR", "max"],
        ["INCRBY", "max", "0"],
        ["DECR", "max"],
        ["INCRBY", "max", "1"],
        ["SET", "min", str(INT64_MIN)],
        ["DECR", "min"],
        ["DECRBY", "min", "1"],
        ["INCRBY", "min", "-1"],
        ["INCRBY", "min", str(INT64_MAX)],
        ["INCRBY", "min", str(INT64_MAX)],
        ["SET", "neg", "-5"],
        ["INCRBY", "neg", str(INT64_MIN + 5)],
        ["INCRBY", "neg", "-1"],
        ["SET", "z", "0"],
        ["INCRBY", "z", str(INT64_MIN)],
        ["DECRBY", "z", str(INT64_MAX)],
        ["INCRBY", "big", str(INT64_MAX)],
        ["SET", "big2", str(INT64_MAX + 1)],
        ["INCR", "big2"],
        ["SET", "e", ""],
        ["INCR", "e"],
        ["SET", "f", "1e3"],
        ["INCR", "f"],
    ]
    for bad in ("abc", " 1", "1 ", "01", "+1", "1.0", "-0", "0x10", "--1", "1a"):
        cmds += [["SET", "bad", bad], ["INCR", "bad"], ["DECRBY", "bad", "1"], ["GET", "bad"]]
    assert_same(oracle, engine, cmds)


def test_incr_keeps_ttl(oracle: Oracle, engine: EngineClient) -> None:
    for cmd in (["INCR", "t"], ["DECR", "t"], ["INCRBY", "t", "5"], ["DECRBY", "t", "2"]):
        assert_same(oracle, engine, [["SET", "t", "10", "EX", "100"], cmd, ["GET", "t"]])
        assert_same_expiry(oracle, engine, "t", 1000)
    assert_same(oracle, engine, [["INCR", "fresh"]])
    assert_same_expiry(oracle, engine, "fresh")


def test_incrbyfloat(oracle: Oracle, engine: EngineClient) -> None:
    seed_other_types(oracle, engine)
    cmds: list[list[Arg]] = [
        ["SET", "f", "1"],
        ["INCRBYFLOAT", "f", "0.1"],
        ["INCRBYFLOAT", "f", "0.1"],
        ["INCRBYFLOAT", "f", "0.1"],
        ["SET", "g", "3"],
        ["INCRBYFLOAT", "g", "2.0"],
        ["INCRBYFLOAT", "new", "10.5"],
        ["INCRBYFLOAT", "new", "-10.5"],
        ["INCRBYFLOAT", "new", "-0.0"],
        ["INCRBYFLOAT", "new", "-1e-20"],
        ["INCRBYFLOAT", "h", "1e308"],
        ["INCRBYFLOAT", "h", "1e308"],
        ["INCRBYFLOAT", "h", "-1e308"],
        ["INCRBYFLOAT", "i", "1.18973149535723176502e+4932"],
        ["INCRBYFLOAT", "i", "1.18973149535723176502e+4932"],
        ["INCRBYFLOAT", "i", "-1e4932"],
        ["INCRBYFLOAT", "j", "1.18973149535723176509e+4932"],
        ["INCRBYFLOAT", "j", "1e5000"],
        ["INCRBYFLOAT", "j", "1e-5000"],
        ["INCRBYFLOAT", "j", "1e-4940"],
        ["INCRBYFLOAT", "j", "0.000003814697265625"],
        ["INCRBYFLOAT", "j", "0.000003814697265625"],
        ["INCRBYFLOAT", "j", "0x1.8p1"],
        ["INCRBYFLOAT", "j", "0X.8"],
        ["INCRBYFLOAT", "j", "0x1p"],
        ["INCRBYFLOAT", "j", "0x"],
        ["INCRBYFLOAT", "j", "5."],
        ["INCRBYFLOAT", "j", "+.5"],
        ["INCRBYFLOAT", "j", "."],
        ["INCRBYFLOAT", "j", "1e"],
        ["INCRBYFLOAT", "j", "1e+2"],
        ["INCRBYFLOAT", "j", " 1"],
        ["INCRBYFLOAT", "j", "1 "],
        ["INCRBYFLOAT", "j", ""],
        ["INCRBYFLOAT", "j", b"1\x002"],
        ["INCRBYFLOAT", "j", "abc"],
        ["INCRBYFLOAT", "j", "nan"],
        ["INCRBYFLOAT", "j", "-nan"],
        ["INCRBYFLOAT", "j", "inf"],
        ["INCRBYFLOAT", "j", "-Infinity"],
        ["INCRBYFLOAT", "j", "+INF"],
        ["INCRBYFLOAT", "j", "0e999999999999999999999"],
        ["INCRBYFLOAT", "j", "1" + "0" * 400],
        ["INCRBYFLOAT", "j", "0." + "0" * 5000 + "1"],
        ["INCRBYFLOAT", "j", "0." + "0" * 5200 + "1"],
        ["INCRBYFLOAT", "j", "123456789012345678901234567890.123456789"],
        ["INCRBYFLOAT", "j", "-123456789012345678901234567890"],
        ["INCRBYFLOAT", "k", "0.1"],
        ["INCRBYFLOAT", "k", "0.2"],
        ["INCRBYFLOAT", "k", "1e-17"],
        ["INCRBYFLOAT", "k", "5e-18"],
        ["INCRBYFLOAT", "k", "-0.30000000000000001"],
        ["INCRBYFLOAT", "l", "9223372036854775807"],
        ["INCRBYFLOAT", "l", "1"],
        ["INCRBYFLOAT", "l", "0.5"],
        ["INCR", "l"],
        ["SET", "s", " 1"],
        ["INCRBYFLOAT", "s", "1"],
        ["SET", "s", "1.5e3"],
        ["INCRBYFLOAT", "s", "1"],
        ["SET", "s", "inf"],
        ["INCRBYFLOAT", "s", "1"],
        ["SET", "s", ""],
        ["INCRBYFLOAT", "s", "1"],
        ["SET", "s", "007"],
        ["INCRBYFLOAT", "s", "0x10"],
        ["INCRBYFLOAT", "list", "1"],
        ["INCRBYFLOAT", "list", "abc"],
        ["INCRBYFLOAT", "hash", "1.5"],
    ]
    assert_same(oracle, engine, cmds)
    assert_same(oracle, engine, [["SET", "t", "1.5", "EX", "100"], ["INCRBYFLOAT", "t", "2.25"]])
    assert_same_expiry(oracle, engine, "t", 1000)


# --- LCS ----------------------------------------------------------------------------


def test_lcs(oracle: Oracle, engine: EngineClient) -> None:
    seed_other_types(oracle, engine)
    cmds: list[list[Arg]] = [
        ["MSET", "a", "ohmytext", "b", "mynewtext", "c", "", "d", "aaaa", "e", "aa"],
        ["MSET", "x", "ABCBDAB", "y", "BDCABA", "r", "rosettacode", "s", "raisethysword"],
    ]
    pairs = [("a", "b"), ("b", "a"), ("a", "c"), ("c", "c"), ("d", "e"), ("x", "y"), ("r", "s"), ("a", "zz")]
    variants: list[list[Arg]] = [
        [],
        ["LEN"],
        ["IDX"],
        ["IDX", "WITHMATCHLEN"],
        ["IDX", "MINMATCHLEN", "2"],
        ["IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"],
        ["idx", "minmatchlen", "-3", "withmatchlen"],
        ["WITHMATCHLEN"],
        ["MINMATCHLEN", "2"],
        ["LEN", "LEN"],
    ]
    for k1, k2 in pairs:
        for extra in variants:
            cmds.append(["LCS", k1, k2, *extra])
    cmds += [
        ["LCS", "a", "b", "LEN", "IDX"],
        ["LCS", "a", "b", "IDX", "LEN"],
        ["LCS", "a", "b", "MINMATCHLEN"],
        ["LCS", "a", "b", "MINMATCHLEN", "x"],
        ["LCS", "a", "b", "MINMATCHLEN", "x", "LEN", "IDX"],
        ["LCS", "a", "b", "FOO"],
        ["LCS", "a", "b", "FOO", "LEN", "IDX"],
        ["LCS", "a", "list"],
        ["LCS", "hash", "a", "FOO"],
        ["LCS", "missing", "set", "LEN"],
        ["LCS", "a"],
    ]
    assert_same(oracle, engine, cmds)


def test_lcs_random_strings(oracle: Oracle, engine: EngineClient) -> None:
    rng = random.Random(7)
    cmds: list[list[Arg]] = []
    for n in range(12):
        size_a, size_b = rng.randint(0, 40) * (1 + n // 6 * 20), rng.randint(0, 40) * (1 + n // 6 * 20)
        a = bytes(rng.choice(b"ab\x00c") for _ in range(size_a))
        b = bytes(rng.choice(b"abd\x00") for _ in range(size_b))
        cmds += [
            ["MSET", "a", a, "b", b],
            ["LCS", "a", "b"],
            ["LCS", "b", "a", "LEN"],
            ["LCS", "a", "b", "IDX", "WITHMATCHLEN"],
            ["LCS", "a", "b", "IDX", "MINMATCHLEN", rng.randint(0, 4)],
        ]
    assert_same(oracle, engine, cmds)


def test_lcs_size_limit(oracle: Oracle, engine: EngineClient) -> None:
    # (11585 + 1) ** 2 * 4 bytes of table exceed proto-max-bulk-len (checked after options)
    assert_same(
        oracle,
        engine,
        [
            ["MSET", "a", "x" * 11585, "b", "y" * 11585, "c", "xy" * 500],
            ["LCS", "a", "b", "LEN"],
            ["LCS", "a", "b", "FOO"],
            ["LCS", "a", "c", "IDX", "MINMATCHLEN", "10"],
        ],
    )


# --- PING / ECHO / TIME -------------------------------------------------------------


def test_ping_echo(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["PING"],
            ["PING", "hello"],
            ["PING", ""],
            ["PING", b"\x00\xff"],
            ["PING", "a", "b"],
            ["ECHO", "hi"],
            ["ECHO", ""],
            ["ECHO"],
            ["ECHO", "a", "b"],
            ["TIME", "x"],
        ],
    )


def test_time(oracle: Oracle, engine: EngineClient) -> None:
    expected, actual = oracle("TIME"), engine("TIME")
    assert isinstance(expected, list) and isinstance(actual, list)
    assert all(isinstance(part, bytes) for part in actual)
    assert [part.isdigit() for part in actual] == [True, True]
    assert 0 <= int(actual[1]) < 1_000_000
    redis_us = int(expected[0]) * 1_000_000 + int(expected[1])
    engine_us = int(actual[0]) * 1_000_000 + int(actual[1])
    assert abs(redis_us - engine_us) < 1_000_000


def test_time_follows_the_unit_clock() -> None:
    from kvgate.engine import Engine

    t = MemoryStore().txn(now=1_700_000_000_123)
    seconds, micros = Engine("memory").execute(t, [b"TIME"])  # type: ignore[misc]
    assert seconds == b"1700000000"
    assert 123_000 <= int(micros) < 124_000


# --- wrong types everywhere ---------------------------------------------------------


def test_wrong_type_for_every_command(oracle: Oracle, engine: EngineClient) -> None:
    seed_other_types(oracle, engine)
    cmds: list[list[Arg]] = []
    for name in OTHER_TYPES:
        cmds += [
            ["GET", name],
            ["GETEX", name, "PERSIST"],
            ["GETDEL", name],
            ["GETSET", name, "v"],
            ["STRLEN", name],
            ["APPEND", name, "v"],
            ["GETRANGE", name, 0, -1],
            ["SUBSTR", name, 0, -1],
            ["SETRANGE", name, 0, "v"],
            ["INCR", name],
            ["DECR", name],
            ["INCRBY", name, 1],
            ["DECRBY", name, 1],
            ["INCRBYFLOAT", name, 1],
            ["LCS", name, name],
            ["MGET", name],
            ["SETNX", name, "v"],
            ["MSETNX", name, "v"],
        ]
    assert_same(oracle, engine, cmds)
    # SETEX/PSETEX/MSET replace any type, like SET
    assert_same(
        oracle,
        engine,
        [
            ["SETEX", "list", "100", "a"],
            ["PSETEX", "set", "100000", "b"],
            ["MSET", "hash", "c", "zset", "d"],
            ["MGET", "list", "set", "hash", "zset"],
        ],
    )


# --- longdouble against Redis -------------------------------------------------------

LONG_DOUBLE_CASES = [
    ("1", "0.1"),
    ("1.1", "0.1"),
    ("1.2", "0.1"),
    ("3", "2.0"),
    ("0", "0.1"),
    ("0.1", "0.2"),
    ("1e308", "1e308"),
    ("0", "1e4000"),
    ("1e4930", "1.1e4932"),
    ("0", "1.18973149535723176502e+4932"),
    ("0", "0.000003814697265625"),
    ("0", "0.000003814697265635"),
    ("0", "1e-20"),
    ("0", "-1e-20"),
    ("0", "-0.5"),
    ("0", "5e-18"),
    ("0", "1.5e-17"),
    ("0", "2.5e-17"),
    ("0", "0x1.fffffffffffffffep0"),
    ("0", "0x1.ffffffffffffffffp0"),
    ("1", "0x1p-64"),
    ("1", "0x1p-63"),
    ("1", "0x3p-65"),
    ("9223372036854775807", "1"),
    ("18446744073709551615", "1"),
    ("18446744073709551617", "0"),
    ("-18446744073709551617", "0"),
    ("12345678901234567890123", "0.00000000000000001"),
    ("3.141592653589793238462643383279", "2.718281828459045235360287471352"),
    ("-7.75", "7.75"),
    ("1e-4940", "0"),
    ("1e-4950", "1e-4950"),
]


def test_longdouble_against_redis(oracle: Oracle) -> None:
    bad = []
    for value, increment in LONG_DOUBLE_CASES:
        oracle("SET", "ld", value)
        expected = oracle("INCRBYFLOAT", "ld", increment)
        a, b = longdouble.parse(value.encode()), longdouble.parse(increment.encode())
        assert a is not None and b is not None, (value, increment)
        actual = longdouble.to_bytes(longdouble.add(a, b))
        if expected != actual:
            bad.append((value, increment, expected, actual))
    assert not bad


def test_longdouble_parse_refusals() -> None:
    for raw in (b"", b" 1", b"1 ", b"nan", b"NaN", b"1e5000", b"-1e5000", b"1e-5000", b"0x", b"1e", b"."):
        assert longdouble.parse(raw) is None, raw
    assert longdouble.parse(b"1" * longdouble.MAX_CHARS) is None
    assert longdouble.parse(b"0" * (longdouble.MAX_CHARS - 2) + b"1") == 1


def test_longdouble_rounding_and_infinities() -> None:
    one = Fraction(1)
    # 1 + 2**-64 is a tie between 1 and 1 + 2**-63: to even (1)
    assert longdouble.add(one, Fraction(1, 2**64)) == 1
    assert longdouble.add(one, Fraction(3, 2**65)) == 1 + Fraction(1, 2**63)
    assert longdouble.round_ld(longdouble.MAX_VALUE * 2) == float("inf")
    assert longdouble.round_ld(-longdouble.MAX_VALUE * 2) == float("-inf")
    smallest = Fraction(1, 2**16445)
    assert longdouble.round_ld(smallest) == smallest
    assert longdouble.round_ld(smallest / 2) == 0  # tie to even: zero
    assert longdouble.round_ld(smallest * 3 / 4) == smallest
    inf = longdouble.parse(b"inf")
    assert inf is not None and not longdouble.is_finite(inf)
    assert not longdouble.is_finite(longdouble.add(inf, one))
    total = longdouble.add(inf, longdouble.parse(b"-inf"))  # type: ignore[arg-type]
    assert total != total  # NaN
    assert longdouble.to_bytes(inf) == b"inf"
    assert longdouble.to_bytes(Fraction(-1, 10**20)) == b"0"
    assert longdouble.to_bytes(Fraction(-5, 2)) == b"-2.5"


@pytest.mark.parametrize("raw", [b"1e4932", b"-1.1e4932", b"0." + b"0" * 4940 + b"1"])
def test_longdouble_large_texts_round_trip(raw: bytes) -> None:
    value = longdouble.parse(raw)
    assert value is not None
    text = longdouble.to_bytes(value)
    assert longdouble.parse(text) is not None or text == b"0"


def test_set_with_a_past_expiry_deletes_what_was_there(oracle: Oracle, engine: EngineClient) -> None:
    """Found by the Hypothesis machine on DynamoDB: a plain SET is written without reading
    the key, and one that expires at once must still delete the old value."""
    assert_same(
        oracle,
        engine,
        [
            ["SET", "k", "old"],
            ["SET", "k", "new", "EXAT", "1"],
            ["GET", "k"],
            ["EXISTS", "k"],
            ["MSET", "m", "1"],
            ["SET", "m", "2", "PXAT", "1"],
            ["GET", "m"],
            ["SET", "absent", "v", "EXAT", "1"],
            ["EXISTS", "absent"],
        ],
    )
