"""Hash field expiration and Redis 8's HGETDEL, HGETEX, HSETEX on every store.

No Redis here has these commands (the oracle is 7.0), so the expected replies are tables
from Redis's documentation (the examples of redis.io's command pages) and from its command
specification and ``t_hash.c`` (Redis 8.2): argument rules, per-field codes, error texts.
Times are absolute where a reply shows them (EXAT/PXAT far ahead, HEXPIRETIME exact) or
in the past (the field goes at once); the one wait is a 60 ms field expiry.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from kvgate.adapters import dynamodb_bigwrite as bigwrite
from kvgate.adapters import dynamodb_items as items
from kvgate.adapters.dynamodb import now_ms
from kvgate.adapters.sqlite_store import SCHEMA_VERSION, SqliteStore
from kvgate.engine import Engine, command_table
from kvgate.errors import ReplyError
from kvgate.protocol import Reply
from tests.support.engine import Arg, DynamoEngineClient, EngineClient, comparable
from tests.support.servers import DynamoDBLocal

#: 2100-01-01 in seconds and ms: HEXPIRETIME/HPEXPIRETIME of it are exact.
FAR = 4102444800
FAR_MS = FAR * 1000


@pytest.fixture
def hf(engine: EngineClient) -> EngineClient:
    """The engine client, validating against the engine's own table (7.4+ commands in it)."""
    engine.table = command_table()
    return engine


def error(text: str) -> tuple[str, str]:
    return ("error", text)


def table(client: EngineClient, rows: Sequence[tuple[Sequence[Arg], object]]) -> None:
    """Each command's reply, compared with the expected one (errors as ``error(text)``)."""
    bad = []
    for cmd, expected in rows:
        actual = comparable(client(*cmd))
        if actual != expected:
            bad.append(f"{list(cmd)}:\n    expected {expected!r}\n    {client.name:8} {actual!r}")
    assert not bad, f"{len(bad)} of {len(rows)} differ on {client.name}:\n" + "\n".join(bad)


def test_the_hexpire_and_hpersist_pages_examples(hf: EngineClient) -> None:
    table(
        hf,
        [
            (["HSET", "myhash", "f1", "v1", "f2", "v2", "f3", "v3"], 3),
            (["HEXPIRE", "myhash", 1000, "FIELDS", 2, "f2", "f3"], [1, 1]),
            (["HEXPIREAT", "myhash", FAR, "FIELDS", 1, "f3"], [1]),
            (["HEXPIRETIME", "myhash", "FIELDS", 3, "f1", "f3", "nope"], [-1, FAR, -2]),
            (["HPEXPIRETIME", "myhash", "FIELDS", 1, "f3"], [FAR_MS]),
            (["HPERSIST", "myhash", "FIELDS", 3, "f1", "f2", "f3"], [-1, 1, 1]),
            (["HTTL", "myhash", "FIELDS", 3, "f1", "f2", "f3"], [-1, -1, -1]),
            (["HPTTL", "missing", "FIELDS", 2, "a", "b"], [-2, -2]),
            (["HPERSIST", "missing", "FIELDS", 1, "a"], [-2]),
            (["HEXPIRE", "missing", 10, "FIELDS", 2, "a", "b"], [-2, -2]),
        ],
    )
    ttl = hf("HTTL", "myhash", "FIELDS", 1, "f2")
    hf("HEXPIRE", "myhash", 10, "FIELDS", 1, "f2")
    assert ttl == [-1] and hf("HTTL", "myhash", "FIELDS", 1, "f2") == [10]  # rounded up
    left = hf("HPTTL", "myhash", "FIELDS", 1, "f2")
    assert isinstance(left, list) and 9000 < left[0] <= 10000  # type: ignore[operator]


def test_conditions_and_reply_codes(hf: EngineClient) -> None:
    """NX/XX/GT/LT per field: a field without an expiry counts as one at infinity (LT sets
    it, GT and XX do not); a time not in the future deletes the field (2), and the hash
    with its last field."""
    hf("HSET", "h", "none", "1", "early", "2", "late", "3")
    hf("HEXPIREAT", "h", FAR - 100, "FIELDS", 1, "early")
    hf("HEXPIREAT", "h", FAR + 100, "FIELDS", 1, "late")
    fields = ["FIELDS", 4, "none", "early", "late", "nope"]
    table(
        hf,
        [
            (["HEXPIREAT", "h", FAR, "NX", *fields], [1, 0, 0, -2]),
            (["HPERSIST", "h", "FIELDS", 1, "none"], [1]),
            (["HEXPIREAT", "h", FAR, "XX", *fields], [0, 1, 1, -2]),
            (["HEXPIREAT", "h", FAR + 5, "GT", *fields], [0, 1, 1, -2]),
            (["HEXPIREAT", "h", FAR + 5, "GT", *fields], [0, 0, 0, -2]),
            (["HEXPIREAT", "h", FAR + 1, "lt", *fields], [1, 1, 1, -2]),
            (["HEXPIREAT", "h", FAR + 1, "LT", *fields], [0, 0, 0, -2]),
            (["HEXPIRETIME", "h", "FIELDS", 3, "none", "early", "late"], [FAR + 1] * 3),
            (["HPEXPIRE", "h", 0, "FIELDS", 2, "none", "nope"], [2, -2]),
            (["HEXPIREAT", "h", 1, "FIELDS", 1, "early"], [2]),
            (["HLEN", "h"], 1),
            (["HPEXPIREAT", "h", 5, "GT", "FIELDS", 1, "late"], [0]),
            (["HPEXPIREAT", "h", 5, "LT", "FIELDS", 1, "late"], [2]),
            (["EXISTS", "h"], 0),
            (["TYPE", "h"], b"none"),
        ],
    )


def test_argument_errors_in_redis_order(hf: EngineClient) -> None:
    hf("SET", "str", "v")
    hf("HSET", "h", "f", "v")
    big = (((1 << 48) - 1) >> 2) // 1000 + 1
    table(
        hf,
        [
            (
                ["HEXPIRE", "str", "x", "FIELDS", 1, "f"],
                error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
            (
                ["HTTL", "str", "FIELDS", 1, "f"],
                error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
            (["HEXPIRE", "h", "x", "FIELDS", 1, "f"], error("ERR value is not an integer or out of range")),
            (["HEXPIRE", "h", -1, "FIELDS", 1, "f"], error("ERR invalid expire time, must be >= 0")),
            (["HEXPIRE", "h", big, "FIELDS", 1, "f"], error("ERR invalid expire time in 'hexpire' command")),
            (
                ["HPEXPIREAT", "h", big * 1000, "FIELDS", 1, "f"],
                error("ERR invalid expire time in 'hpexpireat' command"),
            ),
            (
                ["HEXPIRE", "h", 10, "FIELD", 1, "f"],
                error("ERR Mandatory argument FIELDS is missing or not at the right position"),
            ),
            (
                ["HEXPIRE", "h", 10, "XX", "NX", "FIELDS", "f"],
                error("ERR Mandatory argument FIELDS is missing or not at the right position"),
            ),
            (
                ["HEXPIRE", "h", 10, "FIELDS", 0, "f"],
                error("ERR Parameter `numFields` should be greater than 0"),
            ),
            (
                ["HEXPIRE", "h", 10, "FIELDS", "one", "f"],
                error("ERR Parameter `numFields` should be greater than 0"),
            ),
            (
                ["HEXPIRE", "h", 10, "FIELDS", 2, "f"],
                error("ERR The `numfields` parameter must match the number of arguments"),
            ),
            (
                ["HEXPIRE", "h", 10, "FIELDS", 1, "f", "g"],
                error("ERR The `numfields` parameter must match the number of arguments"),
            ),
            (["HEXPIRE", "h", 10, "FIELDS", 1], error("ERR wrong number of arguments for 'hexpire' command")),
            (["HTTL", "h", "FIELDS", 0, "f"], error("ERR Number of fields must be a positive integer")),
            (["HPERSIST", "h", "FIELDS", -1, "f"], error("ERR Number of fields must be a positive integer")),
            (
                ["HTTL", "h", "NOTFIELDS", 1, "f"],
                error("ERR Mandatory argument FIELDS is missing or not at the right position"),
            ),
            (
                ["HTTL", "h", "FIELDS", 2, "f"],
                error("ERR The `numfields` parameter must match the number of arguments"),
            ),
            (["HTTL", "h", "FIELDS", 1], error("ERR wrong number of arguments for 'httl' command")),
            (["HGET", "h", "f"], b"v"),  # nothing above wrote
            (["HTTL", "h", "FIELDS", 1, "f"], [-1]),
        ],
    )


def test_expired_fields_are_invisible_and_the_last_one_takes_the_hash(hf: EngineClient) -> None:
    hf("HSET", "h", "keep", "1", "gone", "2", "n", "5")
    hf("HSET", "all", "a", "1", "b", "2")
    assert hf("HPEXPIRE", "h", 60, "FIELDS", 2, "gone", "n") == [1, 1]
    assert hf("HPEXPIRE", "all", 60, "FIELDS", 2, "a", "b") == [1, 1]
    hf("COPY", "h", "copied")
    time.sleep(0.09)
    table(
        hf,
        [
            (["HGET", "h", "gone"], None),
            (["HMGET", "h", "gone", "keep"], [None, b"1"]),
            (["HEXISTS", "h", "gone"], 0),
            (["HSTRLEN", "h", "gone"], 0),
            (["HLEN", "h"], 1),
            (["HGETALL", "h"], [b"keep", b"1"]),
            (["HKEYS", "h"], [b"keep"]),
            (["HVALS", "h"], [b"1"]),
            (["HSCAN", "h", 0], [b"0", [b"keep", b"1"]]),
            (["HRANDFIELD", "h", -5], [b"keep"] * 5),
            (["HRANDFIELD", "h", 5, "WITHVALUES"], [b"keep", b"1"]),
            (["HTTL", "h", "FIELDS", 2, "gone", "keep"], [-2, -1]),
            (["HPERSIST", "h", "FIELDS", 1, "gone"], [-2]),
            (["HEXPIRE", "h", 100, "FIELDS", 1, "gone"], [-2]),
            (["HGETDEL", "h", "FIELDS", 1, "gone"], [None]),
            (["HGETEX", "h", "PERSIST", "FIELDS", 1, "gone"], [None]),
            (["HDEL", "h", "gone"], 0),
            (["EVAL", "return redis.call('HGETALL', KEYS[1])", 1, "h"], [b"keep", b"1"]),
            (["HINCRBY", "h", "n", 3], 3),  # an expired field starts from nothing
            (["HTTL", "h", "FIELDS", 1, "n"], [-1]),
            (["HSETNX", "h", "gone", "again"], 1),
            (["HGETALL", "copied"], [b"keep", b"1"]),  # COPY kept the expiries
            (["EXISTS", "all"], 0),
            (["TYPE", "all"], b"none"),
            (["HLEN", "all"], 0),
            (["HSET", "all", "c", "3"], 1),  # a new hash, not the old one
            (["HGETALL", "all"], [b"c", b"3"]),
        ],
    )


def test_a_big_hash_hides_its_expired_fields(hf: EngineClient) -> None:
    """Past Redis's listpack size (DynamoDB keeps an item per field then), the same."""
    hf("HSET", "big", *[f"f{i}:{i}".split(":")[j] for i in range(200) for j in (0, 1)])
    hf("HSET", "bigall", *[f"f{i}:{i}".split(":")[j] for i in range(150) for j in (0, 1)])
    doomed = [f"f{i}" for i in range(50, 200)]
    # DynamoDB Local takes up to a second or two for these writes: the fields live longer there
    deadline = int(time.time() * 1000) + (3000 if hf.name == "dynamodb" else 100)
    assert hf("HPEXPIREAT", "big", "0", "FIELDS", 1, "f0") == [2]
    assert hf("HPEXPIREAT", "big", deadline, "FIELDS", len(doomed), *doomed) == [1] * 150
    all_fields = [f"f{i}" for i in range(150)]
    assert hf("HPEXPIREAT", "bigall", deadline, "FIELDS", 150, *all_fields) == [1] * 150
    assert hf("HPERSIST", "big", "FIELDS", 2, "f199", "f0") == [1, -2]
    time.sleep(max(0.0, deadline / 1000 - time.time()) + 0.02)
    keys = hf("HKEYS", "big")
    assert isinstance(keys, list) and sorted(keys) == sorted(
        [f"f{i}".encode() for i in range(1, 50)] + [b"f199"]
    )
    table(
        hf,
        [
            (["HLEN", "big"], 50),
            (["HGET", "big", "f60"], None),
            (["HGET", "big", "f199"], b"199"),
            (["HMGET", "big", "f1", "f51"], [b"1", None]),
            (["EXISTS", "bigall"], 0),
            (["HSET", "big", "f60", "back"], 1),
            (["HLEN", "big"], 51),
            (["HTTL", "big", "FIELDS", 2, "f60", "f61"], [-1, -2]),
        ],
    )


def test_writes_and_field_expiries(hf: EngineClient) -> None:
    """HSET and HSETNX set a field without an expiry; the increments keep it
    (``HASH_SET_KEEP_TTL``); COPY and RENAME keep every field's."""
    hf("HSET", "h", "a", "1", "b", "2", "c", "1.5", "d", "x")
    hf("HEXPIREAT", "h", FAR, "FIELDS", 4, "a", "b", "c", "d")
    table(
        hf,
        [
            (["HSET", "h", "a", "10"], 0),
            (["HINCRBY", "h", "b", 5], 7),
            (["HINCRBYFLOAT", "h", "c", "1"], b"2.5"),
            (["HSETNX", "h", "d", "y"], 0),
            (["HEXPIRETIME", "h", "FIELDS", 4, "a", "b", "c", "d"], [-1, FAR, FAR, FAR]),
            (["RENAME", "h", "r"], b"OK"),
            (["HEXPIRETIME", "r", "FIELDS", 2, "a", "b"], [-1, FAR]),
            (["COPY", "r", "c"], 1),
            (["HEXPIRETIME", "c", "FIELDS", 2, "a", "d"], [-1, FAR]),
            (["HGETALL", "c"], [b"a", b"10", b"b", b"7", b"c", b"2.5", b"d", b"x"]),
        ],
    )


def test_the_hgetdel_page_example_and_errors(hf: EngineClient) -> None:
    hf("SET", "str", "v")
    table(
        hf,
        [
            (["HSET", "mykey", "field1", "Hello", "field2", "World", "field3", "!"], 3),
            (["HGETDEL", "mykey", "FIELDS", 2, "field3", "field4"], [b"!", None]),
            (["HGETALL", "mykey"], [b"field1", b"Hello", b"field2", b"World"]),
            (["HGETDEL", "mykey", "FIELDS", 3, "field1", "field1", "field2"], [b"Hello", None, b"World"]),
            (["KEYS", "*"], [b"str"]),
            (["HGETDEL", "mykey", "FIELDS", 1, "field1"], [None]),
            (
                ["HGETDEL", "str", "FIELDS", 1, "f"],
                error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
            (
                ["HGETDEL", "mykey", "FIELD", 1, "f"],
                error("ERR Mandatory argument FIELDS is missing or not at the right position"),
            ),
            (
                ["HGETDEL", "mykey", "FIELDS", 0, "f"],
                error("ERR Number of fields must be a positive integer"),
            ),
            (
                ["HGETDEL", "mykey", "FIELDS", 3, "f"],
                error("ERR The `numfields` parameter must match the number of arguments"),
            ),
            (["HGETDEL", "mykey", "FIELDS", 1], error("ERR wrong number of arguments for 'hgetdel' command")),
        ],
    )


def test_the_hgetex_page_example_and_options(hf: EngineClient) -> None:
    table(
        hf,
        [
            (["HSET", "mykey", "field1", "Hello", "field2", "World"], 2),
            (["HGETEX", "mykey", "EX", 120, "FIELDS", 1, "field1"], [b"Hello"]),
            (["HGETEX", "mykey", "EX", 100, "FIELDS", 1, "field2"], [b"World"]),
            (["HTTL", "mykey", "FIELDS", 3, "field1", "field2", "field3"], [120, 100, -2]),
            (["HGETEX", "mykey", "EXAT", FAR, "FIELDS", 2, "field1", "nope"], [b"Hello", None]),
            (["HGETEX", "mykey", "PXAT", FAR_MS + 1, "FIELDS", 1, "field2"], [b"World"]),
            (["HPEXPIRETIME", "mykey", "FIELDS", 2, "field1", "field2"], [FAR_MS, FAR_MS + 1]),
            (["HGETEX", "mykey", "FIELDS", 1, "field1"], [b"Hello"]),  # no option: untouched
            (["HEXPIRETIME", "mykey", "FIELDS", 1, "field1"], [FAR]),
            (["HGETEX", "mykey", "PERSIST", "FIELDS", 1, "field1"], [b"Hello"]),
            (["HEXPIRETIME", "mykey", "FIELDS", 2, "field1", "field2"], [-1, FAR + 1]),
        ],
    )
    table(
        hf,
        [
            (["HGETEX", "mykey", "PXAT", 1, "FIELDS", 1, "field2"], [b"World"]),  # then gone
            (["HGETALL", "mykey"], [b"field1", b"Hello"]),
            (["HGETEX", "mykey", "PX", 0, "FIELDS", 1, "field1"], [b"Hello"]),
            (["EXISTS", "mykey"], 0),
            (["HGETEX", "mykey", "EX", 10, "FIELDS", 2, "a", "b"], [None, None]),
            (["HSET", "h", "f", "v"], 1),
            (["HGETEX", "h", "EX", -1, "FIELDS", 1, "f"], error("ERR invalid expire time, must be >= 0")),
            (
                ["HGETEX", "h", "EX", "ten", "FIELDS", 1, "f"],
                error("ERR value is not an integer or out of range"),
            ),
            (
                ["HGETEX", "h", "EXAT", 2**62, "FIELDS", 1, "f"],
                error("ERR invalid expire time in 'hgetex' command"),
            ),
            (
                ["HGETEX", "h", "EX", 10, "FIELD", 1, "f"],
                error("ERR Mandatory argument FIELDS is missing or not at the right position"),
            ),
            (
                ["HGETEX", "h", "KEEPTTL", "FIELDS", 1, "f"],
                error("ERR Mandatory argument FIELDS is missing or not at the right position"),
            ),
            (["HGETEX", "h", "FIELDS", 0, "f"], error("ERR Number of fields must be a positive integer")),
            (
                ["HGETEX", "h", "PERSIST", "FIELDS", 2, "f"],
                error("ERR The `numfields` parameter must match the number of arguments"),
            ),
            (["HGETEX", "h", "FIELDS", 1], error("ERR wrong number of arguments for 'hgetex' command")),
            (["HTTL", "h", "FIELDS", 1, "f"], [-1]),
        ],
    )


def test_the_hsetex_page_example_and_options(hf: EngineClient) -> None:
    table(
        hf,
        [
            (["HSETEX", "mykey", "EXAT", FAR, "FIELDS", 2, "field1", "Hello", "field2", "World"], 1),
            (["HEXPIRETIME", "mykey", "FIELDS", 2, "field1", "field2"], [FAR, FAR]),
            (["HSETEX", "mykey", "FNX", "EX", 60, "FIELDS", 2, "field1", "Hello", "field2", "World"], 0),
            (
                [
                    "HSETEX",
                    "mykey",
                    "FXX",
                    "EX",
                    60,
                    "KEEPTTL",
                    "FIELDS",
                    2,
                    "field1",
                    "hello",
                    "field2",
                    "world",
                ],
                error("ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"),
            ),
            (["HSETEX", "mykey", "FXX", "KEEPTTL", "FIELDS", 2, "field1", "hello", "field2", "world"], 1),
            (["HEXPIRETIME", "mykey", "FIELDS", 2, "field1", "field2"], [FAR, FAR]),
            (["HGETALL", "mykey"], [b"field1", b"hello", b"field2", b"world"]),
            (["HSETEX", "mykey", "FXX", "FIELDS", 2, "field1", "a", "field3", "c"], 0),
            (["HSETEX", "mykey", "FIELDS", 1, "field1", "plain"], 1),  # no option: like HSET
            (["HEXPIRETIME", "mykey", "FIELDS", 2, "field1", "field2"], [-1, FAR]),
            (["HSETEX", "mykey", "FNX", "PX", 100000, "FIELDS", 1, "field3", "c"], 1),
            (["HSETEX", "mykey", "PXAT", 1, "FIELDS", 2, "field3", "x", "new", "y"], 1),  # set and gone
            (["HGETALL", "mykey"], [b"field1", b"plain", b"field2", b"world"]),
            (["HSETEX", "nokey", "FXX", "FIELDS", 1, "a", "b"], 0),
            (["EXISTS", "nokey"], 0),
            (["HSETEX", "gone", "EX", 0, "FIELDS", 1, "a", "b"], 1),
            (["EXISTS", "gone"], 0),
        ],
    )


def test_hsetex_argument_errors(hf: EngineClient) -> None:
    hf("SET", "str", "v")
    arity = error("ERR wrong number of arguments for 'hsetex' command")
    table(
        hf,
        [
            (
                ["HSETEX", "h", "FNX", "FXX", "FIELDS", 1, "a", "b"],
                error("ERR Only one of FXX or FNX arguments can be specified"),
            ),
            (
                ["HSETEX", "h", "EX", 1, "PX", 1, "FIELDS", 1, "a", "b"],
                error("ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"),
            ),
            (["HSETEX", "h", "NX", "FIELDS", 1, "a", "b"], error("ERR unknown argument: NX")),
            (["HSETEX", "h", "FIELDS", 0, "a", "b"], error("ERR invalid number of fields")),
            (["HSETEX", "h", "FIELDS", "x", "a", "b"], error("ERR invalid number of fields")),
            (["HSETEX", "h", "FIELDS", 2, "a", "b"], arity),
            (["HSETEX", "h", "FIELDS", 1, "a", "b", "c"], arity),
            (["HSETEX", "h", "FIELDS", 1, "a"], arity),
            (
                ["HSETEX", "h", "EX", -5, "FIELDS", 1, "a", "b"],
                error("ERR invalid expire time, must be >= 0"),
            ),
            (["HSETEX", "h", "FNX", "KEEPTTL", "EX"], arity),
            (
                ["HSETEX", "h", "FNX", "FXX", "EX", "1"],
                error("ERR Only one of FXX or FNX arguments can be specified"),
            ),
            (
                ["HSETEX", "h", "FNX", "KEEPTTL", "FXX", "EX"],
                error("ERR Only one of FXX or FNX arguments can be specified"),
            ),
            (
                ["HSETEX", "h", "FNX", "KEEPTTL", "PX", "1"],
                error("ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"),
            ),
            (["HSETEX", "h", "FNX", "FIELDS", 1, "a"], arity),
            (
                ["HSETEX", "h", "FNX", "EX", "10", "PX"],
                error("ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"),
            ),
            (
                ["HSETEX", "h", "FNX", "FNX", "EX", "10"],
                error("ERR Only one of FXX or FNX arguments can be specified"),
            ),
            (
                ["HSETEX", "str", "FIELDS", 1, "a", "b"],
                error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
            (
                ["HSETEX", "str", "EX", -1, "FIELDS", 1, "a", "b"],
                error("ERR invalid expire time, must be >= 0"),
            ),
            (["EXISTS", "h"], 0),
        ],
    )
    assert comparable(hf("HSETEX", "h", "FXX", "FNX", "KEEPTTL", "EX")) == error(
        "ERR Only one of FXX or FNX arguments can be specified"
    )
    reply = hf("HSETEX", "h", "FNX", "KEEPTTL", "EXAT", "1", "FIELDS")
    assert isinstance(reply, ReplyError)


def test_the_sqlite_sweeper_drops_expired_fields_through_its_indexes(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "s.db"))
    engine = Engine("sqlite")

    def run(now: int, *args: Arg) -> Reply:
        with store.unit(True, now) as t:
            return engine.execute(t, [str(a).encode() for a in args])

    run(1000, "HSET", "h", "a", "1", "b", "2", "c", "3")
    run(1000, "HSET", "all", "x", "1")
    run(1000, "HPEXPIREAT", "h", 2000, "FIELDS", 2, "a", "b")
    run(1000, "HPEXPIREAT", "h", 3000, "FIELDS", 1, "b")  # at stays 2000: no later than the earliest
    run(1000, "HPEXPIREAT", "all", 2500, "FIELDS", 1, "x")
    rows = store.writer.execute("SELECT count(*) FROM members").fetchone()[0]
    with store.unit(True, 2600) as t:
        assert t.sweep() == 2
    assert store.writer.execute("SELECT count(*) FROM members").fetchone()[0] == rows - 2  # a, x
    assert store.writer.execute("SELECT name, size FROM keys").fetchall() == [(b"h", 2)]
    assert store.writer.execute("SELECT at FROM hash_expiry").fetchall() == [(3000,)]
    plans = [
        " ".join(str(r[-1]) for r in store.writer.execute(f"EXPLAIN QUERY PLAN {sql}", args))
        for sql, args in [
            ("SELECT key_id FROM hash_expiry WHERE at <= ? ORDER BY at LIMIT ?", (1, 1)),
            ("DELETE FROM members WHERE key_id = ? AND score > 0 AND score <= ?", (1, 1)),
        ]
    ]
    assert "USING COVERING INDEX hash_expiry_at" in plans[0]
    assert "USING INDEX members_order (key_id=? AND score>? AND score<?)" in plans[1]
    with store.unit(False, 3500) as t:  # a reader hides what it cannot drop
        assert engine.execute(t, [b"HGETALL", b"h"]) == [b"c", b"3"]
        assert engine.execute(t, [b"HLEN", b"h"]) == 1
    store.close()


def test_a_version_2_sqlite_file_gains_hash_expiry(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    SqliteStore(str(path)).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE hash_expiry")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    store = SqliteStore(str(path))
    assert store.writer.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    assert store.writer.execute("SELECT count(*) FROM hash_expiry").fetchone()[0] == 0
    store.close()


def test_the_dynamodb_sweeper_drops_expired_fields(dynamodb_local: DynamoDBLocal) -> None:
    """Each write that moves a hash's earliest field expiry leaves a cleanup record due
    then; the sweeper's unit drops the expired fields, and a hash with its last one."""
    client = DynamoEngineClient(dynamodb_local.clean_table())
    client.table = command_table()
    backend = client.backend

    def head(name: bytes) -> dict[str, Any] | None:
        found = client.loop.run_until_complete(
            backend._call(backend._client.get_item, TableName=backend.table, Key=items.head_key(name))
        )
        return found.get("Item")  # type: ignore[no-any-return]

    try:
        client("HSET", "h", "a", "1", "b", "2")
        client("HSET", "gone", "x", "1")
        deadline = int(time.time() * 1000) + 500
        client("HPEXPIREAT", "h", deadline, "FIELDS", 1, "a")
        client("HPEXPIREAT", "gone", deadline, "FIELDS", 1, "x")
        before = head(b"h")
        assert before is not None and "f" in before and int(before["fx"]["N"]) == deadline
        time.sleep(max(0.0, deadline / 1000 - time.time()) + 0.02)
        assert client.loop.run_until_complete(bigwrite.sweep(backend, now_ms())) == 2
        after = head(b"h")
        assert after is not None and "f" not in after and "fx" not in after
        assert head(b"gone") is None
        assert client("HGETALL", "h") == [b"b", b"2"]
    finally:
        client.close()
