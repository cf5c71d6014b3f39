"""Keys and members in one SQLite file: the :class:`~kvgate.engine.storage.Txn` for SQLite.

Schema (version 3; a version 2 file gains ``hash_expiry``, empty, as it opens):

* ``keys``: a row per key (type, expiry, a string's value) with ``size``, the number of
  members a collection has: HLEN, SCARD, ZCARD, LLEN and the counts pushes and adds return
  read one row (SQLite's B-trees keep no subtree counts: ``COUNT(*)`` walks every member).
* ``members``: a row per hash field, set element, sorted-set element or list element, so
  changing one element never rewrites a collection.  ``members_order`` indexes
  ``(key_id, score, member)``: the order of sorted sets and lists.
* ``blocks``: an order-statistic layer over that index for sorted sets and lists.  A
  block is a run of consecutive members in ``(score, member)`` order, named by its lower
  bound (a ``(score, member)`` pair; the first block's is ``(-inf, b"")``) and holding its
  count ``n``; a member belongs to the block with the greatest bound at or below it.  A
  rank sums the counts of the blocks before the member's (one index range over at most
  ``size / BLOCK_MIN`` small rows) and counts within its block (at most ``BLOCK_MAX``
  index entries); finding the element at an index walks the sums the same way.  Blocks
  split past :data:`BLOCK_MAX` and merge below :data:`BLOCK_MIN`, so a rank or an index
  costs O(N / BLOCK_MIN + BLOCK_MAX) index entries, against O(N) for ``COUNT(*)`` or
  ``OFFSET`` (at 100,000 members: 100 to 200 block rows, 781 at worst, and at most 1,024
  entries, where the index walk read up to 100,000).  Members never move between rows when blocks change:
  only the bounds and counts in ``blocks`` do.
* ``keyspace``: one row holding the number of rows in ``keys`` (DBSIZE, see
  :meth:`SqliteTxn.dbsize`).
* ``hash_expiry`` (version 3): a row per hash with field expiries (a hash member's
  ``score``, Redis 7.4's field expiration), ``at`` no later than its earliest one, indexed,
  as Redis registers such hashes by their next field expiry: the sweeper and a writer's
  lookup find due hashes through it, then their expired fields through ``members_order``
  (``score`` between 1 and now), never scanning; ``at`` is made exact each time.

The counts are kept by this module's own statements, not by SQL triggers, by measurement
(Python's sqlite3, WAL, a 100,000-field hash, best of 4): a trigger saves one statement per
element (HSET of a new field: 9.3 us with a trigger, 12.2 us with an explicit ``UPDATE``),
but it fires once per row, so DEL of that hash took 197 ms with triggers against 100 ms
(COPY, FLUSHDB and RENAME alike), and the blocks need code anyway (a split reads members).
The code also holds the counts a command changes and writes each once (see
:meth:`SqliteTxn.settle`), which no trigger can: HSET of 1,000 new fields went from 25 ms
(a count written per field) to 22 ms, against 17 ms before counts were kept; RPUSH of 1,000
values, 14 ms (67 ms written per element; 21 ms before, most of it a ``COUNT(*)``).

Synchronous: :class:`SqliteStore` hands out units (``with store.unit(write) as t``) on a
connection the calling thread owns.  :mod:`kvgate.adapters.sqlite` runs them on a writer
thread and on reader threads.
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import pairwise

from kvgate.adapters import sqlite_pubsub
from kvgate.engine.pubsub import Subscriptions
from kvgate.engine.scripting import Scripting
from kvgate.engine.storage import Key, KeyType, Member, ScoreBound, Txn

SCHEMA_VERSION = 3
SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY,
    name BLOB NOT NULL UNIQUE,
    type INTEGER NOT NULL,
    expire_at INTEGER,
    value BLOB,
    size INTEGER NOT NULL DEFAULT 0
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
    + """
CREATE TABLE IF NOT EXISTS blocks (
    key_id INTEGER NOT NULL,
    score REAL NOT NULL,
    member BLOB NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (key_id, score, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keyspace (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    keys INTEGER NOT NULL
);
"""
    + """
CREATE TABLE IF NOT EXISTS hash_expiry (
    key_id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS hash_expiry_at ON hash_expiry (at);
"""
)
#: What version 1 lacks: the tables above, ``keys.size``, and the counts filled in.
MIGRATE_1_TO_2 = """
ALTER TABLE keys ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
UPDATE keys SET size = m.c FROM (SELECT key_id, count(*) AS c FROM members GROUP BY key_id) AS m
    WHERE keys.id = m.key_id;
"""

#: Key types whose members are ordered, so ``blocks`` indexes them.
ORDERED = frozenset((KeyType.ZSET, KeyType.LIST))
#: A block splits in two when it holds more members than this, and merges with a
#: neighbour when it holds fewer than :data:`BLOCK_MIN`; blocks are built with
#: :data:`BLOCK_FILL`.  With 1,024, a walk within a block costs about 30 us at most.
BLOCK_MAX = 1024
BLOCK_MIN = 128
BLOCK_FILL = 512
#: remove_many rebuilds the blocks when it removes more than 1/REBUILD_RATIO of a collection.
REBUILD_RATIO = 32
#: Elements of one key changed one at a time, in a unit, before their block counts are
#: held in it (a one-element command keeps its one UPDATE; a bulk one saves one per element).
DIRECT_SHIFTS = 8
#: The first block's bound: below every ``(score, member)`` (scores are never NaN).
FIRST = (float("-inf"), b"")

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
    """Create the schema in a new file, or upgrade an older one, once, in one transaction
    (a crash halfway leaves the file as it was); a newer schema is refused."""
    # WAL mode, and a WAL file that shrinks back after a big write has been checkpointed
    conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal" and conn.execute("PRAGMA database_list").fetchone()[2]:
        raise SchemaError(f"could not switch the database to WAL mode (got {mode!r})")
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION or version < 0:
            raise SchemaError(
                f"database schema version {version} is newer than this kvgate's "
                f"({SCHEMA_VERSION}): the file was written by a later release; run that release"
            )
        if version != SCHEMA_VERSION:
            if version == 1:
                _run_script(conn, MIGRATE_1_TO_2)
            _run_script(conn, SCHEMA)
            conn.execute("INSERT OR IGNORE INTO keyspace (id, keys) VALUES (0, (SELECT count(*) FROM keys))")
            if version == 1:
                _build_blocks(conn, None)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _build_blocks(conn: sqlite3.Connection, key_id: int | None) -> None:
    """(Re)build the blocks of one sorted set or list (``key_id``), or of every one (None):
    a block of :data:`BLOCK_FILL` members from each :data:`BLOCK_FILL`-th, in one
    statement over the ``members_order`` index."""
    where = "k.type IN (?, ?)" if key_id is None else "k.id = ?"
    args: tuple[object, ...] = (int(KeyType.ZSET), int(KeyType.LIST)) if key_id is None else (key_id,)
    if key_id is not None:
        conn.execute("DELETE FROM blocks WHERE key_id = ?", (key_id,))
    conn.execute(
        f"""INSERT INTO blocks (key_id, score, member, n)
        SELECT key_id, iif(rn = 0, ?, score), iif(rn = 0, ?, member), min(?, size - rn)
        FROM (SELECT m.key_id, m.score, m.member, k.size,
                     row_number() OVER (PARTITION BY m.key_id ORDER BY m.score, m.member) - 1 AS rn
              FROM keys AS k JOIN members AS m ON m.key_id = k.id WHERE {where})
        WHERE rn % ? = 0""",
        (*FIRST, BLOCK_FILL, *args, BLOCK_FILL),
    )


#: A row's type number -> its KeyType (indexing a tuple: 11 ns, calling the enum: 460 ns,
#: once per key read)
_KEY_TYPES = tuple(KeyType)


class SqliteTxn(Txn):
    def __init__(self, conn: sqlite3.Connection, now: int, writable: bool, scripting: Scripting) -> None:
        self.conn = conn
        self.now = now
        self.writable = writable
        self.scripting = scripting
        self._x = conn.execute
        #: the wake-up addresses of the listeners this unit published to (sqlite_pubsub)
        self.wakeups: set[bytes] = set()
        # counts held until settle(): key id -> delta; key id -> block bound -> delta
        self._sizes: dict[object, int] = {}
        self._pending: dict[object, dict[tuple[float, bytes], int]] = {}
        self._bounds: dict[object, list[tuple[float, bytes]]] = {}
        self._shifts: dict[object, int] = {}
        #: hashes with expired fields this (read-only) unit could not drop
        self._stale: set[object] = set()

    # --- keyspace -------------------------------------------------------------------

    def _key(self, row: tuple) -> Key:
        rowid, name, type_, expire_at, value = row
        return Key(name, _KEY_TYPES[type_], expire_at, value, rowid)

    def lookup(self, name: bytes) -> Key | None:
        row = self._x(
            "SELECT k.id, k.name, k.type, k.expire_at, k.value, e.at FROM keys AS k "
            "LEFT JOIN hash_expiry AS e ON e.key_id = k.id WHERE k.name = ?",
            (name,),
        ).fetchone()
        if row is None:
            return None
        key = self._key(row[:5])
        if key.expire_at is not None and key.expire_at <= self.now:
            if self.writable:
                self._drop(key.ref, key.type)
            return None
        if row[5] is not None and row[5] <= self.now and not self._fields_left(key.ref):
            if self.writable:  # its last field expired: the hash goes, as in Redis
                self._drop(key.ref, key.type)
            return None
        return key

    # --- hash field expiry ------------------------------------------------------------

    def _fields_left(self, key_id: object) -> bool:
        """Whether a hash with a field expiry due has fields left.  A writable unit drops
        the expired ones (and makes the hash's ``at`` exact); a read-only one notes the
        hash, whose expired fields :meth:`get`, :meth:`members`, :meth:`member_scan` and
        :meth:`count` then hide."""
        if self.writable:
            return self._drop_expired_fields(key_id) > 0
        self._stale.add(key_id)
        live = (
            "SELECT EXISTS (SELECT 1 FROM members WHERE key_id = ? AND score = 0) "
            "OR EXISTS (SELECT 1 FROM members WHERE key_id = ? AND score > ?)"
        )
        return bool(self._x(live, (key_id, key_id, self.now)).fetchone()[0])

    def _drop_expired_fields(self, key_id: object) -> int:
        """Delete a hash's expired fields and make its ``hash_expiry`` row exact; how
        many fields are left (the caller drops an empty hash)."""
        gone = self._x(
            "DELETE FROM members WHERE key_id = ? AND score > 0 AND score <= ?", (key_id, self.now)
        ).rowcount
        if gone:
            self._counted(key_id, -gone)
        nxt = self._x("SELECT min(score) FROM members WHERE key_id = ? AND score > 0", (key_id,))
        nxt = nxt.fetchone()[0]
        if nxt is None:
            self._x("DELETE FROM hash_expiry WHERE key_id = ?", (key_id,))
        else:
            self._x("UPDATE hash_expiry SET at = ? WHERE key_id = ?", (int(nxt), key_id))
        return self._size(key_id)

    def _hidden(self, key: Key, m: Member | None) -> bool:
        """Whether ``m`` is an expired field (of a hash a read-only unit cannot clean)."""
        return m is not None and key.type is KeyType.HASH and 0 < m.score <= self.now

    def _keys_added(self, delta: int) -> None:
        self._x("UPDATE keyspace SET keys = keys + ? WHERE id = 0", (delta,))

    def _clear(self, key_id: object, type_: int) -> None:
        """Remove a key's members (and blocks), leaving its row."""
        self.settle()
        if type_ != KeyType.STRING:
            self._x("DELETE FROM members WHERE key_id = ?", (key_id,))
        if type_ in ORDERED:
            self._x("DELETE FROM blocks WHERE key_id = ?", (key_id,))
        if type_ == KeyType.HASH:
            self._x("DELETE FROM hash_expiry WHERE key_id = ?", (key_id,))

    def _drop(self, key_id: object, type_: int) -> None:
        self._clear(key_id, type_)
        self._x("DELETE FROM keys WHERE id = ?", (key_id,))
        self._keys_added(-1)

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
        self._keys_added(1)
        return Key(name, type, expire_at, value, cur.lastrowid)

    def set_string(self, name: bytes, value: bytes, expire_at: int | None) -> Key:
        # A string over a string (live or expired: either way replaced) is one statement;
        # a key of another type loses its members first.
        row = self._x(
            "UPDATE keys SET value = ?, expire_at = ? WHERE name = ? AND type = ? RETURNING id",
            (value, expire_at, name, int(KeyType.STRING)),
        ).fetchone()
        if row is not None:
            return Key(name, KeyType.STRING, expire_at, value, row[0])
        row = self._x("SELECT id, type FROM keys WHERE name = ?", (name,)).fetchone()
        if row is None:
            return self.create(name, KeyType.STRING, value, expire_at)
        key_id, type_ = row
        self._clear(key_id, type_)
        self._x(
            "UPDATE keys SET type = ?, value = ?, expire_at = ?, size = 0 WHERE id = ?",
            (int(KeyType.STRING), value, expire_at, key_id),
        )
        return Key(name, KeyType.STRING, expire_at, value, key_id)

    def set_value(self, key: Key, value: bytes) -> Key:
        self._x("UPDATE keys SET value = ? WHERE id = ?", (value, key.ref))
        return Key(key.name, key.type, key.expire_at, value, key.ref)

    def set_expire(self, key: Key, expire_at: int | None) -> None:
        self._x("UPDATE keys SET expire_at = ? WHERE id = ?", (expire_at, key.ref))
        key.expire_at = expire_at

    def delete(self, key: Key) -> None:
        self._drop(key.ref, key.type)

    def rename(self, key: Key, new_name: bytes) -> Key:
        if new_name == key.name:
            return key
        self.settle()
        row = self._x("SELECT id, type FROM keys WHERE name = ?", (new_name,)).fetchone()
        if row is None:
            self._x("UPDATE keys SET name = ? WHERE id = ?", (new_name, key.ref))
            return Key(new_name, key.type, key.expire_at, key.value, key.ref)
        # The destination keeps its row id: a SCAN under way has returned it or will,
        # whereas the source's id may lie behind the cursor.
        dest_id, dest_type = row
        self._clear(dest_id, dest_type)
        self._x(
            "UPDATE keys SET type = ?, expire_at = ?, value = ?, "
            "size = (SELECT size FROM keys WHERE id = ?) WHERE id = ?",
            (int(key.type), key.expire_at, key.value, key.ref, dest_id),
        )
        if key.type is not KeyType.STRING:
            self._x("UPDATE members SET key_id = ? WHERE key_id = ?", (dest_id, key.ref))
        if key.type in ORDERED:
            self._x("UPDATE blocks SET key_id = ? WHERE key_id = ?", (dest_id, key.ref))
        if key.type is KeyType.HASH:  # its fields keep their expiries
            self._x("UPDATE hash_expiry SET key_id = ? WHERE key_id = ?", (dest_id, key.ref))
        self._x("DELETE FROM keys WHERE id = ?", (key.ref,))
        self._keys_added(-1)
        return Key(new_name, key.type, key.expire_at, key.value, dest_id)

    def copy(self, key: Key, new_name: bytes) -> Key:
        self.settle()
        dest = self.create(new_name, key.type, key.value, key.expire_at)
        if key.type is not KeyType.STRING:
            self._x(
                "INSERT INTO members (key_id, member, score, value) "
                "SELECT ?, member, score, value FROM members WHERE key_id = ? ORDER BY id",
                (dest.ref, key.ref),
            )
            self._x(
                "UPDATE keys SET size = (SELECT size FROM keys WHERE id = ?) WHERE id = ?",
                (key.ref, dest.ref),
            )
        if key.type in ORDERED:  # the same members: the same blocks
            self._x(
                "INSERT INTO blocks (key_id, score, member, n) SELECT ?, score, member, n FROM blocks WHERE key_id = ?",
                (dest.ref, key.ref),
            )
        if key.type is KeyType.HASH:  # the same field expiries
            self._x(
                "INSERT INTO hash_expiry (key_id, at) SELECT ?, at FROM hash_expiry WHERE key_id = ?",
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
        """The keys' rows, kept in ``keyspace`` (O(1)), less those expired and not yet
        deleted (found through the ``keys_expiry`` index: the sweeper and every write that
        meets one delete them, so these are few).

        Redis's DBSIZE is the size of its main dictionary, which holds an expired key until
        Redis notices (a command touching it, or its expiry cycle sampling it, ten times a
        second).  The difference is only in when a key is noticed: a read touching an
        expired key deletes it on Redis, while a SQLite reader cannot write; counting only
        live keys gives Redis's answer after any command has touched them, which is what a
        caller can rely on from Redis."""
        total = self._x("SELECT keys FROM keyspace WHERE id = 0").fetchone()[0]
        expired = self._x(
            "SELECT count(*) FROM keys WHERE expire_at IS NOT NULL AND expire_at <= ?", (self.now,)
        ).fetchone()[0]
        return int(total - expired)

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
        self.settle()
        self._x("DELETE FROM members")
        self._x("DELETE FROM blocks")
        self._x("DELETE FROM hash_expiry")
        self._x("DELETE FROM keys")
        self._x("UPDATE keyspace SET keys = 0 WHERE id = 0")

    def sweep(self, limit: int = 500) -> int:
        """Delete up to ``limit`` expired keys, then the expired fields of up to ``limit``
        hashes (a hash with its last field); the larger of the two counts, so that a
        full batch of either tells the sweeper to go again at once."""
        rows = self._x(
            "SELECT id, type FROM keys WHERE expire_at <= ? ORDER BY expire_at LIMIT ?", (self.now, limit)
        ).fetchall()
        for key_id, type_ in rows:
            self._drop(key_id, type_)
        due = self._x(
            "SELECT key_id FROM hash_expiry WHERE at <= ? ORDER BY at LIMIT ?", (self.now, limit)
        ).fetchall()
        for (key_id,) in due:
            if self._drop_expired_fields(key_id) == 0:
                self._drop(key_id, KeyType.HASH)
        return max(len(rows), len(due))

    # --- counts -----------------------------------------------------------------------
    #
    # A command that adds or removes many elements (HSET of 1,000 fields, RPUSH of 1,000
    # values) would write the key's count and a block's count once per element: that
    # doubled its cost.  So counts changed by put/remove are held in the unit (``_sizes``,
    # and, past DIRECT_SHIFTS elements of one key, ``_pending`` per block, found in a copy
    # of the key's block bounds) and written by ``settle()``: before anything that reads
    # counts or blocks or changes a key as a whole, and when the unit ends (the writer
    # thread and ``SqliteStore.unit`` call it before each job's savepoint is released).

    def settle(self) -> None:
        """Write the counts held in this unit."""
        if self._sizes:
            for key_id, delta in self._sizes.items():
                if delta:
                    self._x("UPDATE keys SET size = size + ? WHERE id = ?", (delta, key_id))
            self._sizes.clear()
        self._shifts.clear()
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        self._bounds.clear()
        for key_id, deltas in pending.items():
            odd = []
            for (score, member), delta in deltas.items():
                if delta:
                    n = self._x(
                        "UPDATE blocks SET n = n + ? WHERE key_id = ? AND score = ? AND member = ? RETURNING n",
                        (delta, key_id, score, member),
                    ).fetchone()[0]
                    if n > BLOCK_MAX or n < BLOCK_MIN:
                        odd.append((score, member))
            for score, member in odd:
                self._balance(key_id, score, member)

    def _size(self, key_id: object) -> int:
        self.settle()
        row = self._x("SELECT size FROM keys WHERE id = ?", (key_id,)).fetchone()
        return int(row[0]) if row else 0

    def count(self, key: Key) -> int:
        """The kept count; less, for a hash a read-only unit found stale, its expired
        fields (few: the sweeper and writers drop them), found through ``members_order``."""
        size = self._size(key.ref)
        if key.ref in self._stale:
            size -= self._x(
                "SELECT count(*) FROM members WHERE key_id = ? AND score > 0 AND score <= ?",
                (key.ref, self.now),
            ).fetchone()[0]
        return size

    # --- blocks (sorted sets and lists) ---------------------------------------------------

    def _batched(self, key_id: object) -> list[tuple[float, bytes]] | None:
        """The key's block bounds when its block counts are being held in this unit (from
        its DIRECT_SHIFTS-th changed element on), else None."""
        bounds = self._bounds.get(key_id)
        if bounds is not None:
            return bounds
        seen = self._shifts[key_id] = self._shifts.get(key_id, 0) + 1
        if seen <= DIRECT_SHIFTS:
            return None
        rows = self._x("SELECT score, member FROM blocks WHERE key_id = ? ORDER BY score, member", (key_id,))
        bounds = [(r[0], r[1]) for r in rows]
        if not bounds:
            self._x("INSERT INTO blocks (key_id, score, member, n) VALUES (?, ?, ?, 0)", (key_id, *FIRST))
            bounds = [FIRST]
        self._bounds[key_id] = bounds
        self._pending[key_id] = {}
        return bounds

    def _shift(
        self,
        key_id: object,
        score: float,
        member: bytes,
        delta: int,
        bounds: list[tuple[float, bytes]] | None,
    ) -> bool:
        """Add ``delta`` to the count of the block holding ``(score, member)``: held in the
        unit when ``bounds`` is given (see :meth:`_batched`), else written at once; whether
        that block now needs :meth:`_balance`.  A collection's first block is made with its
        first member."""
        if bounds is not None:
            bound = bounds[bisect_right(bounds, (score, member)) - 1]
            deltas = self._pending[key_id]
            deltas[bound] = deltas.get(bound, 0) + delta
            return False
        row = self._x(
            "UPDATE blocks SET n = n + ? WHERE key_id = ? AND (score, member) = "
            "(SELECT score, member FROM blocks WHERE key_id = ? AND (score, member) <= (?, ?) "
            "ORDER BY score DESC, member DESC LIMIT 1) RETURNING n",
            (delta, key_id, key_id, score, member),
        ).fetchone()
        if row is None:
            self._x(
                "INSERT INTO blocks (key_id, score, member, n) VALUES (?, ?, ?, ?)", (key_id, *FIRST, delta)
            )
            return False
        n = row[0]
        return bool(n > BLOCK_MAX or n < BLOCK_MIN)

    def _balance(self, key_id: object, score: float, member: bytes) -> None:
        """Split the block holding ``(score, member)`` if it is too big; merge it with a
        neighbour while it is too small (counts must agree with the rows when called)."""
        while True:
            bound_score, bound_member, n = self._x(
                "SELECT score, member, n FROM blocks WHERE key_id = ? AND (score, member) <= (?, ?) "
                "ORDER BY score DESC, member DESC LIMIT 1",
                (key_id, score, member),
            ).fetchone()
            if n > BLOCK_MAX:
                self._split(key_id, bound_score, bound_member, n)
                return
            if n >= BLOCK_MIN:
                return
            if (bound_score, bound_member) == FIRST:  # the first block takes in the next one
                nxt = self._x(
                    "SELECT score, member, n FROM blocks WHERE key_id = ? AND (score, member) > (?, ?) "
                    "ORDER BY score, member LIMIT 1",
                    (key_id, bound_score, bound_member),
                ).fetchone()
                if nxt is None:
                    return
                into, gone = (bound_score, bound_member), nxt
            else:  # any other goes into the one before it
                prev = self._x(
                    "SELECT score, member, n FROM blocks WHERE key_id = ? AND (score, member) < (?, ?) "
                    "ORDER BY score DESC, member DESC LIMIT 1",
                    (key_id, bound_score, bound_member),
                ).fetchone()
                into, gone = (prev[0], prev[1]), (bound_score, bound_member, n)
            self._x(
                "DELETE FROM blocks WHERE key_id = ? AND score = ? AND member = ?", (key_id, gone[0], gone[1])
            )
            self._x(
                "UPDATE blocks SET n = n + ? WHERE key_id = ? AND score = ? AND member = ?",
                (gone[2], key_id, *into),
            )
            # the merged block is checked again: too big, or still too small

    def _split(self, key_id: object, score: float, member: bytes, n: int) -> None:
        """Cut a block into ``n // BLOCK_FILL`` (at least 2) blocks of nearly equal
        counts, walking its members once."""
        parts = max(2, n // BLOCK_FILL)
        sizes = [n // parts + (i < n % parts) for i in range(parts)]
        self._x(
            "UPDATE blocks SET n = ? WHERE key_id = ? AND score = ? AND member = ?",
            (sizes[0], key_id, score, member),
        )
        for skip, size in pairwise(sizes):
            score, member = self._x(
                "SELECT score, member FROM members WHERE key_id = ? AND (score, member) >= (?, ?) "
                "ORDER BY score, member LIMIT 1 OFFSET ?",
                (key_id, score, member, skip),
            ).fetchone()
            self._x(
                "INSERT INTO blocks (key_id, score, member, n) VALUES (?, ?, ?, ?)",
                (key_id, score, member, size),
            )

    def _block_at(self, key_id: object, index: int) -> tuple[float, bytes, int]:
        """The bound of the block holding the ``index``-th member (0-based, in order) and
        how many members come before that block.  The counts are summed here, stopping at
        that block: measured at 100,000 members, 60 us for the middle, where a window
        function (``sum(n) OVER (ORDER BY ...)``) took 155 to 280 us."""
        self.settle()
        before = 0
        rows = self._x(
            "SELECT score, member, n FROM blocks WHERE key_id = ? ORDER BY score, member", (key_id,)
        ).fetchall()
        for score, member, n in rows:
            if before + n > index:
                return score, member, before
            before += n
        return (*FIRST, 0)

    # --- members --------------------------------------------------------------------

    def get(self, key: Key, member: bytes) -> Member | None:
        row = self._x(
            "SELECT member, value, score FROM members WHERE key_id = ? AND member = ?", (key.ref, member)
        ).fetchone()
        found = Member(*row) if row else None
        return None if self._hidden(key, found) else found

    def _counted(self, key_id: object, delta: int) -> None:
        self._sizes[key_id] = self._sizes.get(key_id, 0) + delta

    def put(self, key: Key, member: bytes, value: bytes = b"", score: float = 0.0) -> bool:
        cur = self._x(
            "INSERT INTO members (key_id, member, score, value) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key_id, member) DO NOTHING",
            (key.ref, member, score, value),
        )
        if score and key.type is KeyType.HASH:  # a field expiry: the hash is due by then
            self._x(
                "INSERT INTO hash_expiry (key_id, at) VALUES (?, ?) "
                "ON CONFLICT (key_id) DO UPDATE SET at = min(at, excluded.at)",
                (key.ref, int(score)),
            )
        ordered = key.type in ORDERED
        if cur.rowcount:
            self._counted(key.ref, 1)
            if ordered and self._shift(key.ref, score, member, 1, self._batched(key.ref)):
                self._balance(key.ref, score, member)
            return True
        if ordered:
            old = self._x(
                "SELECT score FROM members WHERE key_id = ? AND member = ?", (key.ref, member)
            ).fetchone()[0]
        self._x(
            "UPDATE members SET score = ?, value = ? WHERE key_id = ? AND member = ?",
            (score, value, key.ref, member),
        )
        if ordered and old != score:  # the member moves: it may change blocks
            bounds = self._batched(key.ref)
            left = self._shift(key.ref, old, member, -1, bounds)
            joined = self._shift(key.ref, score, member, 1, bounds)
            if left:  # both counts first: a balance reads the rows
                self._balance(key.ref, old, member)
            if joined or left:
                self._balance(key.ref, score, member)
        return False

    def remove(self, key: Key, member: bytes) -> bool:
        if key.type not in ORDERED:
            cur = self._x("DELETE FROM members WHERE key_id = ? AND member = ?", (key.ref, member))
            if cur.rowcount:
                self._counted(key.ref, -1)
            return cur.rowcount > 0
        row = self._x(
            "DELETE FROM members WHERE key_id = ? AND member = ? RETURNING score", (key.ref, member)
        ).fetchone()
        if row is None:
            return False
        self._counted(key.ref, -1)
        if self._shift(key.ref, row[0], member, -1, self._batched(key.ref)):
            self._balance(key.ref, row[0], member)
        return True

    def remove_many(self, key: Key, members: Iterable[bytes]) -> int:
        """Many at once: one ``executemany``, then the count once; for a sorted set or a
        list, blocks rebuilt in one statement when that costs less than keeping them one
        member at a time (more than 1/:data:`REBUILD_RATIO` of the collection)."""
        doomed = list(members)
        if key.type in ORDERED and (len(doomed) <= 8 or len(doomed) * REBUILD_RATIO <= self._size(key.ref)):
            return sum(self.remove(key, m) for m in doomed)
        self.settle()
        removed = self.conn.executemany(
            "DELETE FROM members WHERE key_id = ? AND member = ?", ((key.ref, m) for m in doomed)
        ).rowcount
        if removed:
            self._x("UPDATE keys SET size = size - ? WHERE id = ?", (removed, key.ref))
            if key.type in ORDERED:
                _build_blocks(self.conn, key.ref)  # type: ignore[arg-type]
        return removed

    def members(self, key: Key) -> list[Member]:
        rows = self._x("SELECT member, value, score FROM members WHERE key_id = ? ORDER BY id", (key.ref,))
        found = [Member(*r) for r in rows]
        return [m for m in found if not self._hidden(key, m)] if key.ref in self._stale else found

    def _walk(self, key_id: object, offset: int, limit: int, rev: bool) -> list[Member]:
        order = "score DESC, member DESC" if rev else "score, member"
        rows = self._x(
            f"SELECT member, value, score FROM members WHERE key_id = ? ORDER BY {order} LIMIT ? OFFSET ?",
            (key_id, limit, offset),
        )
        return [Member(*r) for r in rows]

    def ordered(self, key: Key, offset: int = 0, limit: int = -1, rev: bool = False) -> list[Member]:
        if offset < 0:
            return []
        if offset < BLOCK_MAX or key.type not in ORDERED:
            return self._walk(key.ref, offset, limit, rev)
        size = self._size(key.ref)
        if offset >= size:
            return []
        if limit < 0 or limit > size - offset:
            limit = size - offset
        # the same elements counted from the other end: start there when that is close
        other = size - offset - limit
        if other < BLOCK_MAX:
            return self._walk(key.ref, other, limit, not rev)[::-1]
        start = other if rev else offset
        score, member, before = self._block_at(key.ref, start)
        rows = self._x(
            "SELECT member, value, score FROM members WHERE key_id = ? AND (score, member) >= (?, ?) "
            "ORDER BY score, member LIMIT ? OFFSET ?",
            (key.ref, score, member, limit, start - before),
        )
        found = [Member(*r) for r in rows]
        return found[::-1] if rev else found

    def member_scan(self, key: Key, cursor: int, count: int) -> tuple[int, list[Member]]:
        if cursor > _MAX_ROWID:
            return 0, []
        rows = self._x(
            "SELECT id, member, value, score FROM members WHERE key_id = ? AND id > ? ORDER BY id LIMIT ?",
            (key.ref, cursor, count),
        ).fetchall()
        nxt = rows[-1][0] if len(rows) == count else 0
        page = [Member(*r[1:]) for r in rows]
        return nxt, [m for m in page if not self._hidden(key, m)] if key.ref in self._stale else page

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
        """ZCOUNT: two positions, as ZRANK finds them (the engine has ruled out empty
        ranges)."""
        if key.type not in ORDERED:
            cond, bounds = self._range(low, high)
            return self._x(
                f"SELECT count(*) FROM members WHERE key_id = ? AND {cond}", (key.ref, *bounds)
            ).fetchone()[0]
        size = self._size(key.ref)
        return max(
            0,
            self._scores_below(key, high.value, not high.open, size)
            - self._scores_below(key, low.value, low.open, size),
        )

    def _scores_below(self, key: Key, score: float, inclusive: bool, size: int) -> int:
        """How many members score below ``score`` (at or below it with ``inclusive``):
        the position of ``(score, b"")``, the least pair with that score, or of the next
        float's."""
        if inclusive:
            if score == math.inf:
                return size
            score = math.nextafter(score, math.inf)
        return self._position(key, score, b"", size)

    def _position(self, key: Key, score: float, member: bytes, size: int) -> int:
        """How many members come before ``(score, member)``: the counts of the blocks
        before its block, plus the members before it in that block."""
        if key.type in ORDERED and size > BLOCK_MAX:
            bound_score, bound_member = self._x(
                "SELECT score, member FROM blocks WHERE key_id = ? AND (score, member) <= (?, ?) "
                "ORDER BY score DESC, member DESC LIMIT 1",
                (key.ref, score, member),
            ).fetchone()
            before = self._x(
                "SELECT coalesce(sum(n), 0) FROM blocks WHERE key_id = ? AND (score, member) < (?, ?)",
                (key.ref, bound_score, bound_member),
            ).fetchone()[0]
        else:
            bound_score, bound_member, before = *FIRST, 0
        within = self._x(
            "SELECT count(*) FROM members WHERE key_id = ? AND (score, member) >= (?, ?) "
            "AND (score, member) < (?, ?)",
            (key.ref, bound_score, bound_member, score, member),
        ).fetchone()[0]
        return int(before + within)

    def rank(self, key: Key, member: bytes, rev: bool = False) -> int | None:
        found = self.get(key, member)
        if found is None:
            return None
        size = self._size(key.ref)
        position = self._position(key, found.score, member, size)
        return size - 1 - position if rev else position

    # --- scripts --------------------------------------------------------------------

    def script_get(self, sha: bytes) -> bytes | None:
        row = self._x("SELECT body FROM scripts WHERE sha = ?", (sha,)).fetchone()
        return row[0] if row else None

    def script_put(self, sha: bytes, body: bytes) -> None:
        self._x("INSERT INTO scripts (sha, body) VALUES (?, ?) ON CONFLICT (sha) DO NOTHING", (sha, body))

    def script_flush(self) -> None:
        self._x("DELETE FROM scripts")

    # --- pub/sub (kvgate.adapters.sqlite_pubsub) ----------------------------------------

    def publish(self, channel: bytes, message: bytes) -> int:
        return sqlite_pubsub.publish(self, channel, message)

    def subscriptions(self) -> Subscriptions:
        return sqlite_pubsub.subscriptions(self)


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
        sqlite_pubsub.create_tables(self.writer)
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
            t = SqliteTxn(conn, now_ms() if now is None else now, write, self.scripting)
            yield t
            t.settle()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        sqlite_pubsub.wake(t.wakeups)

    def close(self) -> None:
        self.writer.close()
        self.close_reader()
