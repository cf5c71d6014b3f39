"""HyperLogLog commands: kvgate's engine against a real Redis 7.0, reply for reply and, through
GET, byte for byte (the sparse and dense encodings, the cached cardinality)."""

from __future__ import annotations

import random
from pathlib import Path

from kvgate.engine import Engine, hll_sketch
from tests.support.engine import EngineClient, Oracle, assert_same, comparable, sqlite_client

#: A fixed expiry (2100-01-01): EXPIRETIME of it is exact.
FAR = "4102444800"


def header(encoding: int, card: bytes = bytes(8)) -> bytes:
    return b"HYLL" + bytes([encoding, 0, 0, 0]) + card


STALE = bytes(7) + b"\x80"


def test_pfadd_pfcount_pfmerge(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["PFADD", "h", "a", "b", "c"],
            ["PFADD", "h", "a"],
            ["PFADD", "h"],
            ["GET", "h"],
            ["PFCOUNT", "h"],
            ["GET", "h"],  # the count is cached in the header
            ["PFCOUNT", "h"],
            ["PFADD", "new"],  # no element: the key is made all the same
            ["GET", "new"],
            ["PFCOUNT", "missing"],
            ["PFCOUNT", "h", "missing", "new"],
            ["GET", "h"],
            ["PFMERGE", "m"],  # the destination alone: an empty HLL
            ["GET", "m"],
            ["PFADD", "g", "c", "d", "e", ""],
            ["PFMERGE", "m", "h", "g", "missing"],
            ["GET", "m"],
            ["PFCOUNT", "m"],
            ["PFCOUNT", "h", "g"],
            ["PFMERGE", "h", "g"],
            ["GET", "h"],
            ["TYPE", "h"],
            ["PFADD"],
            ["PFCOUNT"],
            ["PFMERGE"],
        ],
    )


def test_the_ttl_stays(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["PFADD", "h", "a"],
            ["EXPIREAT", "h", FAR],
            ["PFADD", "h", "b"],
            ["PFCOUNT", "h"],
            ["PFMERGE", "h", "other"],
            ["EXPIRETIME", "h"],
            ["PFMERGE", "fresh", "h"],
            ["EXPIRETIME", "fresh"],
        ],
    )


def test_wrong_types_and_strings_that_are_no_hll(oracle: Oracle, engine: EngineClient) -> None:
    dense_short = header(0) + bytes(100)
    assert_same(
        oracle,
        engine,
        [
            ["RPUSH", "list", "a"],
            ["SET", "plain", "hello"],
            ["SET", "short", "HYLL"],
            ["SET", "enc2", header(2) + b"\x7f\xff"],
            ["SET", "dense_short", dense_short],
            ["SET", "magic", b"HYLX" + bytes(12) + b"\x7f\xff"],
            ["PFADD", "list", "a"],
            ["PFCOUNT", "list"],
            ["PFMERGE", "list"],
            ["PFADD", "plain", "a"],
            ["PFCOUNT", "plain"],
            ["PFCOUNT", "h", "plain"],
            ["PFMERGE", "d", "plain"],
            ["EXISTS", "d"],
            ["PFADD", "short", "a"],
            ["PFADD", "enc2", "a"],
            ["PFADD", "dense_short", "a"],
            ["PFCOUNT", "magic"],
            ["PFMERGE", "plain", "h"],
            ["GET", "plain"],
        ],
    )


def test_corrupt_sparse_bodies(oracle: Oracle, engine: EngineClient) -> None:
    """Redis finds a sparse body corrupt only when it reads the registers: a cached
    count is answered as it is, and PFADD applies what it added before the bad part."""
    half = header(1, STALE) + b"\x5f\xff"  # XZERO of 8,192: half the registers
    cached = header(1, (42).to_bytes(8, "little")) + b"\x5f\xff"
    too_many = header(1, STALE) + b"\x7f\xff\x80"  # 16,385 registers
    cut = header(1, STALE) + b"\x7f"  # an XZERO without its second byte
    assert_same(
        oracle,
        engine,
        [
            ["SET", "half", half],
            ["SET", "cached", cached],
            ["SET", "many", too_many],
            ["SET", "cut", cut],
            ["PFCOUNT", "cut"],
            ["PFADD", "cut", "a"],
            ["GET", "cut"],  # Redis's string comes back one byte short
            ["PFADD", "cut", *[f"e{i}" for i in range(20)]],
            ["GET", "cut"],
            ["PFCOUNT", "half"],
            ["PFCOUNT", "cached"],
            ["PFCOUNT", "many"],
            ["PFCOUNT", "half", "cached"],
            ["PFMERGE", "d", "half"],
            ["EXISTS", "d"],
            ["PFADD", "half", *[f"e{i}" for i in range(40)]],
            ["GET", "half"],
            ["PFADD", "many", "x", "y"],
            ["GET", "many"],
        ],
    )


def test_crafted_dense_registers(oracle: Oracle, engine: EngineClient) -> None:
    """A dense HLL with registers Redis itself never writes (above 32, up to 63)."""
    rng = random.Random(7)
    registers = bytes(rng.choice((0, 1, 5, 33, 50, 51, 52, 63)) for _ in range(hll_sketch.REGISTERS))
    crafted = header(0, STALE) + hll_sketch.pack(registers)
    assert_same(
        oracle,
        engine,
        [
            ["SET", "d", crafted],
            ["PFCOUNT", "d"],
            ["GET", "d"],
            ["PFADD", "s", "a", "b"],
            ["PFCOUNT", "s", "d"],
            ["PFMERGE", "s", "d"],
            ["GET", "s"],
            ["PFADD", "d", *[str(i) for i in range(200)]],
            ["GET", "d"],
        ],
    )


def test_seeded_random_rounds_byte_for_byte(oracle: Oracle, engine: EngineClient) -> None:
    """PFADD (a few to thousands of elements: sparse HLLs, their promotion at 3,000
    bytes, dense ones), PFCOUNT of one and several keys, PFMERGE, each followed by GET."""
    rng = random.Random(11)
    rounds = 40 if engine.name == "dynamodb" else 160
    commands: list[list[str | bytes]] = []
    for _ in range(rounds):
        key = f"h{rng.randrange(5)}"
        roll = rng.random()
        if roll < 0.65:
            size = rng.choice((1, 2, 3, 8, 30, 150, 1200))
            elements = [bytes(rng.randrange(256) for _ in range(rng.randrange(12))) for _ in range(size)]
            commands.append(["PFADD", key, *elements])
        elif roll < 0.8:
            commands.append(["PFCOUNT", key])
        elif roll < 0.9:
            commands.append(["PFCOUNT", key, f"h{rng.randrange(5)}", "missing"])
        else:
            commands.append(["PFMERGE", f"h{rng.randrange(6)}", key, f"h{rng.randrange(5)}"])
        commands.append(["GET", key])
    assert_same(oracle, engine, commands)


def test_sparse_grows_then_turns_dense(oracle: Oracle, engine: EngineClient) -> None:
    commands: list[list[str]] = []
    for batch in range(16):
        commands.append(["PFADD", "h", *[f"{batch}:{i}" for i in range(120)]])
        commands.append(["GET", "h"])
    assert_same(oracle, engine, commands)
    assert oracle("PFDEBUG", "ENCODING", "h") == b"dense"
    oracle("DEL", "h")
    oracle("PFADD", "h", *commands[0][2:])
    assert oracle("PFDEBUG", "ENCODING", "h") == b"sparse"


def test_hlls_travel_between_redis_and_kvgate(oracle: Oracle, engine: EngineClient) -> None:
    """A string Redis made, SET into kvgate, goes on as on Redis, and the other way."""
    for name, size in (("small", 20), ("large", 5000)):
        oracle("PFADD", name, *[f"r{i}" for i in range(size)])
        engine("SET", name, oracle("GET", name))
        engine("PFADD", f"k{name}", *[f"k{i}" for i in range(size)])
        oracle("SET", f"k{name}", engine("GET", f"k{name}"))
    assert_same(
        oracle,
        engine,
        [
            ["PFCOUNT", "small"],
            ["PFCOUNT", "klarge"],
            ["PFADD", "small", "more", "and more"],
            ["PFADD", "klarge", "more"],
            ["PFMERGE", "all", "small", "large", "ksmall", "klarge"],
            ["GET", "all"],
            ["PFCOUNT", "all"],
            ["GET", "small"],
            ["GET", "klarge"],
        ],
    )


def test_pfadd_in_a_lua_script(oracle: Oracle, engine: EngineClient) -> None:
    script = "redis.call('PFADD', KEYS[1], unpack(ARGV)); return {redis.call('PFCOUNT', KEYS[1]), redis.call('GET', KEYS[1])}"
    assert_same(oracle, engine, [["EVAL", script, 1, "h", "a", "b", "c"], ["GET", "h"]])


def test_pfcount_writes_its_cache_only_on_a_writable_unit(tmp_path: Path) -> None:
    """PFCOUNT is routed to a writable unit (Redis flags it may_replicate: it stores the
    count); on a unit opened for reads it answers the same and leaves the cache stale."""
    client = sqlite_client(tmp_path / "e.db")
    client("PFADD", "h", "a", "b", "c")
    stale = client("GET", "h")
    assert isinstance(stale, bytes) and hll_sketch.cached(stale) is None
    engine = Engine("sqlite")
    assert not engine.is_read([b"PFCOUNT", b"h"]) and engine.is_read([b"GET", b"h"])
    with client.units(False) as t:
        assert engine.execute(t, [b"PFCOUNT", b"h"]) == 3
    assert client("GET", "h") == stale
    assert client("PFCOUNT", "h") == 3
    fresh = client("GET", "h")
    assert isinstance(fresh, bytes) and hll_sketch.cached(fresh) == 3


def test_murmur_and_estimator_pieces() -> None:
    """Values checked against Redis above; here the pieces a refactor could break."""
    assert hll_sketch.murmur64a(b"") == hll_sketch.murmur64a(b"", 0xADC83B19)
    index, count = hll_sketch.pattern(b"a")
    assert 0 <= index < hll_sketch.REGISTERS and 1 <= count <= 51
    regs = bytes(random.Random(3).randrange(64) for _ in range(hll_sketch.REGISTERS))
    assert hll_sketch.unpack(hll_sketch.pack(regs)) == regs
    other = bytes(reversed(regs))
    assert hll_sketch.register_max(regs, other) == bytes(map(max, regs, other))
    assert hll_sketch.estimate([hll_sketch.REGISTERS] + [0] * 63) == 0
    assert comparable(hll_sketch.histogram_of(regs)) == [regs.count(v) for v in range(64)]
