"""One unit of work on DynamoDB, run by the engine on a snapshot in memory.

DynamoDB has no transaction that spans reads, computation and writes, so a unit is
optimistic: the backend reads the unit's keys (their head items), the engine runs the
commands on this :class:`SnapshotTxn` (synchronously, in memory), and the backend writes
back what changed with conditions on the version tokens of everything the unit read.  If
another writer got there first, a condition fails and the whole unit runs again on fresh
data.

When the engine asks for something the snapshot lacks, :class:`Need` is raised: the
backend fetches it and runs the unit again from the start, so the engine never waits on
I/O.  What can be needed: a key no key spec named (a Lua script's), a cached script, a
page of the keyspace, and, of a spilled collection (one item per element), one element,
all of them, or the first elements in order.  Every write of a collection replaces its
head's version token, so the head's version also vouches for the elements read.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field

from kvgate.adapters.dynamodb_items import MAX_KEY_NAME_BYTES, Entry, earliest_expiry, expired
from kvgate.engine.pubsub import LocalHub, Subscriptions
from kvgate.engine.scripting import Scripting
from kvgate.engine.storage import Key, KeyType, Member, ScoreBound, Txn

#: The element requests (the rest are keyspace requests).
ELEMENT_REQUESTS = frozenset({"member", "members", "range", "byscore"})


class Need(Exception):
    """The unit needs ``request`` fetched: ``("key", name)``, ``("script", sha)``,
    ``("scan", cursor, count)``, ``("keys",)``, ``("random",)``; of a spilled collection:
    ``("member", name, member)``, ``("members", name)``, ``("range", name, rev, n)`` (its
    first ``n`` elements in order) or ``("byscore", name, low, low_open, high, high_open,
    rev, n)`` (``n`` -1: all)."""

    def __init__(self, request: tuple[Hashable, ...]) -> None:
        super().__init__(request)
        self.request = request


@dataclass
class Stored:
    """What the backend has read of one spilled collection (of the generation its head
    named when read)."""

    members: dict[bytes, Member | None] = field(default_factory=dict)  # None: known absent
    complete: bool = False  # members holds every element, in storage order
    #: by direction (rev): the first elements in order, and whether that is all of them
    ranges: dict[bool, tuple[list[Member], bool]] = field(default_factory=dict)
    #: by (low, low_open, high, high_open, rev): elements in that score range, in order
    by_score: dict[tuple[float, bool, float, bool, bool], tuple[list[Member], bool]] = field(
        default_factory=dict
    )
    reads: int = 0  # element fetches so far (the second one fetches every candidate)


@dataclass
class Snapshot:
    """What the backend has fetched for a unit (kept across its re-runs)."""

    entries: dict[bytes, Entry | None] = field(default_factory=dict)  # None: absent
    tokens: dict[bytes, bytes | None] = field(default_factory=dict)  # None: no item at all
    scripts: dict[bytes, bytes | None] = field(default_factory=dict)
    keyspace: dict[tuple[Hashable, ...], object] = field(default_factory=dict)
    elements: dict[bytes, Stored] = field(default_factory=dict)  # spilled collections

    def stored(self, name: bytes) -> Stored:
        found = self.elements.get(name)
        if found is None:
            found = self.elements[name] = Stored()
        return found


class SnapshotTxn(Txn):
    """The engine's view of a unit.  Changes stay here until the backend writes them."""

    backend = "dynamodb"  # for error texts

    def __init__(
        self, snapshot: Snapshot, now: int, writable: bool, scripting: Scripting, hub: LocalHub | None = None
    ) -> None:
        self.now = now
        self.writable = writable
        self.scripting = scripting
        self.snapshot = snapshot
        #: pub/sub: this process's subscribers, and what the unit publishes, delivered
        #: by the backend once the unit has committed
        self.hub = hub if hub is not None else LocalHub()
        self.published: list[tuple[bytes, bytes]] = []
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
        if entry is None or expired(entry, self.now):
            return None
        due = entry.field_expiry is not None and entry.field_expiry <= self.now
        if due and not self._drop_expired(entry):
            return None  # its last field expired: the hash goes, as in Redis
        return entry

    def _drop_expired(self, entry: Entry) -> int:
        """Drop a hash's expired fields from the working copy (a spilled hash is read
        whole first) and make its ``field_expiry`` exact; a writable unit writes that
        back.  How many fields are left (none: the key is gone from the working copy)."""
        name = entry.key.name
        members = self._members(entry.key)
        gone = [m for m in members.values() if m.score and m.score <= self.now]
        for m in gone:
            if entry.spilled:
                entry.changes[m.member] = None
                entry.count -= 1
            else:
                del entry.members[m.member]
        entry.field_expiry = earliest_expiry(m for m in members.values() if not m.score or m.score > self.now)
        if self.writable:
            self.dirty.add(name)
        left = entry.count if entry.spilled else len(entry.members)
        if not left:
            self.entries[name] = None
        return left

    def _changed(self, name: bytes) -> None:
        if not self.writable:
            raise RuntimeError("a read-only unit tried to write")
        self.dirty.add(name)

    def _live(self, key: Key) -> Entry:
        entry = self.entries[key.name]
        assert entry is not None and entry.key is key, "a key from another unit"
        return entry

    def _members(self, key: Key) -> dict[bytes, Member]:
        """An inline entry's elements; a spilled one's, all read (in storage order, the
        unit's changes applied)."""
        entry = self._live(key)
        if not entry.spilled:
            return entry.members
        self._from_keyspace(("members", key.name))
        stored = self.snapshot.stored(key.name)
        out: dict[bytes, Member] = {}
        for member, m in stored.members.items():
            now = entry.changes.get(member, m) if member in entry.changes else m
            if now is not None:
                out[member] = now
        for member, m in entry.changes.items():
            if m is not None and member not in out:
                out[member] = m
        return out

    def _element(self, entry: Entry, member: bytes, fetch: bool = True) -> Member | None:
        """One element of a spilled collection (fetched unless ``fetch`` is False)."""
        if member in entry.changes:
            return entry.changes[member]
        stored = self.snapshot.stored(entry.key.name)
        if member in stored.members or stored.complete or not fetch:
            return stored.members.get(member)
        return self._from_keyspace(("member", entry.key.name, member))  # type: ignore[return-value]

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
        self._entry(new_name)  # its version token is needed to replace it
        entry = self._live(key)
        moved = Entry(Key(new_name, key.type, key.expire_at, key.value), dict(self._members(key)))
        if key.type is KeyType.HASH:  # a hash's fields keep their expiries
            moved.field_expiry = earliest_expiry(moved.members.values())
        self.entries[key.name] = None
        self._changed(key.name)
        self.entries[new_name] = moved
        self._changed(new_name)
        del entry
        return moved.key

    def copy(self, key: Key, new_name: bytes) -> Key:
        self._entry(new_name)
        dest = Key(new_name, key.type, key.expire_at, key.value)
        members = dict(self._members(key))
        expiry = earliest_expiry(members.values()) if key.type is KeyType.HASH else None
        self.entries[new_name] = Entry(dest, members, field_expiry=expiry)
        self._changed(new_name)
        return dest

    def _from_keyspace(self, request: tuple[Hashable, ...]) -> object:
        """What the snapshot holds for ``request`` (a keyspace or an element request),
        or :class:`Need` of it."""
        kind = request[0]
        if kind in ELEMENT_REQUESTS:
            found = _element_answer(self.snapshot, request)
            if found is _MISSING:
                raise Need(request)
            return found
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
        entry = self._live(key)
        if entry.spilled:
            return self._element(entry, member)
        return entry.members.get(member)

    def put(self, key: Key, member: bytes, value: bytes = b"", score: float = 0.0) -> bool:
        entry = self._live(key)
        m = Member(member, value, score)
        if not entry.spilled:
            new = member not in entry.members
            entry.members[member] = m
        else:
            # a list position the unit has not read is a fresh one (the engine puts only
            # positions it read or made between / beyond those it read)
            new = self._element(entry, member, fetch=key.type is not KeyType.LIST) is None
            entry.changes[member] = m
            entry.count += new
        if score and key.type is KeyType.HASH and (entry.field_expiry is None or score < entry.field_expiry):
            entry.field_expiry = int(score)  # a field expiry: the earliest so far
        self._changed(key.name)
        return new

    def remove(self, key: Key, member: bytes) -> bool:
        entry = self._live(key)
        if not entry.spilled:
            removed = entry.members.pop(member, None) is not None
        else:
            removed = self._element(entry, member) is not None
            if removed:
                entry.changes[member] = None
                entry.count -= 1
        if removed:
            self._changed(key.name)
        return removed

    def count(self, key: Key) -> int:
        entry = self._live(key)
        return entry.count if entry.spilled else len(entry.members)

    def members(self, key: Key) -> list[Member]:
        return list(self._members(key).values())

    def ordered(self, key: Key, offset: int = 0, limit: int = -1, rev: bool = False) -> list[Member]:
        if offset < 0:
            return []
        entry = self._live(key)
        stored = self.snapshot.stored(key.name) if entry.spilled else None
        if stored is None or limit < 0 or stored.complete or key.type not in _RANGED:
            items = sorted(self._members(key).values(), key=_order, reverse=rev)
            return items[offset:] if limit < 0 else items[offset : offset + limit]
        # the first offset + limit in order: as many more from storage as the unit changed
        want = offset + limit + len(entry.changes)
        first: list[Member] = self._from_keyspace(("range", key.name, bool(rev), want))[0]  # type: ignore[index]
        merged = self._merge(entry, first[:want], lambda m: True, rev)
        return merged[offset : offset + limit]

    def by_score(
        self,
        key: Key,
        low: ScoreBound,
        high: ScoreBound,
        offset: int = 0,
        limit: int = -1,
        rev: bool = False,
    ) -> list[Member]:
        entry = self._live(key)
        if not entry.spilled or self.snapshot.stored(key.name).complete or offset < 0:
            return super().by_score(key, low, high, offset, limit, rev)
        want = -1 if limit < 0 else offset + limit + len(entry.changes)
        request = (
            "byscore",
            key.name,
            low.value,
            bool(low.open),
            high.value,
            bool(high.open),
            bool(rev),
            want,
        )
        found: list[Member] = self._from_keyspace(request)[0]  # type: ignore[index]
        merged = self._merge(
            entry,
            found if want < 0 else found[:want],
            lambda m: low.below(m.score) and high.above(m.score),
            rev,
        )
        return merged[offset:] if limit < 0 else merged[offset : offset + limit]

    @staticmethod
    def _merge(entry: Entry, stored: list[Member], keep: object, rev: bool) -> list[Member]:
        """A window of stored elements in order with the unit's changes applied (correct
        for as many as the window held before the changes)."""
        inside = keep  # a predicate on members
        out = [m for m in stored if m.member not in entry.changes]
        out += [m for m in entry.changes.values() if m is not None and inside(m)]  # type: ignore[operator]
        out.sort(key=_order, reverse=rev)
        return out

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

    # --- pub/sub: this process's subscribers only (README, DynamoDB's limits) -----------

    def publish(self, channel: bytes, message: bytes) -> int:
        self.published.append((channel, message))
        return self.hub.count(channel)

    def subscriptions(self) -> Subscriptions:
        return self.hub.subscriptions()

    # --- for the backend -------------------------------------------------------------

    def read_names(self) -> list[bytes]:
        """Every key the unit looked at (the ones whose versions it depends on)."""
        return list(self.entries)


_MISSING = object()
#: Types whose spilled elements are read in order a window at a time.
_RANGED = frozenset((KeyType.ZSET, KeyType.LIST, KeyType.STREAM))


def _element_answer(snapshot: Snapshot, request: tuple[Hashable, ...]) -> object:
    """The snapshot's answer to an element request, or _MISSING."""
    kind, name = request[0], request[1]
    assert isinstance(name, bytes)
    stored = snapshot.elements.get(name)
    if stored is None:
        return _MISSING
    if kind == "member":
        member = request[2]
        if member in stored.members:
            return stored.members[member]
        return None if stored.complete else _MISSING
    if kind == "members":
        return True if stored.complete else _MISSING
    if kind == "range":
        rev, want = request[2], request[3]
        assert isinstance(want, int)
        found = stored.ranges.get(bool(rev))
        if found is None or (len(found[0]) < want and not found[1]):
            return _MISSING
        return found
    # byscore
    bounds = request[2:7]
    want = request[7]
    assert isinstance(want, int)
    found = stored.by_score.get(bounds)  # type: ignore[arg-type]
    if found is None or (not found[1] and (want < 0 or len(found[0]) < want)):
        return _MISSING
    return found


def _order(m: Member) -> tuple[float, bytes]:
    return (m.score, m.member)


def _copy(entry: Entry | None) -> Entry | None:
    if entry is None:
        return None
    k = entry.key
    return Entry(
        Key(k.name, k.type, k.expire_at, k.value),
        dict(entry.members),
        entry.gen,
        entry.count,
        field_expiry=entry.field_expiry,
    )


def _dead(key: Key, now: int) -> bool:
    return key.expire_at is not None and key.expire_at <= now
