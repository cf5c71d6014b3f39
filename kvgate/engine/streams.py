"""Stream commands without consumer groups (``t_stream.c`` of Redis 7.0): XADD, XRANGE,
XREVRANGE, XLEN, XDEL, XTRIM, XREAD, XSETID, and Redis 8.2's XDELEX.

Arguments are parsed and checked in Redis's order, before anything is written.  Entries
sit in listpack nodes as Redis keeps them (:mod:`kvgate.engine.stream_layout`), so that
``~`` trimming removes what Redis removes.  Groups are in :mod:`kvgate.engine.stream_groups`.
"""

from __future__ import annotations

from dataclasses import dataclass

from kvgate.engine.numbers import parse_int
from kvgate.engine.registry import OK, command, typed
from kvgate.engine.storage import Key, KeyType, Txn
from kvgate.engine.stream_layout import (
    MAX_ID,
    MIN_ID,
    NODE_MAX_BYTES,
    NODE_MAX_ENTRIES,
    U64,
    Node,
    Stream,
    StreamID,
    decr_id,
    entry_bytes,
    entry_value,
    format_id,
    incr_id,
    new_node_bytes,
    pack_id,
    parse_id,
)
from kvgate.error_texts import (
    ENTRIES_ADDED_NEGATIVE,
    INTERVAL_END_INVALID,
    INTERVAL_START_INVALID,
    LIMIT_WITHOUT_APPROX,
    LIMIT_WITHOUT_STRATEGY,
    MAXLEN_NEGATIVE,
    NO_SUCH_KEY,
    STREAM_IDS_MISMATCH,
    STREAM_IDS_NUMIDS,
    SYNTAX_ERROR,
    TRIM_BOTH_STRATEGIES,
    TRIM_LIMIT_NEGATIVE,
    XADD_ID_EXHAUSTED,
    XADD_ID_TOO_SMALL,
    XADD_ID_ZERO,
    XADD_TOO_LARGE,
    XSETID_BELOW_MAX_DELETED,
    XSETID_BELOW_TOP,
    XSETID_ENTRIES_ADDED_SMALL,
    XTRIM_WITHOUT_STRATEGY,
    block_in_script,
    wrong_arity,
)
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

STREAM = KeyType.STREAM
MAXLEN, MINID = 1, 2
#: Redis 8.2's reference policies (XADD/XTRIM/XDELEX/XACKDEL).
KEEPREF, DELREF, ACKED = b"KEEPREF", b"DELREF", b"ACKED"


def stream_key(t: Txn, name: bytes) -> Key | None:
    return typed(t, name, STREAM)


def entry_reply(sid: StreamID, fields: list[bytes]) -> list[Reply]:
    return [format_id(sid), fields]


# --- trimming -------------------------------------------------------------------------


@dataclass
class Trim:
    strategy: int = 0
    approx: bool = False
    limit: int = 0
    maxlen: int = 0
    minid: StreamID = MIN_ID
    policy: bytes = KEEPREF


def parse_trim(args: Args, xadd: bool) -> tuple[Trim, int, bool, StreamID | None, bool]:
    """``streamParseAddOrTrimArgsOrReply``: the trim, the ID's position, NOMKSTREAM, the
    explicit ID (None for ``*``) and whether its sequence was given."""
    trim = Trim()
    i, limit_given, nomkstream = 2, False, False
    sid: StreamID | None = None
    seq_given = True
    while i < len(args):
        more = len(args) - 1 - i
        opt = args[i].upper()
        if xadd and args[i] == b"*":
            break
        if opt in (b"MAXLEN", b"MINID") and more:
            if trim.strategy:
                raise ReplyError(TRIM_BOTH_STRATEGIES)
            trim.approx = False
            nxt = args[i + 1]
            if more >= 2 and nxt in (b"~", b"="):
                trim.approx = nxt == b"~"
                i += 1
            if opt == b"MAXLEN":
                trim.maxlen = parse_int(args[i + 1])
                if trim.maxlen < 0:
                    raise ReplyError(MAXLEN_NEGATIVE)
                trim.strategy = MAXLEN
            else:
                trim.minid = parse_id(args[i + 1], strict=True)
                trim.strategy = MINID
            i += 1
        elif opt == b"LIMIT" and more:
            trim.limit = parse_int(args[i + 1])
            if trim.limit < 0:
                raise ReplyError(TRIM_LIMIT_NEGATIVE)
            limit_given = True
            i += 1
        elif opt in (KEEPREF, DELREF, ACKED):  # Redis 8.2
            trim.policy = opt
        elif xadd and opt == b"NOMKSTREAM":
            nomkstream = True
        elif xadd:
            given: list[bool] = []
            sid = parse_id(args[i], strict=True, seq_given=given)
            seq_given = given[0]
            break
        else:
            raise ReplyError(SYNTAX_ERROR)
        i += 1
    if trim.limit and not trim.strategy:
        raise ReplyError(LIMIT_WITHOUT_STRATEGY)
    if not xadd and not trim.strategy:
        raise ReplyError(XTRIM_WITHOUT_STRATEGY)
    if limit_given:
        if not trim.approx:
            raise ReplyError(LIMIT_WITHOUT_APPROX)
    elif trim.approx:
        trim.limit = 100 * NODE_MAX_ENTRIES
    else:
        trim.limit = 0
    return trim, i, nomkstream, sid, seq_given


def trim_stream(t: Txn, s: Stream, trim: Trim) -> int:
    """``streamTrim``: whole nodes from the head while they may go; then, unless
    approximate, entries of the first node that stays.  How many entries went."""
    if not trim.strategy:
        return 0
    from kvgate.engine.stream_groups import referenced, unreference

    deleted = 0
    for node in list(_head_nodes(t, s, trim)):
        if trim.strategy == MAXLEN and s.length <= trim.maxlen:
            break
        if trim.limit and deleted + node.live > trim.limit:
            break
        by_length = trim.strategy == MAXLEN
        whole = s.length - node.live >= trim.maxlen if by_length else node.last < trim.minid
        if whole and trim.policy == KEEPREF:
            for sid, _ in list(s.entries(t, node.first, node.last)):
                t.remove(s.key, pack_id(sid))
            t.remove(s.key, node.member)
            s.length -= node.live
            deleted += node.live
            continue
        if trim.approx and trim.policy == KEEPREF:
            break
        stop = False
        for sid, _ in list(s.entries(t, node.first, node.last)):
            if trim.strategy == MAXLEN and s.length <= trim.maxlen:
                stop = True
                break
            if trim.strategy == MINID and sid >= trim.minid:
                stop = True
                break
            if trim.policy == ACKED and referenced(t, s, sid):
                continue
            if trim.policy == DELREF:
                unreference(t, s, sid)
            t.remove(s.key, pack_id(sid))
            node.live -= 1
            s.length -= 1
            deleted += 1
        if node.live == 0:
            t.remove(s.key, node.member)
        else:
            s.put_node(t, node)
        if stop or trim.policy == KEEPREF:
            break
    if s.length == 0:
        s.first = MIN_ID
    elif deleted:
        s.first = s.first_live(t)
    return deleted


def _head_nodes(t: Txn, s: Stream, trim: Trim) -> list[Node]:
    """The nodes trimming may touch: from the head, until one that surely stays."""
    out: list[Node] = []
    length = s.length
    for node in s.nodes(t):
        out.append(node)
        length -= node.live
        if trim.strategy == MAXLEN and length < trim.maxlen and trim.policy == KEEPREF:
            break
        if trim.strategy == MINID and node.last >= trim.minid:
            break
    return out


# --- XADD -----------------------------------------------------------------------------


def next_id(t: Txn, s: Stream, sid: StreamID | None, seq_given: bool) -> StreamID:
    """``streamAppendItem``'s choice of ID (errors as XADD words them)."""
    if sid is None:
        new = (t.now, 0) if t.now > s.last[0] else incr_id(s.last)
        if new is None:
            raise ReplyError(XADD_ID_TOO_SMALL)
    elif seq_given:
        new = sid
    elif s.last[0] == sid[0]:
        if s.last[1] == U64:  # Redis fails here without setting errno: this is its text
            raise ReplyError(XADD_TOO_LARGE)
        new = (sid[0], s.last[1] + 1)
    else:
        new = sid
    if new <= s.last:
        raise ReplyError(XADD_ID_TOO_SMALL)
    return new


def append(t: Txn, s: Stream, sid: StreamID, fields: list[bytes]) -> None:
    """Add an entry in the tail node, or in a new one when the tail is full."""
    tail = next(s.nodes(t, rev=True), None)
    if tail is not None:
        size = sum(len(f) for f in fields)
        if tail.size + size >= NODE_MAX_BYTES or tail.total >= NODE_MAX_ENTRIES:
            tail = None
    if tail is None:
        tail = Node(sid, 0, 0, new_node_bytes(fields), sid, fields[0::2])
    tail.size += entry_bytes(tail, sid, fields)
    tail.live += 1
    tail.total += 1
    tail.last = sid
    s.put_node(t, tail)
    t.put(s.key, pack_id(sid), entry_value(tail.first, fields), float(sid[0]))
    s.length += 1
    s.entries_added += 1
    s.last = sid
    if s.length == 1:
        s.first = sid


@command("xadd")
def xadd(t: Txn, args: Args) -> Reply:
    trim, idpos, nomkstream, sid, seq_given = parse_trim(args, xadd=True)
    fields = args[idpos + 1 :]
    if len(fields) < 2 or len(fields) % 2:
        raise ReplyError(wrong_arity("xadd"))
    if sid == MIN_ID and seq_given:
        raise ReplyError(XADD_ID_ZERO)
    key = stream_key(t, args[1])
    if key is None:
        if nomkstream:
            return None
        key = t.create(args[1], STREAM)
    s = Stream.load(t, key)
    if s.last == MAX_ID:
        raise ReplyError(XADD_ID_EXHAUSTED)
    new = next_id(t, s, sid, seq_given)
    append(t, s, new, list(fields))
    trim_stream(t, s, trim)
    s.save(t)
    return format_id(new)


# --- reads ----------------------------------------------------------------------------


def parse_interval(raw: bytes, missing_seq: int, start: bool) -> StreamID:
    """``streamParseIntervalIDOrReply`` with ``(`` made inclusive (errors as XRANGE's)."""
    if len(raw) > 1 and raw[:1] == b"(":
        sid = parse_id(raw[1:], missing_seq, strict=True)
        moved = incr_id(sid) if start else decr_id(sid)
        if moved is None:
            raise ReplyError(INTERVAL_START_INVALID if start else INTERVAL_END_INVALID)
        return moved
    return parse_id(raw, missing_seq)


def _range(t: Txn, args: Args, rev: bool) -> Reply:
    start_arg, end_arg = (args[3], args[2]) if rev else (args[2], args[3])
    start = parse_interval(start_arg, 0, True)
    end = parse_interval(end_arg, 2**64 - 1, False)
    count = -1
    j = 4
    while j < len(args):
        if args[j].upper() == b"COUNT" and j + 1 < len(args):
            count = max(parse_int(args[j + 1]), 0)
            j += 2
        else:
            raise ReplyError(SYNTAX_ERROR)
    key = stream_key(t, args[1])
    if key is None:
        return []
    if count == 0:
        return None
    s = Stream(key)
    return [entry_reply(sid, f) for sid, f in s.entries(t, start, end, max(count, 0), rev)]


@command("xrange")
def xrange(t: Txn, args: Args) -> Reply:
    return _range(t, args, rev=False)


@command("xrevrange")
def xrevrange(t: Txn, args: Args) -> Reply:
    return _range(t, args, rev=True)


@command("xlen")
def xlen(t: Txn, args: Args) -> Reply:
    key = stream_key(t, args[1])
    return 0 if key is None else Stream.load(t, key).length


# --- deletes --------------------------------------------------------------------------


def delete_entry(t: Txn, s: Stream, sid: StreamID) -> bool:
    """``streamDeleteItem``: the entry goes; its node with its last live entry."""
    found = s.entry(t, sid)
    if found is None:
        return False
    node = s.node_of(t, found)
    t.remove(s.key, found.member)
    if node.live == 1:
        t.remove(s.key, node.member)
    else:
        node.live -= 1
        s.put_node(t, node)
    s.length -= 1
    return True


def deleted(t: Txn, s: Stream, ids: list[StreamID]) -> None:
    """What XDEL records once its entries are gone: the max deleted ID, the first ID."""
    first_entry = False
    for sid in ids:
        first_entry = first_entry or sid == s.first
        s.max_deleted = max(s.max_deleted, sid)
    if s.length == 0:
        s.first = MIN_ID
    elif first_entry:
        s.first = s.first_live(t)


@command("xdel")
def xdel(t: Txn, args: Args) -> Reply:
    key = stream_key(t, args[1])
    if key is None:
        return 0
    ids = [parse_id(a, strict=True) for a in args[2:]]
    s = Stream.load(t, key)
    gone = [sid for sid in ids if delete_entry(t, s, sid)]
    if gone:
        deleted(t, s, gone)
        s.save(t)
    return len(gone)


@command("xtrim")
def xtrim(t: Txn, args: Args) -> Reply:
    trim = parse_trim(args, xadd=False)[0]
    key = stream_key(t, args[1])
    if key is None:
        return 0
    s = Stream.load(t, key)
    removed = trim_stream(t, s, trim)
    if removed:
        s.save(t)
    return removed


def parse_ids_block(args: Args, at: int) -> tuple[bytes, list[StreamID]]:
    """Redis 8.2's ``[KEEPREF | DELREF | ACKED] IDS numids id...`` from ``at`` on."""
    policy = KEEPREF
    ids: list[StreamID] | None = None
    i = at
    while i < len(args):
        opt = args[i].upper()
        if opt == b"IDS" and i + 1 < len(args) and ids is None:
            n = parse_int(args[i + 1], STREAM_IDS_NUMIDS)
            if n <= 0:
                raise ReplyError(STREAM_IDS_NUMIDS)
            if i + 2 + n > len(args):
                raise ReplyError(STREAM_IDS_MISMATCH)
            ids = [parse_id(a, strict=True) for a in args[i + 2 : i + 2 + n]]
            i += 2 + n
        elif opt in (KEEPREF, DELREF, ACKED):
            policy = opt
            i += 1
        else:
            raise ReplyError(SYNTAX_ERROR)
    if ids is None:
        raise ReplyError(SYNTAX_ERROR)
    return policy, ids


def delete_with_policy(t: Txn, s: Stream, sid: StreamID, policy: bytes) -> int:
    """One ID of XDELEX/XACKDEL: -1 no such entry, 1 deleted, 2 kept (still referenced)."""
    from kvgate.engine.stream_groups import referenced, unreference

    if s.entry(t, sid) is None:
        if policy == DELREF:
            unreference(t, s, sid)
        return -1
    if policy == ACKED and referenced(t, s, sid):
        return 2
    if policy == DELREF:
        unreference(t, s, sid)
    delete_entry(t, s, sid)
    deleted(t, s, [sid])
    return 1


@command("xdelex")
def xdelex(t: Txn, args: Args) -> Reply:
    policy, ids = parse_ids_block(args, 2)
    key = stream_key(t, args[1])
    if key is None:
        return [-1] * len(ids)
    s = Stream.load(t, key)
    out: list[Reply] = [delete_with_policy(t, s, sid, policy) for sid in ids]
    s.save(t)
    return out


# --- XSETID ---------------------------------------------------------------------------


@command("xsetid")
def xsetid(t: Txn, args: Args) -> Reply:
    sid = parse_id(args[2], strict=True)
    entries_added, max_deleted = -1, MIN_ID
    i = 3
    while i < len(args):
        opt = args[i].upper()
        if opt == b"ENTRIESADDED" and i + 1 < len(args):
            entries_added = parse_int(args[i + 1])
            if entries_added < 0:
                raise ReplyError(ENTRIES_ADDED_NEGATIVE)
        elif opt == b"MAXDELETEDID" and i + 1 < len(args):
            max_deleted = parse_id(args[i + 1], strict=True)
            if sid < max_deleted:
                raise ReplyError(XSETID_BELOW_MAX_DELETED)
        else:
            raise ReplyError(SYNTAX_ERROR)
        i += 2
    key = t.lookup(args[1])
    if key is None:
        raise ReplyError(NO_SUCH_KEY)
    key = stream_key(t, args[1])
    assert key is not None
    s = Stream.load(t, key)
    if s.length > 0:
        if sid < s.last_live(t):
            raise ReplyError(XSETID_BELOW_TOP)
        if entries_added != -1 and s.length > entries_added:
            raise ReplyError(XSETID_ENTRIES_ADDED_SMALL)
    s.last = sid
    if entries_added != -1:
        s.entries_added = entries_added
    if max_deleted != MIN_ID:
        s.max_deleted = max_deleted
    s.save(t)
    return OK


# --- XREAD ----------------------------------------------------------------------------


@dataclass
class ReadArgs:
    count: int
    keys: list[bytes]
    ids: list[bytes]
    group: bytes | None
    consumer: bytes | None
    noack: bool


def parse_read(args: Args, group_cmd: bool) -> ReadArgs:
    """XREAD/XREADGROUP's options, as ``xreadCommand`` reads them."""
    from kvgate.error_texts import (
        XREAD_GROUP_OPTION,
        XREAD_NOACK_OPTION,
        XREAD_UNBALANCED,
        XREADGROUP_NO_GROUP_OPTION,
    )

    count, streams_at, noack = 0, 0, False
    group = consumer = None
    i = 1
    while i < len(args):
        more = len(args) - i - 1
        opt = args[i].upper()
        if opt == b"BLOCK" and more:
            raise ReplyError(block_in_script(args[0].decode("utf-8", "replace")))
        elif opt == b"COUNT" and more:
            i += 1
            count = max(parse_int(args[i]), 0)
        elif opt == b"STREAMS" and more:
            streams_at = i + 1
            if (len(args) - streams_at) % 2:
                raise ReplyError(XREAD_UNBALANCED)
            break
        elif opt == b"GROUP" and more >= 2:
            if not group_cmd:
                raise ReplyError(XREAD_GROUP_OPTION)
            group, consumer = args[i + 1], args[i + 2]
            i += 2
        elif opt == b"NOACK":
            if not group_cmd:
                raise ReplyError(XREAD_NOACK_OPTION)
            noack = True
        else:
            raise ReplyError(SYNTAX_ERROR)
        i += 1
    if not streams_at:
        raise ReplyError(SYNTAX_ERROR)
    if group_cmd and group is None:
        raise ReplyError(XREADGROUP_NO_GROUP_OPTION)
    n = (len(args) - streams_at) // 2
    keys = list(args[streams_at : streams_at + n])
    return ReadArgs(count, keys, list(args[streams_at + n :]), group, consumer, noack)


@command("xread")
def xread(t: Txn, args: Args) -> Reply:
    from kvgate.error_texts import XREAD_GREATER_ID

    r = parse_read(args, group_cmd=False)
    after: list[StreamID] = []
    streams: list[Stream | None] = []
    for name, raw in zip(r.keys, r.ids, strict=True):
        key = stream_key(t, name)
        s = None if key is None else Stream.load(t, key)
        streams.append(s)
        if raw == b"$":
            after.append(s.last if s is not None else MIN_ID)
        elif raw == b">":
            raise ReplyError(XREAD_GREATER_ID)
        else:
            after.append(parse_id(raw, strict=True))
    out: list[Reply] = []
    for name, s, gt in zip(r.keys, streams, after, strict=True):
        if s is None or not s.length or s.last_live(t) <= gt:
            continue
        start = incr_id(gt) or MIN_ID
        out.append([name, [entry_reply(sid, f) for sid, f in s.entries(t, start, MAX_ID, r.count)]])
    return out or None
