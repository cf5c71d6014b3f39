"""Sorted-set commands of kvgate's engine against a real Redis 7.0, reply for reply.

Keys of other types (and TTLs) are put in place through each side's own means (Redis
commands for the oracle, the store for the engine), so these tests depend on no other
command family.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest

from kvgate.engine.storage import KeyType
from tests.support.engine import Arg, EngineClient, Oracle, assert_same

INT64_MAX = "9223372036854775807"


def seed(
    oracle: Oracle,
    engine: EngineClient,
    name: str,
    kind: str,
    items: Sequence[str] = ("x",),
    pexpire: int | None = None,
) -> None:
    """Make ``name`` a key of ``kind`` (string, set, hash, list) on both sides."""
    bname = name.encode()
    with engine.units(True) as t:
        old = t.lookup(bname)
        if old is not None:
            t.delete(old)
        if kind == "string":
            oracle("SET", name, items[0])
            key = t.set_string(bname, items[0].encode(), None)
        else:
            oracle("DEL", name)
            oracle({"set": "SADD", "hash": "HSET", "list": "RPUSH"}[kind], name, *items)
            key = t.create(bname, {"set": KeyType.SET, "hash": KeyType.HASH, "list": KeyType.LIST}[kind])
            if kind == "hash":
                for field, value in zip(items[::2], items[1::2], strict=True):
                    t.put(key, field.encode(), value.encode())
            elif kind == "set":
                for member in items:
                    t.put(key, member.encode())
            else:
                for i, value in enumerate(items):
                    t.put(key, b"%d" % i, value.encode(), float(i))
        if pexpire is not None:
            oracle("PEXPIRE", name, pexpire)
            t.set_expire(key, t.now + pexpire)


def expire_soon(oracle: Oracle, engine: EngineClient, name: str) -> None:
    """Give ``name`` a 1 ms TTL on both sides (the caller sleeps past it)."""
    oracle("PEXPIRE", name, 1)
    with engine.units(True) as t:
        key = t.lookup(name.encode())
        assert key is not None
        t.set_expire(key, t.now + 1)


def ttl_state(engine: EngineClient, name: str) -> int:
    """-2 missing, -1 no TTL, 1 with a TTL: what ``PTTL`` says, reduced to its sign."""
    with engine.units(False) as t:
        key = t.lookup(name.encode())
    if key is None:
        return -2
    return -1 if key.expire_at is None else 1


def same_ttl(oracle: Oracle, engine: EngineClient, name: str) -> None:
    expected = oracle("PTTL", name)
    assert isinstance(expected, int)
    assert ttl_state(engine, name) == (expected if expected < 0 else 1), name


def key_type(engine: EngineClient, name: str) -> bytes:
    with engine.units(False) as t:
        key = t.lookup(name.encode())
    return b"none" if key is None else key.type.redis_name


def same_type(oracle: Oracle, engine: EngineClient, name: str) -> None:
    assert key_type(engine, name) == oracle("TYPE", name), name


def check(oracle: Oracle, engine: EngineClient, commands: list[list[Arg]], unordered: bool = False) -> None:
    assert_same(oracle, engine, commands, unordered=lambda cmd: unordered)


Z = ["ZADD", "z", "1", "a", "2", "b", "3", "c", "2", "bb", "-inf", "ninf", "+inf", "pinf", "1.5", "x"]


# --- ZADD / ZINCRBY ------------------------------------------------------------------------


def test_zadd_flags(oracle: Oracle, engine: EngineClient) -> None:
    check(
        oracle,
        engine,
        [
            ["ZADD", "z", "1", "a", "2", "b"],
            ["ZADD", "z", "NX", "5", "a", "3", "c"],
            ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            ["ZADD", "z", "XX", "5", "a", "4", "d"],
            ["ZADD", "z", "XX", "CH", "6", "a", "4", "d"],
            ["ZADD", "z", "CH", "6", "a", "7", "b", "1", "e"],
            ["ZADD", "z", "GT", "1", "a", "10", "b", "2", "f"],
            ["ZADD", "z", "GT", "CH", "1", "a", "11", "b", "2", "g"],
            ["ZADD", "z", "LT", "CH", "0", "a", "20", "b", "0", "h"],
            ["ZADD", "z", "XX", "GT", "CH", "100", "a", "1", "zz"],
            ["ZADD", "z", "XX", "LT", "CH", "-1", "a", "1000", "b"],
            ["ZADD", "z", "gt", "ch", "xx", "100", "a"],
            ["ZADD", "z", "CH", "100", "a"],
            ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            ["ZADD", "z", "INCR", "1", "a"],
            ["ZADD", "z", "INCR", "NX", "1", "a"],
            ["ZADD", "z", "INCR", "NX", "1", "new"],
            ["ZADD", "z", "INCR", "XX", "1", "nope"],
            ["ZADD", "z", "INCR", "GT", "-1", "a"],
            ["ZADD", "z", "INCR", "GT", "0", "a"],
            ["ZADD", "z", "INCR", "LT", "-1", "a"],
            ["ZADD", "z", "INCR", "LT", "0", "a"],
            ["ZADD", "z", "INCR", "GT", "5", "brandnew"],
            ["ZADD", "z", "CH", "INCR", "5", "a"],
            ["ZADD", "z", "INCR", "INCR", "0", "a"],
            ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            ["ZADD", "d", "1", "m", "2", "m"],
            ["ZSCORE", "d", "m"],
            ["ZADD", "d", "CH", "3", "m", "3", "m", "4", "n", "5", "n"],
            ["ZRANGE", "d", "0", "-1", "WITHSCORES"],
            ["ZADD", "d", "NX", "CH", "9", "m", "9", "o", "10", "o"],
            ["ZRANGE", "d", "0", "-1", "WITHSCORES"],
            ["ZADD", "nokey", "XX", "1", "a"],
            ["ZADD", "nokey", "XX", "INCR", "1", "a"],
            ["ZCARD", "nokey"],
        ],
    )
    same_type(oracle, engine, "nokey")


def test_zadd_scores(oracle: Oracle, engine: EngineClient) -> None:
    check(
        oracle,
        engine,
        [
            ["ZADD", "z", "inf", "pinf", "-inf", "ninf", "+inf", "p2", "-Infinity", "n2"],
            ["ZADD", "z", "1.", "a", ".5", "b", "+5", "c", "1e3", "d", "0x10", "e", "-1.5E-3", "f"],
            ["ZADD", "z", "0.1", "g", "1e-300", "h", "123456789012345678", "i", "1e20", "j"],
            ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            ["ZADD", "z", "INCR", "-inf", "pinf"],
            ["ZADD", "z", "INCR", "inf", "pinf"],
            ["ZADD", "z", "INCR", "inf", "ninf"],
            ["ZINCRBY", "z", "-inf", "pinf"],
            ["ZINCRBY", "z", "1", "pinf"],
            ["ZADD", "z", "-0", "m0"],
            ["ZSCORE", "z", "m0"],
            ["ZADD", "z", "INCR", "-0", "m1"],
            ["ZSCORE", "z", "m1"],
            ["ZADD", "z", "INCR", "-0", "m1"],
            ["ZADD", "z", "INCR", "0", "m1"],
            ["ZRANGEBYSCORE", "z", "0", "0", "WITHSCORES"],
            ["ZINCRBY", "z", "0.1", "f1"],
            ["ZINCRBY", "z", "0.2", "f1"],
            ["ZINCRBY", "z", "2.5", "a"],
            ["ZINCRBY", "z", "1", "newm"],
            ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        ],
    )


def test_zadd_errors(oracle: Oracle, engine: EngineClient) -> None:
    seed(oracle, engine, "s", "string")
    check(
        oracle,
        engine,
        [
            ["ZADD", "z", "1", "a"],
            ["ZADD", "z", "NX", "XX", "1", "a"],
            ["ZADD", "z", "GT", "LT", "1", "a"],
            ["ZADD", "z", "GT", "NX", "1", "a"],
            ["ZADD", "z", "LT", "NX", "1", "a"],
            ["ZADD", "z", "XX", "NX", "GT", "1", "a"],
            ["ZADD", "z", "INCR", "1", "a", "2", "b"],
            ["ZADD", "z", "INCR", "NX", "XX", "1", "a", "2", "b"],
            ["ZADD", "z", "nan", "a"],
            ["ZADD", "z", "NaN", "a"],
            ["ZADD", "z", "abc", "a"],
            ["ZADD", "z", "", "a"],
            ["ZADD", "z", " 1", "a"],
            ["ZADD", "z", "1 ", "a"],
            ["ZADD", "z", "1e400", "a"],
            ["ZADD", "z", "1e-400", "a"],
            ["ZADD", "z", "(1", "a"],
            ["ZADD", "z", "1", "a", "2"],
            ["ZADD", "z", "NX"],
            ["ZADD", "z", "1"],
            ["ZADD", "z", "XX", "1", "a", "x"],
            ["ZADD", "z", "5", "b", "nan", "c"],
            ["ZADD", "z", "INCR", "x", "a"],
            ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
            ["ZADD", "s", "NX", "XX", "1", "a"],
            ["ZADD", "s", "x", "a"],
            ["ZADD", "s", "1", "a"],
            ["ZADD", "s", "XX", "1", "a"],
            ["ZINCRBY", "s", "1", "a"],
            ["ZINCRBY", "s", "x", "a"],
            ["ZINCRBY", "z", "abc", "a"],
            ["ZINCRBY", "z", "nan", "a"],
            ["ZINCRBY", "z", "nx", "a"],
            ["ZINCRBY", "z", "incr", "a"],
            ["ZINCRBY", "z", "1"],
            ["ZADD", "z"],
            ["ZSCORE", "z", "a"],
        ],
    )


# --- plain reads ------------------------------------------------------------------------------


def test_reads(oracle: Oracle, engine: EngineClient) -> None:
    seed(oracle, engine, "s", "string")
    seed(oracle, engine, "h", "hash", ("f", "v"))
    check(
        oracle,
        engine,
        [
            Z,
            ["ZCARD", "z"],
            ["ZCARD", "missing"],
            ["ZCARD", "s"],
            ["ZCARD", "h"],
            ["ZSCORE", "z", "a"],
            ["ZSCORE", "z", "pinf"],
            ["ZSCORE", "z", "ninf"],
            ["ZSCORE", "z", "nope"],
            ["ZSCORE", "missing", "a"],
            ["ZSCORE", "s", "a"],
            ["ZMSCORE", "z", "a", "nope", "x", "ninf"],
            ["ZMSCORE", "missing", "a", "b"],
            ["ZMSCORE", "s", "a"],
            ["ZMSCORE", "z"],
            ["ZRANK", "z", "ninf"],
            ["ZRANK", "z", "bb"],
            ["ZRANK", "z", "pinf"],
            ["ZRANK", "z", "nope"],
            ["ZRANK", "missing", "a"],
            ["ZRANK", "s", "a"],
            ["ZRANK", "z", "a", "WITHSCORE"],
            ["ZREVRANK", "z", "ninf"],
            ["ZREVRANK", "z", "b"],
            ["ZREVRANK", "z", "bb"],
            ["ZREVRANK", "z", "nope"],
            ["ZREVRANK", "missing", "a"],
            ["ZREVRANK", "h", "a"],
            ["ZREVRANK", "z", "a", "WITHSCORE"],
        ],
    )


def test_equal_scores_order_by_bytes(oracle: Oracle, engine: EngineClient) -> None:
    members = [b"b", b"a", b"B", b"\xff", b"", b"aa", b"a\x00", b"\xc3\xa9", b"10", b"9", b"-1"]
    args: list[Arg] = ["ZADD", "e"]
    for m in members:
        args += ["1", m]
    check(
        oracle,
        engine,
        [
            args,
            ["ZRANGE", "e", "0", "-1"],
            ["ZREVRANGE", "e", "0", "-1", "WITHSCORES"],
            ["ZRANK", "e", b"\xff"],
            ["ZRANK", "e", b""],
            ["ZREVRANK", "e", b"a\x00"],
            ["ZRANGEBYSCORE", "e", "1", "1", "LIMIT", "2", "3"],
            ["ZREVRANGEBYSCORE", "e", "1", "1", "LIMIT", "2", "3"],
            ["ZPOPMIN", "e", "2"],
            ["ZPOPMAX", "e", "2"],
            ["ZRANGE", "e", "0", "-1"],
        ],
    )


# --- ZRANGE by rank -------------------------------------------------------------------------------


def test_zrange_by_rank(oracle: Oracle, engine: EngineClient) -> None:
    seed(oracle, engine, "s", "string")
    windows = [
        ("0", "-1"),
        ("1", "2"),
        ("-2", "-1"),
        ("-100", "100"),
        ("5", "1"),
        ("100", "200"),
        ("-1", "-2"),
        ("0", "0"),
        ("-1", "-1"),
        ("6", "6"),
        ("7", "7"),
        ("-8", "-7"),
        ("-9223372036854775808", INT64_MAX),
    ]
    commands: list[list[Arg]] = [Z]
    for start, stop in windows:
        commands += [
            ["ZRANGE", "z", start, stop],
            ["ZRANGE", "z", start, stop, "WITHSCORES"],
            ["ZRANGE", "z", start, stop, "REV"],
            ["ZREVRANGE", "z", start, stop, "WITHSCORES"],
        ]
    commands += [
        ["ZRANGE", "z", "0", "-1", "withscores", "WITHSCORES", "rev"],
        ["ZRANGE", "z", "0", "-1", "REV", "REV"],
        ["ZREVRANGE", "z", "0", "-1", "REV"],
        ["ZREVRANGE", "z", "0", "-1", "BYSCORE"],
        ["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"],
        ["ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"],
        ["ZRANGE", "z", "0", "-1", "LIMIT", "5", "-1"],
        ["ZRANGE", "z", "0", "-1", "LIMIT", "0", "-2"],
        ["ZREVRANGE", "z", "0", "-1", "LIMIT", "0", "2"],
        ["ZRANGE", "z", "0", "-1", "LIMIT", "0"],
        ["ZRANGE", "z", "0", "-1", "LIMIT", "x", "1"],
        ["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1.5"],
        ["ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"],
        ["ZRANGE", "z", "0", "-1", "BYSCORE", "BYSCORE"],
        ["ZRANGE", "z", "0", "-1", "FOO"],
        ["ZRANGE", "z", "a", "1"],
        ["ZRANGE", "z", "0", "1.0"],
        ["ZRANGE", "z", "0", "9223372036854775808"],
        ["ZRANGE", "missing", "0", "-1"],
        ["ZRANGE", "missing", "x", "-1"],
        ["ZRANGE", "s", "0", "-1"],
        ["ZRANGE", "s", "x", "-1"],
        ["ZRANGE", "s", "0", "-1", "FOO"],
        ["ZREVRANGE", "s", "0", "-1"],
        ["ZRANGE", "z", "0"],
    ]
    check(oracle, engine, commands)


# --- score ranges ---------------------------------------------------------------------------------


def test_zrange_by_score(oracle: Oracle, engine: EngineClient) -> None:
    ranges = [
        ("-inf", "+inf"),
        ("(1", "3"),
        ("1", "(3"),
        ("(1", "(2"),
        ("2", "2"),
        ("(2", "2"),
        ("3", "1"),
        ("inf", "inf"),
        ("(inf", "+inf"),
        ("-inf", "(-inf"),
        ("-inf", "-inf"),
        ("1e400", "1e500"),
        ("-1e400", "1"),
        ("", "2"),
        ("(", "2"),
        (" 2", "  3"),
        ("0x1p1", "0X3"),
        ("1.5", "(1.5"),
        ("(1.5", "2"),
        ("1e-400", "2"),
        ("-Infinity", "INF"),
        ("1.", ".5e1"),
    ]
    commands: list[list[Arg]] = [Z]
    for low, high in ranges:
        commands += [
            ["ZRANGE", "z", low, high, "BYSCORE", "WITHSCORES"],
            ["ZRANGE", "z", high, low, "BYSCORE", "REV"],
            ["ZRANGEBYSCORE", "z", low, high],
            ["ZREVRANGEBYSCORE", "z", high, low, "WITHSCORES"],
            ["ZCOUNT", "z", low, high],
        ]
    limits = [
        ("1", "2"),
        ("0", "-1"),
        ("0", "-5"),
        ("-1", "5"),
        ("-1", "-1"),
        ("100", "5"),
        ("7", "1"),
        ("6", "1"),
        ("0", "0"),
        ("1", INT64_MAX),
        (INT64_MAX, "1"),
        ("-9223372036854775808", "1"),
    ]
    for offset, count in limits:
        commands += [
            ["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", offset, count, "WITHSCORES"],
            ["ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", offset, count],
            ["ZRANGEBYSCORE", "z", "(1", "inf", "LIMIT", offset, count],
            ["ZREVRANGEBYSCORE", "z", "3", "-inf", "WITHSCORES", "LIMIT", offset, count],
        ]
    check(oracle, engine, commands)


def test_score_range_errors(oracle: Oracle, engine: EngineClient) -> None:
    seed(oracle, engine, "s", "string")
    commands: list[list[Arg]] = [Z]
    for low, high in [
        ("a", "1"),
        ("1", "b"),
        ("nan", "1"),
        ("(nan", "1"),
        ("1", "-nan"),
        ("2 ", "3"),
        (" ", "3"),
    ]:
        commands += [
            ["ZRANGE", "z", low, high, "BYSCORE"],
            ["ZRANGEBYSCORE", "z", low, high],
            ["ZREVRANGEBYSCORE", "z", high, low],
            ["ZCOUNT", "z", low, high],
            ["ZREMRANGEBYSCORE", "z", low, high],
            ["ZCOUNT", "s", low, high],
        ]
    commands += [
        ["ZRANGEBYSCORE", "z", "1", "2", "REV"],
        ["ZRANGEBYSCORE", "z", "1", "2", "BYSCORE"],
        ["ZRANGEBYSCORE", "z", "1", "2", "LIMIT", "1"],
        ["ZRANGEBYSCORE", "z", "1", "2", "LIMIT", "a", "1"],
        ["ZRANGEBYSCORE", "z", "x", "2", "LIMIT", "a", "1"],
        ["ZRANGEBYSCORE", "z", "x", "2", "FOO"],
        ["ZRANGEBYSCORE", "s", "1", "2"],
        ["ZRANGEBYSCORE", "s", "1", "2", "FOO"],
        ["ZRANGEBYSCORE", "missing", "1", "2"],
        ["ZRANGEBYSCORE", "missing", "x", "2"],
        ["ZREVRANGEBYSCORE", "s", "1", "2"],
        ["ZCOUNT", "s", "1", "2"],
        ["ZCOUNT", "missing", "1", "2"],
        ["ZRANGE", "z", "1", "2", "BYSCORE", "WITHSCORES", "LIMIT", "0", "1", "REV"],
    ]
    check(oracle, engine, commands)


# --- lex ranges -------------------------------------------------------------------------------------


L = [
    "ZADD",
    "l",
    "0",
    "a",
    "0",
    "b",
    "0",
    "c",
    "0",
    "d",
    "0",
    "e",
    "0",
    "",
    "0",
    "aa",
    "0",
    b"\xff",
    "0",
    "B",
]


def test_lex_ranges(oracle: Oracle, engine: EngineClient) -> None:
    ranges = [
        ("-", "+"),
        ("[b", "[d"),
        ("(b", "(d"),
        ("[b", "(b"),
        ("[b", "[b"),
        ("(b", "[b"),
        ("-", "-"),
        ("+", "+"),
        ("+", "-"),
        ("(a", "+"),
        ("-", "(a"),
        ("[", "+"),
        ("(", "+"),
        ("-", "["),
        ("[d", "[b"),
        ("[aa", "[b"),
        ("[\xff", "+"),
        ("[z", "+"),
        ("-", "(\x00"),
        ("[A", "[Z"),
    ]
    commands: list[list[Arg]] = [L]
    for low, high in ranges:
        commands += [
            ["ZRANGEBYLEX", "l", low, high],
            ["ZREVRANGEBYLEX", "l", high, low],
            ["ZRANGE", "l", low, high, "BYLEX"],
            ["ZRANGE", "l", high, low, "BYLEX", "REV"],
            ["ZLEXCOUNT", "l", low, high],
        ]
    for offset, count in [
        ("1", "2"),
        ("0", "-1"),
        ("-1", "2"),
        ("0", "0"),
        ("8", "5"),
        ("9", "1"),
        ("2", INT64_MAX),
    ]:
        commands += [
            ["ZRANGEBYLEX", "l", "-", "+", "LIMIT", offset, count],
            ["ZREVRANGEBYLEX", "l", "+", "(a", "LIMIT", offset, count],
            ["ZRANGE", "l", "[b", "+", "BYLEX", "LIMIT", offset, count],
            ["ZRANGE", "l", "+", "-", "BYLEX", "REV", "LIMIT", offset, count],
        ]
    check(oracle, engine, commands)


def test_lex_errors(oracle: Oracle, engine: EngineClient) -> None:
    seed(oracle, engine, "s", "string")
    commands: list[list[Arg]] = [L]
    for low, high in [("a", "+"), ("-", "b"), ("", "+"), ("+a", "+"), ("-", "-a"), ("1", "2"), ("[a", "{b")]:
        commands += [
            ["ZRANGEBYLEX", "l", low, high],
            ["ZREVRANGEBYLEX", "l", high, low],
            ["ZRANGE", "l", low, high, "BYLEX"],
            ["ZLEXCOUNT", "l", low, high],
            ["ZREMRANGEBYLEX", "l", low, high],
            ["ZLEXCOUNT", "s", low, high],
            ["ZRANGEBYLEX", "s", low, high],
        ]
    commands += [
        ["ZRANGEBYLEX", "l", "-", "+", "WITHSCORES"],
        ["ZRANGE", "l", "-", "+", "BYLEX", "WITHSCORES"],
        ["ZRANGE", "l", "x", "y", "BYLEX", "WITHSCORES"],
        ["ZRANGE", "l", "-", "+", "BYLEX", "LIMIT", "1"],
        ["ZRANGEBYLEX", "l", "-", "+", "REV"],
        ["ZRANGEBYLEX", "l", "-", "+", "BYLEX"],
        ["ZRANGEBYLEX", "s", "-", "+"],
        ["ZREVRANGEBYLEX", "s", "+", "-"],
        ["ZLEXCOUNT", "s", "-", "+"],
        ["ZRANGEBYLEX", "missing", "-", "+"],
        ["ZLEXCOUNT", "missing", "-", "+"],
        ["ZREMRANGEBYLEX", "missing", "-", "+"],
        ["ZREMRANGEBYLEX", "s", "-", "+"],
    ]
    check(oracle, engine, commands)


def test_lex_with_unequal_scores(oracle: Oracle, engine: EngineClient) -> None:
    """Redis assumes equal scores; with a small set it walks the elements in order."""
    commands: list[list[Arg]] = [
        ["ZADD", "m", "1", "d", "2", "a", "3", "c", "4", "b", "5", "e", "6", "a2"],
    ]
    ranges = [("-", "+"), ("[b", "[d"), ("(a", "(c"), ("[c", "+"), ("-", "[b"), ("[a", "[a2"), ("[e", "+")]
    for low, high in ranges:
        commands += [
            ["ZRANGEBYLEX", "m", low, high],
            ["ZREVRANGEBYLEX", "m", high, low],
            ["ZRANGEBYLEX", "m", low, high, "LIMIT", "1", "2"],
            ["ZREVRANGEBYLEX", "m", high, low, "LIMIT", "1", "1"],
            ["ZLEXCOUNT", "m", low, high],
        ]
    commands += [
        ["ZREMRANGEBYLEX", "m", "[b", "[d"],
        ["ZRANGE", "m", "0", "-1", "WITHSCORES"],
        ["ZRANGESTORE", "dst", "m", "+", "[c", "BYLEX", "REV"],
        ["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
    ]
    check(oracle, engine, commands)


# --- ZRANGESTORE ---------------------------------------------------------------------------------------


def test_zrangestore(oracle: Oracle, engine: EngineClient) -> None:
    seed(oracle, engine, "s", "string")
    check(
        oracle,
        engine,
        [
            Z,
            L,
            ["ZRANGESTORE", "dst", "z", "0", "-1"],
            ["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            ["ZRANGESTORE", "dst", "z", "1", "3", "REV"],
            ["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            ["ZRANGESTORE", "dst", "z", "(1", "inf", "BYSCORE", "LIMIT", "1", "3"],
            ["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            ["ZRANGESTORE", "dst", "z", "+inf", "2", "BYSCORE", "REV"],
            ["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            ["ZRANGESTORE", "dst", "l", "[b", "+", "BYLEX", "LIMIT", "0", "3"],
            ["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            ["ZRANGESTORE", "dst", "z", "0", "-1", "WITHSCORES"],
            ["ZRANGESTORE", "dst", "z", "0", "-1", "LIMIT", "0", "1"],
            ["ZRANGESTORE", "dst", "z", "a", "-1"],
            ["ZRANGESTORE", "dst", "s", "0", "-1"],
            ["ZRANGESTORE", "dst", "s", "0", "-1", "FOO"],
            ["ZRANGE", "dst", "0", "-1"],
            ["ZRANGESTORE", "dst", "z", "5", "1"],
            ["ZRANGE", "dst", "0", "-1"],
            ["ZRANGESTORE", "dst", "z", "0", "0"],
            ["ZRANGESTORE", "dst", "missing", "0", "-1"],
            ["ZRANGE", "dst", "0", "-1"],
            ["ZRANGESTORE", "s", "z", "0", "1"],
            ["ZRANGE", "s", "0", "-1", "WITHSCORES"],
            ["ZRANGESTORE", "z", "z", "0", "2"],
            ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        ],
    )
    same_type(oracle, engine, "dst")
    same_type(oracle, engine, "s")
    check(oracle, engine, [["ZADD", "t", "1", "a"]])
    seed(oracle, engine, "dst2", "hash", ("f", "v"), pexpire=100_000)
    check(oracle, engine, [["ZRANGESTORE", "dst2", "t", "0", "-1"], ["ZRANGE", "dst2", "0", "-1"]])
    same_ttl(oracle, engine, "dst2")


# --- removals ----------------------------------------------------------------------------------------------


def test_zrem(oracle: Oracle, engine: EngineClient) -> None:
    seed(oracle, engine, "s", "string")
    check(
        oracle,
        engine,
        [
            Z,
            ["ZREM", "z", "a", "nope", "a", "b"],
            ["ZREM", "z", "nope"],
            ["ZREM", "missing", "a"],
            ["ZREM", "s", "a"],
            ["ZRANGE", "z", "0", "-1"],
            ["ZREM", "z", "c", "bb", "ninf", "pinf", "x", "more"],
            ["ZCARD", "z"],
            ["ZREM", "z", "a"],
        ],
    )
    same_type(oracle, engine, "z")
    check(oracle, engine, [["ZADD", "t", "1", "a", "2", "b"]])
    seed_ttl(oracle, engine, "t")
    check(oracle, engine, [["ZREM", "t", "a", "b"], ["ZADD", "t", "1", "c"]])
    same_ttl(oracle, engine, "t")


def seed_ttl(oracle: Oracle, engine: EngineClient, name: str) -> None:
    oracle("PEXPIRE", name, 100_000)
    with engine.units(True) as t:
        key = t.lookup(name.encode())
        assert key is not None
        t.set_expire(key, t.now + 100_000)


def test_zremrange(oracle: Oracle, engine: EngineClient) -> None:
    seed(oracle, engine, "s", "string")
    commands: list[list[Arg]] = []
    for start, stop in [("0", "0"), ("-2", "-1"), ("5", "1"), ("100", "200"), ("-100", "1"), ("1", "100")]:
        commands += [Z, ["ZREMRANGEBYRANK", "z", start, stop], ["ZRANGE", "z", "0", "-1"]]
    for low, high in [
        ("(1", "2"),
        ("-inf", "(-inf"),
        ("-inf", "-inf"),
        ("3", "1"),
        ("(2", "+inf"),
        ("2", "(2"),
    ]:
        commands += [Z, ["ZREMRANGEBYSCORE", "z", low, high], ["ZRANGE", "z", "0", "-1"]]
    for low, high in [("[b", "(d"), ("-", "[aa"), ("(e", "+"), ("[d", "[b"), ("(", "+")]:
        commands += [L, ["ZREMRANGEBYLEX", "l", low, high], ["ZRANGE", "l", "0", "-1"]]
    commands += [
        ["ZREMRANGEBYRANK", "z", "a", "1"],
        ["ZREMRANGEBYRANK", "z", "0", "1.5"],
        ["ZREMRANGEBYRANK", "s", "0", "1"],
        ["ZREMRANGEBYRANK", "s", "x", "1"],
        ["ZREMRANGEBYRANK", "missing", "0", "1"],
        ["ZREMRANGEBYSCORE", "s", "0", "1"],
        ["ZREMRANGEBYSCORE", "missing", "0", "1"],
        ["ZREMRANGEBYRANK", "z", "0", "-1"],
        ["ZCARD", "z"],
        ["ZREMRANGEBYSCORE", "l", "-inf", "+inf"],
        ["ZCARD", "l"],
    ]
    check(oracle, engine, commands)
    same_type(oracle, engine, "z")
    same_type(oracle, engine, "l")


# --- popping -------------------------------------------------------------------------------------------------


def test_zpop(oracle: Oracle, engine: EngineClient) -> None:
    seed(oracle, engine, "s", "string")
    check(
        oracle,
        engine,
        [
            Z,
            ["ZPOPMIN", "z"],
            ["ZPOPMAX", "z"],
            ["ZPOPMIN", "z", "2"],
            ["ZPOPMAX", "z", "1"],
            ["ZPOPMIN", "z", "0"],
            ["ZPOPMIN", "z", "-1"],
            ["ZPOPMAX", "z", "abc"],
            ["ZPOPMAX", "z", "1", "2"],
            ["ZPOPMIN", "z", "1.0"],
            ["ZPOPMIN", "missing"],
            ["ZPOPMIN", "missing", "3"],
            ["ZPOPMAX", "missing", "0"],
            ["ZPOPMIN", "s"],
            ["ZPOPMIN", "s", "0"],
            ["ZPOPMIN", "s", "-1"],
            ["ZPOPMIN", "s", "1", "2"],
            ["ZPOPMAX", "z", "100"],
            ["ZCARD", "z"],
            ["ZPOPMAX", "z"],
        ],
    )
    same_type(oracle, engine, "z")


def test_zmpop(oracle: Oracle, engine: EngineClient) -> None:
    seed(oracle, engine, "s", "string")
    check(
        oracle,
        engine,
        [
            ["ZADD", "z1", "1", "a", "2", "b", "3", "c"],
            ["ZADD", "z2", "5", "x", "6", "y"],
            ["ZMPOP", "0", "z1", "MIN"],
            ["ZMPOP", "-1", "z1", "MIN"],
            ["ZMPOP", "abc", "z1", "MIN"],
            ["ZMPOP", "3", "z1", "MIN"],
            ["ZMPOP", "2", "z1", "z2"],
            ["ZMPOP", "1", "z1", "MIDDLE"],
            ["ZMPOP", "1", "z1", "MIN", "COUNT", "0"],
            ["ZMPOP", "1", "z1", "MIN", "COUNT", "-1"],
            ["ZMPOP", "1", "z1", "MIN", "COUNT", "abc"],
            ["ZMPOP", "1", "z1", "MIN", "COUNT"],
            ["ZMPOP", "1", "z1", "MIN", "COUNT", "1", "COUNT", "1"],
            ["ZMPOP", "1", "z1", "MIN", "FOO"],
            ["ZMPOP", "2", "missing", "nope", "MIN"],
            ["ZMPOP", "2", "missing", "z2", "max"],
            ["ZMPOP", "3", "missing", "z1", "z2", "MIN", "count", "2"],
            ["ZMPOP", "2", "z1", "z2", "MAX", "COUNT", "10"],
            ["ZMPOP", "2", "s", "z2", "MIN"],
            ["ZMPOP", "2", "z2", "s", "MIN"],
            ["ZMPOP", "2", "missing", "s", "MIN"],
            ["ZMPOP", "1", "s", "MIN", "COUNT", "0"],
            ["ZMPOP", "1", "z2", "MIN", "COUNT", "5"],
            ["ZMPOP", "1", "z2", "MIN"],
        ],
    )
    same_type(oracle, engine, "z1")
    same_type(oracle, engine, "z2")


# --- set operations ------------------------------------------------------------------------------------------


SETOP_DATA: list[list[Arg]] = [
    ["ZADD", "za", "1", "a", "2", "b", "3", "c", "-inf", "n", "inf", "p"],
    ["ZADD", "zb", "10", "b", "20", "c", "30", "d", "inf", "n", "-inf", "p", "0", "zero"],
    ["ZADD", "zc", "0.5", "c", "0", "zero", "7", "e"],
]


def seed_setops(oracle: Oracle, engine: EngineClient) -> None:
    seed(oracle, engine, "s", "string")
    seed(oracle, engine, "set", "set", ("a", "c", "zero", "q"))
    check(oracle, engine, SETOP_DATA)


def test_setops_replies(oracle: Oracle, engine: EngineClient) -> None:
    seed_setops(oracle, engine)
    commands: list[list[Arg]] = []
    inputs = [
        ["1", "za"],
        ["2", "za", "zb"],
        ["3", "za", "zb", "zc"],
        ["3", "zc", "zb", "za"],
        ["2", "za", "set"],
        ["2", "set", "zb"],
        ["2", "za", "missing"],
        ["2", "missing", "za"],
        ["2", "za", "za"],
        ["1", "missing"],
        ["1", "set"],
    ]
    for keys in inputs:
        n = int(keys[0])
        for op in ("ZUNION", "ZINTER", "ZDIFF"):
            commands.append([op, *keys, "WITHSCORES"])
            commands.append([op, *keys])
        commands.append(["ZINTERCARD", *keys])
        commands.append(["ZINTERCARD", *keys, "LIMIT", "1"])
        for extra in (
            ["WEIGHTS", *(["2"] * n)],
            ["WEIGHTS", *(["-1"] * n)],
            ["WEIGHTS", *(["0"] * n)],
            ["WEIGHTS", *(["inf"] * n)],
            ["AGGREGATE", "MIN"],
            ["AGGREGATE", "max"],
            ["AGGREGATE", "sum"],
            ["WEIGHTS", *[str(i + 1) for i in range(n)], "AGGREGATE", "MAX"],
            ["AGGREGATE", "MIN", "WEIGHTS", *(["-inf"] * n), "AGGREGATE", "MAX"],
        ):
            commands.append(["ZUNION", *keys, *extra, "WITHSCORES"])
            commands.append(["ZINTER", *keys, "WITHSCORES", *extra])
    check(oracle, engine, commands)


def test_setops_float_order(oracle: Oracle, engine: EngineClient) -> None:
    """Sums run smallest input first, as Redis sorts its inputs by size."""
    check(
        oracle,
        engine,
        [
            ["ZADD", "u1", "0.1", "m"],
            ["ZADD", "u2", "0.2", "m", "1", "x", "1", "y"],
            ["ZADD", "u3", "0.3", "m", "1", "x"],
            ["ZADD", "v1", "inf", "m"],
            ["ZADD", "v2", "-inf", "m", "1", "x", "2", "y"],
            ["ZADD", "v3", "5", "m", "1", "x"],
            ["ZUNION", "3", "u2", "u3", "u1", "WITHSCORES"],
            ["ZUNION", "3", "u1", "u2", "u3", "WITHSCORES"],
            ["ZINTER", "3", "u2", "u3", "u1", "WITHSCORES"],
            ["ZUNION", "3", "v2", "v3", "v1", "WITHSCORES"],
            ["ZINTER", "3", "v2", "v1", "v3", "WITHSCORES"],
            ["ZINTER", "3", "v3", "v2", "v1", "WITHSCORES"],
            ["ZUNION", "2", "v1", "v2", "WITHSCORES"],
            ["ZUNION", "2", "v1", "v1", "WITHSCORES", "WEIGHTS", "1", "-1"],
            ["ZINTER", "2", "v1", "v2", "WEIGHTS", "1", "0", "AGGREGATE", "MIN", "WITHSCORES"],
            ["ZINTER", "2", "v1", "v2", "WEIGHTS", "1", "0", "AGGREGATE", "MAX", "WITHSCORES"],
            ["ZINTER", "2", "v3", "v1", "WEIGHTS", "1", "0", "AGGREGATE", "MAX", "WITHSCORES"],
        ],
    )


def test_setops_errors(oracle: Oracle, engine: EngineClient) -> None:
    seed_setops(oracle, engine)
    commands: list[list[Arg]] = []
    for op in ("ZUNION", "ZINTER", "ZDIFF", "ZINTERCARD"):
        commands += [
            [op, "0", "za"],
            [op, "-1", "za"],
            [op, "abc", "za"],
            [op, "3", "za", "zb"],
            [op, "2", "za", "s"],
            [op, "2", "s", "FOO"],
            [op, "3", "s", "za"],
            [op, "1", "za", "FOO"],
            [op, "1", "za", "WEIGHTS", "2"],
            [op, "1", "za", "AGGREGATE", "MIN"],
            [op, "1", "za", "WITHSCORES"],
            [op, "1", "za", "LIMIT", "1"],
        ]
    for op in ("ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"):
        commands += [
            [op, "dst", "0", "za"],
            [op, "dst", "-5", "za"],
            [op, "dst", "x", "za"],
            [op, "dst", "2", "za"],
            [op, "dst", "2", "za", "s"],
            [op, "dst", "1", "za", "WITHSCORES"],
            [op, "dst", "1", "za", "WEIGHTS", "2"],
            [op, "dst", "1", "za", "AGGREGATE", "MAX"],
        ]
    commands += [
        ["ZUNION", "2", "za", "zb", "WEIGHTS", "1"],
        ["ZUNION", "2", "za", "zb", "WEIGHTS", "1", "x"],
        ["ZUNION", "2", "za", "zb", "WEIGHTS", "nan", "1"],
        ["ZUNION", "2", "za", "zb", "WEIGHTS", "1", "1", "1"],
        ["ZINTER", "2", "za", "zb", "WEIGHTS", " 1", "1"],
        ["ZUNION", "2", "za", "zb", "AGGREGATE", "AVG"],
        ["ZUNION", "2", "za", "zb", "AGGREGATE"],
        ["ZINTER", "1", "za", "WITHSCORES", "WITHSCORES"],
        ["ZUNIONSTORE", "dst", "1", "za", "WEIGHTS", "x"],
        ["ZINTERCARD", "1", "za", "LIMIT", "-1"],
        ["ZINTERCARD", "1", "za", "LIMIT", "abc"],
        ["ZINTERCARD", "1", "za", "LIMIT"],
        ["ZINTERCARD", "2", "za", "zb", "LIMIT", "0"],
        ["ZINTERCARD", "2", "za", "zb", "LIMIT", "2"],
        ["ZINTERCARD", "2", "za", "zb", "LIMIT", "1", "LIMIT", "3"],
        ["ZINTERCARD", "2", "za", "zb", "LIMIT", INT64_MAX],
        ["ZINTERCARD", "2", "za", "s", "LIMIT", "-1"],
        ["ZUNION", "1", "set", "WEIGHTS", "3", "WITHSCORES"],
    ]
    check(oracle, engine, commands)


def test_setops_store(oracle: Oracle, engine: EngineClient) -> None:
    seed_setops(oracle, engine)
    seed(oracle, engine, "dst", "list", ("x",), pexpire=100_000)
    check(
        oracle,
        engine,
        [
            ["ZUNIONSTORE", "dst", "2", "za", "zb"],
            ["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            ["ZINTERSTORE", "dst", "2", "za", "set", "WEIGHTS", "2", "3"],
            ["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            ["ZDIFFSTORE", "dst", "2", "za", "zb"],
            ["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            ["ZUNIONSTORE", "dst", "1", "za", "WEIGHTS", "-1"],
            ["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            ["ZUNION", "1", "zc", "WEIGHTS", "-1", "WITHSCORES"],
            ["ZUNIONSTORE", "dst", "1", "zc", "WEIGHTS", "-1"],
            ["ZSCORE", "dst", "zero"],
            ["ZINTERSTORE", "za", "2", "za", "zb", "AGGREGATE", "MAX"],
            ["ZRANGE", "za", "0", "-1", "WITHSCORES"],
            ["ZDIFFSTORE", "s", "1", "zc"],
            ["ZRANGE", "s", "0", "-1", "WITHSCORES"],
            ["ZINTERSTORE", "dst", "2", "zc", "missing"],
            ["ZRANGE", "dst", "0", "-1"],
            ["ZDIFFSTORE", "zc", "2", "zc", "zc"],
            ["ZRANGE", "zc", "0", "-1"],
            ["ZUNIONSTORE", "set", "1", "set"],
            ["ZRANGE", "set", "0", "-1", "WITHSCORES"],
        ],
    )
    for name in ("dst", "s", "zc", "set", "za"):
        same_type(oracle, engine, name)
    check(oracle, engine, [["ZUNIONSTORE", "dst", "1", "zb"]])
    same_ttl(oracle, engine, "dst")
    seed(oracle, engine, "dst", "string", ("x",), pexpire=100_000)
    check(oracle, engine, [["ZINTERSTORE", "dst", "1", "zb"], ["ZRANGE", "dst", "0", "-1"]])
    same_ttl(oracle, engine, "dst")


# --- wrong types everywhere --------------------------------------------------------------------------------


def test_wrongtype_every_command(oracle: Oracle, engine: EngineClient) -> None:
    commands: list[list[Arg]] = []
    for kind, items in (("string", ("v",)), ("hash", ("f", "v")), ("list", ("a",)), ("set", ("a",))):
        seed(oracle, engine, "k", kind, items)
        commands = [
            ["ZADD", "k", "1", "a"],
            ["ZINCRBY", "k", "1", "a"],
            ["ZCARD", "k"],
            ["ZSCORE", "k", "a"],
            ["ZMSCORE", "k", "a"],
            ["ZRANK", "k", "a"],
            ["ZREVRANK", "k", "a"],
            ["ZCOUNT", "k", "-inf", "inf"],
            ["ZLEXCOUNT", "k", "-", "+"],
            ["ZRANGE", "k", "0", "-1"],
            ["ZRANGE", "k", "0", "1", "BYSCORE"],
            ["ZRANGE", "k", "-", "+", "BYLEX"],
            ["ZRANGESTORE", "d", "k", "0", "-1"],
            ["ZREVRANGE", "k", "0", "-1"],
            ["ZRANGEBYSCORE", "k", "0", "1"],
            ["ZREVRANGEBYSCORE", "k", "1", "0"],
            ["ZRANGEBYLEX", "k", "-", "+"],
            ["ZREVRANGEBYLEX", "k", "+", "-"],
            ["ZREM", "k", "a"],
            ["ZREMRANGEBYRANK", "k", "0", "-1"],
            ["ZREMRANGEBYSCORE", "k", "0", "1"],
            ["ZREMRANGEBYLEX", "k", "-", "+"],
            ["ZPOPMIN", "k"],
            ["ZPOPMAX", "k", "2"],
            ["ZMPOP", "1", "k", "MIN"],
            ["ZRANDMEMBER", "k"],
            ["ZRANDMEMBER", "k", "2"],
            ["ZRANDMEMBER", "k", "0"],
            ["ZSCAN", "k", "0"],
            ["ZSCAN", "k", "0", "COUNT", "0"],
            ["ZUNION", "1", "k"],
            ["ZINTER", "1", "k"],
            ["ZDIFF", "1", "k"],
            ["ZINTERCARD", "1", "k"],
            ["ZUNIONSTORE", "d", "1", "k"],
            ["ZINTERSTORE", "d", "1", "k"],
            ["ZDIFFSTORE", "d", "1", "k"],
        ]
        if kind == "set":  # plain sets are valid inputs of the set operations
            commands = [c for c in commands if not c[0].startswith(("ZUNION", "ZINTER", "ZDIFF"))]
        check(oracle, engine, commands)
        same_type(oracle, engine, "k")


# --- ZRANDMEMBER -----------------------------------------------------------------------------------------


def test_zrandmember_deterministic(oracle: Oracle, engine: EngineClient) -> None:
    seed(oracle, engine, "s", "string")
    check(
        oracle,
        engine,
        [
            Z,
            ["ZRANDMEMBER", "z", "abc"],
            ["ZRANDMEMBER", "z", "-9223372036854775808"],
            ["ZRANDMEMBER", "z", "9223372036854775808"],
            ["ZRANDMEMBER", "z", "1", "WITHSCORES", "x"],
            ["ZRANDMEMBER", "z", "1", "foo"],
            ["ZRANDMEMBER", "z", "4611686018427387904", "WITHSCORES"],
            ["ZRANDMEMBER", "z", "-4611686018427387904", "WITHSCORES"],
            ["ZRANDMEMBER", "missing", "-4611686018427387903", "WITHSCORES"],
            ["ZRANDMEMBER", "missing", "4611686018427387903", "withscores"],
            ["ZRANDMEMBER", "missing"],
            ["ZRANDMEMBER", "missing", "5"],
            ["ZRANDMEMBER", "s"],
            ["ZRANDMEMBER", "s", "abc"],
            ["ZRANDMEMBER", "s", "1", "foo"],
            ["ZRANDMEMBER", "s", "5"],
            ["ZRANDMEMBER", "z", "0"],
            ["ZRANDMEMBER", "z", "0", "WITHSCORES"],
            ["ZRANDMEMBER", "z", "7"],
            ["ZRANDMEMBER", "z", "7", "WITHSCORES"],
            ["ZRANDMEMBER", "z", "100", "WITHSCORES"],
            ["ZADD", "one", "5", "only"],
            ["ZRANDMEMBER", "one"],
            ["ZRANDMEMBER", "one", "-3", "WITHSCORES"],
            ["ZRANDMEMBER", "one", "1", "WITHSCORES"],
        ],
    )


@pytest.mark.parametrize("size", [7, 200])
def test_zrandmember_random(oracle: Oracle, engine: EngineClient, size: int) -> None:
    args: list[Arg] = ["ZADD", "r"]
    for i in range(size):
        args += [str(i % 5), f"m{i}"]
    engine(*args)
    scores = {f"m{i}".encode(): str(i % 5).encode() for i in range(size)}
    for _ in range(20):
        one = engine("ZRANDMEMBER", "r")
        assert one in scores
    for count in (1, 2, size // 3, size // 2, size - 1):
        got = engine("ZRANDMEMBER", "r", str(count))
        assert isinstance(got, list) and len(got) == count and len(set(got)) == count
        assert set(got) <= set(scores)
        pairs = engine("ZRANDMEMBER", "r", str(count), "WITHSCORES")
        assert isinstance(pairs, list) and len(pairs) == 2 * count
        assert all(scores[m] == s for m, s in zip(pairs[::2], pairs[1::2], strict=True))
        assert len(set(pairs[::2])) == count
    for count in (-1, -5, -(size * 3)):
        got = engine("ZRANDMEMBER", "r", str(count))
        assert isinstance(got, list) and len(got) == -count and set(got) <= set(scores)
        pairs = engine("ZRANDMEMBER", "r", str(count), "WITHSCORES")
        assert isinstance(pairs, list) and len(pairs) == -2 * count
        assert all(scores[m] == s for m, s in zip(pairs[::2], pairs[1::2], strict=True))
    many = engine("ZRANDMEMBER", "r", str(-size * 20))
    assert isinstance(many, list) and len(set(many)) > size // 2  # not one element repeated


# --- ZSCAN ----------------------------------------------------------------------------------------------------


def test_zscan_small(oracle: Oracle, engine: EngineClient) -> None:
    seed(oracle, engine, "s", "string")
    check(
        oracle,
        engine,
        [
            Z,
            ["ZADD", "z", "0.1", "frac", "123456789012345678", "big", "1e20", "huge", "-0", "negzero"],
            ["ZSCAN", "z", "0"],
            ["ZSCAN", "z", "0", "COUNT", "2"],
            ["ZSCAN", "z", "7"],
            ["ZSCAN", "z", "0", "MATCH", "*b*"],
            ["ZSCAN", "z", "0", "match", "[ab]", "count", "100"],
            ["ZSCAN", "z", "0", "COUNT", "0"],
            ["ZSCAN", "z", "0", "COUNT", "x"],
            ["ZSCAN", "z", "0", "TYPE", "zset"],
            ["ZSCAN", "z", "0", "MATCH"],
            ["ZSCAN", "z", "abc"],
            ["ZSCAN", "z", "-1"],
            ["ZSCAN", "z", "18446744073709551616"],
            ["ZSCAN", "missing", "0"],
            ["ZSCAN", "missing", "0", "COUNT", "0"],
            ["ZSCAN", "missing", "x"],
            ["ZSCAN", "s", "0"],
            ["ZSCAN", "s", "0", "COUNT", "0"],
            ["ZSCAN", "s", "x"],
        ],
    )


def full_zscan(client: EngineClient | Oracle, name: str) -> list[tuple[bytes, bytes]]:
    seen: list[tuple[bytes, bytes]] = []
    cursor: bytes = b"0"
    for _ in range(1000):
        reply = client("ZSCAN", name, cursor, "COUNT", "25")
        assert isinstance(reply, list)
        cursor, flat = reply[0], reply[1]
        assert isinstance(cursor, bytes) and isinstance(flat, list)
        seen += list(zip(flat[::2], flat[1::2], strict=True))
        if cursor == b"0":
            return seen
    raise AssertionError("scan did not end")


def test_zscan_large(oracle: Oracle, engine: EngineClient) -> None:
    args: list[Arg] = ["ZADD", "big"]
    for i in range(300):
        args += [str(i * 0.5), f"m{i}"]
    check(oracle, engine, [args, ["ZCARD", "big"]])
    assert sorted(set(full_zscan(engine, "big"))) == sorted(set(full_zscan(oracle, "big")))
    # a member longer than a listpack keeps turns even a small set into a skiplist
    long = "l" * 65
    check(oracle, engine, [["ZADD", "sk", "2", long, "1e17", "x", "0.5", "y"]])
    assert sorted(full_zscan(engine, "sk")) == sorted(full_zscan(oracle, "sk"))


# --- big sets, expiry --------------------------------------------------------------------------------------------


def test_big_zset(oracle: Oracle, engine: EngineClient) -> None:
    args: list[Arg] = ["ZADD", "big"]
    for i in range(300):
        args += [str((i * 7919) % 101 - 50), f"m{i:03d}"]
    check(
        oracle,
        engine,
        [
            args,
            ["ZRANGE", "big", "100", "120", "WITHSCORES"],
            ["ZRANGE", "big", "-5", "-1", "REV"],
            ["ZRANGEBYSCORE", "big", "(-3", "4", "WITHSCORES", "LIMIT", "3", "10"],
            ["ZREVRANGEBYSCORE", "big", "(10", "-10", "LIMIT", "5", "5"],
            ["ZCOUNT", "big", "-10", "(10"],
            ["ZRANK", "big", "m150"],
            ["ZREVRANK", "big", "m150"],
            ["ZREMRANGEBYRANK", "big", "10", "19"],
            ["ZREMRANGEBYSCORE", "big", "(40", "+inf"],
            ["ZPOPMIN", "big", "3"],
            ["ZMPOP", "1", "big", "MAX", "COUNT", "2"],
            ["ZCARD", "big"],
            ["ZINTERCARD", "2", "big", "big", "LIMIT", "50"],
            ["ZUNIONSTORE", "u", "2", "big", "big", "WEIGHTS", "1", "0.5"],
            ["ZRANGE", "u", "0", "9", "WITHSCORES"],
        ],
    )


def test_expired_keys(oracle: Oracle, engine: EngineClient) -> None:
    check(oracle, engine, [["ZADD", "old", "1", "a", "2", "b"], ["ZADD", "src", "5", "q"]])
    expire_soon(oracle, engine, "old")
    expire_soon(oracle, engine, "src")
    time.sleep(0.01)
    check(
        oracle,
        engine,
        [
            ["ZCARD", "old"],
            ["ZSCORE", "old", "a"],
            ["ZRANGE", "old", "0", "-1"],
            ["ZUNION", "2", "old", "src"],
            ["ZADD", "old", "XX", "3", "a"],
            ["ZADD", "old", "3", "c"],
            ["ZRANGE", "old", "0", "-1", "WITHSCORES"],
            ["ZRANGESTORE", "src", "old", "0", "-1"],
            ["ZRANGE", "src", "0", "-1", "WITHSCORES"],
        ],
    )
    same_ttl(oracle, engine, "old")
    same_ttl(oracle, engine, "src")
