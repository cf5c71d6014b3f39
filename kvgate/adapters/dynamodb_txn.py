"""One unit of work on DynamoDB, run by the engine on a snapshot in memory.

DynamoDB has no transaction that spans reads, computation and writes, so a unit is
optimistic: the backend reads the unit's keys, the engine runs the commands on this
:class:`SnapshotTxn` (synchronously, in memory), and the backend writes back what changed
with conditions on the version tokens of everything the unit read.  If another writer got
there first, a condition fails and the whole unit runs again on fresh data.

When the engine asks for something the snapshot lacks (a key no key spec named, as in a
Lua script, a cached script, a page of the keyspace), :class:`Need` is raised: the backend
fetches it and runs the unit again from the start, so the engine never waits on I/O.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from kvgate.adapters.dynamodb_items import MAX_KEY_NAME_BYTES, Entry, expired
from kvgate.engine.scripting import Scripting
from kvgate.engine.storage import Key, KeyType, Member, Txn


class Need(Exception):
    """The unit needs ``request`` fetched: ``("key", name)``, ``("script", sha)``,
    ``("scan", cursor, count)``, ``("keys",)`` or ``("random",)``."""

    def __init__(self, request: tuple[Hashable, ...]) -> None:
        super().__init__(request)
        self.request = request


@dataclass
class Snapshot:
    """What the backend has fetched for a unit (kept across its re-runs)."""

    entries: dict[bytes, Entry | None] = field(default_factory=dict)  # None: absent
    tokens: dict[bytes, bytes | None] = field(default_factory=dict)  # None: no item at all
    scripts: dict[bytes, bytes | None] = field(default_factory=dict)
    keyspace: dict[tuple[Hashable, ...], object] = field(default_factory=dict)


class SnapshotTxn(Txn):
    """The engine's view of a unit.  Changes stay here until the backend writes them."""

    backend = "dynamodb"  # for error texts

    def __init__(self, snapshot: Snapshot, now: int, writable: bool, scripting: Scripting) -> None:
        self.now = now
        self.writable = writable
        self.scripting = scripting
        self.snapshot = snapshot
        # the unit's working copy: decoded entries are fresh per run, so changes in place
        # never leak into the snapshot the next run starts from
        self.entries: dict[bytes, Entry | None] = {}
        self.dirty: set[bytes] = set()
        self.flushed = False
        self.scripts_put: dict[bytes, bytes] = {}
        self.scripts_flushed = False

    # --- the working copy ------------------------------------------------------------

    def _entry(self, name: bytes) -> Entry | None:
        """The live entry for ``name``, fetched into the working copy."""
        if name in self.entries:
            entry = self.entries[name]
        elif self.flushed or len(name) > MAX_KEY_NAME_BYTES:
            return None  # gone with the flush / a name DynamoDB cannot hold
        elif name in self.snapshot.entries:
            entry = _copy(self.snapshot.entries[name])
            self.entries[name] = entry
        else:
            raise Need(("key", name))
        return None if entry is None or expired(entry, self.now) else entry

    def _changed(self, name: bytes) -> None:
        if not self.writable:
            raise RuntimeError("a read-only unit tried to write")
        self.dirty.add(name)

    def _members(self, key: Key) -> dict[bytes, Member]:
        entry = self.entries[key.name]
        assert entry is not None and entry.key is key, "a key from another unit"
        return entry.members

    # --- keyspace --------------------------------------------------------------------

    def lookup(self, name: bytes) -> Key | None:
        entry = self._entry(name)
        return entry.key if entry else None

    def create(
        self, name: bytes, type: KeyType, value: bytes | None = None, expire_at: int | None = None
    ) -> Key:
        assert self._entry(name) is None, "create() on a live key"
        key = Key(name, type, expire_at, value)
        self.entries[name] = Entry(key)
        self._changed(name)
        return key

    def set_string(self, name: bytes, value: bytes, expire_at: int | None) -> Key:
        # A blind write (SET k v): whatever was there goes, so it is not read.  A key the
        # unit never read is written without a condition; units that did read it find
        # their condition broken and run again.
        key = Key(name, KeyType.STRING, expire_at, value)
        self.entries[name] = Entry(key)
        self._changed(name)
        return key

    def set_expire(self, key: Key, expire_at: int | None) -> None:
        key.expire_at = expire_at
        self._changed(key.name)

    def delete(self, key: Key) -> None:
        self.entries[key.name] = None
        self._changed(key.name)

    def rename(self, key: Key, new_name: bytes) -> Key:
        entry = self.entries[key.name]
        self._entry(new_name)  # its version token is needed to replace it
        self.entries[key.name] = None
        self._changed(key.name)
        assert entry is not None
        entry.key.name = new_name
        self.entries[new_name] = entry
        self._changed(new_name)
        return entry.key

    def copy(self, key: Key, new_name: bytes) -> Key:
        self._entry(new_name)
        source = self.entries[key.name]
        assert source is not None
        dest = Key(new_name, key.type, key.expire_at, key.value)
        self.entries[new_name] = Entry(dest, dict(source.members))
        self._changed(new_name)
        return dest

    def _from_keyspace(self, request: tuple[Hashable, ...]) -> object:
        if request not in self.snapshot.keyspace:
            raise Need(request)
        return self.snapshot.keyspace[request]

    def scan(self, cursor: int, count: int) -> tuple[int, list[Key]]:
        if self.flushed:
            return 0, []
        page = self._from_keyspace(("scan", cursor, count))
        assert isinstance(page, tuple)
        nxt, keys = page
        return nxt, [k for k in keys if not _dead(k, self.now)]

    def keys(self) -> list[Key]:  # type: ignore[override]
        if self.flushed:
            return []
        keys: list[Key] = self._from_keyspace(("keys",))  # type: ignore[assignment]
        return [k for k in keys if not _dead(k, self.now)]

    def dbsize(self) -> int:
        return len(self.keys())  # a full scan either way: DynamoDB's item count lags by hours

    def random_key(self) -> Key | None:
        return None if self.flushed else self._from_keyspace(("random",))  # type: ignore[return-value]

    def flush(self) -> None:
        if not self.writable:
            raise RuntimeError("a read-only unit tried to write")
        self.flushed = True
        for name in list(self.entries) + list(self.snapshot.entries):
            self.entries[name] = None
            self.dirty.add(name)

    # --- members ---------------------------------------------------------------------

    def get(self, key: Key, member: bytes) -> Member | None:
        return self._members(key).get(member)

    def put(self, key: Key, member: bytes, value: bytes = b"", score: float = 0.0) -> bool:
        members = self._members(key)
        new = member not in members
        members[member] = Member(member, value, score)
        self._changed(key.name)
        return new

    def remove(self, key: Key, member: bytes) -> bool:
        removed = self._members(key).pop(member, None) is not None
        if removed:
            self._changed(key.name)
        return removed

    def count(self, key: Key) -> int:
        return len(self._members(key))

    def members(self, key: Key) -> list[Member]:
        return list(self._members(key).values())

    def ordered(self, key: Key, offset: int = 0, limit: int = -1, rev: bool = False) -> list[Member]:
        if offset < 0:
            return []
        items = sorted(self._members(key).values(), key=lambda m: (m.score, m.member), reverse=rev)
        return items[offset:] if limit < 0 else items[offset : offset + limit]

    def member_scan(self, key: Key, cursor: int, count: int) -> tuple[int, list[Member]]:
        items = list(self._members(key).values())
        nxt = cursor + count
        return (0 if nxt >= len(items) else nxt), items[cursor:nxt]

    # --- scripts ---------------------------------------------------------------------

    def script_get(self, sha: bytes) -> bytes | None:
        if sha in self.scripts_put:
            return self.scripts_put[sha]
        if self.scripts_flushed:
            return None
        if sha not in self.snapshot.scripts:
            raise Need(("script", sha))
        return self.snapshot.scripts[sha]

    def script_put(self, sha: bytes, body: bytes) -> None:
        if self.scripts_flushed or self.snapshot.scripts.get(sha) != body:
            self.scripts_put[sha] = body

    def script_flush(self) -> None:
        self.scripts_flushed = True
        self.scripts_put.clear()

    # --- for the backend -------------------------------------------------------------

    def read_names(self) -> list[bytes]:
        """Every key the unit looked at (the ones whose versions it depends on)."""
        return list(self.entries)


def _copy(entry: Entry | None) -> Entry | None:
    if entry is None:
        return None
    k = entry.key
    return Entry(Key(k.name, k.type, k.expire_at, k.value), dict(entry.members))


def _dead(key: Key, now: int) -> bool:
    return key.expire_at is not None and key.expire_at <= now
