"""Redis behaviours that are easy to get wrong, one table-driven test per topic: integer
parsing and overflow in INCR and friends, INCRBYFLOAT's long-double arithmetic, SET's
NX/XX/GET/expiry options, EXPIRE with a negative, zero or past time, emptied collections
vanishing with their TTL, list edge cases, ZADD's option combinations, how doubles are
printed, hash increments, MULTI/EXEC (queue-time errors discard, runtime errors do not),
SCAN's guarantees and argument errors, glob patterns, and the exact error texts.

Every case runs on the real Redis (the oracle) and on kvgate, and asserts that kvgate
answers what the oracle answers: on the engine over each store, or, for MULTI/EXEC and the
error texts, through the gateway on each engine backend (SQLite, DynamoDB Local).  The SCAN
guarantees are also checked on the oracle itself, so a claim that stops being true of this
Redis shows up here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from kvgate.protocol import envelope, result_encoder
from tests.support.api import Api, GatewayClient, make_config
from tests.support.engine import Arg, EngineClient, Oracle, assert_same, comparable, normalize
from tests.support.servers import RedisServer

Case = list[list[Arg]]


def cases(table: dict[str, Case]) -> Any:
    return pytest.mark.parametrize("commands", list(table.values()), ids=list(table))


def unordered(cmd: Sequence[Arg]) -> bool:
    return str(cmd[0]).upper() in {"KEYS", "SMEMBERS", "SPOP"}


# INCR, INCRBY, DECR, DECRBY --------------------------------------------------------------

INCR = {
    **{
        f"not an integer {bad!r}": [["SET", "k", bad], ["INCR", "k"], ["INCRBY", "k", "1"], ["DECR", "k"]]
        for bad in ["abc", " 1", "01", "+1", "1.0", "-0", "", "1 ", "9223372036854775808"]
    },
    "bad increment": [["SET", "k", "1"], ["INCRBY", "k", "01"], ["INCRBY", "k", "1.0"], ["DECRBY", "k", "x"]],
    "overflow up": [["SET", "k", "9223372036854775807"], ["INCR", "k"], ["INCRBY", "k", "1"], ["GET", "k"]],
    "overflow down": [["SET", "k", "-9223372036854775808"], ["DECR", "k"], ["DECRBY", "k", "1"], ["GET", "k"]],
    "overflow by increment": [["SET", "k", "-1"], ["INCRBY", "k", "-9223372036854775808"], ["DECRBY", "k", "-9223372036854775808"]],
    "bounds reached exactly": [["SET", "k", "9223372036854775806"], ["INCR", "k"], ["DECRBY", "j", "9223372036854775807"], ["DECR", "j"]],
    "missing key starts at 0": [["INCR", "n"], ["DECRBY", "m", "5"], ["GET", "m"]],
    "keeps the ttl": [["SET", "k", "1", "EX", "100"], ["INCR", "k"], ["TTL", "k"], ["INCRBY", "k", "5"], ["TTL", "k"]],
    "wrong type": [["LPUSH", "l", "1"], ["INCR", "l"], ["DECRBY", "l", "1"]],
}  # fmt: skip


@cases(INCR)
def test_incr(oracle: Oracle, engine: EngineClient, commands: Case) -> None:
    assert_same(oracle, engine, commands)


# INCRBYFLOAT -----------------------------------------------------------------------------

INCRBYFLOAT = {
    "1 + 0.1 three times is 1.3": [["SET", "k", "1"], *[["INCRBYFLOAT", "k", "0.1"]] * 3, ["GET", "k"]],
    "3 + 2.0 is 5": [["SET", "k", "3"], ["INCRBYFLOAT", "k", "2.0"]],
    "0.1 + 0.2 in long double": [["INCRBYFLOAT", "k", "0.1"], ["INCRBYFLOAT", "k", "0.2"]],
    "exponents and hex": [["INCRBYFLOAT", "k", "1e3"], ["INCRBYFLOAT", "k", "5.0e-1"], ["INCRBYFLOAT", "k", "0x10"]],
    "large and small": [["SET", "k", "1e20"], ["INCRBYFLOAT", "k", "1"], ["SET", "j", "0.000001"], ["INCRBYFLOAT", "j", "-1"]],
    "not a float value": [["SET", "k", "abc"], ["INCRBYFLOAT", "k", "1"], ["SET", "k", " 1"], ["INCRBYFLOAT", "k", "1"]],
    "not a float increment": [["SET", "k", "1"], ["INCRBYFLOAT", "k", "abc"], ["INCRBYFLOAT", "k", "nan"], ["INCRBYFLOAT", "k", ""]],
    "infinity": [["SET", "k", "1"], ["INCRBYFLOAT", "k", "inf"], ["SET", "j", "1e308"], ["INCRBYFLOAT", "j", "1e308"], ["GET", "j"]],
    "keeps the ttl": [["SET", "k", "1", "EX", "100"], ["INCRBYFLOAT", "k", "1.5"], ["TTL", "k"]],
    "wrong type": [["SADD", "s", "1"], ["INCRBYFLOAT", "s", "1"]],
}  # fmt: skip


@cases(INCRBYFLOAT)
def test_incrbyfloat(oracle: Oracle, engine: EngineClient, commands: Case) -> None:
    assert_same(oracle, engine, commands)


# SET options -----------------------------------------------------------------------------

SET = {
    "NX GET returns the old value, does not write": [["SET", "k", "old"], ["SET", "k", "new", "NX", "GET"], ["GET", "k"]],
    "NX GET on a missing key writes": [["SET", "k", "v", "NX", "GET"], ["GET", "k"]],
    "XX GET": [["SET", "k", "v", "XX", "GET"], ["EXISTS", "k"], ["SET", "k", "a"], ["SET", "k", "b", "XX", "GET"], ["GET", "k"]],
    "GET on a non-string key": [["LPUSH", "k", "x"], ["SET", "k", "v", "GET"], ["TYPE", "k"], ["SET", "k", "v", "NX", "GET"]],
    "plain SET replaces any type": [["HSET", "k", "f", "v"], ["SET", "k", "v"], ["TYPE", "k"], ["GET", "k"]],
    "NX XX": [["SET", "k", "v", "NX", "XX"], ["SET", "k", "v", "XX", "NX"], ["EXISTS", "k"]],
    "EX 0 and EX -5": [["SET", "k", "v", "EX", "0"], ["SET", "k", "v", "EX", "-5"], ["SET", "k", "v", "PX", "0"], ["EXISTS", "k"]],
    "EX not an integer": [["SET", "k", "v", "EX", "1.5"], ["SET", "k", "v", "EX", "abc"], ["SET", "k", "v", "EX"]],
    "EX overflow": [["SET", "k", "v", "EX", "9223372036854775807"], ["SET", "k", "v", "EXAT", "9223372036854775807"]],
    "EX and PX together": [["SET", "k", "v", "EX", "10", "PX", "100"], ["SET", "k", "v", "EX", "10", "KEEPTTL"]],
    "plain SET clears the ttl": [["SET", "k", "v", "EX", "100"], ["TTL", "k"], ["SET", "k", "w"], ["TTL", "k"]],
    "KEEPTTL keeps it": [["SET", "k", "v", "EX", "100"], ["SET", "k", "w", "KEEPTTL"], ["TTL", "k"], ["GET", "k"]],
    "EXAT in the past": [["SET", "k", "v", "EXAT", "1"], ["EXISTS", "k"], ["GET", "k"]],
    "unknown option": [["SET", "k", "v", "FOO"], ["SET", "k", "v", "GET", "GET"]],
}  # fmt: skip


@cases(SET)
def test_set(oracle: Oracle, engine: EngineClient, commands: Case) -> None:
    assert_same(oracle, engine, commands)


# EXPIRE and friends ----------------------------------------------------------------------

EXPIRE = {
    "negative deletes and returns 1": [["SET", "k", "v"], ["EXPIRE", "k", "-1"], ["EXISTS", "k"], ["TTL", "k"]],
    "zero deletes": [["RPUSH", "k", "v"], ["PEXPIRE", "k", "0"], ["EXISTS", "k"]],
    "in the past deletes": [["SADD", "k", "v"], ["EXPIREAT", "k", "1"], ["EXISTS", "k"]],
    "missing key": [["EXPIRE", "k", "100"], ["EXPIRE", "k", "-1"], ["PERSIST", "k"], ["TTL", "k"], ["PTTL", "k"]],
    "no expiry": [["SET", "k", "v"], ["TTL", "k"], ["PTTL", "k"], ["EXPIRETIME", "k"], ["PERSIST", "k"]],
    "GT on a key without ttl": [["SET", "k", "v"], ["EXPIRE", "k", "50", "GT"], ["TTL", "k"], ["EXPIRE", "k", "50", "LT"], ["TTL", "k"]],
    "GT and LT with a ttl": [["SET", "k", "v", "EX", "100"], ["EXPIRE", "k", "50", "GT"], ["EXPIRE", "k", "200", "GT"], ["TTL", "k"], ["EXPIRE", "k", "300", "LT"], ["EXPIRE", "k", "150", "LT"], ["TTL", "k"]],
    "NX and XX": [["SET", "k", "v"], ["EXPIRE", "k", "100", "XX"], ["EXPIRE", "k", "100", "NX"], ["EXPIRE", "k", "200", "NX"], ["EXPIRE", "k", "200", "XX"], ["TTL", "k"]],
    "incompatible flags": [["SET", "k", "v"], ["EXPIRE", "k", "100", "NX", "XX"], ["EXPIRE", "k", "100", "GT", "LT"], ["EXPIRE", "k", "100", "NX", "GT"], ["EXPIRE", "k", "100", "FOO"]],
    "bad and overflowing times": [["SET", "k", "v"], ["EXPIRE", "k", "abc"], ["EXPIRE", "k", "9223372036854775807"], ["PEXPIRE", "k", "9223372036854775807"], ["EXPIREAT", "k", "9223372036854775807"]],
    "absolute times": [["SET", "k", "v"], ["EXPIREAT", "k", "4102444800"], ["EXPIRETIME", "k"], ["PEXPIRETIME", "k"], ["PEXPIREAT", "k", "4102444800123"], ["PEXPIRETIME", "k"], ["EXPIRETIME", "k"]],
    "persist": [["SET", "k", "v", "EX", "100"], ["PERSIST", "k"], ["PERSIST", "k"], ["TTL", "k"]],
}  # fmt: skip


@cases(EXPIRE)
def test_expire(oracle: Oracle, engine: EngineClient, commands: Case) -> None:
    assert_same(oracle, engine, commands)


# emptied collections vanish --------------------------------------------------------------


def vanishes(setup: Case, emptying: list[Arg], recreate: list[Arg]) -> Case:
    """The key gets a TTL, loses its last element, and comes back without the TTL."""
    return [
        *setup,
        ["EXPIRE", "k", "100"],
        emptying,
        ["EXISTS", "k"],
        ["TTL", "k"],
        ["TYPE", "k"],
        recreate,
        ["TTL", "k"],
    ]


EMPTY = {
    "HDEL": vanishes([["HSET", "k", "f", "v"]], ["HDEL", "k", "f"], ["HSET", "k", "f", "v"]),
    "HINCRBY back, HDEL": vanishes([["HINCRBY", "k", "f", "1"]], ["HDEL", "k", "f", "g"], ["HSETNX", "k", "f", "v"]),
    "LPOP": vanishes([["RPUSH", "k", "a"]], ["LPOP", "k"], ["RPUSH", "k", "a"]),
    "RPOP count": vanishes([["RPUSH", "k", "a", "b"]], ["RPOP", "k", "5"], ["LPUSH", "k", "a"]),
    "LREM": vanishes([["RPUSH", "k", "a", "a"]], ["LREM", "k", "0", "a"], ["RPUSH", "k", "a"]),
    "LTRIM": vanishes([["RPUSH", "k", "a", "b"]], ["LTRIM", "k", "5", "10"], ["RPUSH", "k", "a"]),
    "LMOVE from itself": vanishes([["RPUSH", "k", "a"]], ["LMOVE", "k", "d", "LEFT", "RIGHT"], ["RPUSH", "k", "a"]),
    "LMPOP": vanishes([["RPUSH", "k", "a"]], ["LMPOP", "1", "k", "LEFT", "COUNT", "3"], ["RPUSH", "k", "a"]),
    "SREM": vanishes([["SADD", "k", "a"]], ["SREM", "k", "a"], ["SADD", "k", "a"]),
    "SPOP all": vanishes([["SADD", "k", "a", "b"]], ["SPOP", "k", "5"], ["SADD", "k", "a"]),
    "SMOVE": vanishes([["SADD", "k", "a"]], ["SMOVE", "k", "d", "a"], ["SADD", "k", "a"]),
    "ZREM": vanishes([["ZADD", "k", "1", "a"]], ["ZREM", "k", "a"], ["ZADD", "k", "1", "a"]),
    "ZPOPMIN": vanishes([["ZADD", "k", "1", "a"]], ["ZPOPMIN", "k", "2"], ["ZADD", "k", "1", "a"]),
    "ZREMRANGEBYSCORE": vanishes([["ZADD", "k", "1", "a"]], ["ZREMRANGEBYSCORE", "k", "-inf", "+inf"], ["ZADD", "k", "1", "a"]),
    "ZREMRANGEBYRANK": vanishes([["ZADD", "k", "1", "a"]], ["ZREMRANGEBYRANK", "k", "0", "-1"], ["ZADD", "k", "1", "a"]),
    "ZREMRANGEBYLEX": vanishes([["ZADD", "k", "0", "a"]], ["ZREMRANGEBYLEX", "k", "-", "+"], ["ZADD", "k", "1", "a"]),
    "ZMPOP": vanishes([["ZADD", "k", "1", "a"]], ["ZMPOP", "1", "k", "MAX"], ["ZADD", "k", "1", "a"]),
    "empty SINTERSTORE deletes the destination": vanishes([["SADD", "k", "x"], ["SADD", "s", "a"]], ["SINTERSTORE", "k", "s", "missing"], ["SADD", "k", "a"]),
    "empty SDIFFSTORE": vanishes([["SADD", "k", "x"], ["SADD", "s", "a"]], ["SDIFFSTORE", "k", "s", "s"], ["SADD", "k", "a"]),
    "empty ZINTERSTORE": vanishes([["ZADD", "k", "1", "x"]], ["ZINTERSTORE", "k", "2", "k", "missing"], ["ZADD", "k", "1", "a"]),
    "empty ZRANGESTORE": vanishes([["ZADD", "k", "1", "x"]], ["ZRANGESTORE", "k", "k", "5", "10"], ["ZADD", "k", "1", "a"]),
}  # fmt: skip


@cases(EMPTY)
def test_empty_collections_vanish(oracle: Oracle, engine: EngineClient, commands: Case) -> None:
    assert_same(oracle, engine, commands, unordered=unordered)


# lists -----------------------------------------------------------------------------------

LISTS = {
    "LPUSH reverses": [["LPUSH", "l", "a", "b", "c"], ["LRANGE", "l", "0", "-1"], ["RPUSH", "l", "d", "e"], ["LRANGE", "l", "0", "-1"]],
    "LRANGE clamps": [["RPUSH", "l", "a", "b", "c"], ["LRANGE", "l", "-100", "100"], ["LRANGE", "l", "2", "1"], ["LRANGE", "l", "5", "10"], ["LRANGE", "l", "-1", "-2"], ["LRANGE", "l", "-2", "-1"]],
    "LPOP 0": [["RPUSH", "l", "a"], ["LPOP", "l", "0"], ["RPOP", "l", "0"], ["LLEN", "l"]],
    "LPOP missing with count": [["LPOP", "m", "2"], ["RPOP", "m", "2"], ["LPOP", "m"], ["LPOP", "m", "0"]],
    "LPOP negative count": [["RPUSH", "l", "a"], ["LPOP", "l", "-1"], ["RPOP", "l", "-1"], ["LPOP", "m", "-1"], ["LPOP", "l", "abc"]],
    "LPOP count larger than the list": [["RPUSH", "l", "a", "b"], ["LPOP", "l", "9223372036854775807"], ["EXISTS", "l"]],
    "LSET": [["LSET", "m", "0", "x"], ["RPUSH", "l", "a"], ["LSET", "l", "1", "x"], ["LSET", "l", "-2", "x"], ["LSET", "l", "-1", "x"], ["LRANGE", "l", "0", "-1"], ["LSET", "l", "abc", "x"]],
    "wrong type": [["SET", "s", "v"], ["LPUSH", "s", "a"], ["LRANGE", "s", "0", "-1"], ["LPOP", "s", "0"], ["LSET", "s", "0", "x"]],
}  # fmt: skip


@cases(LISTS)
def test_lists(oracle: Oracle, engine: EngineClient, commands: Case) -> None:
    assert_same(oracle, engine, commands)


# ZADD options ----------------------------------------------------------------------------

ZADD = {
    "XX and NX": [["ZADD", "z", "XX", "NX", "1", "a"], ["ZADD", "z", "NX", "XX", "1", "a"], ["EXISTS", "z"]],
    "GT LT NX": [["ZADD", "z", "GT", "LT", "1", "a"], ["ZADD", "z", "NX", "GT", "1", "a"], ["ZADD", "z", "LT", "NX", "1", "a"]],
    "INCR with several pairs": [["ZADD", "z", "INCR", "1", "a", "2", "b"], ["ZADD", "z", "INCR", "1", "a"]],
    "CH counts added and changed": [["ZADD", "z", "1", "a", "2", "b"], ["ZADD", "z", "CH", "1", "a", "3", "b", "4", "c"], ["ZADD", "z", "1", "a", "5", "b"]],
    "GT still adds new members": [["ZADD", "z", "5", "a"], ["ZADD", "z", "GT", "CH", "1", "a", "1", "b"], ["ZRANGE", "z", "0", "-1", "WITHSCORES"]],
    "LT": [["ZADD", "z", "5", "a"], ["ZADD", "z", "LT", "CH", "9", "a", "1", "b"], ["ZADD", "z", "LT", "CH", "2", "a"], ["ZRANGE", "z", "0", "-1", "WITHSCORES"]],
    "blocked INCR returns nil": [["ZADD", "z", "5", "a"], ["ZADD", "z", "NX", "INCR", "1", "a"], ["ZADD", "z", "XX", "INCR", "1", "b"], ["ZADD", "z", "GT", "INCR", "-1", "a"], ["ZADD", "z", "INCR", "1", "a"]],
    "nan": [["ZADD", "z", "nan", "a"], ["ZADD", "z", "1", "a"], ["ZADD", "z", "INCR", "nan", "a"], ["ZINCRBY", "z", "nan", "a"]],
    "inf - inf": [["ZADD", "z", "inf", "a"], ["ZADD", "z", "INCR", "-inf", "a"], ["ZINCRBY", "z", "-inf", "a"]],
    "pairs and syntax": [["ZADD", "z", "1"], ["ZADD", "z", "1", "a", "2"], ["ZADD", "z", "FOO", "1", "a"], ["ZADD", "z", "abc", "a"]],
    "wrong type": [["SET", "z", "v"], ["ZADD", "z", "1", "a"], ["ZADD", "z", "XX", "NX", "1", "a"]],
}  # fmt: skip


@cases(ZADD)
def test_zadd(oracle: Oracle, engine: EngineClient, commands: Case) -> None:
    assert_same(oracle, engine, commands)


# double formatting -----------------------------------------------------------------------

DOUBLES = ["0.1", "1e20", "1.5", "-0.0", "inf", "-inf", "3", "1e-5", "123456789.123456789", "0x10"]


def doubles(prefix: Case) -> Case:
    out: Case = [*prefix]
    for i, d in enumerate(DOUBLES):
        out += [
            ["ZADD", "z", d, f"a{i}"],
            ["ZSCORE", "z", f"a{i}"],
            ["ZINCRBY", "z", d, f"b{i}"],
            ["ZINCRBY", "z", "0", f"b{i}"],
        ]
    return [*out, ["ZRANGE", "z", "0", "-1", "WITHSCORES"], ["ZMSCORE", "z", "a0", "a3", "b3"]]


#: Over 128 members Redis keeps a sorted set as a skiplist instead of a listpack.
BIG = [["ZADD", "z", *[x for i in range(130) for x in (str(i), f"m{i}")]]]
FORMATS = {
    "small sorted set": doubles([]),
    "skiplist sorted set": pytest.param(
        doubles(BIG),
        marks=pytest.mark.xfail(
            strict=True,
            reason="Redis 7.0 prints a -0 score as '-0' from a skiplist and '0' from a listpack; "
            "the engine, which has no encodings, always prints '0'",
        ),
    ),
    "ZINCRBY sums": [["ZINCRBY", "z", "0.1", "a"], ["ZINCRBY", "z", "0.2", "a"], ["ZINCRBY", "z", "1e20", "b"], ["ZINCRBY", "z", "1", "b"]],
    "HINCRBYFLOAT and INCRBYFLOAT print long double": [["HINCRBYFLOAT", "h", "f", "0.1"], ["HINCRBYFLOAT", "h", "f", "0.2"], ["INCRBYFLOAT", "k", "1e20"], ["INCRBYFLOAT", "k", "1.5"]],
}  # fmt: skip


@cases(FORMATS)
def test_double_formatting(oracle: Oracle, engine: EngineClient, commands: Case) -> None:
    assert_same(oracle, engine, commands)


# hashes ----------------------------------------------------------------------------------

HASHES = {
    "HINCRBY on a non-integer": [["HSET", "h", "f", "1.5", "g", "abc"], ["HINCRBY", "h", "f", "1"], ["HINCRBY", "h", "g", "1"], ["HINCRBY", "h", "f", "x"]],
    "HINCRBY overflow": [["HSET", "h", "f", "9223372036854775807"], ["HINCRBY", "h", "f", "1"], ["HINCRBY", "h", "n", "-9223372036854775808"], ["HINCRBY", "h", "n", "-1"]],
    "HINCRBYFLOAT on a non-float": [["HSET", "h", "f", "abc", "g", " 1"], ["HINCRBYFLOAT", "h", "f", "1"], ["HINCRBYFLOAT", "h", "g", "1"], ["HINCRBYFLOAT", "h", "f", "x"], ["HINCRBYFLOAT", "h", "n", "inf"]],
    "HSET counts new fields": [["HSET", "h", "a", "1", "b", "2"], ["HSET", "h", "a", "3", "c", "4"], ["HSET", "h", "a", "3"], ["HMSET", "h", "d", "5"], ["HGETALL", "h"]],
    "HSET odd arguments": [["HSET", "h", "a", "1", "b"], ["HMSET", "h", "a"], ["EXISTS", "h"]],
    "HSETNX": [["HSETNX", "h", "a", "1"], ["HSETNX", "h", "a", "2"], ["HGET", "h", "a"]],
    "wrong type": [["SET", "h", "v"], ["HSET", "h", "a", "1"], ["HINCRBY", "h", "a", "1"], ["HGET", "h", "a"]],
}  # fmt: skip


@cases(HASHES)
def test_hashes(oracle: Oracle, engine: EngineClient, commands: Case) -> None:
    assert_same(oracle, engine, commands)


# MULTI/EXEC (through the gateway) --------------------------------------------------------

TRANSACTIONS = {
    "runtime error does not abort": [["SET", "k", "1"], ["LPUSH", "k", "x"], ["SET", "j", "2"], ["INCR", "j"]],
    "several runtime errors": [["SET", "k", "abc"], ["INCR", "k"], ["HSET", "k", "f", "v"], ["SET", "j", "x"], ["ZADD", "j", "nan", "a"]],
    "arity error discards": [["SET", "k", "1"], ["GET"], ["SET", "j", "2"]],
    "unknown command discards": [["SET", "k", "1"], ["FOO", "bar"], ["SET", "j", "2"]],
    "reads see earlier writes": [["SET", "k", "1"], ["INCR", "k"], ["GET", "k"], ["RPUSH", "j", "a", "b"], ["LRANGE", "j", "0", "-1"]],
}  # fmt: skip
AFTER: Case = [["GET", "k"], ["GET", "j"], ["TYPE", "k"], ["TYPE", "j"]]


def as_command_response(reply: Any) -> tuple[int, Any]:
    """What the gateway answers for one command Redis answered with ``reply``."""
    reply = normalize(reply)
    error = comparable(reply)
    if isinstance(error, tuple):
        return 400, {"error": error[1]}
    return 200, {"result": result_encoder(False)(reply)}


def as_exec_response(reply: Any) -> tuple[int, Any]:
    """An EXEC reply as the gateway's /multi-exec answer: 200 and one envelope per command,
    or 400 and the error when the transaction was discarded as a whole."""
    reply = normalize(reply)
    if not isinstance(reply, list):
        return as_command_response(reply)
    return 200, [envelope(r, result_encoder(False)) for r in reply]


def oracle_transaction(server: RedisServer, commands: Case) -> tuple[tuple[int, Any], list[tuple[int, Any]]]:
    server.command("FLUSHALL")
    replies = server.commands([["MULTI"], *commands, ["EXEC"], *AFTER])
    exec_reply = replies[len(commands) + 1]
    return as_exec_response(exec_reply), [as_command_response(r) for r in replies[len(commands) + 2 :]]


@cases(TRANSACTIONS)
async def test_multi_exec(
    gateway_client: GatewayClient, redis_server: RedisServer, engine_backend_url: str, commands: Case
) -> None:
    expected, expected_after = oracle_transaction(redis_server, commands)
    api = Api(await gateway_client(make_config(engine_backend_url)))
    assert await api.multi(*commands) == expected
    assert [await api.cmd(*c) for c in AFTER] == expected_after


# SCAN ------------------------------------------------------------------------------------


def scan_while_changing(system: Any) -> dict[str, Any]:
    """SCAN with COUNT 2 while a key is deleted and another added between calls: which of
    the keys that were there the whole time the scan missed, and whether it ended."""
    system("FLUSHALL")
    stable = {f"s{i}".encode() for i in range(30)}
    system("MSET", *[x for k in sorted(stable) for x in (k, "v")])
    system("MSET", *[x for i in range(20) for x in (f"v{i}", "v")])
    seen: set[bytes] = set()
    cursor, calls = b"0", 0
    while True:
        cursor, page = system("SCAN", cursor, "COUNT", "2")
        seen.update(page)
        calls += 1
        system("DEL", f"v{calls % 20}")
        system("SET", f"n{calls}", "v")
        if cursor == b"0" or calls > 500:
            break
    return {"missed": sorted(stable - seen), "ended": cursor == b"0"}


def matches_after_count(system: Any) -> dict[str, Any]:
    """MATCH filters each page after COUNT: a page may be empty while the cursor goes on;
    a full iteration still finds every match."""
    system("FLUSHALL")
    system("MSET", *[x for i in range(50) for x in (f"key:{i}", "v")], "needle", "v")
    cursor, page = system("SCAN", "0", "MATCH", "nothing*", "COUNT", "1")
    first = (cursor != b"0", page)
    found: set[bytes] = set()
    cursor = b"0"
    for _ in range(1000):
        cursor, page = system("SCAN", cursor, "MATCH", "need*", "COUNT", "3")
        found.update(page)
        if cursor == b"0":
            break
    return {"first page": first, "found": sorted(found)}


#: Each run, and what Redis guarantees of its result (checked on the oracle).
SCANS = {
    "keys present throughout are returned": (scan_while_changing, {"missed": [], "ended": True}),
    "MATCH after COUNT": (matches_after_count, {"first page": (True, []), "found": [b"needle"]}),
}


@pytest.mark.parametrize(("run", "claim"), list(SCANS.values()), ids=list(SCANS))
def test_scan_guarantee(oracle: Oracle, engine: EngineClient, run: Any, claim: dict[str, Any]) -> None:
    expected = run(oracle)
    assert expected == claim, "this Redis no longer behaves as claimed here"
    assert run(engine) == expected


SCAN_ERRORS = {
    "invalid cursor": [["SCAN", "abc"], ["SCAN", " 1"], ["SCAN", "1.5"], ["SSCAN", "s", "x"], ["HSCAN", "h", "-x"], ["ZSCAN", "z", "abc"]],
    "COUNT 0 and bad options": [["SCAN", "0", "COUNT", "0"], ["SCAN", "0", "COUNT", "-1"], ["SCAN", "0", "COUNT", "x"], ["SCAN", "0", "MATCH"], ["SCAN", "0", "FOO", "bar"], ["SSCAN", "s", "0", "COUNT", "0"]],
}  # fmt: skip


@cases(SCAN_ERRORS)
def test_scan_errors(oracle: Oracle, engine: EngineClient, commands: Case) -> None:
    assert_same(
        oracle, engine, [["SADD", "s", "a"], ["HSET", "h", "f", "v"], ["ZADD", "z", "1", "a"], *commands]
    )


# glob patterns ---------------------------------------------------------------------------

GLOB_KEYS = [
    "hello", "hallo", "hxllo", "hllo", "heeello", "!", "^", "x", "a", "[", "]", "\\", "*", "?", "h*llo",
    "a-b", "-", "ab",
]  # fmt: skip
PATTERNS = [
    "h[^e]llo", "h[!e]llo", "[!x]", "[^x]", "h[ae]llo", "h[a-e]llo", "h[e-a]llo", "h?llo", "h*llo",
    "h\\*llo", "\\*", "\\?", "\\\\", "[\\]]", "[", "[]", "[^]", "[a-]", "a[-]b", "*", "?", "h*", "*o",
    "[[]", "\\", "h[^a-e]llo", "h[x",
]  # fmt: skip
GLOBS = {
    "KEYS": [["MSET", *[x for k in GLOB_KEYS for x in (k, "v")]], *[["KEYS", p] for p in PATTERNS]],
    "HSCAN MATCH": [["HSET", "h", *[x for k in GLOB_KEYS for x in (k, "v")]], *[["HSCAN", "h", "0", "MATCH", p] for p in PATTERNS]],
}  # fmt: skip


@cases(GLOBS)
def test_glob_patterns(oracle: Oracle, engine: EngineClient, commands: Case) -> None:
    assert_same(oracle, engine, commands, unordered=unordered)


# error texts (through the gateway) -------------------------------------------------------

ERROR_TEXTS = {
    "unknown command with args": [["FOO", "bar"]],
    "unknown command with several args": [["foo", "bar", "baz qux"]],
    "unknown command alone": [["FOO"]],
    "arity": [["GET"], ["get", "a", "b"], ["SET", "k"], ["HSET", "h", "f"], ["ZADD", "z", "1"], ["EXPIRE", "k"]],
    "WRONGTYPE": [["RPUSH", "l", "a"], ["GET", "l"], ["HGET", "l", "f"], ["SADD", "l", "a"], ["ZSCORE", "l", "a"], ["INCR", "l"]],
}  # fmt: skip


@cases(ERROR_TEXTS)
async def test_error_texts(
    gateway_client: GatewayClient, redis_server: RedisServer, engine_backend_url: str, commands: Case
) -> None:
    redis_server.command("FLUSHALL")
    expected = [as_command_response(r) for r in redis_server.commands(commands)]
    api = Api(await gateway_client(make_config(engine_backend_url)))
    assert [await api.cmd(*c) for c in commands] == expected
