"""Keys and members in one SQLite file: the :class:`~kvgate.engine.storage.Txn` for SQLite.

Schema: a ``keys`` row per key (type, expiry, and a string's value) and a ``members`` row
per hash field, set element, sorted-set element or list element, so changing one element
never rewrites a collection.  ``members_order`` indexes ``(key_id, score, member)``:
sorted-set ranges, ranks and list positions are index range scans.

Synchronous: :class:`SqliteStore` hands out units (``with store.unit(write) as t``) on a
connection the calling thread owns.  :mod:`kvgate.adapters.sqlite` runs them on a writer
thread and on reader threads.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from kvgate.engine.scripting import Scripting
from kvgate.engine.storage import Key, KeyType, Member, ScoreBound, Txn

SCHEMA_VERSION = 1
SCHEMA = """
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

_MAX_ROWID = 2**63 - 1
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
#: Point reads run on the event loop: they must not sleep long waiting for a lock (rare in
#: WAL mode: recovery, a foreign exclusive lock); past this they answer 503.  Reader
#: threads use the same: a reader held up is a reader fewer for everyone else.
READER_BUSY_TIMEOUT_MS = 100
_LIVE = "(expire_at IS NULL OR expire_at > ?)"


def now_ms() -> int:
    return int(time.time() * 1000)


class SchemaError(RuntimeError):
    pass


def connect(path: str, busy_timeout_ms: int = 5000, read_only: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=busy_timeout_ms / 1000
    )
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    conn.execute("PRAGMA synchronous = NORMAL")
    if read_only:
        conn.execute("PRAGMA query_only = ON")
    return conn


def init_schema(conn: sqlite3.Connection) -> None:
    # WAL mode, and a WAL file that shrinks back after a big write has been checkpointed
    conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal" and conn.execute("PRAGMA database_list").fetchone()[2]:
        raise SchemaError(f"could not switch the database to WAL mode (got {mode!r})")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise SchemaError(f"database schema version {version}, this kvgate knows {SCHEMA_VERSION}")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class SqliteTxn(Txn):
    def __init__(self, conn: sqlite3.Connection, now: int, writable: bool, scripting: Scripting) -> None:
        self.conn = conn
        self.now = now
        self.writable = writable
        self.scripting = scripting
        self._x = conn.execute

    # --- keyspace -------------------------------------------------------------------

    def _key(self, row: tuple) -> Key:
        rowid, name, type_, expire_at, value = row
        return Key(name, KeyType(type_), expire_at, value, rowid)

    def lookup(self, name: bytes) -> Key | None:
        row = self._x("SELECT id, name, type, expire_at, value FROM keys WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        key = self._key(row)
        if key.expire_at is not None and key.expire_at <= self.now:
            if self.writable:
                self._drop(key.ref, key.type)
            return None
        return key

    def _drop(self, key_id: object, type_: KeyType) -> None:
        if type_ is not KeyType.STRING:
            self._x("DELETE FROM members WHERE key_id = ?", (key_id,))
        self._x("DELETE FROM keys WHERE id = ?", (key_id,))

    def create(
        self, name: bytes, type: KeyType, value: bytes | None = None, expire_at: int | None = None
    ) -> Key:
        row = (name, int(type), expire_at, value)
        try:
            cur = self._x("INSERT INTO keys (name, type, expire_at, value) VALUES (?, ?, ?, ?)", row)
        except sqlite3.IntegrityError:
            # only an expired key nobody has dropped yet may hold the name: drop it, retry
            if self.lookup(name) is not None:
                raise
            cur = self._x("INSERT INTO keys (name, type, expire_at, value) VALUES (?, ?, ?, ?)", row)
        return Key(name, type, expire_at, value, cur.lastrowid)

    def set_string(self, name: bytes, value: bytes, expire_at: int | None) -> Key:
        row = self._x("SELECT id, type FROM keys WHERE name = ?", (name,)).fetchone()
        if row is None:
            return self.create(name, KeyType.STRING, value, expire_at)
        key_id, type_ = row
        if type_ != KeyType.STRING:
            self._x("DELETE FROM members WHERE key_id = ?", (key_id,))
        self._x(
            "UPDATE keys SET type = ?, value = ?, expire_at = ? WHERE id = ?",
            (int(KeyType.STRING), value, expire_at, key_id),
        )
        return Key(name, KeyType.STRING, expire_at, value, key_id)

    def set_expire(self, key: Key, expire_at: int | None) -> None:
        self._x("UPDATE keys SET expire_at = ? WHERE id = ?", (expire_at, key.ref))
        key.expire_at = expire_at

    def delete(self, key: Key) -> None:
        self._drop(key.ref, key.type)

    def rename(self, key: Key, new_name: bytes) -> Key:
        if new_name == key.name:
            return key
        row = self._x("SELECT id, type FROM keys WHERE name = ?", (new_name,)).fetchone()
        if row is None:
            self._x("UPDATE keys SET name = ? WHERE id = ?", (new_name, key.ref))
            return Key(new_name, key.type, key.expire_at, key.value, key.ref)
        # The destination keeps its row id: a SCAN under way has returned it or will,
        # whereas the source's id may lie behind the cursor.
        dest_id, dest_type = row
        if dest_type != KeyType.STRING:
            self._x("DELETE FROM members WHERE key_id = ?", (dest_id,))
        self._x(
            "UPDATE keys SET type = ?, expire_at = ?, value = ? WHERE id = ?",
            (int(key.type), key.expire_at, key.value, dest_id),
        )
        self._x("UPDATE members SET key_id = ? WHERE key_id = ?", (dest_id, key.ref))
        self._x("DELETE FROM keys WHERE id = ?", (key.ref,))
        return Key(new_name, key.type, key.expire_at, key.value, dest_id)

    def copy(self, key: Key, new_name: bytes) -> Key:
        dest = self.create(new_name, key.type, key.value, key.expire_at)
        if key.type is not KeyType.STRING:
            self._x(
                "INSERT INTO members (key_id, member, score, value) "
                "SELECT ?, member, score, value FROM members WHERE key_id = ? ORDER BY id",
                (dest.ref, key.ref),
            )
        return dest

    def scan(self, cursor: int, count: int) -> tuple[int, list[Key]]:
        if cursor > _MAX_ROWID:
            return 0, []
        rows = self._x(
            f"SELECT id, name, type, expire_at, value FROM keys WHERE id > ? AND {_LIVE} ORDER BY id LIMIT ?",
            (cursor, self.now, count),
        ).fetchall()
        keys = [self._key(r) for r in rows]
        return (keys[-1].ref if len(keys) == count else 0), keys  # type: ignore[return-value]

    def keys(self) -> Iterator[Key]:
        rows = self._x(
            f"SELECT id, name, type, expire_at, value FROM keys WHERE {_LIVE} ORDER BY id", (self.now,)
        ).fetchall()
        return (self._key(r) for r in rows)

    def dbsize(self) -> int:
        return self._x(f"SELECT count(*) FROM keys WHERE {_LIVE}", (self.now,)).fetchone()[0]

    def random_key(self) -> Key | None:
        sql = (
            f"SELECT id, name, type, expire_at, value FROM keys WHERE id >= ? AND {_LIVE} ORDER BY id LIMIT 1"
        )
        top = self._x("SELECT max(id) FROM keys").fetchone()[0]
        if top is None:
            return None
        import random

        row = (
            self._x(sql, (random.randint(1, top), self.now)).fetchone()
            or self._x(sql, (0, self.now)).fetchone()
        )
        return self._key(row) if row else None

    def flush(self) -> None:
        self._x("DELETE FROM members")
        self._x("DELETE FROM keys")

    def sweep(self, limit: int = 500) -> int:
        """Delete up to ``limit`` expired keys; how many went."""
        rows = self._x(
            "SELECT id, type FROM keys WHERE expire_at <= ? ORDER BY expire_at LIMIT ?", (self.now, limit)
        ).fetchall()
        for key_id, type_ in rows:
            self._drop(key_id, KeyType(type_))
        return len(rows)

    # --- members --------------------------------------------------------------------

    def get(self, key: Key, member: bytes) -> Member | None:
        row = self._x(
            "SELECT member, value, score FROM members WHERE key_id = ? AND member = ?", (key.ref, member)
        ).fetchone()
        return Member(*row) if row else None

    def put(self, key: Key, member: bytes, value: bytes = b"", score: float = 0.0) -> bool:
        cur = self._x(
            "INSERT INTO members (key_id, member, score, value) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key_id, member) DO NOTHING",
            (key.ref, member, score, value),
        )
        if cur.rowcount:
            return True
        self._x(
            "UPDATE members SET score = ?, value = ? WHERE key_id = ? AND member = ?",
            (score, value, key.ref, member),
        )
        return False

    def remove(self, key: Key, member: bytes) -> bool:
        return self._x("DELETE FROM members WHERE key_id = ? AND member = ?", (key.ref, member)).rowcount > 0

    def count(self, key: Key) -> int:
        return self._x("SELECT count(*) FROM members WHERE key_id = ?", (key.ref,)).fetchone()[0]

    def members(self, key: Key) -> list[Member]:
        rows = self._x("SELECT member, value, score FROM members WHERE key_id = ? ORDER BY id", (key.ref,))
        return [Member(*r) for r in rows]

    def ordered(self, key: Key, offset: int = 0, limit: int = -1, rev: bool = False) -> list[Member]:
        if offset < 0:
            return []
        order = "score DESC, member DESC" if rev else "score, member"
        rows = self._x(
            f"SELECT member, value, score FROM members WHERE key_id = ? ORDER BY {order} LIMIT ? OFFSET ?",
            (key.ref, limit, offset),
        )
        return [Member(*r) for r in rows]

    def member_scan(self, key: Key, cursor: int, count: int) -> tuple[int, list[Member]]:
        if cursor > _MAX_ROWID:
            return 0, []
        rows = self._x(
            "SELECT id, member, value, score FROM members WHERE key_id = ? AND id > ? ORDER BY id LIMIT ?",
            (key.ref, cursor, count),
        ).fetchall()
        nxt = rows[-1][0] if len(rows) == count else 0
        return nxt, [Member(*r[1:]) for r in rows]

    @staticmethod
    def _range(low: ScoreBound, high: ScoreBound) -> tuple[str, tuple[float, float]]:
        lo = "score > ?" if low.open else "score >= ?"
        hi = "score < ?" if high.open else "score <= ?"
        return f"{lo} AND {hi}", (low.value, high.value)

    def by_score(
        self,
        key: Key,
        low: ScoreBound,
        high: ScoreBound,
        offset: int = 0,
        limit: int = -1,
        rev: bool = False,
    ) -> list[Member]:
        if offset < 0:
            return []
        cond, bounds = self._range(low, high)
        order = "score DESC, member DESC" if rev else "score, member"
        rows = self._x(
            f"SELECT member, value, score FROM members WHERE key_id = ? AND {cond} ORDER BY {order} LIMIT ? OFFSET ?",
            (key.ref, *bounds, limit, offset),
        )
        return [Member(*r) for r in rows]

    def count_by_score(self, key: Key, low: ScoreBound, high: ScoreBound) -> int:
        cond, bounds = self._range(low, high)
        return self._x(
            f"SELECT count(*) FROM members WHERE key_id = ? AND {cond}", (key.ref, *bounds)
        ).fetchone()[0]

    def rank(self, key: Key, member: bytes, rev: bool = False) -> int | None:
        found = self.get(key, member)
        if found is None:
            return None
        cmp = ">" if rev else "<"
        return self._x(
            f"SELECT count(*) FROM members WHERE key_id = ? AND (score {cmp} ? OR (score = ? AND member {cmp} ?))",
            (key.ref, found.score, found.score, member),
        ).fetchone()[0]

    # --- scripts --------------------------------------------------------------------

    def script_get(self, sha: bytes) -> bytes | None:
        row = self._x("SELECT body FROM scripts WHERE sha = ?", (sha,)).fetchone()
        return row[0] if row else None

    def script_put(self, sha: bytes, body: bytes) -> None:
        self._x("INSERT INTO scripts (sha, body) VALUES (?, ?) ON CONFLICT (sha) DO NOTHING", (sha, body))

    def script_flush(self) -> None:
        self._x("DELETE FROM scripts")


class SqliteStore:
    """One database file.  ``unit()`` gives a transaction on a connection of the calling
    thread; the writer connection is shared (callers serialize writes, as the writer
    thread does)."""

    def __init__(self, path: str, busy_timeout_ms: int = 5000, scripting: Scripting | None = None) -> None:
        self.path = path
        self.scripting = scripting if scripting is not None else Scripting()
        self.busy_timeout_ms = busy_timeout_ms
        self.writer = connect(path, busy_timeout_ms)
        init_schema(self.writer)
        self._local = threading.local()

    def reader(self) -> sqlite3.Connection:
        """The calling thread's read-only connection, opened on first use."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path, READER_BUSY_TIMEOUT_MS, read_only=True)
        return conn

    def close_reader(self) -> None:
        """Close the calling thread's read-only connection (a reader thread, as it ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            conn.close()

    @contextmanager
    def unit(self, write: bool, now: int | None = None) -> Iterator[SqliteTxn]:
        conn = self.writer if write else self.reader()
        conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield SqliteTxn(conn, now_ms() if now is None else now, write, self.scripting)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        self.writer.close()
        self.close_reader()
