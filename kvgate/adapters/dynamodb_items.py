"""How a Redis key is kept in DynamoDB: a head item per key, and an item per element
once a collection outgrows what Redis itself keeps compact.

Table: partition key ``pk`` and sort key ``sk``, both binary, nothing else (no index).
``pk`` is a one-byte namespace and a name, so that kvgate's own items never meet a user's
key:

* ``k<name>``, ``sk`` = ``h``: a key's head.  ``t`` its type (number), ``ver`` a random
  version token that every write of the key replaces (a token, not a counter, so a key
  deleted and re-created never looks unchanged), ``x`` the expiry in ms since the epoch,
  ``ttl`` the same in seconds for DynamoDB's own TTL deletion (lazy: reads filter on
  ``x``).  A key with a value (a string; any type whose :class:`Key` has a ``value``) keeps
  it in ``v``: a number (``N``) for a string that is a canonical 64-bit integer, so
  ``INCR`` can use DynamoDB's ``ADD``, bytes (``B``) otherwise.  A collection is either
  *inline* (``m``: one msgpack array of its elements, as long as Redis would keep it as a
  listpack: at most :data:`INLINE_ENTRIES` elements of at most :data:`INLINE_VALUE`
  bytes), or *spilled*: ``g`` names its generation (8 random bytes) and ``n`` counts its
  elements, which are items of their own:
* ``k<name>``, ``sk`` = ``e`` + generation + member: an element.  Hash: ``v`` the value;
  sorted set: ``s`` the score (8 bytes, big-endian double); list: ``sk`` ends with the
  position (order-preserving) instead of a member, ``v`` the element.  A member longer
  than :data:`MEMBER_SK_BYTES` is cut and ends with its SHA-1 (DynamoDB's sort key holds
  1024 bytes); the whole member is then in ``m``.  A hash field with an expiry (Redis
  7.4's field expiration) keeps it in ``x`` (ms since the epoch).  A hash's head keeps,
  when any field has one, ``fx``: no later than the earliest (so a unit that reads the
  head knows when to look for expired fields), and, inline, ``f``: a msgpack map of
  field -> expiry.
* ``k<name>``, ``sk`` = ``o`` + generation + score (order-preserving) + member: a sorted
  set's order item, so ranks, ranges and ``ZRANGEBYSCORE`` are Queries.  A stream's
  elements (:mod:`kvgate.engine.stream_layout`) are kept as a sorted set's, with ``v``
  in both items, so that XRANGE is one Query of order items.
* ``s<sha1>``, ``sk`` = ``h``: a cached script (``body``), for EVALSHA from every process.
* ``c<8 bytes>``, ``sk`` = ``h``: a SCAN cursor: where the table scan stopped (``at``,
  ``as``), kept a day.
* ``g``, ``sk`` = due time (8 bytes, ms) + id: a cleanup record: the elements of
  generation ``gen`` of key ``key`` go once the head no longer names that generation.

Elements of a generation the head does not name are invisible: a DEL, an overwrite or an
expiry changes or removes the head only, and the old generation is deleted in the
background (see :mod:`kvgate.adapters.dynamodb_bigwrite`).
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from kvgate.engine.storage import Key, KeyType, Member

KEY_PREFIX = b"k"
SCRIPT_PREFIX = b"s"
CURSOR_PREFIX = b"c"
GC_PK = b"g"
HEAD = b"h"
ELEMENT = b"e"
ORDER = b"o"
GEN_BYTES = 8

#: DynamoDB's limits (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html)
MAX_ITEM_BYTES = 400 * 1024
MAX_PARTITION_KEY_BYTES = 2048
MAX_SORT_KEY_BYTES = 1024
MAX_KEY_NAME_BYTES = MAX_PARTITION_KEY_BYTES - len(KEY_PREFIX)
MAX_TRANSACTION_ITEMS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
#: The longest member kept whole in a sort key (``o`` + generation + score + member fits).
MEMBER_SK_BYTES = 1000

#: Redis's own listpack limits (hash-max-listpack-entries/-value, zset-max-..., 7.x):
#: a collection within them stays inline in its head item, in insertion order as Redis
#: keeps it; past them Redis's own order is a hash table's, and kvgate's is by member.
INLINE_ENTRIES = 128
INLINE_VALUE = 64
#: Types whose elements are ordered by score (``o`` items): sorted sets, and streams
#: (entries by ID, with their fields in the order item too).
SCORED = frozenset((KeyType.ZSET, KeyType.STREAM))

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_LIST_POSITION = struct.Struct(">d")  # the engine's packing of a list position
_DOUBLE = struct.Struct(">d")
_U64 = struct.Struct(">Q")


def new_token() -> bytes:
    return os.urandom(8)


def pk(name: bytes) -> dict[str, Any]:
    return {"B": KEY_PREFIX + name}


def head_key(name: bytes) -> dict[str, Any]:
    return {"pk": pk(name), "sk": {"B": HEAD}}


def own_key(pk_bytes: bytes) -> dict[str, Any]:
    """The key of a script, cursor or other single item of kvgate's own."""
    return {"pk": {"B": pk_bytes}, "sk": {"B": HEAD}}


@dataclass(slots=True)
class Entry:
    """A key as one unit sees it: the engine's :class:`Key` and, inline, its elements by
    member (insertion ordered).  A spilled collection (``gen`` set) keeps only what the
    unit changed in ``changes`` (None: removed) and its element count in ``count``; what
    was read of it is in the snapshot."""

    key: Key
    members: dict[bytes, Member] = field(default_factory=dict)
    gen: bytes | None = None
    count: int = 0
    changes: dict[bytes, Member | None] = field(default_factory=dict)
    #: a hash's earliest field expiry (ms), or earlier (a field since changed); None: none
    field_expiry: int | None = None

    @property
    def spilled(self) -> bool:
        return self.gen is not None


def canonical_int(value: bytes) -> int | None:
    """``value`` as an integer if it is one's canonical text in 64 bits ("12", "-3", not
    "012", "+1" or "-0"): the strings kept as DynamoDB numbers."""
    if not 0 < len(value) <= 20:
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    if INT64_MIN <= n <= INT64_MAX and b"%d" % n == value:
        return n
    return None


def fits_inline(type: KeyType, members: list[Member]) -> bool:
    """Whether Redis would keep these elements compact (so must kvgate, for its order)."""
    if len(members) > INLINE_ENTRIES:
        return False
    if type is KeyType.LIST:
        return all(len(m.value) <= INLINE_VALUE for m in members)
    return all(len(m.member) <= INLINE_VALUE and len(m.value) <= INLINE_VALUE for m in members)


# --- order-preserving encodings ------------------------------------------------------------


def order_bytes(score: float) -> bytes:
    """8 bytes that sort as ``score`` does (-0 as 0)."""
    (n,) = _U64.unpack(_DOUBLE.pack(score + 0.0))
    n = n ^ 0xFFFFFFFFFFFFFFFF if n >> 63 else n | (1 << 63)
    return _U64.pack(n)


def order_score(raw: bytes) -> float:
    (n,) = _U64.unpack(raw)
    n = n ^ (1 << 63) if n >> 63 else n ^ 0xFFFFFFFFFFFFFFFF
    (score,) = _DOUBLE.unpack(_U64.pack(n))
    return float(score)


def member_sk(member: bytes) -> bytes:
    """A member as it sorts in a sort key; a long one cut, with its SHA-1 and a 0 byte
    (longer than any member kept whole, so the two never meet)."""
    if len(member) <= MEMBER_SK_BYTES:
        return member
    return member[: MEMBER_SK_BYTES - 20] + hashlib.sha1(member).digest() + b"\x00"


def element_sk(type: KeyType, gen: bytes, member: bytes, score: float) -> bytes:
    if type is KeyType.LIST:
        return ELEMENT + gen + order_bytes(score)
    return ELEMENT + gen + member_sk(member)


def order_sk(gen: bytes, member: bytes, score: float) -> bytes:
    return ORDER + gen + order_bytes(score) + member_sk(member)


# --- items -> entries ---------------------------------------------------------------------


def decode(name: bytes, item: dict[str, Any]) -> Entry | None:
    """The entry a head item holds; None for a key with no type (never written by kvgate)."""
    raw_type = item.get("t")
    if raw_type is None:
        return None
    type = KeyType(int(raw_type["N"]))
    expire_at = int(item["x"]["N"]) if "x" in item else None
    if "v" in item:
        v = item["v"]
        value = v["N"].encode() if "N" in v else v["B"]
        return Entry(Key(name, type, expire_at, value))
    entry = Entry(Key(name, type, expire_at, None))
    if "fx" in item:
        entry.field_expiry = int(item["fx"]["N"])
    if "g" in item:
        entry.gen = item["g"]["B"]
        entry.count = int(item["n"]["N"])
        return entry
    flat = msgpack.unpackb(item["m"]["B"], raw=False) if "m" in item else []
    members = entry.members
    if type is KeyType.HASH:
        expiries = msgpack.unpackb(item["f"]["B"], raw=False) if "f" in item else {}
        for i in range(0, len(flat), 2):
            members[flat[i]] = Member(flat[i], flat[i + 1], float(expiries.get(flat[i], 0)))
    elif type is KeyType.SET:
        for m in flat:
            members[m] = Member(m, b"", 0.0)
    elif type is KeyType.ZSET:
        for i in range(0, len(flat), 2):
            members[flat[i]] = Member(flat[i], b"", float(flat[i + 1]))
    elif type is KeyType.STREAM:
        for i in range(0, len(flat), 3):
            members[flat[i]] = Member(flat[i], flat[i + 1], float(flat[i + 2]))
    else:  # LIST: positions 0, 1, 2... in order
        for i, value in enumerate(flat):
            pos = float(i)
            member = _LIST_POSITION.pack(pos)
            members[member] = Member(member, value, pos)
    return entry


def decode_element(type: KeyType, item: dict[str, Any]) -> Member:
    """The element an ``e`` item holds."""
    sk: bytes = item["sk"]["B"]
    if type is KeyType.LIST:
        pos = order_score(sk[1 + GEN_BYTES : 1 + GEN_BYTES + 8])
        return Member(_LIST_POSITION.pack(pos), item["v"]["B"], pos)
    member = item["m"]["B"] if "m" in item else sk[1 + GEN_BYTES :]
    if type in SCORED:
        (score,) = _DOUBLE.unpack(item["s"]["B"])
        return Member(member, item["v"]["B"] if "v" in item else b"", score)
    expiry = float(item["x"]["N"]) if "x" in item else 0.0  # a hash field's
    return Member(member, item["v"]["B"] if "v" in item else b"", expiry)


def decode_order(item: dict[str, Any]) -> Member:
    """The sorted-set element an ``o`` item holds."""
    sk: bytes = item["sk"]["B"]
    member = item["m"]["B"] if "m" in item else sk[1 + GEN_BYTES + 8 :]
    (score,) = _DOUBLE.unpack(item["s"]["B"])
    return Member(member, item["v"]["B"] if "v" in item else b"", score)


def expired(entry: Entry | None, now: int) -> bool:
    return entry is not None and entry.key.expire_at is not None and entry.key.expire_at <= now


# --- entries -> items ---------------------------------------------------------------------


def encode(entry: Entry, token: bytes) -> dict[str, Any]:
    """The head item of ``entry`` (with its elements when inline)."""
    key = entry.key
    item: dict[str, Any] = {"pk": pk(key.name), "sk": {"B": HEAD}, "ver": {"B": token}}
    item["t"] = {"N": str(int(key.type))}
    if key.expire_at is not None:
        item["x"] = {"N": str(key.expire_at)}
        item["ttl"] = {"N": str(key.expire_at // 1000 + 1)}
    if key.value is not None:
        n = canonical_int(key.value) if key.type is KeyType.STRING else None
        item["v"] = {"N": str(n)} if n is not None else {"B": key.value}
        return item
    if key.type is KeyType.HASH:
        if entry.gen is None:  # inline: the exact earliest
            entry.field_expiry = earliest_expiry(entry.members.values())
        if entry.field_expiry is not None:
            item["fx"] = {"N": str(entry.field_expiry)}
    if entry.gen is not None:
        item["g"] = {"B": entry.gen}
        item["n"] = {"N": str(entry.count)}
        return item
    members = entry.members.values()
    flat: list[Any]
    if key.type is KeyType.HASH:
        flat = [x for m in members for x in (m.member, m.value)]
        expiries = {m.member: int(m.score) for m in members if m.score}
        if expiries:
            item["f"] = {"B": msgpack.packb(expiries, use_bin_type=True)}
    elif key.type is KeyType.SET:
        flat = [m.member for m in members]
    elif key.type is KeyType.ZSET:
        flat = [x for m in members for x in (m.member, m.score)]
    elif key.type is KeyType.STREAM:
        flat = [x for m in members for x in (m.member, m.value, m.score)]
    else:
        flat = [m.value for m in sorted(members, key=lambda m: m.score)]
    item["m"] = {"B": msgpack.packb(flat, use_bin_type=True)}
    return item


def element_items(name: bytes, type: KeyType, gen: bytes, m: Member) -> list[dict[str, Any]]:
    """The items one element is kept in (an ``e`` item, and an ``o`` item for a sorted set)."""
    key = pk(name)
    sk = element_sk(type, gen, m.member, m.score)
    item: dict[str, Any] = {"pk": key, "sk": {"B": sk}}
    if type is KeyType.LIST:
        item["v"] = {"B": m.value}
        return [item]
    if len(m.member) > MEMBER_SK_BYTES:
        item["m"] = {"B": m.member}
    if type in SCORED:
        score = {"B": _DOUBLE.pack(m.score)}
        item["s"] = score
        order: dict[str, Any] = {"pk": key, "sk": {"B": order_sk(gen, m.member, m.score)}, "s": score}
        if "m" in item:
            order["m"] = item["m"]
        if type is KeyType.STREAM:  # a range is a Query of order items: they carry the value
            item["v"] = order["v"] = {"B": m.value}
        return [item, order]
    if type is KeyType.HASH:
        item["v"] = {"B": m.value}
        if m.score:
            item["x"] = {"N": str(int(m.score))}
    return [item]


def earliest_expiry(members: Iterable[Member]) -> int | None:
    """The earliest of hash fields' expiries (a member's score), or None."""
    return min((int(m.score) for m in members if m.score), default=None)


def element_keys(name: bytes, type: KeyType, gen: bytes, m: Member) -> list[dict[str, Any]]:
    """The keys of the items :func:`element_items` makes."""
    return [{"pk": i["pk"], "sk": i["sk"]} for i in element_items(name, type, gen, m)]


def item_size(item: dict[str, Any]) -> int:
    """An upper bound of DynamoDB's size of ``item``: attribute names plus values (a
    number counted as its text plus one byte, never less than DynamoDB's count of one
    byte per two significant digits plus one: "1" is 2 bytes to DynamoDB)."""
    size = 0
    for name, value in item.items():
        size += len(name)
        ((kind, v),) = value.items()
        size += len(v) if kind == "B" else len(v) + 1 if kind == "N" else len(str(v))
    return size
