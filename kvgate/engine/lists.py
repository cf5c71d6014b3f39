"""List commands (LPUSH ... LMPOP) with Redis 7.0's replies, error texts and argument
parsing order (``src/t_list.c``).  The blocking variants are refused by the gateway.

Storage (see :mod:`kvgate.engine.storage`): one member row per element, ``score`` = its
position (a float, ascending from head to tail), ``member`` = that position packed as a
big-endian double (unique per element), ``value`` = the element.  LPUSH writes at
``head - 1``, RPUSH at ``tail + 1`` (the first element at 0.0), LINSERT at the midpoint
between the two neighbours.  When floats run out between two neighbours (or at an end),
the whole list is renumbered 0, 1, 2, ... and the write retried, so positions stay exact
integers except where LINSERT needed a fraction.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import partial

from kvgate.engine.numbers import parse_int
from kvgate.engine.registry import OK, command, drop_if_empty, remove_members, typed
from kvgate.engine.storage import Key, KeyType, Member, Txn
from kvgate.error_texts import (
    COUNT_POSITIVE,
    INDEX_OUT_OF_RANGE,
    LPOS_COUNT_NEGATIVE,
    LPOS_MAXLEN_NEGATIVE,
    LPOS_RANK_ZERO,
    MUST_BE_POSITIVE,
    NO_SUCH_KEY,
    NUMKEYS_POSITIVE,
    SYNTAX_ERROR,
    wrong_arity,
)
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

_POSITION = struct.Struct(">d")


# --- positions ------------------------------------------------------------------------


def _member(pos: float) -> bytes:
    return _POSITION.pack(pos + 0.0)  # + 0.0 folds -0.0 into 0.0


def _lookup(t: Txn, name: bytes) -> Key | None:
    return typed(t, name, KeyType.LIST)


def _end(t: Txn, key: Key, head: bool) -> Member | None:
    """The head (or tail) element."""
    found = t.ordered(key, 0, 1, rev=not head)
    return found[0] if found else None


def _renumber(t: Txn, key: Key) -> list[Member]:
    """Rewrite every position as 0, 1, 2, ... (order kept); the list as rewritten."""
    old = t.ordered(key)
    t.remove_many(key, [m.member for m in old])  # all first: new members may equal old ones
    new = [Member(_member(float(i)), m.value, float(i)) for i, m in enumerate(old)]
    for m in new:
        t.put(key, m.member, m.value, m.score)
    return new


def _outward(start: float | None, n: int, head: bool) -> list[float] | None:
    """``n`` positions stepping away from ``start`` (an end of the list, None when the
    list is empty), or None when floats cannot keep them strictly ordered."""
    step = -1.0 if head else 1.0
    positions: list[float] = []
    cur = start
    for _ in range(n):
        nxt = 0.0 if cur is None else cur + step
        if cur is not None and not (nxt < cur if head else nxt > cur):
            return None
        positions.append(nxt)
        cur = nxt
    return positions


def _push(t: Txn, key: Key, values: Sequence[bytes], head: bool) -> None:
    """Push ``values`` one by one at the head (each becoming the new head) or the tail."""
    edge = _end(t, key, head)
    positions = _outward(None if edge is None else edge.score, len(values), head)
    if positions is None:
        _renumber(t, key)
        edge = _end(t, key, head)
        positions = _outward(None if edge is None else edge.score, len(values), head)
        assert positions is not None, "renumbered positions are small integers"
    for pos, value in zip(positions, values, strict=True):
        t.put(key, _member(pos), value, pos)


def _between(low: float | None, high: float | None) -> float | None:
    """A position strictly between two neighbours (None: no neighbour on that side), or
    None when floats have run out there."""
    if low is None and high is None:
        return 0.0
    if low is None:
        assert high is not None
        pos = high - 1.0
    elif high is None:
        pos = low + 1.0
    else:
        pos = low + (high - low) / 2
    if (low is not None and pos <= low) or (high is not None and pos >= high):
        return None
    return pos


def _insert_position(items: list[Member], index: int, after: bool) -> float | None:
    """A position next to ``items[index]`` (before or after it)."""
    low: float | None
    high: float | None
    if after:
        low = items[index].score
        high = items[index + 1].score if index + 1 < len(items) else None
    else:
        low = items[index - 1].score if index > 0 else None
        high = items[index].score
    return _between(low, high)


def _at(t: Txn, key: Key, index: int) -> Member | None:
    """The element at a Redis index (negative counts from the tail), or None."""
    found = t.ordered(key, index, 1) if index >= 0 else t.ordered(key, -index - 1, 1, rev=True)
    return found[0] if found else None


def _pop(t: Txn, key: Key, count: int, head: bool) -> list[Reply]:
    """Remove up to ``count`` elements from one end; their values in popping order."""
    taken = t.ordered(key, 0, count, rev=not head)
    remove_members(t, key, [m.member for m in taken])
    return [m.value for m in taken]


def _span(start: int, end: int, llen: int) -> tuple[int, int] | None:
    """Redis's clamping of an inclusive ``start..end`` range: ``(start, length)`` or None
    when the range is empty."""
    if start < 0:
        start += llen
    if end < 0:
        end += llen
    start = max(start, 0)
    if start > end or start >= llen:
        return None
    end = min(end, llen - 1)
    return start, end - start + 1


def _side(raw: bytes) -> bool:
    """LEFT/RIGHT: True for the head."""
    side = raw.lower()
    if side == b"left":
        return True
    if side == b"right":
        return False
    raise ReplyError(SYNTAX_ERROR)


def _parse_range(raw: bytes, low: int, error: str) -> int:
    """``getRangeLongFromObjectOrReply`` with a message: one text for both failures."""
    value = parse_int(raw, error)
    if value < low:
        raise ReplyError(error)
    return value


# --- push -------------------------------------------------------------------------------


def _push_command(t: Txn, args: Args, head: bool, only_existing: bool) -> int:
    key = _lookup(t, args[1])
    if key is None:
        if only_existing:
            return 0
        key = t.create(args[1], KeyType.LIST)
    values = args[2:]
    _push(t, key, values, head)
    return t.count(key)


# LPUSH, RPUSH, LPUSHX, RPUSHX.
for _name, _head, _only_existing in (
    ("lpush", True, False),
    ("rpush", False, False),
    ("lpushx", True, True),
    ("rpushx", False, True),
):
    command(_name)(partial(_push_command, head=_head, only_existing=_only_existing))


@command("linsert")
def linsert(t: Txn, args: Args) -> Reply:
    where = args[2].lower()
    if where not in (b"before", b"after"):
        raise ReplyError(SYNTAX_ERROR)
    after = where == b"after"
    key = _lookup(t, args[1])
    if key is None:
        return 0
    items = t.ordered(key)
    index = next((i for i, m in enumerate(items) if m.value == args[3]), None)
    if index is None:
        return -1
    pos = _insert_position(items, index, after)
    if pos is None:
        items = _renumber(t, key)
        pos = _insert_position(items, index, after)
        assert pos is not None, "renumbered positions leave room"
    t.put(key, _member(pos), args[4], pos)
    return len(items) + 1


# --- pop --------------------------------------------------------------------------------


def _pop_command(t: Txn, args: Args, head: bool) -> Reply:
    if len(args) > 3:
        raise ReplyError(wrong_arity(args[0].lower().decode()))
    count = _parse_range(args[2], 0, MUST_BE_POSITIVE) if len(args) == 3 else None
    key = _lookup(t, args[1])
    if key is None:
        return None
    if count is None:
        return _pop(t, key, 1, head)[0]
    if count == 0:
        return []
    return _pop(t, key, count, head)


@command("lpop")
def lpop(t: Txn, args: Args) -> Reply:
    return _pop_command(t, args, head=True)


@command("rpop")
def rpop(t: Txn, args: Args) -> Reply:
    return _pop_command(t, args, head=False)


@command("lmpop")
def lmpop(t: Txn, args: Args) -> Reply:
    numkeys = _parse_range(args[1], 1, NUMKEYS_POSITIVE)
    where_index = 2 + numkeys
    if where_index >= len(args):
        raise ReplyError(SYNTAX_ERROR)
    head = _side(args[where_index])
    count: int | None = None
    i = where_index + 1
    while i < len(args):
        if count is None and args[i].lower() == b"count" and i + 1 < len(args):
            count = _parse_range(args[i + 1], 1, COUNT_POSITIVE)
            i += 2
        else:
            raise ReplyError(SYNTAX_ERROR)
    for name in args[2:where_index]:
        key = _lookup(t, name)
        if key is not None:
            return [name, _pop(t, key, 1 if count is None else count, head)]
    return None


def _move(t: Txn, source: bytes, destination: bytes, from_head: bool, to_head: bool) -> Reply:
    src = _lookup(t, source)
    if src is None:
        return None
    dst = src if destination == source else _lookup(t, destination)  # WRONGTYPE before popping
    taken = _end(t, src, from_head)
    assert taken is not None, "empty lists do not exist"
    t.remove(src, taken.member)
    if dst is None:
        dst = t.create(destination, KeyType.LIST)
    _push(t, dst, [taken.value], to_head)
    drop_if_empty(t, src)
    return taken.value


@command("lmove")
def lmove(t: Txn, args: Args) -> Reply:
    from_head = _side(args[3])
    to_head = _side(args[4])
    return _move(t, args[1], args[2], from_head, to_head)


@command("rpoplpush")
def rpoplpush(t: Txn, args: Args) -> Reply:
    return _move(t, args[1], args[2], from_head=False, to_head=True)


# --- read -------------------------------------------------------------------------------


@command("llen")
def llen(t: Txn, args: Args) -> Reply:
    key = _lookup(t, args[1])
    return 0 if key is None else t.count(key)


@command("lindex")
def lindex(t: Txn, args: Args) -> Reply:
    key = _lookup(t, args[1])
    if key is None:
        return None
    found = _at(t, key, parse_int(args[2]))
    return None if found is None else found.value


@command("lrange")
def lrange(t: Txn, args: Args) -> Reply:
    start, end = parse_int(args[2]), parse_int(args[3])
    key = _lookup(t, args[1])
    if key is None:
        return []
    span = _span(start, end, t.count(key))
    if span is None:
        return []
    return [m.value for m in t.ordered(key, span[0], span[1])]


def _wrap64(value: int) -> int:
    """C's signed 64-bit wrap-around (LPOS keeps Redis 7.0's overflow at RANK INT64_MIN)."""
    return (value + 2**63) % 2**64 - 2**63


@command("lpos")
def lpos(t: Txn, args: Args) -> Reply:
    element = args[2]
    rank, count, maxlen = 1, -1, 0  # count -1: option not given
    i = 3
    while i < len(args):
        option, more = args[i].lower(), i + 1 < len(args)
        if option == b"rank" and more:
            rank = parse_int(args[i + 1])
            if rank == 0:
                raise ReplyError(LPOS_RANK_ZERO)
        elif option == b"count" and more:
            count = _parse_range(args[i + 1], 0, LPOS_COUNT_NEGATIVE)
        elif option == b"maxlen" and more:
            maxlen = _parse_range(args[i + 1], 0, LPOS_MAXLEN_NEGATIVE)
        else:
            raise ReplyError(SYNTAX_ERROR)
        i += 2
    from_tail = rank < 0
    rank = _wrap64(-rank) if from_tail else rank  # INT64_MIN stays negative, as in C
    key = _lookup(t, args[1])
    if key is None:
        return [] if count != -1 else None
    llen = t.count(key) if from_tail else 0
    scanned = t.ordered(key, 0, maxlen if maxlen else -1, rev=from_tail)
    found: list[Reply] = []
    matches = 0
    for index, m in enumerate(scanned):
        if m.value != element:
            continue
        matches += 1
        if matches < rank:
            continue
        found.append(llen - index - 1 if from_tail else index)
        if count == -1 or (count and _wrap64(matches - rank + 1) >= count):
            break
    if count != -1:
        return found
    return found[0] if found else None


# --- write in place -----------------------------------------------------------------------


@command("lset")
def lset(t: Txn, args: Args) -> Reply:
    key = _lookup(t, args[1])
    if key is None:
        raise ReplyError(NO_SUCH_KEY)
    found = _at(t, key, parse_int(args[2]))
    if found is None:
        raise ReplyError(INDEX_OUT_OF_RANGE)
    t.put(key, found.member, args[3], found.score)
    return OK


@command("lrem")
def lrem(t: Txn, args: Args) -> Reply:
    limit = parse_int(args[2])
    key = _lookup(t, args[1])
    if key is None:
        return 0
    matching = [m.member for m in t.ordered(key, rev=limit < 0) if m.value == args[3]]
    if limit:
        matching = matching[: abs(limit)]
    return remove_members(t, key, matching)


@command("ltrim")
def ltrim(t: Txn, args: Args) -> Reply:
    start, end = parse_int(args[2]), parse_int(args[3])
    key = _lookup(t, args[1])
    if key is None:
        return OK
    llen = t.count(key)
    span = _span(start, end, llen)
    head_cut, tail_cut = (llen, 0) if span is None else (span[0], llen - span[0] - span[1])
    doomed = t.ordered(key, 0, head_cut) if head_cut else []
    if tail_cut:
        doomed += t.ordered(key, 0, tail_cut, rev=True)
    remove_members(t, key, [m.member for m in doomed])
    return OK
