"""Consumer groups (``t_stream.c`` of Redis 7.0): XGROUP, XREADGROUP, XACK, XPENDING,
XCLAIM, XAUTOCLAIM, XINFO, and Redis 8.2's XACKDEL.

A group's pending entries are members of their own (:mod:`kvgate.engine.stream_layout`);
consumers, with the time each was last seen, live in the stream's state.  Times are the
unit's clock (``Txn.now``), as Redis reads ``mstime()`` once per command.
"""

from __future__ import annotations

from kvgate.engine.numbers import INT64_MAX, parse_int
from kvgate.engine.registry import OK, command
from kvgate.engine.storage import Txn
from kvgate.engine.stream_layout import (
    INVALID_READ,
    MAX_ID,
    MIN_ID,
    Group,
    Pending,
    Stream,
    StreamID,
    fields_of,
    format_id,
    incr_id,
    pack_id,
    parse_id,
    rax_nodes,
)
from kvgate.engine.streams import (
    STREAM,
    delete_with_policy,
    entry_reply,
    parse_ids_block,
    parse_interval,
    parse_read,
    stream_key,
)
from kvgate.error_texts import (
    BUSYGROUP,
    ENTRIESREAD_INVALID,
    GEO_COUNT_POSITIVE,
    NO_SUCH_KEY,
    SYNTAX_ERROR,
    XGROUP_NEEDS_KEY,
    XREADGROUP_DOLLAR,
    min_idle_invalid,
    nogroup,
    nogroup_for_key,
    nogroup_xreadgroup,
    subcommand_syntax,
    xclaim_option_invalid,
    xclaim_option_unknown,
)
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# --- facts Redis derives ----------------------------------------------------------------


def has_tombstones(s: Stream, start: StreamID | None) -> bool:
    """``streamRangeHasTombstones`` from ``start`` to the end."""
    if not s.length or s.max_deleted == MIN_ID or s.first > s.max_deleted:
        return False
    return (start or MIN_ID) <= s.max_deleted


def estimate_read(s: Stream, sid: StreamID) -> int:
    """``streamEstimateDistanceFromFirstEverEntry``."""
    if not s.entries_added:
        return 0
    if not s.length and sid <= s.last:
        return s.entries_added
    if sid == s.last:
        return s.entries_added
    if sid > s.last:
        return INVALID_READ
    if s.max_deleted == MIN_ID or s.max_deleted < s.first:
        if sid < s.first:
            return s.entries_added - s.length
        if sid == s.first:
            return s.entries_added - s.length + 1
    return INVALID_READ


def lag(s: Stream, g: Group) -> int | None:
    """``streamReplyWithCGLag``: entries not yet delivered, or None when unknown."""
    if not s.entries_added:
        return 0
    if g.entries_read != INVALID_READ and not has_tombstones(s, g.last):
        return s.entries_added - g.entries_read
    read = estimate_read(s, g.last)
    return None if read == INVALID_READ else s.entries_added - read


def referenced(t: Txn, s: Stream, sid: StreamID) -> bool:
    """Redis 8.2's ACKED test: some group has the entry pending or has yet to deliver it."""
    return any(g.last < sid or s.pending_one(t, g, sid) is not None for g in s.groups.values())


def unreference(t: Txn, s: Stream, sid: StreamID) -> None:
    """Redis 8.2's DELREF: the entry leaves every group's pending list."""
    for g in s.groups.values():
        s.drop_pending(t, g, sid)


def _group(t: Txn, name: bytes, group: bytes) -> tuple[Stream, Group]:
    """The stream and group of XACK-like commands (NOGROUP when either is missing)."""
    key = stream_key(t, name)
    s = None if key is None else Stream.load(t, key)
    g = None if s is None else s.groups.get(group)
    if s is None or g is None:
        raise ReplyError(nogroup(_text(name), _text(group)))
    return s, g


def _consumer(t: Txn, g: Group, name: bytes) -> None:
    """``streamLookupConsumer`` (seen now) or ``streamCreateConsumer``."""
    g.consumers[name] = t.now


# --- XGROUP -----------------------------------------------------------------------------


def _xgroup(t: Txn, args: Args, sub: str) -> tuple[Stream | None, Group | None, bool, int]:
    """The checks ``xgroupCommand`` makes for every subcommand with a key."""
    mkstream, entries_read = False, INVALID_READ
    i = 5
    while i < len(args):
        opt = args[i].upper()
        if sub == "create" and opt == b"MKSTREAM":
            mkstream = True
            i += 1
        elif sub in ("create", "setid") and opt == b"ENTRIESREAD" and i + 1 < len(args):
            entries_read = parse_int(args[i + 1])
            if entries_read < 0 and entries_read != INVALID_READ:
                raise ReplyError(ENTRIESREAD_INVALID)
            i += 2
        else:
            raise ReplyError(subcommand_syntax("xgroup", _text(args[1])))
    key = stream_key(t, args[2])
    s = None if key is None else Stream.load(t, key)
    g = None if s is None else s.groups.get(args[3])
    if not mkstream:
        if s is None:
            raise ReplyError(XGROUP_NEEDS_KEY)
        if g is None and sub in ("setid", "createconsumer", "delconsumer"):
            raise ReplyError(nogroup_for_key(_text(args[3]), _text(args[2])))
    return s, g, mkstream, entries_read


@command("xgroup|create")
def xgroup_create(t: Txn, args: Args) -> Reply:
    s, _, _, entries_read = _xgroup(t, args, "create")
    if len(args) > 8:
        raise ReplyError(subcommand_syntax("xgroup", _text(args[1])))
    current = s.last if s is not None else MIN_ID
    sid = current if args[4] == b"$" else parse_id(args[4], strict=True)
    if s is None:
        s = Stream(t.create(args[2], STREAM))
        s.save(t)
    if args[3] in s.groups:
        raise ReplyError(BUSYGROUP)
    s.groups[args[3]] = Group(s.next_group, sid, entries_read)
    s.next_group += 1
    s.save(t)
    return OK


@command("xgroup|setid")
def xgroup_setid(t: Txn, args: Args) -> Reply:
    s, g, _, entries_read = _xgroup(t, args, "setid")
    if len(args) not in (5, 7):
        raise ReplyError(subcommand_syntax("xgroup", _text(args[1])))
    assert s is not None and g is not None
    g.last = s.last if args[4] == b"$" else parse_id(args[4])
    g.entries_read = entries_read
    s.save(t)
    return OK


@command("xgroup|destroy")
def xgroup_destroy(t: Txn, args: Args) -> Reply:
    s, g, _, _ = _xgroup(t, args, "destroy")
    assert s is not None
    if g is None:
        return 0
    t.remove_many(s.key, [g.pel_member(p.id) for p in list(s.pending(t, g))])
    del s.groups[args[3]]
    s.save(t)
    return 1


@command("xgroup|createconsumer")
def xgroup_createconsumer(t: Txn, args: Args) -> Reply:
    s, g, _, _ = _xgroup(t, args, "createconsumer")
    assert s is not None and g is not None
    if args[4] in g.consumers:
        return 0
    g.consumers[args[4]] = t.now
    s.save(t)
    return 1


@command("xgroup|delconsumer")
def xgroup_delconsumer(t: Txn, args: Args) -> Reply:
    s, g, _, _ = _xgroup(t, args, "delconsumer")
    assert s is not None and g is not None
    if args[4] not in g.consumers:
        return 0
    mine = [p.id for p in s.pending(t, g) if p.consumer == args[4]]
    t.remove_many(s.key, [g.pel_member(sid) for sid in mine])
    del g.consumers[args[4]]
    s.save(t)
    return len(mine)


# --- XREADGROUP -------------------------------------------------------------------------


@command("xreadgroup")
def xreadgroup(t: Txn, args: Args) -> Reply:
    r = parse_read(args, group_cmd=True)
    assert r.group is not None and r.consumer is not None
    found: list[tuple[Stream, Group, StreamID | None]] = []
    for name, raw in zip(r.keys, r.ids, strict=True):
        key = stream_key(t, name)
        s = None if key is None else Stream.load(t, key)
        g = None if s is None else s.groups.get(r.group)
        if s is None or g is None:
            raise ReplyError(nogroup_xreadgroup(_text(name), _text(r.group)))
        if raw == b"$":
            raise ReplyError(XREADGROUP_DOLLAR)
        found.append((s, g, None if raw == b">" else parse_id(raw, strict=True)))
    out: list[Reply] = []
    for name, (s, g, sid) in zip(r.keys, found, strict=True):
        if sid is not None:
            _consumer(t, g, r.consumer)
            out.append([name, _history(t, s, g, r.consumer, incr_id(sid) or MIN_ID, r.count)])
        elif s.length and s.last_live(t) > g.last:
            _consumer(t, g, r.consumer)
            out.append([name, _deliver(t, s, g, r.consumer, r.count, r.noack)])
        else:
            continue
        s.save(t)
    return out or None


def _deliver(t: Txn, s: Stream, g: Group, consumer: bytes, count: int, noack: bool) -> list[Reply]:
    """New entries for ``consumer`` (``>``): the group moves on, the pending list grows."""
    out: list[Reply] = []
    for sid, fields in list(s.entries(t, incr_id(g.last) or MIN_ID, MAX_ID, count)):
        if g.entries_read != INVALID_READ and not has_tombstones(s, sid):
            g.entries_read += 1
        elif s.entries_added:
            g.entries_read = estimate_read(s, sid)
        g.last = sid
        out.append(entry_reply(sid, fields))
        if not noack:
            s.put_pending(t, g, Pending(sid, consumer, t.now, 1))
    return out


def _history(t: Txn, s: Stream, g: Group, consumer: bytes, start: StreamID, count: int) -> list[Reply]:
    """The consumer's own pending entries from ``start`` (a deleted one with no fields)."""
    out: list[Reply] = []
    for p in list(s.pending(t, g, start)):
        if p.consumer != consumer:
            continue
        if count and len(out) >= count:
            break
        found = s.entry(t, p.id)
        if found is None:
            out.append([format_id(p.id), None])
            continue
        out.append(entry_reply(p.id, fields_of(found)))
        p.delivery_time = t.now
        p.delivery_count += 1
        s.put_pending(t, g, p)
    return out


# --- XACK, XACKDEL ------------------------------------------------------------------------


@command("xack")
def xack(t: Txn, args: Args) -> Reply:
    key = stream_key(t, args[1])
    s = None if key is None else Stream.load(t, key)
    g = None if s is None else s.groups.get(args[2])
    if s is None or g is None:
        return 0
    ids = [parse_id(a, strict=True) for a in args[3:]]
    return sum(s.drop_pending(t, g, sid) for sid in ids)


@command("xackdel")
def xackdel(t: Txn, args: Args) -> Reply:
    policy, ids = parse_ids_block(args, 3)
    key = stream_key(t, args[1])
    s = None if key is None else Stream.load(t, key)
    g = None if s is None else s.groups.get(args[2])
    if s is None or g is None:
        if s is None:
            return [-1] * len(ids)
        raise ReplyError(nogroup(_text(args[1]), _text(args[2])))
    out: list[Reply] = []
    for sid in ids:  # acknowledged if pending; then deleted as XDELEX would
        s.drop_pending(t, g, sid)
        out.append(delete_with_policy(t, s, sid, policy))
    s.save(t)
    return out


# --- XPENDING ---------------------------------------------------------------------------


@command("xpending")
def xpending(t: Txn, args: Args) -> Reply:
    argc = len(args)
    if argc != 3 and not 6 <= argc <= 9:
        raise ReplyError(SYNTAX_ERROR)
    minidle, count, consumer = 0, 0, None
    start, end = MIN_ID, MAX_ID
    if argc >= 6:
        at = 3
        if args[3].upper() == b"IDLE":
            minidle = parse_int(args[4])
            if argc < 8:
                raise ReplyError(SYNTAX_ERROR)
            at = 5
        count = max(parse_int(args[at + 2]), 0)
        start = parse_interval(args[at], 0, True)
        end = parse_interval(args[at + 1], 2**64 - 1, False)
        if at + 3 < argc:
            consumer = args[at + 3]
    s, g = _group(t, args[1], args[2])
    if argc == 3:
        pending = list(s.pending(t, g))
        if not pending:
            return [0, None, None, None]
        per: dict[bytes, int] = {}
        for p in pending:
            per[p.consumer] = per.get(p.consumer, 0) + 1
        owners: list[Reply] = [[c, b"%d" % per[c]] for c in sorted(per)]
        return [len(pending), format_id(pending[0].id), format_id(pending[-1].id), owners]
    if consumer is not None and consumer not in g.consumers:
        return []
    out: list[Reply] = []
    for p in s.pending(t, g, start):
        if not count or p.id > end:
            break
        if consumer is not None and p.consumer != consumer:
            continue
        idle = t.now - p.delivery_time
        if minidle and idle < minidle:
            continue
        out.append([format_id(p.id), p.consumer, max(idle, 0), p.delivery_count])
        count -= 1
    return out


# --- XCLAIM, XAUTOCLAIM -----------------------------------------------------------------


@command("xclaim")
def xclaim(t: Txn, args: Args) -> Reply:
    s, g = _group(t, args[1], args[2])
    minidle = max(parse_int(args[4], min_idle_invalid("XCLAIM")), 0)
    ids: list[StreamID] = []
    j = 5
    while j < len(args):
        try:
            ids.append(parse_id(args[j], strict=True))
        except ReplyError:
            break
        j += 1
    now = t.now
    retry, when, force, justid = -1, -1, False, False
    last_id = MIN_ID
    while j < len(args):
        more = len(args) - 1 - j
        opt = args[j].upper()
        if opt == b"FORCE":
            force = True
        elif opt == b"JUSTID":
            justid = True
        elif opt == b"IDLE" and more:
            j += 1
            when = now - parse_int(args[j], xclaim_option_invalid("IDLE"))
        elif opt == b"TIME" and more:
            j += 1
            when = parse_int(args[j], xclaim_option_invalid("TIME"))
        elif opt == b"RETRYCOUNT" and more:
            j += 1
            retry = parse_int(args[j], xclaim_option_invalid("RETRYCOUNT"))
        elif opt == b"LASTID" and more:
            j += 1
            last_id = parse_id(args[j], strict=True)
        else:
            raise ReplyError(xclaim_option_unknown(_text(args[j])))
        j += 1
    if last_id > g.last:
        g.last = last_id
    if when < 0 or when > now:
        when = now
    out: list[Reply] = []
    claimed = False
    for sid in ids:
        p = s.pending_one(t, g, sid)
        found = s.entry(t, sid)
        if found is None:
            if p is not None:
                s.drop_pending(t, g, sid)
            continue
        forced = p is None and force
        if forced:
            p = Pending(sid, args[3], now, 1)
        if p is None:
            continue
        if not forced and minidle and now - p.delivery_time < minidle:
            continue
        if not claimed:
            _consumer(t, g, args[3])
            claimed = True
        p.consumer, p.delivery_time = args[3], when
        if retry >= 0:
            p.delivery_count = retry
        elif not justid:
            p.delivery_count += 1
        s.put_pending(t, g, p)
        out.append(format_id(sid) if justid else entry_reply(sid, fields_of(found)))
    s.save(t)
    return out


@command("xautoclaim")
def xautoclaim(t: Txn, args: Args) -> Reply:
    minidle = max(parse_int(args[4], min_idle_invalid("XAUTOCLAIM")), 0)
    start = parse_interval(args[5], 0, True)
    count, justid = 100, False
    j = 6
    while j < len(args):
        opt = args[j].upper()
        if opt == b"COUNT" and j + 1 < len(args):
            count = parse_int(args[j + 1], GEO_COUNT_POSITIVE)
            if not 1 <= count <= INT64_MAX // 16:
                raise ReplyError(GEO_COUNT_POSITIVE)
            j += 1
        elif opt == b"JUSTID":
            justid = True
        else:
            raise ReplyError(SYNTAX_ERROR)
        j += 1
    s, g = _group(t, args[1], args[2])
    attempts = count * 10
    now = t.now
    claimed: list[Reply] = []
    gone: list[Reply] = []
    cursor = MIN_ID
    seen_consumer = False
    walk = s.pending(t, g, start)
    pending = [p for _, p in zip(range(attempts + 1), walk, strict=False)]
    i = 0
    while attempts and count and i < len(pending):
        attempts -= 1
        p = pending[i]
        i += 1
        found = s.entry(t, p.id)
        if found is None:
            s.drop_pending(t, g, p.id)
            gone.append(format_id(p.id))
            count -= 1
            continue
        if minidle and now - p.delivery_time < minidle:
            continue
        if not seen_consumer:
            _consumer(t, g, args[3])
            seen_consumer = True
        p.consumer, p.delivery_time = args[3], now
        p.delivery_count += 0 if justid else 1
        s.put_pending(t, g, p)
        claimed.append(format_id(p.id) if justid else entry_reply(p.id, fields_of(found)))
        count -= 1
    if i < len(pending):
        cursor = pending[i].id
    s.save(t)
    return [format_id(cursor), claimed, gone]


# --- XINFO ------------------------------------------------------------------------------


def _info_stream(t: Txn, s: Stream) -> list[Reply]:
    nodes = list(s.nodes(t))
    return [
        b"length",
        s.length,
        b"radix-tree-keys",
        len(nodes),
        b"radix-tree-nodes",
        rax_nodes([pack_id(n.first) for n in nodes]),
        b"last-generated-id",
        format_id(s.last),
        b"max-deleted-entry-id",
        format_id(s.max_deleted),
        b"entries-added",
        s.entries_added,
        b"recorded-first-entry-id",
        format_id(s.first),
    ]


@command("xinfo|stream")
def xinfo_stream(t: Txn, args: Args) -> Reply:
    s = _info_key(t, args[2])
    full, count = False, 10
    opts = args[3:]
    if opts:
        if len(opts) not in (1, 3) or opts[0].upper() != b"FULL":
            raise ReplyError(subcommand_syntax("xinfo", _text(args[1])))
        full = True
        if len(opts) == 3:
            if opts[1].upper() != b"COUNT":
                raise ReplyError(subcommand_syntax("xinfo", _text(args[1])))
            count = parse_int(opts[2])
            if count < 0:
                count = 10
    out = _info_stream(t, s)
    if not full:
        first = next(s.entries(t, MIN_ID, MAX_ID, 1), None)
        last = next(s.entries(t, MIN_ID, MAX_ID, 1, rev=True), None)
        out += [b"groups", len(s.groups)]
        out += [b"first-entry", None if first is None else entry_reply(*first)]
        out += [b"last-entry", None if last is None else entry_reply(*last)]
        return out
    out += [b"entries", [entry_reply(sid, f) for sid, f in s.entries(t, MIN_ID, MAX_ID, count)]]
    groups: list[Reply] = []
    for name in sorted(s.groups):
        g = s.groups[name]
        pending = list(s.pending(t, g))
        consumers: list[Reply] = []
        for c in sorted(g.consumers):
            mine = [p for p in pending if p.consumer == c]
            listed = mine if not count else mine[:count]
            consumers.append(
                [
                    b"name",
                    c,
                    b"seen-time",
                    g.consumers[c],
                    b"pel-count",
                    len(mine),
                    b"pending",
                    [[format_id(p.id), p.delivery_time, p.delivery_count] for p in listed],
                ]
            )
        shown = pending if not count else pending[:count]
        groups.append(
            [
                b"name",
                name,
                b"last-delivered-id",
                format_id(g.last),
                b"entries-read",
                None if g.entries_read == INVALID_READ else g.entries_read,
                b"lag",
                lag(s, g),
                b"pel-count",
                len(pending),
                b"pending",
                [[format_id(p.id), p.consumer, p.delivery_time, p.delivery_count] for p in shown],
                b"consumers",
                consumers,
            ]
        )
    out += [b"groups", groups]
    return out


def _info_key(t: Txn, name: bytes) -> Stream:
    if t.lookup(name) is None:
        raise ReplyError(NO_SUCH_KEY)
    key = stream_key(t, name)
    assert key is not None
    return Stream.load(t, key)


@command("xinfo|groups")
def xinfo_groups(t: Txn, args: Args) -> Reply:
    s = _info_key(t, args[2])
    out: list[Reply] = []
    for name in sorted(s.groups):
        g = s.groups[name]
        out.append(
            [
                b"name",
                name,
                b"consumers",
                len(g.consumers),
                b"pending",
                sum(1 for _ in s.pending(t, g)),
                b"last-delivered-id",
                format_id(g.last),
                b"entries-read",
                None if g.entries_read == INVALID_READ else g.entries_read,
                b"lag",
                lag(s, g),
            ]
        )
    return out


@command("xinfo|consumers")
def xinfo_consumers(t: Txn, args: Args) -> Reply:
    s = _info_key(t, args[2])
    g = s.groups.get(args[3])
    if g is None:
        raise ReplyError(nogroup_for_key(_text(args[3]), _text(args[2])))
    per: dict[bytes, int] = {}
    for p in s.pending(t, g):
        per[p.consumer] = per.get(p.consumer, 0) + 1
    return [
        [b"name", c, b"pending", per.get(c, 0), b"idle", max(t.now - g.consumers[c], 0)]
        for c in sorted(g.consumers)
    ]


# --- HELP -------------------------------------------------------------------------------

XGROUP_HELP: tuple[bytes, ...] = (
    b"XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CREATE <key> <groupname> <id|$> [option]",
    b"    Create a new consumer group. Options are:",
    b"    * MKSTREAM",
    b"      Create the empty stream if it does not exist.",
    b"    * ENTRIESREAD entries_read",
    b"      Set the group's entries_read counter (internal use).",
    b"CREATECONSUMER <key> <groupname> <consumer>",
    b"    Create a new consumer in the specified group.",
    b"DELCONSUMER <key> <groupname> <consumer>",
    b"    Remove the specified consumer.",
    b"DESTROY <key> <groupname>",
    b"    Remove the specified group.",
    b"SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    b"    Set the current group ID and entries_read counter.",
    b"HELP",
    b"    Prints this help.",
)
XINFO_HELP: tuple[bytes, ...] = (
    b"XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CONSUMERS <key> <groupname>",
    b"    Show consumers of <groupname>.",
    b"GROUPS <key>",
    b"    Show the stream consumer groups.",
    b"STREAM <key> [FULL [COUNT <count>]",
    b"    Show information about the stream.",
    b"HELP",
    b"    Prints this help.",
)


@command("xgroup|help")
def xgroup_help(t: Txn, args: Args) -> Reply:
    return list(XGROUP_HELP)


@command("xinfo|help")
def xinfo_help(t: Txn, args: Args) -> Reply:
    return list(XINFO_HELP)
