"""SQLite's kept counts and order-statistic blocks stay right through every mutating path.

Random command sequences run on the engine over the memory store (the reference) and over
a SQLite file whose blocks are made tiny (split past 8 members, merge below 2), so that
splits, merges and rebuilds happen every few commands, with block counts written per
element or held until the unit settles; every reply must be the same, and
after every command the file's bookkeeping must equal what ``COUNT(*)`` finds:
``keys.size`` per key, ``keyspace.keys``, each block's count (the members from its bound up
to the next bound), the first block's bound.  Ranks and index windows are compared with the
naive answer on collections large enough for the real block sizes.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kvgate.adapters import sqlite_store
from kvgate.adapters.sqlite_store import FIRST, SqliteStore
from kvgate.engine.storage import KeyType
from tests.support.engine import EngineClient, memory_client

KEYS = ["z1", "z2", "l1", "l2", "h1", "s1", "s2", "str"]


@pytest.fixture(params=[0, 3, 1_000_000], ids=["held", "mixed", "direct"])
def small_blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny blocks; block counts held in the unit from the first changed element of a key,
    from the fourth, or never (written one element at a time)."""
    monkeypatch.setattr(sqlite_store, "DIRECT_SHIFTS", request.param)
    monkeypatch.setattr(sqlite_store, "BLOCK_MAX", 8)
    monkeypatch.setattr(sqlite_store, "BLOCK_MIN", 2)
    monkeypatch.setattr(sqlite_store, "BLOCK_FILL", 4)
    monkeypatch.setattr(sqlite_store, "REBUILD_RATIO", 4)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "counts.db"))
    yield s
    s.close()


def check_bookkeeping(conn: sqlite3.Connection) -> None:
    """Every kept count equals the rows it stands for."""
    rows = conn.execute("SELECT id, name, type, size FROM keys").fetchall()
    assert conn.execute("SELECT keys FROM keyspace").fetchone()[0] == len(rows)
    for key_id, name, type_, size in rows:
        real = conn.execute("SELECT count(*) FROM members WHERE key_id = ?", (key_id,)).fetchone()[0]
        assert size == real, (name, size, real)
        blocks = conn.execute(
            "SELECT score, member, n FROM blocks WHERE key_id = ? ORDER BY score, member", (key_id,)
        ).fetchall()
        if type_ not in (KeyType.ZSET, KeyType.LIST) or real == 0:
            assert blocks == [], name
            continue
        assert (blocks[0][0], blocks[0][1]) == FIRST, name
        for i, (score, member, n) in enumerate(blocks):
            if i + 1 < len(blocks):
                nxt = blocks[i + 1]
                inside = conn.execute(
                    "SELECT count(*) FROM members WHERE key_id = ? AND (score, member) >= (?, ?) "
                    "AND (score, member) < (?, ?)",
                    (key_id, score, member, nxt[0], nxt[1]),
                ).fetchone()[0]
            else:
                inside = conn.execute(
                    "SELECT count(*) FROM members WHERE key_id = ? AND (score, member) >= (?, ?)",
                    (key_id, score, member),
                ).fetchone()[0]
            assert n == inside, (name, i, n, inside)
            assert n <= sqlite_store.BLOCK_MAX, (name, i, n)
    orphans = conn.execute(
        "SELECT count(*) FROM blocks WHERE key_id NOT IN (SELECT id FROM keys)"
    ).fetchone()[0]
    assert orphans == 0
    orphans = conn.execute(
        "SELECT count(*) FROM members WHERE key_id NOT IN (SELECT id FROM keys)"
    ).fetchone()[0]
    assert orphans == 0


def _member(rng: random.Random) -> str:
    return f"m{rng.randrange(40):02d}"


def _score(rng: random.Random) -> str:
    return str(rng.choice([rng.randrange(-5, 6), rng.randrange(-5, 6) / 4, "-inf", "+inf", 0]))


def random_command(rng: random.Random) -> list[str]:
    z, z2 = rng.sample(["z1", "z2"], 2)
    lst, l2 = rng.sample(["l1", "l2"], 2)
    s, s2 = rng.sample(["s1", "s2"], 2)
    any_key, other = rng.sample(KEYS, 2)
    i = str(rng.randrange(-12, 12))
    j = str(rng.randrange(-12, 12))
    many = [x for _ in range(rng.randrange(1, 12)) for x in (_score(rng), _member(rng))]
    choices: list[list[str]] = [
        ["ZADD", z, *many],
        ["ZADD", z, *many],
        ["ZADD", z, "XX", "CH", *many],
        ["ZADD", z, "GT", *many],
        ["ZINCRBY", z, _score(rng), _member(rng)],
        ["ZREM", z, *[_member(rng) for _ in range(rng.randrange(1, 6))]],
        ["ZREMRANGEBYRANK", z, i, j],
        ["ZREMRANGEBYSCORE", z, _score(rng), _score(rng)],
        ["ZREMRANGEBYLEX", z, "[" + _member(rng), "(" + _member(rng)],
        ["ZPOPMIN", z, str(rng.randrange(1, 5))],
        ["ZPOPMAX", z],
        ["ZUNIONSTORE", z, "2", z, z2],
        ["ZUNIONSTORE", z2, "1", s],
        ["ZRANGESTORE", z2, z, i, j],
        ["LPUSH", lst, *[_member(rng) for _ in range(rng.randrange(1, 10))]],
        ["RPUSH", lst, *[_member(rng) for _ in range(rng.randrange(1, 10))]],
        ["LPOP", lst, str(rng.randrange(1, 4))],
        ["RPOP", lst],
        ["LSET", lst, i, _member(rng)],
        ["LINSERT", lst, rng.choice(["BEFORE", "AFTER"]), _member(rng), _member(rng)],
        ["LREM", lst, str(rng.randrange(-2, 3)), _member(rng)],
        ["LTRIM", lst, i, j],
        ["LMOVE", lst, l2, rng.choice(["LEFT", "RIGHT"]), rng.choice(["LEFT", "RIGHT"])],
        ["LMOVE", lst, lst, "LEFT", "RIGHT"],
        ["RPOPLPUSH", lst, l2],
        ["HSET", "h1", *[x for _ in range(rng.randrange(1, 5)) for x in (_member(rng), "v")]],
        ["HDEL", "h1", _member(rng), _member(rng)],
        ["SADD", s, *[_member(rng) for _ in range(rng.randrange(1, 8))]],
        ["SREM", s, _member(rng)],
        ["SPOP", s, "100"],  # all of it: the same state on both stores
        ["SMOVE", s, s2, _member(rng)],
        ["SINTERSTORE", s2, "2", s, s2],
        ["SET", "str", "v"],
        ["SET", any_key, "v"],
        ["RENAME", any_key, other],
        ["RENAME", z, lst],
        ["COPY", any_key, other, "REPLACE"],
        ["COPY", z, z2, "REPLACE"],
        ["DEL", any_key],
        ["PEXPIRE", any_key, "1"],
    ]
    if rng.random() < 0.01:
        return ["FLUSHDB"]
    return rng.choice(choices)


#: ZCOUNT ranges: open and closed ends, infinities, -0, ends between and on scores.
BOUNDS = [
    ("-inf", "+inf"),
    ("(-inf", "(+inf"),
    ("+inf", "+inf"),
    ("(1", "+inf"),
    ("-inf", "(0"),
    ("-0", "0"),
    ("(-0", "2"),
    ("-1.25", "(1.25"),
    ("(-5", "(5"),
    ("2", "-2"),
    ("0.3", "0.4"),
]


def reads() -> list[list[str]]:
    out: list[list[str]] = [["DBSIZE"]]
    for key in KEYS:
        out += [["TYPE", key]]
    for z in ("z1", "z2"):
        out += [["ZCARD", z], ["ZRANGE", z, "0", "-1", "WITHSCORES"]]
        out += [["ZRANK", z, f"m{k:02d}"] for k in range(0, 40, 3)]
        out += [["ZREVRANK", z, f"m{k:02d}"] for k in range(1, 40, 5)]
        out += [["ZRANGE", z, str(a), str(a + 3)] for a in (-20, -9, 0, 5, 9, 17)]
        out += [["ZCOUNT", z, lo, hi] for lo, hi in BOUNDS]
    for lst in ("l1", "l2"):
        out += [
            ["LLEN", lst],
            ["LRANGE", lst, "0", "-1"],
            ["LRANGE", lst, "9", "14"],
            ["LRANGE", lst, "-12", "-9"],
        ]
        out += [["LINDEX", lst, str(k)] for k in (-17, -9, -1, 0, 8, 9, 16, 30)]
    out += [["HLEN", "h1"], ["SCARD", "s1"], ["SCARD", "s2"]]
    return out


def normal(command: list[str], reply: object) -> object:
    if isinstance(reply, Exception):
        return ("error", str(reply))
    if command[0] in ("SPOP",) and isinstance(reply, list):
        return sorted(reply)
    return reply


@pytest.mark.parametrize("seed", range(8))
def test_counts_and_blocks_follow_every_write(small_blocks: None, store: SqliteStore, seed: int) -> None:
    rng = random.Random(seed)
    memory = memory_client()
    sqlite = EngineClient(store.unit, "sqlite")
    for step in range(250):
        command = random_command(rng)
        expected, actual = memory(*command), sqlite(*command)
        assert normal(command, actual) == normal(command, expected), (step, command)
        if command[0] == "PEXPIRE":
            time.sleep(0.003)
            if rng.random() < 0.5:  # reclaimed by the sweeper, else by whatever meets it
                with store.unit(True) as t:
                    t.sweep()
        check_bookkeeping(store.writer)
        if step % 10 == 0:
            for read in reads():
                assert normal(read, sqlite(*read)) == normal(read, memory(*read)), (step, read)


@pytest.mark.parametrize("kind", ["zset", "list"])
def test_ranks_and_windows_equal_the_naive_answer(store: SqliteStore, kind: str) -> None:
    """Real block sizes, a collection of several thousand: every rank, windows at random
    offsets (near both ends too, forwards and backwards), after random removals."""
    rng = random.Random(17)
    sqlite = EngineClient(store.unit, "sqlite")
    n = 6000
    if kind == "zset":
        scores = {f"m{k}": rng.choice([rng.randrange(100), rng.random()]) for k in range(n)}
        for start in range(0, n, 1000):
            chunk = list(scores.items())[start : start + 1000]
            sqlite("ZADD", "k", *[x for m, sc in chunk for x in (repr(sc), m)])
        doomed = rng.sample(sorted(scores), 1500)
        for m in doomed[:40]:
            assert sqlite("ZREM", "k", m) == 1
        assert sqlite("ZREM", "k", *doomed[40:]) == 1460
        for m in doomed:
            del scores[m]
        naive = [m for m, _ in sorted(scores.items(), key=lambda item: (item[1], item[0].encode()))]
        assert sqlite("ZCARD", "k") == len(naive)
        for m in rng.sample(naive, 400):
            assert sqlite("ZRANK", "k", m) == naive.index(m)
            assert sqlite("ZREVRANK", "k", m) == len(naive) - 1 - naive.index(m)
        for lo, hi in [(0, 99), (10, 10), (10.5, 60), (-1, 0.5), (42, 43), (99, 1000)]:
            for lo_open, hi_open in [(False, False), (True, False), (False, True), (True, True)]:
                expected = sum(
                    (lo < sc if lo_open else lo <= sc) and (sc < hi if hi_open else sc <= hi)
                    for sc in scores.values()
                )
                low, high = ("(" if lo_open else "") + repr(lo), ("(" if hi_open else "") + repr(hi)
                assert sqlite("ZCOUNT", "k", low, high) == expected, (low, high)
        reply = lambda a, b: sqlite("ZRANGE", "k", str(a), str(b))  # noqa: E731
    else:
        values = [f"e{k}" for k in range(n)]
        for start in range(0, n, 1000):
            sqlite("RPUSH", "k", *values[start : start + 1000])
        for k in range(300):
            sqlite("LPUSH", "k", f"h{k}")
            values.insert(0, f"h{k}")
        for _ in range(200):
            index = rng.randrange(len(values))
            sqlite("LSET", "k", str(index), f"x{index}")
            values[index] = f"x{index}"
        assert sqlite("LPOP", "k", "700") == [v.encode() for v in values[:700]]
        del values[:700]
        naive = values
        assert sqlite("LLEN", "k") == len(naive)
        for index in rng.sample(range(len(naive)), 300):
            assert sqlite("LINDEX", "k", str(index)) == naive[index].encode()
            assert sqlite("LINDEX", "k", str(index - len(naive))) == naive[index].encode()
        reply = lambda a, b: sqlite("LRANGE", "k", str(a), str(b))  # noqa: E731
    size = len(naive)
    starts = [0, 1, 1023, 1024, 2000, size - 1500, size - 1025, size - 1024, size - 10, size - 1]
    starts += rng.sample(range(size), 30)
    for a in starts:
        for length in (1, 10, 700, 3000):
            b = a + length - 1
            assert reply(a, b) == [m.encode() for m in naive[a : b + 1]], (a, b)
            assert reply(a - size, min(b, size - 1) - size) == [m.encode() for m in naive[a : b + 1]], (a, b)
    if kind == "zset":
        for a in rng.sample(range(size), 20):
            got = sqlite("ZREVRANGE", "k", str(a), str(a + 20))
            assert got == [m.encode() for m in naive[::-1][a : a + 21]], a
    check_bookkeeping(store.writer)
