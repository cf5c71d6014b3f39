"""A database file written by the release before issue 17 (schema version 1: no kept counts,
no blocks) opens with today's store, is upgraded once inside one transaction, and keeps
every key; a file of an unknown, newer version is refused with a clear message."""

from __future__ import annotations

import hashlib
import sqlite3
import struct
from pathlib import Path

import pytest

from kvgate.adapters import sqlite_store
from kvgate.adapters.sqlite import SqliteBackend
from kvgate.adapters.sqlite_store import SCHEMA_VERSION, SchemaError, SqliteStore
from kvgate.errors import StartupError
from tests.backends.test_sqlite_counts import check_bookkeeping
from tests.support.engine import EngineClient

#: Exactly the schema that version 1 created (kvgate/adapters/sqlite_store.py before issue 17).
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY,
    name BLOB NOT NULL UNIQUE,
    type INTEGER NOT NULL,
    expire_at INTEGER,
    value BLOB
);
CREATE INDEX IF NOT EXISTS keys_expiry ON keys (expire_at) WHERE expire_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS members (
    id INTEGER PRIMARY KEY,
    key_id INTEGER NOT NULL,
    member BLOB NOT NULL,
    score REAL NOT NULL DEFAULT 0,
    value BLOB NOT NULL DEFAULT x'',
    UNIQUE (key_id, member)
);
CREATE INDEX IF NOT EXISTS members_order ON members (key_id, score, member);
CREATE TABLE IF NOT EXISTS scripts (
    sha BLOB PRIMARY KEY,
    body BLOB NOT NULL
);
"""
STRING, LIST, SET, ZSET, HASH = 0, 1, 2, 3, 4
FUTURE = 4_000_000_000_000  # ms: year 2096
SCRIPT = b"return {KEYS[1], ARGV[1]}"
SHA = hashlib.sha1(SCRIPT).hexdigest().encode()


def _position(pos: float) -> bytes:
    return struct.pack(">d", pos + 0.0)


def make_v1_file(path: Path) -> dict[str, object]:
    """A version-1 file as that release left it (WAL mode, rows as it wrote them); what
    it holds, for the checks."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN IMMEDIATE")
    for statement in SCHEMA_V1.split(";"):
        if statement.strip():
            conn.execute(statement)

    def key(name: str, type_: int, value: bytes | None = None, expire_at: int | None = None) -> int:
        cur = conn.execute(
            "INSERT INTO keys (name, type, expire_at, value) VALUES (?, ?, ?, ?)",
            (name.encode(), type_, expire_at, value),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def members(key_id: int, rows: list[tuple[bytes, float, bytes]]) -> None:
        conn.executemany(
            "INSERT INTO members (key_id, member, score, value) VALUES (?, ?, ?, ?)",
            [(key_id, m, score, value) for m, score, value in rows],
        )

    key("str", STRING, b"hello")
    key("bin", STRING, b"\x00\xff")
    key("ttl", STRING, b"v", FUTURE)
    key("gone", STRING, b"x", 1)  # expired, not yet swept
    gone_hash = key("gonehash", HASH, None, 1)
    members(gone_hash, [(b"f", 0.0, b"v")])
    hash_fields = {f"f{i}": f"v{i}" for i in range(3000)}
    members(key("h", HASH), [(f.encode(), 0.0, v.encode()) for f, v in hash_fields.items()])
    set_members = [f"s{i}" for i in range(70)]
    members(key("set", SET, None, FUTURE), [(m.encode(), 0.0, b"") for m in set_members])
    zscores = {f"z{i:05d}": float(i % 700) for i in range(3000)}  # ties: ordered by member
    zscores["neg"] = float("-inf")
    zscores["pos"] = float("inf")
    members(key("z", ZSET), [(m.encode(), score, b"") for m, score in zscores.items()])
    positions = [float(p) for p in range(-100, 2400)] + [0.5, 0.75]
    members(key("l", LIST), [(_position(p), p, f"e{p}".encode()) for p in positions])
    members(key("small", ZSET), [(b"a", 1.0, b""), (b"b", 2.0, b"")])
    conn.execute("INSERT INTO scripts (sha, body) VALUES (?, ?)", (SHA, SCRIPT))
    conn.execute("PRAGMA user_version = 1")
    conn.execute("COMMIT")
    conn.close()
    ordered_z = [m for m, _ in sorted(zscores.items(), key=lambda item: (item[1], item[0].encode()))]
    ordered_l = [f"e{p}" for p in sorted(positions)]
    return {"hash": hash_fields, "set": set_members, "z": ordered_z, "l": ordered_l}


def check_contents(client: EngineClient, held: dict[str, object]) -> None:
    hash_fields = held["hash"]
    assert isinstance(hash_fields, dict)
    z, lst, set_members = held["z"], held["l"], held["set"]
    assert isinstance(z, list) and isinstance(lst, list) and isinstance(set_members, list)
    assert client("GET", "str") == b"hello"
    assert client("GET", "bin") == b"\x00\xff"
    assert client("PEXPIRETIME", "ttl") == FUTURE
    assert client("EXISTS", "gone", "gonehash") == 0
    assert client("HLEN", "h") == len(hash_fields)
    assert client("HGET", "h", "f2999") == b"v2999"
    everything = client("HGETALL", "h")
    assert isinstance(everything, list) and everything[:4] == [b"f0", b"v0", b"f1", b"v1"]
    assert client("SCARD", "set") == len(set_members)
    assert client("PEXPIRETIME", "set") == FUTURE
    smembers = client("SMEMBERS", "set")
    assert isinstance(smembers, list) and set(smembers) == {m.encode() for m in set_members}
    assert client("ZCARD", "z") == len(z)
    for index in (0, 1, 700, 1500, 2999, 3001):
        assert client("ZRANK", "z", z[index]) == index
        assert client("ZREVRANK", "z", z[index]) == len(z) - 1 - index
    assert client("ZRANGE", "z", "0", "-1") == [m.encode() for m in z]
    assert client("ZRANGE", "z", "1500", "1509") == [m.encode() for m in z[1500:1510]]
    assert client("ZSCORE", "z", "neg") == b"-inf"
    assert client("LLEN", "l") == len(lst)
    for index in (0, 101, 102, 1300, len(lst) - 1):
        assert client("LINDEX", "l", str(index)) == lst[index].encode()
    assert client("LRANGE", "l", "1200", "1209") == [v.encode() for v in lst[1200:1210]]
    assert client("ZRANGE", "small", "0", "-1", "WITHSCORES") == [b"a", b"1", b"b", b"2"]
    assert client("EVALSHA", SHA.decode(), "1", "k", "a") == [b"k", b"a"]
    assert client("DBSIZE") == 8  # the two expired keys not counted


def test_a_version_1_file_is_upgraded_once_and_keeps_every_key(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    held = make_v1_file(path)
    store = SqliteStore(str(path))
    try:
        assert store.writer.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        check_bookkeeping(store.writer)
        sizes = dict(store.writer.execute("SELECT name, size FROM keys").fetchall())
        assert sizes[b"h"] == 3000 and sizes[b"z"] == 3002 and sizes[b"l"] == 2502 and sizes[b"str"] == 0
        assert store.writer.execute("SELECT keys FROM keyspace").fetchone()[0] == 10  # rows, expired too
        # the blocks built by the migration cover the sorted sets and lists only
        blocked = {
            r[0]
            for r in store.writer.execute("SELECT DISTINCT k.name FROM blocks JOIN keys k ON k.id = key_id")
        }
        assert blocked == {b"z", b"l", b"small"}
        client = EngineClient(store.unit, "sqlite")
        check_contents(client, held)
        # and it keeps working: writes keep the counts
        assert client("LPUSH", "l", "new") == 2503
        assert client("ZADD", "z", "0.5", "z00000") == 0
        assert client("ZREM", "z", "neg") == 1
        assert client("DEL", "h") == 1
        check_bookkeeping(store.writer)
    finally:
        store.close()
    reopened = SqliteStore(str(path))  # version 2 now: opened as it is, nothing redone
    try:
        assert reopened.writer.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        client = EngineClient(reopened.unit, "sqlite")
        assert client("LINDEX", "l", "0") == b"new" and client("ZCARD", "z") == 3001
        check_bookkeeping(reopened.writer)
    finally:
        reopened.close()


def test_a_failed_upgrade_leaves_the_version_1_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "v1.db"
    held = make_v1_file(path)

    def fail(conn: sqlite3.Connection, key_id: int | None) -> None:
        raise sqlite3.OperationalError("disk I/O error (simulated)")

    monkeypatch.setattr(sqlite_store, "_build_blocks", fail)
    with pytest.raises(sqlite3.OperationalError):
        SqliteStore(str(path))
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    columns = [r[1] for r in conn.execute("PRAGMA table_info(keys)")]
    assert "size" not in columns
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"keys", "members", "scripts"}
    conn.close()
    monkeypatch.undo()
    store = SqliteStore(str(path))
    try:
        check_contents(EngineClient(store.unit, "sqlite"), held)
        check_bookkeeping(store.writer)
    finally:
        store.close()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    SqliteStore(str(path)).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(
        SchemaError, match=rf"schema version {SCHEMA_VERSION + 1} is newer than this kvgate's"
    ):
        SqliteStore(str(path))
    with pytest.raises(
        StartupError, match=rf"sqlite: cannot open .*future\.db: database schema version {SCHEMA_VERSION + 1}"
    ):
        SqliteBackend(f"sqlite:///{path}").preflight()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1  # left alone
    conn.close()
