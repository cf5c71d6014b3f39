"""How a stream is kept in a store's members, and the stream-wide facts Redis derives.

A stream is one key of :attr:`KeyType.STREAM` whose members are told apart by score:

* an entry: ``member`` = its ID packed big-endian (16 bytes, so bytes order is ID order),
  ``score`` = its milliseconds (>= 0: the score indexes sorted sets use serve XRANGE),
  ``value`` = the ID of its node (16 bytes) and its fields (msgpack);
* the state (``score`` -1, ``member`` ``s``): length, last, first and max-deleted IDs,
  entries added, and the consumer groups with their consumers.  Small, rewritten by
  every write;
* a node (``score`` -2, ``member`` ``n`` + its first ID): Redis keeps entries in listpacks
  of at most 100 entries or 4096 bytes, and ``~`` trimming removes whole ones; a node
  keeps what that needs (live and total entries, listpack bytes, last ID, master fields);
* a pending entry of a group (``score`` -3 - the group's number, ``member`` ``p`` +
  number + ID): consumer, delivery time and count.  One member each, so XACK removes
  one member rather than rewriting a group's whole pending list, and a group's pending
  entries are one score range, in ID order.

msgpack (already the DynamoDB store's encoding) packs the values.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgpack

from kvgate.engine.numbers import INT64_MAX, INT64_MIN
from kvgate.engine.storage import Key, Member, ScoreBound, Txn
from kvgate.error_texts import STREAM_ID_INVALID
from kvgate.errors import ReplyError

StreamID = tuple[int, int]
U64 = 2**64 - 1
MIN_ID: StreamID = (0, 0)
MAX_ID: StreamID = (U64, U64)
#: SCG_INVALID_ENTRIES_READ: a group whose read counter is unknown.
INVALID_READ = -1

STATE_MEMBER = b"s"
STATE_SCORE = -1.0
NODE_PREFIX = b"n"
NODE_SCORE = -2.0
PEL_PREFIX = b"p"
#: Redis's stream-node-max-entries and stream-node-max-bytes (defaults).
NODE_MAX_ENTRIES = 100
NODE_MAX_BYTES = 4096
_ID = struct.Struct(">QQ")
_GROUP = struct.Struct(">I")
_PAGE = 64


# --- IDs ----------------------------------------------------------------------------------


def pack_id(sid: StreamID) -> bytes:
    return _ID.pack(*sid)


def unpack_id(raw: bytes) -> StreamID:
    ms, seq = _ID.unpack(raw)
    return (ms, seq)


def format_id(sid: StreamID) -> bytes:
    return b"%d-%d" % sid


_STRTOULL = re.compile(rb"[ \t\n\v\f\r]*([+-]?)([0-9]+)")


def _u64(raw: bytes) -> int | None:
    """``string2ull``: a canonical integer >= 0, else what C's ``strtoull`` reads whole
    (leading spaces, a sign: ``-1`` is refused, ``-01`` wraps to 2**64 - 1), at most
    2**64 - 1."""
    found = _STRTOULL.fullmatch(raw)
    if found is None:
        return None
    n = int(found[2])
    if n > U64:
        return None
    if raw == b"%d" % n:
        return n
    if raw[:1] == b"-" and raw[1:] == b"%d" % n:
        return None  # string2ll read it: negative
    return (-n) % 2**64 if found[1] == b"-" else n


def parse_id(
    raw: bytes, missing_seq: int = 0, strict: bool = False, seq_given: list[bool] | None = None
) -> StreamID:
    """``streamGenericParseIDOrReply``: ``ms-seq``, ``ms`` (``missing_seq``), ``-``/``+``
    unless ``strict``; ``ms-*`` when ``seq_given`` is passed (it is set False then)."""
    if len(raw) > 127 or (strict and raw in (b"-", b"+")):
        raise ReplyError(STREAM_ID_INVALID)
    if seq_given is not None:
        seq_given.append(True)
    if raw == b"-":
        return MIN_ID
    if raw == b"+":
        return MAX_ID
    ms_part, dash, seq_part = raw.partition(b"-")
    ms = _u64(ms_part)
    if ms is None:
        raise ReplyError(STREAM_ID_INVALID)
    if not dash:
        return (ms, missing_seq)
    if seq_given is not None and seq_part == b"*":
        seq_given[-1] = False
        return (ms, 0)
    seq = _u64(seq_part)
    if seq is None:
        raise ReplyError(STREAM_ID_INVALID)
    return (ms, seq)


def incr_id(sid: StreamID) -> StreamID | None:
    """The next ID; None past the last one."""
    ms, seq = sid
    if seq < U64:
        return (ms, seq + 1)
    return None if ms == U64 else (ms + 1, 0)


def decr_id(sid: StreamID) -> StreamID | None:
    ms, seq = sid
    if seq > 0:
        return (ms, seq - 1)
    return None if ms == 0 else (ms - 1, U64)


# --- the state ----------------------------------------------------------------------------


@dataclass
class Group:
    number: int
    last: StreamID
    entries_read: int
    #: consumer name -> seen time (ms), in Redis's order (by name) when listed
    consumers: dict[bytes, int] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return -3.0 - self.number

    def pel_member(self, sid: StreamID) -> bytes:
        return PEL_PREFIX + _GROUP.pack(self.number) + pack_id(sid)


@dataclass
class Pending:
    id: StreamID
    consumer: bytes
    delivery_time: int
    delivery_count: int


@dataclass
class Node:
    first: StreamID
    live: int
    total: int
    size: int  # the listpack's bytes
    last: StreamID
    master_fields: list[bytes]

    @property
    def member(self) -> bytes:
        return NODE_PREFIX + pack_id(self.first)


@dataclass
class Stream:
    key: Key
    length: int = 0
    last: StreamID = MIN_ID
    first: StreamID = MIN_ID
    max_deleted: StreamID = MIN_ID
    entries_added: int = 0
    next_group: int = 0
    groups: dict[bytes, Group] = field(default_factory=dict)

    # -- state --

    @classmethod
    def load(cls, t: Txn, key: Key) -> Stream:
        found = t.get(key, STATE_MEMBER)
        if found is None:
            return cls(key)
        raw = msgpack.unpackb(found.value, raw=True)
        length, last, first, max_deleted, added, next_group, groups = raw
        s = cls(key, length, tuple(last), tuple(first), tuple(max_deleted), added, next_group)
        for name, number, glast, read, consumers in groups:
            s.groups[name] = Group(number, tuple(glast), read, dict(consumers))
        return s

    def save(self, t: Txn) -> None:
        groups = [
            [name, g.number, list(g.last), g.entries_read, list(g.consumers.items())]
            for name, g in self.groups.items()
        ]
        raw = [
            self.length,
            list(self.last),
            list(self.first),
            list(self.max_deleted),
            self.entries_added,
            self.next_group,
            groups,
        ]
        t.put(self.key, STATE_MEMBER, msgpack.packb(raw, use_bin_type=True), STATE_SCORE)

    # -- entries --

    def entries(
        self, t: Txn, start: StreamID, end: StreamID, count: int = 0, rev: bool = False
    ) -> Iterator[tuple[StreamID, list[bytes]]]:
        """Entries with ``start <= ID <= end`` in order, at most ``count`` (0: all)."""
        if start > end:
            return
        low, high = ScoreBound(float(start[0])), ScoreBound(float(end[0]))
        page = _PAGE if count == 0 else min(count + 2, 1000)
        offset, given = 0, 0
        while True:
            batch = t.by_score(self.key, low, high, offset, page, rev)
            for m in batch:
                sid = unpack_id(m.member)
                if start <= sid <= end:
                    yield sid, fields_of(m)
                    given += 1
                    if given == count:
                        return
            if len(batch) < page:
                return
            offset += page
            page = min(page * 2, 4096)

    def entry(self, t: Txn, sid: StreamID) -> Member | None:
        return t.get(self.key, pack_id(sid))

    def first_live(self, t: Txn) -> StreamID:
        return next((sid for sid, _ in self.entries(t, MIN_ID, MAX_ID, 1)), MIN_ID)

    def last_live(self, t: Txn) -> StreamID:
        return next((sid for sid, _ in self.entries(t, MIN_ID, MAX_ID, 1, rev=True)), MIN_ID)

    # -- nodes --

    def nodes(self, t: Txn, rev: bool = False) -> Iterator[Node]:
        bound = ScoreBound(NODE_SCORE)
        offset = 0
        while True:
            batch = t.by_score(self.key, bound, bound, offset, 8, rev)
            yield from map(decode_node, batch)
            if len(batch) < 8:
                return
            offset += 8

    def node_of(self, t: Txn, m: Member) -> Node:
        found = t.get(self.key, NODE_PREFIX + m.value[:16])
        assert found is not None, "a stream entry without its node"
        return decode_node(found)

    def put_node(self, t: Txn, node: Node) -> None:
        raw = [node.live, node.total, node.size, list(node.last), node.master_fields]
        t.put(self.key, node.member, msgpack.packb(raw, use_bin_type=True), NODE_SCORE)

    # -- pending entries --

    def pending(self, t: Txn, group: Group, start: StreamID = MIN_ID) -> Iterator[Pending]:
        """A group's pending entries from ``start`` on, in ID order."""
        bound = ScoreBound(group.score)
        offset = 0
        while True:
            batch = t.by_score(self.key, bound, bound, offset, _PAGE)
            for m in batch:
                p = decode_pending(m)
                if p.id >= start:
                    yield p
            if len(batch) < _PAGE:
                return
            offset += _PAGE

    def pending_one(self, t: Txn, group: Group, sid: StreamID) -> Pending | None:
        found = t.get(self.key, group.pel_member(sid))
        return None if found is None else decode_pending(found)

    def put_pending(self, t: Txn, group: Group, p: Pending) -> None:
        raw = [p.consumer, p.delivery_time, p.delivery_count]
        t.put(self.key, group.pel_member(p.id), msgpack.packb(raw, use_bin_type=True), group.score)

    def drop_pending(self, t: Txn, group: Group, sid: StreamID) -> bool:
        return t.remove(self.key, group.pel_member(sid))


def fields_of(m: Member) -> list[bytes]:
    fields: list[bytes] = msgpack.unpackb(m.value[16:], raw=True)
    return fields


def entry_value(node_first: StreamID, fields: list[bytes]) -> bytes:
    return pack_id(node_first) + msgpack.packb(fields, use_bin_type=True)


def decode_node(m: Member) -> Node:
    live, total, size, last, master = msgpack.unpackb(m.value, raw=True)
    return Node(unpack_id(m.member[1:]), live, total, size, tuple(last), master)


def decode_pending(m: Member) -> Pending:
    consumer, when, count = msgpack.unpackb(m.value, raw=True)
    return Pending(unpack_id(m.member[5:]), consumer, when, count)


# --- listpack sizes (Redis's listpack.c), for where a node ends ----------------------------


def _backlen(n: int) -> int:
    return 1 if n <= 127 else 2 if n < 16383 else 3 if n < 2097151 else 4 if n < 268435455 else 5


def lp_int_size(v: int) -> int:
    if 0 <= v <= 127:
        n = 1
    elif -4096 <= v <= 4095:
        n = 2
    elif -32768 <= v <= 32767:
        n = 3
    elif -8388608 <= v <= 8388607:
        n = 4
    elif -(2**31) <= v < 2**31:
        n = 5
    else:
        n = 9
    return n + _backlen(n)


def lp_str_size(s: bytes) -> int:
    """A string's size in a listpack: as an integer when it is one's canonical text."""
    if 0 < len(s) <= 20 and (s.isdigit() or (s[:1] == b"-" and s[1:].isdigit())):
        v = int(s)
        if INT64_MIN <= v <= INT64_MAX and b"%d" % v == s:
            return lp_int_size(v)
    n = len(s)
    n += 1 if n < 64 else 2 if n < 4096 else 5
    return n + _backlen(n)


def new_node_bytes(fields: list[bytes]) -> int:
    """An empty listpack with a master entry for ``fields`` (names at even positions)."""
    names = fields[0::2]
    size = 6 + 1  # header and end byte
    size += lp_int_size(1) + lp_int_size(0) + lp_int_size(len(names))
    size += sum(lp_str_size(f) for f in names)
    return size + lp_int_size(0)


def entry_bytes(node: Node, sid: StreamID, fields: list[bytes]) -> int:
    names, values = fields[0::2], fields[1::2]
    same = names == node.master_fields
    size = lp_int_size(2 if same else 0)
    size += lp_int_size(sid[0] - node.first[0]) + lp_int_size(sid[1] - node.first[1])
    if same:
        size += sum(lp_str_size(v) for v in values)
        count = len(names) + 3
    else:
        size += lp_int_size(len(names)) + sum(lp_str_size(f) for f in fields)
        count = 2 * len(names) + 4
    return size + lp_int_size(count)


# --- the radix tree's node count (rax.c), for XINFO STREAM -----------------------------


def rax_nodes(keys: list[bytes]) -> int:
    """``rax->numnodes`` of a rax holding ``keys`` (sorted, equal length, none a prefix of
    another): a chain of one child is one node (compressed), every fork one node, every
    key one (empty) node; the head holds the common prefix, or is the first fork."""
    if not keys:
        return 1
    return _rax(keys, 0)


def _rax(keys: list[bytes], depth: int) -> int:
    first, last = keys[0], keys[-1]
    end = len(first)
    common = depth
    while common < end and first[common] == last[common]:
        common += 1
    nodes = 1 if common > depth else 0  # the chain before the fork (or the leaf)
    if len(keys) == 1:
        return nodes + 1
    nodes += 1  # the fork
    i = 0
    while i < len(keys):
        byte = keys[i][common]
        j = i
        while j < len(keys) and keys[j][common] == byte:
            j += 1
        nodes += _rax(keys[i:j], common + 1)
        i = j
    return nodes
