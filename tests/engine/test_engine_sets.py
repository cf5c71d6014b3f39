"""Set commands: kvgate's engine against a real Redis 7.0, reply for reply.

Redis lists a hash-table set in its own hash order, so replies listing a set of strings are
compared unordered; a set of at most 512 integers is an intset, listed in numeric order,
and compared exactly.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from tests.support.engine import Arg, EngineClient, Oracle, assert_same, comparable

#: A fixed expiry (2100-01-01): EXPIRETIME of it is exact, unlike TTL on a loaded machine.
FAR = "4102444800"

LISTING = {"SMEMBERS", "SINTER", "SUNION", "SDIFF", "SPOP", "SRANDMEMBER"}


def unordered(cmd: Sequence[Arg]) -> bool:
    return str(cmd[0]).upper() in LISTING


def same(oracle: Oracle, engine: EngineClient, commands: Sequence[Sequence[Arg]]) -> None:
    assert_same(oracle, engine, commands, unordered=unordered)


def others(oracle: Oracle, engine: EngineClient) -> None:
    """A string, a list and a hash to run set commands against."""
    same(oracle, engine, [["SET", "str", "v"], ["RPUSH", "list", "a"], ["HSET", "hash", "f", "v"]])


def test_sadd_srem_scard_ismember(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    same(
        oracle,
        engine,
        [
            ["SADD", "s", "a", "b", "c", "a"],
            ["SADD", "s", "a", "d"],
            ["SADD", "s", b"\x00\xff", ""],
            ["SCARD", "s"],
            ["SISMEMBER", "s", "a"],
            ["SISMEMBER", "s", "zz"],
            ["SISMEMBER", "s", ""],
            ["SISMEMBER", "missing", "a"],
            ["SMISMEMBER", "s", "a", "zz", "d", "a"],
            ["SMISMEMBER", "missing", "a", "b"],
            ["SMEMBERS", "s"],
            ["SMEMBERS", "missing"],
            ["SREM", "s", "a", "a", "zz"],
            ["SREM", "missing", "a"],
            ["SCARD", "s"],
            ["SCARD", "missing"],
            ["TYPE", "s"],
        ],
    )


def test_srem_last_member_removes_key_and_ttl(oracle: Oracle, engine: EngineClient) -> None:
    same(
        oracle,
        engine,
        [
            ["SADD", "s", "a", "b"],
            ["EXPIREAT", "s", FAR],
            ["SREM", "s", "a"],
            ["EXPIRETIME", "s"],
            ["SREM", "s", "b", "c", "b"],
            ["EXISTS", "s"],
            ["SADD", "s", "x"],
            ["EXPIRETIME", "s"],
        ],
    )


def test_intset_order(oracle: Oracle, engine: EngineClient) -> None:
    # A set of integers is listed in numeric order, exactly as Redis does.
    assert_same(
        oracle,
        engine,
        [
            ["SADD", "i", "10", "-3", "2", "9223372036854775807", "-9223372036854775808", "0"],
            ["SMEMBERS", "i"],
            ["SADD", "j", "2", "5", "-3", "100"],
            ["SUNION", "i", "j"],
            ["SINTER", "i", "j"],
            ["SDIFF", "i", "j"],
            ["SUNIONSTORE", "u", "j", "i"],
            ["SMEMBERS", "u"],
            ["SSCAN", "i", "0"],
            ["SSCAN", "i", "0", "COUNT", "1"],
            ["SSCAN", "i", "12345"],  # an intset comes back whole whatever the cursor
            ["SSCAN", "i", "0", "MATCH", "-*"],
            ["SPOP", "j", "10"],
            ["EXISTS", "j"],
        ],
    )


def test_wrongtype_for_every_command(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    same(oracle, engine, [["SADD", "set", "m"]])
    commands: list[list[Arg]] = []
    for key in ("str", "list", "hash"):
        commands += [
            ["SADD", key, "a"],
            ["SREM", key, "a"],
            ["SCARD", key],
            ["SISMEMBER", key, "a"],
            ["SMISMEMBER", key, "a"],
            ["SMEMBERS", key],
            ["SRANDMEMBER", key],
            ["SRANDMEMBER", key, "2"],
            ["SPOP", key],
            ["SPOP", key, "2"],
            ["SPOP", key, "0"],
            ["SMOVE", key, "set", "m"],
            ["SMOVE", "set", key, "m"],
            ["SINTER", key],
            ["SINTER", "set", key],
            ["SINTER", "missing", key],  # every key is checked, even after an empty one
            ["SINTERCARD", "2", "missing", key],
            ["SINTERSTORE", "dst", "missing", key],
            ["SUNION", "set", key],
            ["SUNIONSTORE", "dst", key, "set"],
            ["SDIFF", "missing", key],
            ["SDIFF", "set", "missing", key],
            ["SDIFFSTORE", "dst", "set", key],
            ["SSCAN", key, "0"],
            ["SSCAN", key, "0", "COUNT", "0"],
        ]
    commands += [["EXISTS", "dst"], ["SMEMBERS", "set"], ["GET", "str"], ["HGETALL", "hash"]]
    same(oracle, engine, commands)


def test_smove(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    same(
        oracle,
        engine,
        [
            ["SADD", "src", "a", "b"],
            ["SADD", "dst", "c"],
            ["SMOVE", "src", "dst", "a"],
            ["SMOVE", "src", "dst", "zz"],
            ["SMEMBERS", "src"],
            ["SMEMBERS", "dst"],
            ["SMOVE", "src", "dst", "c"],
            ["SADD", "src", "c"],
            ["SMOVE", "src", "dst", "c"],  # already in dst: still moved
            ["SMEMBERS", "dst"],
            ["SMOVE", "src", "src", "b"],
            ["SMOVE", "src", "src", "zz"],
            ["SMEMBERS", "src"],
            ["EXPIREAT", "src", FAR],
            ["SMOVE", "src", "new", "b"],  # last member: src goes, new is created
            ["EXISTS", "src"],
            ["SMEMBERS", "new"],
            ["EXPIRETIME", "new"],
            ["SMOVE", "missing", "dst", "a"],
            ["SMOVE", "missing", "str", "a"],  # a missing source wins over a bad destination
            ["SMOVE", "dst", "str", "c"],
            ["SMOVE", "dst", "str", "nope"],
            ["SMOVE", "str", "dst", "a"],
            ["SMOVE", "str", "str", "a"],
            ["SMOVE", "hash", "missing", "f"],
            ["SMEMBERS", "dst"],
        ],
    )


def test_spop(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    same(
        oracle,
        engine,
        [
            ["SADD", "one", "x"],
            ["EXPIREAT", "one", FAR],
            ["SPOP", "one"],
            ["EXISTS", "one"],
            ["SPOP", "missing"],
            ["SPOP", "missing", "3"],
            ["SPOP", "missing", "0"],
            ["SADD", "s", "a", "b", "c"],
            ["SPOP", "s", "0"],
            ["SPOP", "s", "-1"],
            ["SPOP", "s", "x"],
            ["SPOP", "missing", "-1"],  # the count is read before the key
            ["SPOP", "str", "-1"],
            ["SPOP", "s", "1", "2"],
            ["SPOP", "str", "1", "2"],
            ["SPOP", "s", "9223372036854775808"],
            ["SCARD", "s"],
            ["SPOP", "s", "3"],
            ["EXISTS", "s"],
            ["SADD", "t", "a", "b", "c"],
            ["SPOP", "t", "100"],
            ["EXISTS", "t"],
        ],
    )


def test_spop_random_parts(oracle: Oracle, engine: EngineClient) -> None:
    members = [f"m{i}" for i in range(10)]
    for client in (oracle, engine):
        assert client("SADD", "s", *members) == 10
        single = client("SPOP", "s")
        assert isinstance(single, bytes) and single.decode() in members
        popped = client("SPOP", "s", "4")
        assert isinstance(popped, list) and len(popped) == 4 == len(set(popped))  # type: ignore[arg-type]
        rest = client("SMEMBERS", "s")
        assert isinstance(rest, list) and len(rest) == 5
        assert sorted([single, *popped, *rest]) == sorted(m.encode() for m in members)  # type: ignore[type-var]
        assert client("SCARD", "s") == 5


def _check_random(reply: object, population: set[bytes], count: int) -> list[bytes]:
    assert isinstance(reply, list), reply
    assert all(m in population for m in reply), reply
    if count >= 0:
        assert len(reply) == min(count, len(population)) == len(set(reply)), reply  # type: ignore[arg-type]
    else:
        assert len(reply) == -count, reply
    return reply  # type: ignore[return-value]


def test_srandmember(oracle: Oracle, engine: EngineClient) -> None:
    members = [f"m{i}" for i in range(8)]
    same(oracle, engine, [["SADD", "s", *members], ["SADD", "one", "x"]])
    population = {m.encode() for m in members}
    seen: set[bytes] = set()
    for _ in range(5):
        for count in (1, 3, 7, 8, 100, -1, -20):
            _check_random(oracle("SRANDMEMBER", "s", count), population, count)
            seen.update(_check_random(engine("SRANDMEMBER", "s", count), population, count))
        assert oracle("SRANDMEMBER", "s") in population
        assert engine("SRANDMEMBER", "s") in population
    assert seen == population
    others(oracle, engine)
    same(
        oracle,
        engine,
        [
            ["SRANDMEMBER", "one"],
            ["SRANDMEMBER", "one", "-3"],
            ["SRANDMEMBER", "one", "5"],
            ["SRANDMEMBER", "s", "0"],
            ["SRANDMEMBER", "s", "100"],
            ["SRANDMEMBER", "missing"],
            ["SRANDMEMBER", "missing", "3"],
            ["SRANDMEMBER", "missing", "-3"],
            ["SRANDMEMBER", "missing", "0"],
            ["SRANDMEMBER", "s", "x"],
            ["SRANDMEMBER", "missing", "x"],
            ["SRANDMEMBER", "str", "x"],
            ["SRANDMEMBER", "s", "1", "2"],
            ["SRANDMEMBER", "str", "1", "2"],
            ["SRANDMEMBER", "s", "-9223372036854775808"],
            ["SRANDMEMBER", "s", "9223372036854775808"],
            ["SCARD", "s"],
        ],
    )


def test_sinter_sunion_sdiff(oracle: Oracle, engine: EngineClient) -> None:
    same(
        oracle,
        engine,
        [
            ["SADD", "a", "x", "y", "z", "w"],
            ["SADD", "b", "y", "z", "q"],
            ["SADD", "c", "z", "y", "r", "s", "t"],
            ["SINTER", "a"],
            ["SINTER", "a", "b"],
            ["SINTER", "a", "b", "c"],
            ["SINTER", "a", "a"],
            ["SINTER", "a", "missing"],
            ["SINTER", "missing", "a"],
            ["SINTER", "missing"],
            ["SUNION", "a", "b", "c"],
            ["SUNION", "a", "missing", "a"],
            ["SUNION", "missing"],
            ["SDIFF", "a", "b"],
            ["SDIFF", "a", "b", "c"],
            ["SDIFF", "a", "missing"],
            ["SDIFF", "missing", "a"],
            ["SDIFF", "a", "a"],
            ["SDIFF", "b", "missing", "b"],
            ["SDIFF", "c", "a"],
            ["SDIFF", "a"],
        ],
    )


def test_sintercard(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    same(
        oracle,
        engine,
        [
            ["SADD", "a", "1", "2", "3", "4", "x"],
            ["SADD", "b", "2", "3", "4", "x", "y"],
            ["SINTERCARD", "1", "a"],
            ["SINTERCARD", "2", "a", "b"],
            ["SINTERCARD", "2", "a", "b", "LIMIT", "0"],
            ["SINTERCARD", "2", "a", "b", "LIMIT", "2"],
            ["SINTERCARD", "2", "a", "b", "limit", "100"],
            ["SINTERCARD", "2", "a", "b", "LIMIT", "1", "LIMIT", "3"],
            ["SINTERCARD", "2", "a", "missing"],
            ["SINTERCARD", "1", "missing"],
            ["SINTERCARD", "0", "a"],
            ["SINTERCARD", "-1", "a"],
            ["SINTERCARD", "x", "a"],
            ["SINTERCARD", "3", "a", "b"],
            ["SINTERCARD", "2", "a", "b", "LIMIT", "-1"],
            ["SINTERCARD", "2", "a", "b", "LIMIT", "x"],
            ["SINTERCARD", "2", "a", "b", "LIMIT"],
            ["SINTERCARD", "2", "a", "b", "FOO", "1"],
            ["SINTERCARD", "1", "str", "LIMIT", "x"],  # options before the keys' types
            ["SINTERCARD", "1", "str", "FOO"],
            ["SINTERCARD", "1", "str"],
            ["SINTERCARD", "2", "a", "hash", "LIMIT", "1"],
        ],
    )


def test_store_forms(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    same(
        oracle,
        engine,
        [
            ["SADD", "a", "x", "y", "z"],
            ["SADD", "b", "y", "z", "q"],
            ["SINTERSTORE", "d1", "a", "b"],
            ["SMEMBERS", "d1"],
            ["SUNIONSTORE", "d2", "a", "b"],
            ["SMEMBERS", "d2"],
            ["SDIFFSTORE", "d3", "a", "b"],
            ["SMEMBERS", "d3"],
            # the destination is replaced whatever its type, TTL dropped
            ["SET", "sd", "v"],
            ["EXPIREAT", "sd", FAR],
            ["SUNIONSTORE", "sd", "a"],
            ["TYPE", "sd"],
            ["EXPIRETIME", "sd"],
            ["SINTERSTORE", "str", "a", "b"],
            ["TYPE", "str"],
            ["SDIFFSTORE", "list", "a", "b"],
            ["SMEMBERS", "list"],
            ["SINTERSTORE", "hash", "a", "b"],
            ["SMEMBERS", "hash"],
            # an empty result deletes the destination
            ["SET", "e1", "v"],
            ["SINTERSTORE", "e1", "a", "missing"],
            ["EXISTS", "e1"],
            ["SADD", "e2", "old"],
            ["SDIFFSTORE", "e2", "a", "a"],
            ["EXISTS", "e2"],
            ["RPUSH", "e3", "v"],
            ["SUNIONSTORE", "e3", "missing"],
            ["EXISTS", "e3"],
            ["SINTERSTORE", "e4", "a", "b", "nothere"],
            ["EXISTS", "e4"],
            # the destination may be a source
            ["SUNIONSTORE", "a", "a", "b"],
            ["SMEMBERS", "a"],
            ["SDIFFSTORE", "a", "a", "b"],
            ["SMEMBERS", "a"],
            ["SINTERSTORE", "b", "b", "d2"],
            ["SMEMBERS", "b"],
            # a wrong-typed source leaves the destination alone
            ["SADD", "keep", "k"],
            ["SUNIONSTORE", "keep", "a", "str2"],
            ["SET", "str2", "v"],
            ["SUNIONSTORE", "keep", "a", "str2"],
            ["SINTERSTORE", "keep", "missing", "str2"],
            ["SDIFFSTORE", "keep", "missing", "str2"],
            ["SMEMBERS", "keep"],
        ],
    )


def test_expired_set_is_missing(oracle: Oracle, engine: EngineClient) -> None:
    same(
        oracle,
        engine,
        [
            ["SADD", "s", "a", "b"],
            ["PEXPIRE", "s", "1"],
            ["SADD", "t", "a", "c"],
            ["SET", "str", "v"],
            ["PEXPIRE", "str", "1"],
            ["SADD", "dst", "z"],
            ["PEXPIRE", "dst", "1"],
            ["SADD", "old", "z"],
            ["PEXPIRE", "old", "1"],
        ],
    )
    time.sleep(0.01)
    same(
        oracle,
        engine,
        [
            ["SCARD", "s"],
            ["SMEMBERS", "s"],
            ["SISMEMBER", "s", "a"],
            ["SINTER", "t", "s"],
            ["SUNION", "t", "s", "str"],
            ["SDIFF", "t", "s"],
            ["SMOVE", "s", "t", "a"],
            ["SMOVE", "t", "dst", "a"],
            ["SMEMBERS", "dst"],
            ["EXPIRETIME", "dst"],
            ["SPOP", "s"],
            ["SRANDMEMBER", "s", "2"],
            ["SSCAN", "s", "0"],
            ["SADD", "str", "m"],
            ["SMEMBERS", "str"],
            ["SUNIONSTORE", "old", "t", "s"],
            ["SMEMBERS", "old"],
            ["EXPIRETIME", "old"],
        ],
    )


def _sorted_scan(reply: object) -> object:
    value = comparable(reply)  # type: ignore[arg-type]
    if isinstance(value, list) and len(value) == 2 and isinstance(value[1], list):
        return [value[0], sorted(value[1])]
    return value


def test_sscan(oracle: Oracle, engine: EngineClient) -> None:
    others(oracle, engine)
    same(oracle, engine, [["SADD", "s", "apple", "banana", "avocado", "cherry", "a*"]])
    commands: list[list[Arg]] = [
        ["SSCAN", "s", "0"],
        ["SSCAN", "s", "0", "COUNT", "100"],
        ["SSCAN", "s", "0", "MATCH", "a*"],
        ["SSCAN", "s", "0", "MATCH", "a\\*"],
        ["SSCAN", "s", "0", "match", "*an*", "count", "100"],
        ["SSCAN", "s", "0", "MATCH", "zzz"],
        ["SSCAN", "s", "0", "COUNT", "0"],
        ["SSCAN", "s", "0", "COUNT", "x"],
        ["SSCAN", "s", "0", "MATCH"],
        ["SSCAN", "s", "0", "TYPE", "set"],
        ["SSCAN", "s", "x"],
        ["SSCAN", "s", "-"],
        ["SSCAN", "missing", "0"],
        ["SSCAN", "missing", "0", "COUNT", "0"],
        ["SSCAN", "missing", "x"],
        ["SSCAN", "str", "x"],
        ["SSCAN", "hash", "0"],
    ]
    bad = []
    for cmd in commands:
        expected, actual = _sorted_scan(oracle(*cmd)), _sorted_scan(engine(*cmd))
        if expected != actual:
            bad.append((cmd, expected, actual))
    assert not bad


def test_sscan_pages_cover_a_large_set(oracle: Oracle, engine: EngineClient) -> None:
    members = [f"member:{i}" for i in range(300)]
    for client in (oracle, engine):
        assert client("SADD", "big", *members) == 300
        found: set[bytes] = set()
        cursor = b"0"
        for _ in range(1000):
            reply = client("SSCAN", "big", cursor, "COUNT", "20")
            assert isinstance(reply, list)
            cursor = reply[0]  # type: ignore[assignment]
            found.update(reply[1])  # type: ignore[arg-type]
            if cursor == b"0":
                break
        assert cursor == b"0"
        assert found == {m.encode() for m in members}
