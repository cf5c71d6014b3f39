"""How a Redis key is kept in DynamoDB: one item per key.

Table: partition key ``pk`` (binary), nothing else.  ``pk`` is a one-byte namespace and a
name, so that kvgate's own items never meet a user's key:

* ``k<name>``: a key.  ``t`` its type (number), ``ver`` a random version token that every
  write replaces (a token, not a counter, so a key deleted and re-created never looks
  unchanged), ``x`` the expiry in ms since the epoch, ``ttl`` the same in seconds for
  DynamoDB's own TTL deletion (lazy: reads filter on ``x``).  A string's value is ``v``:
  a number (``N``) when it is a canonical 64-bit integer, so ``INCR`` can use DynamoDB's
  ``ADD``, bytes (``B``) otherwise.  A collection's elements are ``m``, one msgpack array:
  ``[field, value, ...]`` (hash), ``[member, ...]`` (set), ``[member, score, ...]`` (sorted
  set), ``[element, ...]`` (list), each in the order the engine keeps.
* ``s<sha1>``: a cached script (``body``), for EVALSHA from every process.
* ``c<8 bytes>``: a SCAN cursor: where the table scan stopped (``at``), kept a day.

One item per key makes every command on one key a single conditional write, at the cost
of DynamoDB's item limit: a key with all its elements must fit in 400 KB.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Any

import msgpack

from kvgate.engine.storage import Key, KeyType, Member

KEY_PREFIX = b"k"
SCRIPT_PREFIX = b"s"
CURSOR_PREFIX = b"c"

#: DynamoDB's limits (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html)
MAX_ITEM_BYTES = 400 * 1024
MAX_PARTITION_KEY_BYTES = 2048
MAX_KEY_NAME_BYTES = MAX_PARTITION_KEY_BYTES - len(KEY_PREFIX)
MAX_TRANSACTION_ITEMS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_LIST_POSITION = struct.Struct(">d")  # the engine's packing of a list position


def new_token() -> bytes:
    return os.urandom(8)


def pk(name: bytes) -> dict[str, Any]:
    return {"B": KEY_PREFIX + name}


@dataclass(slots=True)
class Entry:
    """A key as one unit sees it: the engine's :class:`Key` and its elements by member
    (insertion ordered)."""

    key: Key
    members: dict[bytes, Member] = field(default_factory=dict)


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


# --- item -> entry ---------------------------------------------------------------------


def decode(name: bytes, item: dict[str, Any]) -> Entry | None:
    """The entry an item holds; None for a key with no type (never written by kvgate)."""
    raw_type = item.get("t")
    if raw_type is None:
        return None
    type = KeyType(int(raw_type["N"]))
    expire_at = int(item["x"]["N"]) if "x" in item else None
    if type is KeyType.STRING:
        v = item["v"]
        value = v["N"].encode() if "N" in v else v["B"]
        return Entry(Key(name, type, expire_at, value))
    entry = Entry(Key(name, type, expire_at, None))
    flat = msgpack.unpackb(item["m"]["B"], raw=False) if "m" in item else []
    members = entry.members
    if type is KeyType.HASH:
        for i in range(0, len(flat), 2):
            members[flat[i]] = Member(flat[i], flat[i + 1], 0.0)
    elif type is KeyType.SET:
        for m in flat:
            members[m] = Member(m, b"", 0.0)
    elif type is KeyType.ZSET:
        for i in range(0, len(flat), 2):
            members[flat[i]] = Member(flat[i], b"", float(flat[i + 1]))
    else:  # LIST: positions 0, 1, 2... in order
        for i, value in enumerate(flat):
            pos = float(i)
            member = _LIST_POSITION.pack(pos)
            members[member] = Member(member, value, pos)
    return entry


def expired(entry: Entry | None, now: int) -> bool:
    return entry is not None and entry.key.expire_at is not None and entry.key.expire_at <= now


# --- entry -> item ---------------------------------------------------------------------


def encode(entry: Entry, token: bytes) -> dict[str, Any]:
    key = entry.key
    item: dict[str, Any] = {"pk": pk(key.name), "ver": {"B": token}, "t": {"N": str(int(key.type))}}
    if key.expire_at is not None:
        item["x"] = {"N": str(key.expire_at)}
        item["ttl"] = {"N": str(key.expire_at // 1000 + 1)}
    if key.type is KeyType.STRING:
        value = key.value or b""
        n = canonical_int(value)
        item["v"] = {"N": str(n)} if n is not None else {"B": value}
        return item
    members = entry.members.values()
    flat: list[Any]
    if key.type is KeyType.HASH:
        flat = [x for m in members for x in (m.member, m.value)]
    elif key.type is KeyType.SET:
        flat = [m.member for m in members]
    elif key.type is KeyType.ZSET:
        flat = [x for m in members for x in (m.member, m.score)]
    else:
        flat = [m.value for m in sorted(members, key=lambda m: m.score)]
    item["m"] = {"B": msgpack.packb(flat, use_bin_type=True)}
    return item


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
