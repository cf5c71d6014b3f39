"""A store in process memory: the reference implementation of :class:`Txn`.

Used by the engine's tests as the simplest store that is obviously right, and as the
model the other stores follow.  Not a backend: nothing is shared between processes and
nothing survives a restart.  Writes apply in place; a failed unit is not rolled back, so
callers run one command at a time (the engine never leaves half a command behind on an
error: it checks before it writes).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from kvgate.engine.pubsub import LocalHub, Subscriptions
from kvgate.engine.scripting import Scripting
from kvgate.engine.storage import Key, KeyType, Member, Txn


@dataclass
class _Entry:
    key: Key
    members: dict[bytes, Member] = field(default_factory=dict)  # insertion ordered
    #: A hash's earliest field expiry (ms; 0: none), perhaps of a field since changed:
    #: the lookup that passes it drops the expired fields (see ``MemoryTxn._live``).
    field_expiry: float = 0.0


class MemoryStore:
    def __init__(self) -> None:
        self.entries: dict[bytes, _Entry] = {}
        self.order: list[bytes] = []  # scan order: creation order, compacted lazily
        self.scripts: dict[bytes, bytes] = {}
        self.scripting = Scripting()
        self.hub = LocalHub()  # subscribers in this process: nothing else shares the store

    def txn(self, now: int | None = None) -> MemoryTxn:
        return MemoryTxn(self, int(time.time() * 1000) if now is None else now)


class MemoryTxn(Txn):
    writable = True

    def __init__(self, store: MemoryStore, now: int) -> None:
        self.store = store
        self.now = now
        self.scripting = store.scripting

    def _live(self, name: bytes) -> _Entry | None:
        entry = self.store.entries.get(name)
        if entry is None:
            return None
        exp = entry.key.expire_at
        if exp is not None and exp <= self.now:
            del self.store.entries[name]
            return None
        if entry.field_expiry and entry.field_expiry <= self.now and not self._drop_expired_fields(entry):
            del self.store.entries[name]  # its last field expired: the hash goes, as in Redis
            return None
        return entry

    def _drop_expired_fields(self, entry: _Entry) -> int:
        """Drop a hash's expired fields (a member's score is its field's expiry, see
        :mod:`kvgate.engine.storage`); how many fields are left."""
        members = entry.members
        for m in [m for m in members.values() if m.score and m.score <= self.now]:
            del members[m.member]
        entry.field_expiry = min((m.score for m in members.values() if m.score), default=0.0)
        return len(members)

    def lookup(self, name: bytes) -> Key | None:
        entry = self._live(name)
        return entry.key if entry else None

    def create(
        self, name: bytes, type: KeyType, value: bytes | None = None, expire_at: int | None = None
    ) -> Key:
        assert self._live(name) is None, "create() on a live key"
        key = Key(name, type, expire_at, value, ref=None)
        self.store.entries[name] = _Entry(key)
        self.store.order.append(name)
        return key

    def set_string(self, name: bytes, value: bytes, expire_at: int | None) -> Key:
        entry = self._live(name)
        if entry is not None:
            del self.store.entries[name]
        return self.create(name, KeyType.STRING, value, expire_at)

    def set_expire(self, key: Key, expire_at: int | None) -> None:
        key.expire_at = expire_at

    def delete(self, key: Key) -> None:
        self.store.entries.pop(key.name, None)

    def rename(self, key: Key, new_name: bytes) -> Key:
        entry = self.store.entries.pop(key.name)
        self.store.entries.pop(new_name, None)
        entry.key.name = new_name
        self.store.entries[new_name] = entry
        self.store.order.append(new_name)
        return entry.key

    def scan(self, cursor: int, count: int) -> tuple[int, list[Key]]:
        order = self.store.order
        page: list[Key] = []
        i = cursor
        while i < len(order) and len(page) < count:
            name = order[i]
            entry = self._live(name)
            # a name can sit in ``order`` more than once (re-created, renamed back)
            if entry is not None and order.index(name) == i:
                page.append(entry.key)
            i += 1
        return (0 if i >= len(order) else i), page

    def dbsize(self) -> int:
        """Live keys, as SQLite's store answers (see ``SqliteTxn.dbsize``): Redis's answer
        once a command has touched the expired ones."""
        return sum(1 for name in list(self.store.entries) if self._live(name))

    def random_key(self) -> Key | None:
        names = [n for n in list(self.store.entries) if self._live(n)]
        return self.store.entries[random.choice(names)].key if names else None

    def flush(self) -> None:
        self.store.entries.clear()
        self.store.order.clear()

    def _members(self, key: Key) -> dict[bytes, Member]:
        return self.store.entries[key.name].members

    def get(self, key: Key, member: bytes) -> Member | None:
        return self._members(key).get(member)

    def put(self, key: Key, member: bytes, value: bytes = b"", score: float = 0.0) -> bool:
        entry = self.store.entries[key.name]
        new = member not in entry.members
        entry.members[member] = Member(member, value, score)
        if key.type is KeyType.HASH and score and not 0 < entry.field_expiry <= score:
            entry.field_expiry = score
        return new

    def remove(self, key: Key, member: bytes) -> bool:
        return self._members(key).pop(member, None) is not None

    def count(self, key: Key) -> int:
        return len(self._members(key))

    def members(self, key: Key) -> list[Member]:
        return list(self._members(key).values())

    def ordered(self, key: Key, offset: int = 0, limit: int = -1, rev: bool = False) -> list[Member]:
        items = sorted(self._members(key).values(), key=lambda m: (m.score, m.member), reverse=rev)
        if offset < 0:
            return []
        return items[offset:] if limit < 0 else items[offset : offset + limit]

    def member_scan(self, key: Key, cursor: int, count: int) -> tuple[int, list[Member]]:
        items = list(self._members(key).values())
        page = items[cursor : cursor + count]
        nxt = cursor + count
        return (0 if nxt >= len(items) else nxt), page

    def script_get(self, sha: bytes) -> bytes | None:
        return self.store.scripts.get(sha)

    def script_put(self, sha: bytes, body: bytes) -> None:
        self.store.scripts[sha] = body

    def script_flush(self) -> None:
        self.store.scripts.clear()

    def publish(self, channel: bytes, message: bytes) -> int:
        # delivered at once: the memory store applies every write in place (no rollback)
        return self.store.hub.deliver(channel, message)

    def subscriptions(self) -> Subscriptions:
        return self.store.hub.subscriptions()
