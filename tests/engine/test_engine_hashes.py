"""Hash commands: kvgate's engine against a real Redis 7.0, reply for reply."""

from __future__ import annotations

import time
from collections.abc import Sequence

from kvgate.errors import ReplyError
from tests.support.engine import Arg, EngineClient, Oracle, assert_same, comparable

#: A fixed expiry (2100-01-01): EXPIRETIME of it is exact, unlike TTL on a loaded machine.
FAR = "4102444800"


def others(oracle: Oracle, engine: EngineClient) -> None:
    """A string and a list to run hash commands against."""
    assert_same(oracle, engine, [["SET", "str", "v"], ["RPUSH", "list", "a"]])


def test_hset_hget_and_friends(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["HSET", "h", "a", "1", "b", "2"],
            ["HSET", "h", "a", "10", "c", "3"],
            ["HSET", "h", "a", "11", "a", "12"],
            ["HGET", "h", "a"],
            ["HGET", "h", "zz"],
            ["HGET", "missing", "a"],
            ["HMSET", "h", "d", "4", "e", ""],
            ["HMSET", "h", "d", "5"],
            ["HGETALL", "h"],
            ["HKEYS", "h"],
            ["HVALS", "h"],
            ["HLEN", "h"],
            ["HMGET", "h", "a", "nope", "e", "a"],
            ["HMGET", "missing", "a", "b"],
            ["HEXISTS", "h", "a"],
            ["HEXISTS", "h", "nope"],
            ["HEXISTS", "missing", "a"],
            ["HSTRLEN", "h", "a"],
            ["HSTRLEN", "h", "e"],
            ["HSTRLEN", "h", "nope"],
            ["HSTRLEN", "missing", "a"],
            ["HLEN", "missing"],
            ["HGETALL", "missing"],
            ["HKEYS", "missing"],
            ["HVALS", "missing"],
            ["HSET", "bin", b"\x00\xff", b"\r\n"],
            ["HGET", "bin", b"\x00\xff"],
            ["TYPE", "h"],
        ],
    )


def test_insertion_order_kept_on_update_and_readd(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["HSET", "h", "z", "1", "y", "2", "x", "3", "100", "n", "-5", "m"],
            ["HSET", "h", "y", "22"],
            ["HGETALL", "h"],
            ["HDEL", "h", "z"],
            ["HSET", "h", "z", "back"],
            ["HKEYS", "h"],
            ["HVALS", "h"],
            ["HINCRBY", "h", "new", "1"],
            ["HGETALL", "h"],
        ],
    )


def test_hset_arity(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    assert_same(
        oracle,
        engine,
        [
            ["HSET", "h", "a"],
            ["HSET", "h", "a", "1", "b"],
            ["HMSET", "h", "a", "1", "b"],
            ["hmset", "h", "a"],
            ["HSET", "str", "a", "1", "b"],  # arity is checked before the type
            ["EXISTS", "h"],
            ["HSET", "h", "a", "1", "a", "2"],
            ["HGET", "h", "a"],
        ],
    )


def test_hsetnx(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    assert_same(
        oracle,
        engine,
        [
            ["HSETNX", "h", "a", "1"],
            ["HSETNX", "h", "a", "2"],
            ["HGET", "h", "a"],
            ["HSETNX", "h", "b", "3"],
            ["HGETALL", "h"],
            ["HSETNX", "str", "a", "1"],
            ["HSETNX", "list", "a", "1"],
        ],
    )


def test_hdel_removes_empty_hash_and_ttl(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    assert_same(
        oracle,
        engine,
        [
            ["HSET", "h", "a", "1", "b", "2", "c", "3"],
            ["EXPIREAT", "h", FAR],
            ["HDEL", "h", "a", "a", "zz"],
            ["EXPIRETIME", "h"],
            ["HDEL", "h", "b", "c", "b", "x"],
            ["EXISTS", "h"],
            ["EXPIRETIME", "h"],
            ["HSET", "h", "a", "1"],
            ["EXPIRETIME", "h"],
            ["HDEL", "missing", "a"],
            ["HDEL", "str", "a"],
            ["HDEL", "list", "a"],
        ],
    )


def test_hincrby(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    assert_same(
        oracle,
        engine,
        [
            ["HINCRBY", "h", "n", "5"],
            ["HINCRBY", "h", "n", "-7"],
            ["HINCRBY", "h", "n", "0"],
            ["HGET", "h", "n"],
            [
                "HSET",
                "h",
                "s",
                "abc",
                "sp",
                " 1",
                "lz",
                "01",
                "plus",
                "+1",
                "fl",
                "1.0",
                "big",
                "9223372036854775807",
            ],
            ["HINCRBY", "h", "s", "1"],
            ["HINCRBY", "h", "sp", "1"],
            ["HINCRBY", "h", "lz", "1"],
            ["HINCRBY", "h", "plus", "1"],
            ["HINCRBY", "h", "fl", "1"],
            ["HINCRBY", "h", "big", "1"],
            ["HINCRBY", "h", "big", "-1"],
            ["HINCRBY", "h", "big", "0"],
            ["HINCRBY", "h", "neg", "-9223372036854775808"],
            ["HINCRBY", "h", "neg", "-1"],
            ["HINCRBY", "h", "neg", "9223372036854775807"],
            ["HINCRBY", "h", "n", "abc"],
            ["HINCRBY", "h", "n", "1.5"],
            ["HINCRBY", "h", "n", "9223372036854775808"],
            ["HINCRBY", "h", "n", ""],
            ["HINCRBY", "str", "n", "1"],
            ["HINCRBY", "str", "n", "x"],  # the increment is parsed before the key
            ["HINCRBY", "missing", "n", "x"],
            ["EXISTS", "missing"],
            ["HINCRBY", "list", "n", "1"],
            ["HGETALL", "h"],
        ],
    )


def test_hincrby_keeps_ttl(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["HSET", "h", "n", "1"],
            ["EXPIREAT", "h", FAR],
            ["HINCRBY", "h", "n", "1"],
            ["HINCRBYFLOAT", "h", "n", "0.5"],
            ["HSET", "h", "m", "x"],
            ["EXPIRETIME", "h"],
        ],
    )


def test_hincrbyfloat(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    assert_same(
        oracle,
        engine,
        [
            ["HINCRBYFLOAT", "h", "f", "0.1"],
            ["HINCRBYFLOAT", "h", "f", "0.1"],
            ["HINCRBYFLOAT", "h", "f", "0.1"],
            ["HINCRBYFLOAT", "h", "g", "3"],
            ["HINCRBYFLOAT", "h", "g", "2.0"],
            ["HINCRBYFLOAT", "h", "g", "-5"],
            ["HINCRBYFLOAT", "h", "e", "1e3"],
            ["HINCRBYFLOAT", "h", "e", "-1.5e-3"],
            ["HINCRBYFLOAT", "h", "x", "0x10"],
            ["HINCRBYFLOAT", "h", "x", ".5"],
            ["HINCRBYFLOAT", "h", "f", "abc"],
            ["HINCRBYFLOAT", "h", "f", " 1"],
            ["HINCRBYFLOAT", "h", "f", "nan"],
            ["HINCRBYFLOAT", "h", "f", ""],
            ["HINCRBYFLOAT", "h", "f", "1e5000"],
            ["HINCRBYFLOAT", "h", "f", "inf"],
            ["HINCRBYFLOAT", "h", "f", "-Infinity"],
            ["HSET", "h", "s", "abc", "i", "inf", "n", "nan", "sp", " 2", "big", "1e4932"],
            ["HINCRBYFLOAT", "h", "s", "1"],
            ["HINCRBYFLOAT", "h", "sp", "1"],
            ["HINCRBYFLOAT", "h", "n", "1"],
            ["HINCRBYFLOAT", "h", "i", "1"],
            ["HINCRBYFLOAT", "h", "big", "1e4932"],
            ["HINCRBYFLOAT", "h", "big", "-1e4932"],
            ["HINCRBYFLOAT", "str", "f", "1"],
            ["HINCRBYFLOAT", "str", "f", "x"],
            ["HINCRBYFLOAT", "list", "f", "inf"],
            ["HINCRBYFLOAT", "missing", "f", "x"],
            ["EXISTS", "missing"],
            ["HGETALL", "h"],
        ],
    )


def test_hincrby_then_hincrbyfloat_mix(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["HINCRBYFLOAT", "h", "a", "1.5"],
            ["HINCRBY", "h", "a", "1"],
            ["HINCRBYFLOAT", "h", "a", "1.5"],
            ["HINCRBY", "h", "a", "1"],
            ["HINCRBYFLOAT", "h", "b", "10.00"],
            ["HGET", "h", "b"],
            ["HSTRLEN", "h", "b"],
        ],
    )


def test_wrongtype_for_every_command(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    assert_same(oracle, engine, [["SADD", "set", "m"]])
    commands: list[list[Arg]] = []
    for key in ("str", "list", "set"):
        commands += [
            ["HSET", key, "a", "1"],
            ["HMSET", key, "a", "1"],
            ["HSETNX", key, "a", "1"],
            ["HGET", key, "a"],
            ["HMGET", key, "a"],
            ["HGETALL", key],
            ["HKEYS", key],
            ["HVALS", key],
            ["HLEN", key],
            ["HEXISTS", key, "a"],
            ["HDEL", key, "a"],
            ["HSTRLEN", key, "a"],
            ["HINCRBY", key, "a", "1"],
            ["HINCRBYFLOAT", key, "a", "1"],
            ["HRANDFIELD", key],
            ["HRANDFIELD", key, "1"],
            ["HRANDFIELD", key, "-3", "WITHVALUES"],
            ["HSCAN", key, "0"],
            ["HSCAN", key, "0", "COUNT", "0"],
        ]
    commands += [["GET", "str"], ["LRANGE", "list", "0", "-1"], ["SMEMBERS", "set"]]
    assert_same(oracle, engine, commands)


def test_expired_hash_is_missing(oracle: Oracle, engine: EngineClient) -> None:
    setup: list[list[Arg]] = [
        ["HSET", "h", "a", "1", "b", "2"],
        ["PEXPIRE", "h", "1"],
        ["HSET", "g", "a", "1"],
        ["PEXPIRE", "g", "1"],
        ["SET", "s", "x"],
        ["PEXPIRE", "s", "1"],
    ]
    assert_same(oracle, engine, setup)
    time.sleep(0.01)
    assert_same(
        oracle,
        engine,
        [
            ["HGET", "h", "a"],
            ["HLEN", "h"],
            ["HGETALL", "h"],
            ["HEXISTS", "h", "a"],
            ["HRANDFIELD", "h"],
            ["HRANDFIELD", "h", "2"],
            ["HSCAN", "h", "0"],
            ["HDEL", "h", "a"],
            ["HSET", "h", "c", "3"],
            ["HGETALL", "h"],
            ["EXPIRETIME", "h"],
            ["HINCRBY", "g", "a", "5"],
            ["EXPIRETIME", "g"],
            ["HSET", "s", "f", "v"],  # an expired string no longer blocks a hash
            ["HGETALL", "s"],
        ],
    )


def _population(oracle: Oracle, key: str) -> dict[bytes, bytes]:
    flat = oracle("HGETALL", key)
    assert isinstance(flat, list)
    return dict(zip(flat[::2], flat[1::2], strict=True))  # type: ignore[arg-type]


def _check_random_fields(reply: object, fields: dict[bytes, bytes], cmd: Sequence[Arg]) -> list[bytes]:
    """The shape rules of HRANDFIELD with a count; returns the fields picked."""
    assert isinstance(reply, list), (cmd, reply)
    count = int(cmd[2])
    with_values = len(cmd) == 4
    picked = reply[::2] if with_values else reply
    if with_values:
        assert len(reply) % 2 == 0
        for f, v in zip(reply[::2], reply[1::2], strict=True):
            assert fields[f] == v, (cmd, f, v)  # type: ignore[index]
    assert all(f in fields for f in picked), (cmd, reply)
    if count >= 0:
        assert len(picked) == min(count, len(fields)), (cmd, reply)
        assert len(set(picked)) == len(picked), (cmd, reply)  # type: ignore[arg-type]
    else:
        assert len(picked) == -count, (cmd, reply)
    return picked  # type: ignore[return-value]


def test_hrandfield(oracle: Oracle, engine: EngineClient) -> None:
    pairs = [x for i in range(8) for x in (f"f{i}", f"v{i}")]
    assert_same(oracle, engine, [["HSET", "h", *pairs], ["HSET", "one", "only", "1"]])
    fields = _population(oracle, "h")
    shapes: list[list[Arg]] = [
        ["HRANDFIELD", "h", "3"],
        ["HRANDFIELD", "h", "1"],
        ["HRANDFIELD", "h", "7"],
        ["HRANDFIELD", "h", "8"],
        ["HRANDFIELD", "h", "100"],
        ["HRANDFIELD", "h", "-1"],
        ["HRANDFIELD", "h", "-20"],
        ["HRANDFIELD", "h", "3", "WITHVALUES"],
        ["HRANDFIELD", "h", "-12", "withvalues"],
        ["HRANDFIELD", "h", "50", "WithValues"],
    ]
    seen: set[bytes] = set()
    for _ in range(5):
        for cmd in shapes:
            _check_random_fields(oracle(*cmd), fields, cmd)
            seen.update(_check_random_fields(engine(*cmd), fields, cmd))
    assert len(seen) == len(fields)  # not always the same few
    for _ in range(20):
        assert engine("HRANDFIELD", "h") in fields
        assert oracle("HRANDFIELD", "h") in fields
    assert_same(
        oracle,
        engine,
        [
            ["HRANDFIELD", "one"],
            ["HRANDFIELD", "one", "-3"],
            ["HRANDFIELD", "one", "2", "WITHVALUES"],
            ["HRANDFIELD", "h", "0"],
            ["HRANDFIELD", "h", "0", "WITHVALUES"],
            ["HRANDFIELD", "missing"],
            ["HRANDFIELD", "missing", "3"],
            ["HRANDFIELD", "missing", "-3", "WITHVALUES"],
            ["HRANDFIELD", "missing", "0"],
            ["HRANDFIELD", "h", "x"],
            ["HRANDFIELD", "h", "1.5"],
            ["HRANDFIELD", "h", "1", "x"],
            ["HRANDFIELD", "h", "1", "WITHVALUES", "x"],
            ["HRANDFIELD", "h", "x", "x"],
            ["HRANDFIELD", "h", "-9223372036854775808"],
            ["HRANDFIELD", "h", "9223372036854775808"],
            ["HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"],
            ["HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"],
            ["HRANDFIELD", "missing", "4611686018427387904", "WITHVALUES"],
            ["HRANDFIELD", "missing", "x"],
            ["HRANDFIELD", "missing", "1", "x"],
        ],
    )


def test_hrandfield_whole_hash_keeps_order(oracle: Oracle, engine: EngineClient) -> None:
    # A count at least the size of a small hash returns it whole, in insertion order.
    assert_same(
        oracle,
        engine,
        [
            ["HSET", "h", "c", "1", "a", "2", "b", "3"],
            ["HRANDFIELD", "h", "3"],
            ["HRANDFIELD", "h", "10", "WITHVALUES"],
        ],
    )


def test_hscan(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    assert_same(
        oracle,
        engine,
        [
            ["HSET", "h", "apple", "1", "banana", "2", "avocado", "3", "cherry", "4", "a*", "5"],
            ["HSCAN", "h", "0"],
            ["HSCAN", "h", "0", "COUNT", "2"],
            ["HSCAN", "h", "0", "MATCH", "a*"],
            ["HSCAN", "h", "0", "MATCH", "a\\*"],
            ["HSCAN", "h", "0", "match", "*an*", "count", "100"],
            ["HSCAN", "h", "0", "MATCH", "zzz"],
            ["HSCAN", "h", "0", "MATCH", "*", "MATCH", "b*"],
            ["HSCAN", "h", "0", "COUNT", "0"],
            ["HSCAN", "h", "0", "COUNT", "-1"],
            ["HSCAN", "h", "0", "COUNT", "x"],
            ["HSCAN", "h", "0", "COUNT"],
            ["HSCAN", "h", "0", "TYPE", "hash"],
            ["HSCAN", "h", "0", "FOO", "bar"],
            ["HSCAN", "h", "x"],
            ["HSCAN", "h", " 0"],
            ["HSCAN", "h", "18446744073709551616"],
            ["HSCAN", "missing", "0"],
            ["HSCAN", "missing", "0", "COUNT", "0"],  # no key: options are not read
            ["HSCAN", "missing", "x"],  # the cursor is read first
            ["HSCAN", "str", "x"],
            ["HSCAN", "str", "0", "COUNT", "0"],
            ["HSCAN", "list", "0"],
        ],
    )


def test_hscan_pages_cover_a_large_hash(oracle: Oracle, engine: EngineClient) -> None:
    pairs = [x for i in range(300) for x in (f"field:{i}", str(i))]
    assert oracle("HSET", "big", *pairs) == engine("HSET", "big", *pairs) == 300
    for client in (oracle, engine):
        found: dict[bytes, bytes] = {}
        cursor = b"0"
        for _ in range(1000):
            reply = client("HSCAN", "big", cursor, "COUNT", "25")
            assert isinstance(reply, list)
            cursor, flat = reply[0], reply[1]
            found.update(zip(flat[::2], flat[1::2], strict=True))  # type: ignore[index]
            if cursor == b"0":
                break
        assert cursor == b"0"
        assert found == {f"field:{i}".encode(): str(i).encode() for i in range(300)}
        match = client("HSCAN", "big", "0", "MATCH", "field:1*", "COUNT", "1000")
        assert comparable(match)[0] == b"0"  # type: ignore[index]
        assert sorted(match[1][::2]) == sorted(f"field:{i}".encode() for i in range(300) if str(i)[0] == "1")  # type: ignore[index]


def test_random_replies_larger_than_kvgate_builds_are_refused(engine: EngineClient) -> None:
    """Redis streams any reply; kvgate builds replies in memory and caps caller-sized ones."""
    engine("HSET", "h", "f", "v")
    engine("SADD", "s", "m")
    engine("ZADD", "z", "1", "m")
    text = "ERR count is too large: kvgate answers at most 1000000 elements per reply"
    for cmd in (
        ["HRANDFIELD", "h", "-1000001"],
        ["SRANDMEMBER", "s", "-1000001"],
        ["ZRANDMEMBER", "z", "-1000001"],
    ):
        reply = engine(*cmd)
        assert isinstance(reply, ReplyError) and reply.message == text, (cmd, reply)
    assert len(engine("HRANDFIELD", "h", "-1000000")) == 1_000_000  # type: ignore[arg-type]
