"""The storage interface the command engine runs on.

The engine gives Redis semantics; a store only keeps keys and their members.  Every
command (or a whole ``/multi-exec``) runs inside one :class:`Txn`, an atomic unit the store
provides: SQLite runs it as one ``BEGIN IMMEDIATE`` transaction on its writer thread,
DynamoDB as reads followed by conditional writes.  Methods are synchronous on purpose: a
store runs the whole unit where its data is (a thread owning a connection), never one
``await`` per statement.

Model
-----
A key has a type, an optional expiry (ms since the epoch) and, for strings, a value.
Collections keep one row per element, a :class:`Member`: ``(member, value, score)``.

* hash: ``member`` = field, ``value`` = value, ``score`` = the field's expiry (ms since
  the epoch, Redis 7.4's field expiration), 0 for none
* set: ``member`` = element, ``value`` empty, ``score`` unused (0)
* sorted set: ``member`` = element, ``score`` = score, ``value`` empty
* list: ``score`` = position (a float, ordered), ``member`` = the position packed by the
  engine (unique per element), ``value`` = element
* stream: ``member`` = the entry's ID packed big-endian, ``score`` = its milliseconds,
  ``value`` = its fields; its state, nodes and pending entries are members with negative
  scores (:mod:`kvgate.engine.stream_layout`)
* document (``KeyType.JSON``): no members; ``Key.value`` is the whole document, serialized
  (a store keeps ``value`` for any type, as for strings)

Ordering contracts the engine relies on:

* :meth:`Txn.members` returns elements in insertion order (an update in place keeps the
  position), as Redis does for small hashes.
* :meth:`Txn.ordered` returns elements by ``(score, member)``, members compared as bytes.

Expired keys are invisible: :meth:`Txn.lookup` never returns one, and :meth:`Txn.create`
replaces one.  Expired hash fields are invisible too, to every member method (``get``,
``members``, ``member_scan``, ``count``, ``remove``), and a hash whose fields have all
expired is an expired key.  A store drops expired fields when it can (a writable unit's
lookup, a background sweep); a read-only unit hides them.

The ``*_`` methods with a default implementation are optional: a store with indexes
overrides them, a simple store inherits the scan over :meth:`ordered`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kvgate.engine.pubsub import Subscriptions
    from kvgate.engine.scripting.state import Scripting


class KeyType(IntEnum):
    STRING = 0
    LIST = 1
    SET = 2
    ZSET = 3
    HASH = 4
    #: A document (JSON.*): ``Key.value`` holds it whole, serialized; no members.
    JSON = 5
    #: A stream: entries, listpack nodes, its state and its groups' pending entries are
    #: members told apart by score (see :mod:`kvgate.engine.stream_layout`).
    STREAM = 6

    @property
    def redis_name(self) -> bytes:
        return _TYPE_NAMES[self]

    @classmethod
    def from_redis_name(cls, name: bytes) -> KeyType | None:
        return _BY_NAME.get(name.lower())


_TYPE_NAMES = {
    KeyType.STRING: b"string",
    KeyType.LIST: b"list",
    KeyType.SET: b"set",
    KeyType.ZSET: b"zset",
    KeyType.HASH: b"hash",
    KeyType.JSON: b"ReJSON-RL",
    KeyType.STREAM: b"stream",
}
_BY_NAME = {v.lower(): k for k, v in _TYPE_NAMES.items()}


@dataclass(slots=True)
class Key:
    """A live key.  ``ref`` is the store's handle (a row id, an item); the engine passes it
    back untouched."""

    name: bytes
    type: KeyType
    expire_at: int | None  # ms since the epoch
    value: bytes | None  # strings, and documents (their JSON)
    ref: object = None


@dataclass(slots=True, frozen=True)
class Member:
    member: bytes
    value: bytes
    score: float


@dataclass(slots=True, frozen=True)
class ScoreBound:
    """One end of a score range: ``value`` with ``open`` meaning exclusive (``(1.5``)."""

    value: float
    open: bool = False

    def below(self, score: float) -> bool:
        """Whether ``score`` lies at or above this lower bound."""
        return score > self.value if self.open else score >= self.value

    def above(self, score: float) -> bool:
        """Whether ``score`` lies at or below this upper bound."""
        return score < self.value if self.open else score <= self.value


class Txn(ABC):
    """One atomic unit of work on one database.  ``now`` is fixed for the unit (ms)."""

    now: int
    #: False for units that may only read (they run on read-only connections).
    writable: bool
    #: The database's scripting in this process (Lua runtimes, limits, scripts a
    #: read-only unit could not store): the store gives every unit of one database
    #: the same object, and two databases never share one.
    scripting: Scripting

    # --- keyspace -------------------------------------------------------------------

    @abstractmethod
    def lookup(self, name: bytes) -> Key | None:
        """The live key, or None (missing or expired)."""

    @abstractmethod
    def create(
        self, name: bytes, type: KeyType, value: bytes | None = None, expire_at: int | None = None
    ) -> Key:
        """Create a key that is not live (an expired one is replaced)."""

    @abstractmethod
    def set_string(self, name: bytes, value: bytes, expire_at: int | None) -> Key:
        """Make ``name`` a string holding ``value``, replacing whatever was there."""

    def set_value(self, key: Key, value: bytes) -> Key:
        """Replace the value of a live key that keeps no members (a document), keeping its
        type and expiry.  A store that can change the value in place overrides this."""
        self.delete(key)
        return self.create(key.name, key.type, value, key.expire_at)

    @abstractmethod
    def set_expire(self, key: Key, expire_at: int | None) -> None: ...

    @abstractmethod
    def delete(self, key: Key) -> None:
        """Remove a live key and all its members."""

    @abstractmethod
    def rename(self, key: Key, new_name: bytes) -> Key:
        """Move ``key`` (members and expiry included) to ``new_name``, replacing it."""

    def copy(self, key: Key, new_name: bytes) -> Key:
        """Copy ``key`` to ``new_name`` (which the engine has made free)."""
        dest = self.create(new_name, key.type, key.value, key.expire_at)
        for m in self.members(key):
            self.put(dest, m.member, m.value, m.score)
        return dest

    @abstractmethod
    def scan(self, cursor: int, count: int) -> tuple[int, list[Key]]:
        """About ``count`` live keys from ``cursor`` on; cursor 0 starts and ends a scan.
        Every key live for the whole scan is returned at least once."""

    def keys(self) -> Iterator[Key]:
        cursor = 0
        while True:
            cursor, page = self.scan(cursor, 1000)
            yield from page
            if cursor == 0:
                return

    @abstractmethod
    def dbsize(self) -> int: ...

    @abstractmethod
    def random_key(self) -> Key | None: ...

    @abstractmethod
    def flush(self) -> None: ...

    # --- members --------------------------------------------------------------------

    @abstractmethod
    def get(self, key: Key, member: bytes) -> Member | None: ...

    @abstractmethod
    def put(self, key: Key, member: bytes, value: bytes = b"", score: float = 0.0) -> bool:
        """Insert or update one element; True when it is new."""

    @abstractmethod
    def remove(self, key: Key, member: bytes) -> bool:
        """Remove one element; True when it was there.  The engine deletes the key when
        the last element goes."""

    @abstractmethod
    def count(self, key: Key) -> int: ...

    @abstractmethod
    def members(self, key: Key) -> list[Member]:
        """All elements in insertion order."""

    @abstractmethod
    def ordered(self, key: Key, offset: int = 0, limit: int = -1, rev: bool = False) -> list[Member]:
        """Elements by ``(score, member)`` (descending with ``rev``), from ``offset``,
        at most ``limit`` of them (-1: all)."""

    @abstractmethod
    def member_scan(self, key: Key, cursor: int, count: int) -> tuple[int, list[Member]]:
        """Like :meth:`scan`, over one collection, in insertion order."""

    # --- optional, indexed in real stores --------------------------------------------

    def by_score(
        self,
        key: Key,
        low: ScoreBound,
        high: ScoreBound,
        offset: int = 0,
        limit: int = -1,
        rev: bool = False,
    ) -> list[Member]:
        """Elements with ``low <= score <= high`` (bounds as given), in order."""
        found = [m for m in self.ordered(key, rev=rev) if low.below(m.score) and high.above(m.score)]
        return _window(found, offset, limit)

    def count_by_score(self, key: Key, low: ScoreBound, high: ScoreBound) -> int:
        return len(self.by_score(key, low, high))

    def rank(self, key: Key, member: bytes, rev: bool = False) -> int | None:
        """0-based position of ``member`` by ``(score, member)``."""
        for i, m in enumerate(self.ordered(key, rev=rev)):
            if m.member == member:
                return i
        return None

    def remove_many(self, key: Key, members: Iterable[bytes]) -> int:
        return sum(self.remove(key, m) for m in members)

    # --- the script cache (EVALSHA), shared by every process on the store ---------------

    @abstractmethod
    def script_get(self, sha: bytes) -> bytes | None:
        """The body of a cached script by its lower-case hex SHA1."""

    @abstractmethod
    def script_put(self, sha: bytes, body: bytes) -> None: ...

    @abstractmethod
    def script_flush(self) -> None: ...

    # --- pub/sub: the database's subscribers, wherever the store knows them ------------

    @abstractmethod
    def publish(self, channel: bytes, message: bytes) -> int:
        """Send ``message`` to ``channel``'s subscribers once this unit commits (never if
        it does not); how many subscriptions will receive it (kvgate.engine.pubsub)."""

    @abstractmethod
    def subscriptions(self) -> Subscriptions:
        """The database's live channel and pattern subscriptions (PUBSUB)."""


def _window(items: list[Member], offset: int, limit: int) -> list[Member]:
    if offset < 0:
        return []
    return items[offset:] if limit < 0 else items[offset : offset + limit]
