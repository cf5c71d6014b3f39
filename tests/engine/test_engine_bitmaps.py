"""Bitmap commands: kvgate's engine against a real Redis 7.0, reply for reply (and GET after
each write); BITOP's Redis 8.2 operations from Redis's documentation and bitop.json."""

from __future__ import annotations

import random

import pytest

from tests.support.engine import Arg, EngineClient, Oracle, assert_same, comparable

#: A fixed expiry (2100-01-01): EXPIRETIME of it is exact.
FAR = "4102444800"
STRINGS = [
    ["SET", "s", "foobar"],
    ["SET", "empty", ""],
    ["SET", "ones", b"\xff\xff\xff"],
    ["RPUSH", "list", "x"],
]


def test_setbit_getbit(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            *STRINGS,
            ["SETBIT", "b", 7, 1],
            ["SETBIT", "b", 7, 1],
            ["SETBIT", "b", 7, 0],
            ["GET", "b"],
            ["SETBIT", "zero", 30, 0],  # a missing key is made (and padded) even for a 0
            ["GET", "zero"],
            ["SETBIT", "s", 100, 1],
            ["GET", "s"],
            ["EXPIREAT", "s", FAR],
            ["SETBIT", "s", 1, 0],
            ["EXPIRETIME", "s"],
            ["GETBIT", "s", 1],
            ["GETBIT", "s", 100],
            ["GETBIT", "s", 1000],
            ["GETBIT", "missing", 3],
            ["GETBIT", "ones", 23],
            ["GETBIT", "ones", 24],
            ["GETBIT", "list", 0],
            ["SETBIT", "list", 0, 1],
            ["SETBIT", "b", -1, 1],
            ["SETBIT", "b", "01", 1],
            ["SETBIT", "b", "x", 1],
            ["SETBIT", "b", 4294967296, 1],  # past 512 MB
            ["SETBIT", "list", 4294967296, 1],  # the offset is checked before the type
            ["SETBIT", "b", 1, 2],
            ["SETBIT", "b", 1, -1],
            ["SETBIT", "b", 1, "on"],
            ["GETBIT", "b", 4294967295],
            ["GETBIT", "b", 4294967296],
            ["GETBIT", "list", "x"],
            ["SETBIT", "b", 1],
            ["GETBIT", "b"],
        ],
    )


def _ranges(keys: list[str], few: bool) -> list[list[Arg]]:
    starts = (-9, -1, 0, 1, 9) if few else (-100, -9, -1, 0, 1, 7, 9, 17, 100)
    ends = (-9, -1, 0, 8, 100) if few else (-100, -9, -1, 0, 1, 8, 16, 23, 1000)
    commands: list[list[Arg]] = []
    for key in keys:
        commands += [["BITCOUNT", key], ["BITPOS", key, 0], ["BITPOS", key, 1]]
        for start in starts:
            commands += [["BITPOS", key, 0, start], ["BITPOS", key, 1, start]]
            for end in ends:
                for unit in ((), ("BIT",), ("byte",)):
                    commands.append(["BITCOUNT", key, start, end, *unit])
                    commands += [["BITPOS", key, bit, start, end, *unit] for bit in (0, 1)]
    return commands


def test_bitcount_and_bitpos_ranges(oracle: Oracle, engine: EngineClient) -> None:
    """Negative indexes, BYTE and BIT units, ranges past either end, and BITPOS's rules
    when nothing is found (no 1: -1; no 0: -1 in an explicit range, else the first bit
    after the string)."""
    few = engine.name == "dynamodb"
    keys = ["mixed"] if few else ["mixed", "s", "ones", "zeros", "empty", "missing"]
    setup = [*STRINGS, ["SET", "mixed", b"\x00\xff\xf0\x0f\x00"], ["SET", "zeros", bytes(3)]]
    assert_same(oracle, engine, setup + _ranges(keys, few))


def test_bitcount_and_bitpos_errors(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            *STRINGS,
            ["BITCOUNT", "missing", "a", "b"],  # a missing key answers before the arguments are read
            ["BITCOUNT", "s", "a", "b"],
            ["BITCOUNT", "s", 0],
            ["BITCOUNT", "s", 0, 1, "bits"],
            ["BITCOUNT", "s", -1, -5, "bits"],  # the empty negative range wins over the unit
            ["BITCOUNT", "s", 0, 1, "bit", "x"],
            ["BITCOUNT", "s", 0, 1, b"bit\x00junk"],
            ["BITCOUNT", "list"],
            ["BITPOS", "s", 2],
            ["BITPOS", "s", -1],
            ["BITPOS", "s", "x"],
            ["BITPOS", "missing", 0, "x"],
            ["BITPOS", "s", 1, "x"],
            ["BITPOS", "s", 1, 0, "x"],
            ["BITPOS", "s", 1, 0, "x", "BAD"],  # the unit is read before the end
            ["BITPOS", "s", 1, 0, 1, "BAD"],
            ["BITPOS", "s", 1, 0, 1, "bit", "x"],
            ["BITPOS", "list", 1],
            ["BITPOS", "s"],
            ["BITCOUNT"],
        ],
    )


def test_bitop(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            *STRINGS,
            ["SET", "a", b"\x0f\xf0\xaa"],
            ["SET", "b", b"\xff\x01"],
            ["BITOP", "AND", "d", "a", "b"],
            ["GET", "d"],
            ["BITOP", "or", "d", "a", "b", "missing"],
            ["GET", "d"],
            ["BITOP", "Xor", "d", "a", "b", "s"],
            ["GET", "d"],
            ["BITOP", "NOT", "d", "a"],
            ["GET", "d"],
            ["BITOP", "NOT", "d", "empty"],
            ["BITOP", "AND", "d", "missing", "empty"],  # nothing to store: the destination goes
            ["EXISTS", "d"],
            ["SET", "t", "x"],
            ["EXPIREAT", "t", FAR],
            ["BITOP", "OR", "t", "a"],
            ["TTL", "t"],  # stored as SET stores: no TTL
            ["BITOP", "NOT", "d", "a", "b"],
            ["BITOP", "NOT", "list", "a", "b"],
            ["BITOP", "NAND", "d", "a"],
            ["BITOP", b"and\x00x", "d", "a"],
            ["BITOP", "AND", "d", "a", "list"],
            ["BITOP", "AND", "list", "a"],  # the destination's type does not matter
            ["TYPE", "list"],
            ["BITOP", "AND", "d"],
        ],
    )


def test_bitop_of_redis_8_2() -> None:
    """DIFF, DIFF1, ANDOR and ONE (Redis 8.2; Redis 7.0 answers a syntax error): the
    documentation's definitions on every pair of bits, its AND example, lengths and
    missing keys as for the other operations, and bitop.c's errors."""
    from tests.support.engine import memory_client

    engine = memory_client()
    # Bit c (from the left) of X, Y1, Y2 is the binary of c: every combination once.
    engine("SET", "x", b"\x0f")  # 00001111
    engine("SET", "y1", b"\x33")  # 00110011
    engine("SET", "y2", b"\x55\xff")  # 01010101, then a byte only Y2 has
    cases = {
        "DIFF": 0x0F & ~(0x33 | 0x55),  # in X, in none of the Ys
        "DIFF1": ~0x0F & (0x33 | 0x55) & 0xFF,  # in a Y, not in X
        "ANDOR": 0x0F & (0x33 | 0x55),  # in X and in a Y
        "ONE": 0b01101000,  # in exactly one of X, Y1, Y2 (columns 1, 2 and 4)
    }
    second = {"DIFF": 0x00, "DIFF1": 0xFF, "ANDOR": 0x00, "ONE": 0xFF}
    for op, first in cases.items():
        assert engine("BITOP", op, "dest", "x", "y1", "y2") == 2, op
        assert engine("GET", "dest") == bytes((first, second[op])), op
    assert engine("BITOP", "one", "dest", "y2") == 2
    assert engine("GET", "dest") == b"\x55\xff"
    assert engine("BITOP", "ANDOR", "dest", "missing", "y1") == 1
    assert engine("GET", "dest") == b"\x00"
    assert engine("BITOP", "DIFF1", "dest", "missing", "other") == 0
    assert engine("EXISTS", "dest") == 0
    for op in ("DIFF", "diff1", "AndOr"):
        reply = engine("BITOP", op, "dest", "x")
        assert comparable(reply) == (
            "error",
            f"ERR BITOP {op.upper()} must be called with at least two source keys.",
        )
    engine("RPUSH", "list", "a")
    wrongtype = comparable(engine("BITOP", "ONE", "dest", "x", "list"))
    assert wrongtype == ("error", "WRONGTYPE Operation against a key holding the wrong kind of value")
    # the documentation's example
    assert engine("BITFIELD", "key1", "SET", "i8", "#0", "255") == [0]
    assert engine("BITFIELD", "key2", "SET", "i8", "#0", "85") == [0]
    assert engine("BITOP", "AND", "dest", "key1", "key2") == 1
    assert engine("BITFIELD", "dest", "GET", "i8", "#0") == [85]


def test_bitfield(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            *STRINGS,
            ["BITFIELD", "f", "SET", "i8", 0, 100, "GET", "u4", 0, "INCRBY", "i5", 100, 1, "GET", "u4", 0],
            ["GET", "f"],
            ["BITFIELD", "f", "INCRBY", "u2", 100, 1, "OVERFLOW", "SAT", "INCRBY", "u2", 102, 1],
            ["BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u2", 102, 5, "SET", "i4", "#3", 100],
            ["BITFIELD", "f", "OVERFLOW", "WRAP", "SET", "i4", "#3", 100, "SET", "u8", "#4", -1],
            ["BITFIELD", "f", "OVERFLOW", "SAT", "SET", "i4", "#3", -100, "SET", "u8", "#4", -1],
            ["BITFIELD", "f", "SET", "i64", 1, "-9223372036854775808", "INCRBY", "i64", 1, -1],
            [
                "BITFIELD",
                "f",
                "OVERFLOW",
                "SAT",
                "INCRBY",
                "i64",
                1,
                -1,
                "INCRBY",
                "i64",
                1,
                "9223372036854775807",
            ],
            ["BITFIELD", "f", "SET", "u63", 3, "9223372036854775807", "GET", "u63", 3, "GET", "i63", 3],
            ["GET", "f"],
            [
                "BITFIELD",
                "grown",
                "OVERFLOW",
                "FAIL",
                "INCRBY",
                "u2",
                200,
                9,
            ],  # made and padded though it fails
            ["GET", "grown"],
            ["BITFIELD", "s", "GET", "u8", 0, "GET", "i16", "#1", "GET", "u8", 1000, "GET", "i64", 44],
            ["BITFIELD", "s"],
            ["BITFIELD", "missing", "GET", "u8", 0],
            ["EXISTS", "missing"],
            ["EXPIREAT", "s", FAR],
            ["BITFIELD", "s", "SET", "u8", 0, 65],
            ["EXPIRETIME", "s"],
            ["BITFIELD_RO", "s", "GET", "u8", 0, "get", "i3", "#2"],
            ["BITFIELD_RO", "s", "GET", "u8", 0, "SET", "u8", 0, 1],
            ["BITFIELD_RO", "s", "GET", "u8", 0, "SET", "u99", 0, 1],  # parsed before the refusal
            ["BITFIELD_RO", "list", "GET", "u8", 0],
            ["BITFIELD", "list", "GET", "u8", 0],
            ["BITFIELD", "list"],
            ["BITFIELD", "s", "GET", "u64", 0],
            ["BITFIELD", "s", "GET", "I8", 0],
            ["BITFIELD", "s", "GET", "i0", 0],
            ["BITFIELD", "s", "GET", "i65", 0],
            ["BITFIELD", "s", "GET", b"i8\x00x", 0],
            ["BITFIELD", "s", "GET", "u8", "#x"],
            ["BITFIELD", "s", "GET", "u8", "-1"],
            ["BITFIELD", "s", "GET", "u8", "4294967296"],
            ["BITFIELD", "s", "GET", "u8", "#536870912"],  # 8 * 2^29 bits: past 512 MB
            ["BITFIELD", "s", "GET", "u8", "#9223372036854775807"],  # C's product wraps
            ["BITFIELD", "s", "GET", "u8", "4294967295"],
            ["BITFIELD", "s", "SET", "u8", 0, "x"],
            ["BITFIELD", "s", "SET", "u8", 0],
            ["BITFIELD", "s", "GET", "u8"],
            ["BITFIELD", "s", "OVERFLOW"],
            ["BITFIELD", "s", "OVERFLOW", "MAYBE", "GET", "u8", 0],
            ["BITFIELD", "s", "NOPE", "u8", 0],
            ["BITFIELD", "s", "GET", "u8", 0, "SET", "u8", 0, 1, "INCRBY", "u8", "x", 1],
            ["GET", "s"],  # nothing ran: everything is parsed first
        ],
    )


def test_seeded_random_sequences(oracle: Oracle, engine: EngineClient) -> None:
    """SETBIT, BITOP and BITFIELD (valid and invalid types, offsets, overflow modes)
    on a few keys, each followed by GET."""
    rng = random.Random(5)
    rounds = 150 if engine.name == "dynamodb" else 700
    commands: list[list[Arg]] = []
    for _ in range(rounds):
        key = f"b{rng.randrange(4)}"
        roll = rng.random()
        if roll < 0.35:
            commands.append(["SETBIT", key, rng.randrange(200), rng.choice((0, 1, 1, 2))])
        elif roll < 0.5:
            op = rng.choice(("AND", "OR", "XOR", "NOT", "and"))
            sources = [f"b{rng.randrange(5)}" for _ in range(rng.randrange(1, 4))]
            commands.append(["BITOP", op, f"b{rng.randrange(5)}", *sources])
        else:
            args: list[Arg] = []
            for _ in range(rng.randrange(1, 4)):
                sub = rng.choice(("GET", "SET", "INCRBY", "OVERFLOW"))
                if sub == "OVERFLOW":
                    args += [sub, rng.choice(("WRAP", "SAT", "FAIL"))]
                    continue
                kind = rng.choice("iu") + str(rng.choice((1, 2, 3, 5, 8, 13, 16, 31, 32, 33, 63, 64)))
                offset = rng.choice((str(rng.randrange(100)), f"#{rng.randrange(10)}"))
                args += [sub, kind, offset]
                if sub != "GET":
                    args.append(
                        rng.choice((0, 1, -1, 127, 128, 255, -(2**63), 2**63 - 1, rng.randrange(-999, 999)))
                    )
            commands.append([rng.choice(("BITFIELD", "BITFIELD", "BITFIELD_RO")), key, *args])
        commands.append(["GET", key])
    assert_same(oracle, engine, commands)


def test_bitfield_in_a_lua_script(oracle: Oracle, engine: EngineClient) -> None:
    script = "return redis.call('BITFIELD', KEYS[1], 'INCRBY', 'u8', ARGV[1], 300, 'GET', 'u16', 0)"
    assert_same(oracle, engine, [["EVAL", script, 1, "f", "#1"], ["EVAL", script, 1, "f", "8"], ["GET", "f"]])


@pytest.mark.parametrize("offset", [4294967295, 2**32 - 8])
def test_the_last_bits_are_read_without_building_them(offset: int) -> None:
    """Reads past the end of a string answer zeros without padding anything (a SETBIT
    there would build the 512 MB string Redis builds; not done here)."""
    from tests.support.engine import memory_client

    engine = memory_client()
    engine("SET", "s", "x")
    assert engine("GETBIT", "s", offset) == 0
    assert engine("BITFIELD_RO", "s", "GET", "u8", offset) == [0]
    assert engine("BITFIELD", "s", "GET", "i64", offset) == [0]
    assert engine("STRLEN", "s") == 1
