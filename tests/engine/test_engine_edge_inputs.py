"""Inputs found by review that once escaped as Python exceptions (a 500 or 503 instead of
a Redis error reply) or broke a guarantee; each compared with the real Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kvgate.adapters.sqlite import SqliteBackend
from kvgate.errors import BackendUnavailable
from tests.support.engine import EngineClient, Oracle, assert_same

HUGE = "9" * 5000  # past Python's 4300-digit int conversion limit


def test_hex_floats_beyond_double_are_not_valid_floats(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["ZADD", "z", "1", "a"],
            ["ZADD", "z", "0x1p2000", "m"],
            ["ZADD", "z", "-0x1p2000", "m"],
            ["ZINCRBY", "z", "0x1p1024", "a"],
            ["ZADD", "z", "0x1.fffffffffffff8p1023", "m"],
            ["ZUNIONSTORE", "d", "1", "z", "WEIGHTS", "0x1p2000"],
            ["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        ],
    )


def test_numbers_with_thousands_of_digits(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["SET", "k", "1"],
            ["HSET", "h", "f", "1"],
            ["SCAN", HUGE],
            ["HSCAN", "h", HUGE],
            ["INCRBYFLOAT", "k", f"1e{HUGE}"],
            ["INCRBYFLOAT", "k", f"1e-{HUGE}"],
            ["INCRBYFLOAT", "k", f"0x1p{HUGE}"],
            ["HINCRBYFLOAT", "h", "f", f"1e{HUGE}"],
            ["INCRBY", "k", HUGE],
            ["GET", "k"],
        ],
    )


def test_scan_returns_a_key_renamed_onto_an_existing_one(engine: EngineClient) -> None:
    """SCAN's guarantee: a key present for the whole scan is returned at least once, even
    when RENAME replaces it with a key created before the cursor."""
    for name in ("src", "a", "b", "x"):
        engine("SET", name, "v")
    cursor, seen = b"0", set()
    first = True
    while first or cursor != b"0":
        cursor, page = engine("SCAN", cursor, "COUNT", "2")  # type: ignore[misc]
        seen.update(page)
        if first:
            engine("RENAME", "src", "x")
            first = False
    assert b"x" in seen


async def test_a_write_during_close_is_answered_at_once(tmp_path: Path) -> None:
    backend = SqliteBackend(f"sqlite:///{tmp_path}/close.db")
    await backend.start()
    closing = asyncio.create_task(backend.close())
    await asyncio.sleep(0)  # close() has begun
    try:
        await asyncio.wait_for(backend.execute([[b"SET", b"k", b"v"]]), 2)
    except BackendUnavailable as exc:
        assert "closed" in exc.message
    await closing
