"""Set commands (``t_set.c`` of Redis 7.0).

A set is a collection of members with empty values.  Redis 7.0 keeps a set of at most 512
integers as a sorted *intset* and any other set as a hash table.  Hash-table order cannot
be reproduced (clients and kvgate's tests take it as unordered), but intset order can:
replies that list a whole set (SMEMBERS, SUNION, SDIFF, SINTER, SSCAN) give an all-integer
set of at most 512 members in numeric order, as Redis does, and any other set in insertion
order.

The multi-key commands look every source key up (WRONGTYPE for any of them wins) before
computing; a missing key is an empty set.  The ``*STORE`` forms replace the destination,
whatever its type, and delete it when the result is empty.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from kvgate.engine.hashes import LONG_MAX, parse_long_in, random_members
from kvgate.engine.numbers import format_int, parse_int, to_int
from kvgate.engine.registry import (
    command,
    drop_if_empty,
    remove_members,
    typed,
    typed_or_create,
)
from kvgate.engine.scan import parse_cursor, parse_options, scan_members
from kvgate.engine.storage import Key, KeyType, Txn
from kvgate.error_texts import (
    LIMIT_NEGATIVE,
    MUST_BE_POSITIVE,
    NUMKEYS_POSITIVE,
    SYNTAX_ERROR,
    TOO_MANY_KEYS,
    WRONGTYPE,
)
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

SET = KeyType.SET
#: ``set-max-intset-entries``: the largest set Redis keeps as a sorted intset.
INTSET_MAX = 512


def _set(t: Txn, name: bytes) -> Key | None:
    return typed(t, name, SET)


def intset_order(members: list[bytes]) -> list[bytes] | None:
    """``members`` sorted as numbers when Redis would hold them as an intset, else None."""
    if not members or len(members) > INTSET_MAX:
        return None
    numbers: list[tuple[int, bytes]] = []
    for m in members:
        n = to_int(m)
        if n is None:
            return None
        numbers.append((n, m))
    return [m for _, m in sorted(numbers)]


def redis_order(members: list[bytes]) -> list[bytes]:
    """``members`` in the order Redis lists them: numeric for an intset, else as given."""
    ordered = intset_order(members)
    return members if ordered is None else ordered


def _members(t: Txn, key: Key | None) -> list[bytes]:
    return [] if key is None else [m.member for m in t.members(key)]


def _positive(raw: bytes, error: str) -> int:
    """``getPositiveLongFromObjectOrReply``: one message for every failure."""
    value = parse_int(raw, error)
    if value < 0:
        raise ReplyError(error)
    return value


# --- single-key writes ----------------------------------------------------------------


@command("sadd")
def sadd(t: Txn, args: Args) -> Reply:
    key = typed_or_create(t, args[1], SET)
    return sum(t.put(key, m) for m in args[2:])


@command("srem")
def srem(t: Txn, args: Args) -> Reply:
    key = _set(t, args[1])
    if key is None:
        return 0
    return remove_members(t, key, dict.fromkeys(args[2:]))


@command("smove")
def smove(t: Txn, args: Args) -> Reply:
    src, dst = t.lookup(args[1]), t.lookup(args[2])
    if src is None:
        return 0
    if src.type is not SET or (dst is not None and dst.type is not SET):
        raise ReplyError(WRONGTYPE)
    member = args[3]
    if args[1] == args[2]:
        return int(t.get(src, member) is not None)
    if not t.remove(src, member):
        return 0
    drop_if_empty(t, src)
    t.put(dst if dst is not None else t.create(args[2], SET), member)
    return 1


@command("spop")
def spop(t: Txn, args: Args) -> Reply:
    if len(args) > 3:
        raise ReplyError(SYNTAX_ERROR)
    if len(args) == 3:
        return _spop_count(t, args[1], _positive(args[2], MUST_BE_POSITIVE))
    key = _set(t, args[1])
    if key is None:
        return None
    member = random.choice(t.members(key)).member
    t.remove(key, member)
    drop_if_empty(t, key)
    return member


def _spop_count(t: Txn, name: bytes, count: int) -> Reply:
    key = _set(t, name)
    if key is None or count == 0:
        return []
    members = _members(t, key)
    if count >= len(members):
        t.delete(key)
        return redis_order(members)
    popped = random.sample(members, count)
    t.remove_many(key, popped)
    return popped


# --- single-key reads -----------------------------------------------------------------


@command("scard")
def scard(t: Txn, args: Args) -> Reply:
    key = _set(t, args[1])
    return 0 if key is None else t.count(key)


@command("sismember")
def sismember(t: Txn, args: Args) -> Reply:
    key = _set(t, args[1])
    return int(key is not None and t.get(key, args[2]) is not None)


@command("smismember")
def smismember(t: Txn, args: Args) -> Reply:
    key = _set(t, args[1])
    return [int(key is not None and t.get(key, m) is not None) for m in args[2:]]


@command("smembers")
def smembers(t: Txn, args: Args) -> Reply:
    return redis_order(_members(t, _set(t, args[1])))


@command("srandmember")
def srandmember(t: Txn, args: Args) -> Reply:
    if len(args) > 3:
        raise ReplyError(SYNTAX_ERROR)
    if len(args) == 3:
        count = parse_long_in(args[2], -LONG_MAX, LONG_MAX)
        key = _set(t, args[1])
        if key is None or count == 0:
            return []
        return [m.member for m in random_members(t, key, count)]
    key = _set(t, args[1])
    return None if key is None else random.choice(t.members(key)).member


# --- SSCAN ----------------------------------------------------------------------------


@command("sscan")
def sscan(t: Txn, args: Args) -> Reply:
    cursor = parse_cursor(args[2])
    key = _set(t, args[1])
    if key is None:
        return [b"0", []]
    opts = parse_options(args, 3, allow_type=False)
    whole = intset_order(_members(t, key)) if t.count(key) <= INTSET_MAX else None
    if whole is not None:  # Redis returns an intset whole, whatever the cursor
        return [b"0", [m for m in whole if opts.matches(m)]]
    nxt, page = scan_members(t, key, cursor, opts)
    return [format_int(nxt), [m.member for m in page]]


# --- multi-key operations ---------------------------------------------------------------


def _sources(t: Txn, names: Iterable[bytes]) -> list[Key | None]:
    """Every source key, looked up in order; WRONGTYPE if any is not a set."""
    return [_set(t, name) for name in names]


def _inter(t: Txn, keys: list[Key | None], limit: int = 0) -> list[bytes]:
    """Members of every set (walking the smallest), at most ``limit`` of them (0: all)."""
    if not keys or any(k is None for k in keys):
        return []
    present = sorted((k for k in keys if k is not None), key=t.count)
    others = [set(_members(t, k)) for k in present[1:]]
    found: list[bytes] = []
    for member in redis_order(_members(t, present[0])):
        if all(member in other for other in others):
            found.append(member)
            if limit and len(found) >= limit:
                break
    return found


def _union(t: Txn, keys: list[Key | None]) -> list[bytes]:
    seen: dict[bytes, None] = {}
    for key in keys:
        seen.update(dict.fromkeys(_members(t, key)))
    return redis_order(list(seen))


def _diff(t: Txn, keys: list[Key | None]) -> list[bytes]:
    first, rest = keys[0], keys[1:]
    if first is None:
        return []
    removed: set[bytes] = set()
    for key in rest:
        removed.update(_members(t, key))
    return redis_order([m for m in _members(t, first) if m not in removed])


def _store(t: Txn, dest: bytes, members: list[bytes]) -> int:
    """Replace ``dest`` (any type) with a set of ``members``; delete it when empty."""
    old = t.lookup(dest)
    if old is not None:
        t.delete(old)
    if members:
        key = t.create(dest, SET)
        for m in members:
            t.put(key, m)
    return len(members)


@command("sinter")
def sinter(t: Txn, args: Args) -> Reply:
    return _inter(t, _sources(t, args[1:]))


@command("sinterstore")
def sinterstore(t: Txn, args: Args) -> Reply:
    return _store(t, args[1], _inter(t, _sources(t, args[2:])))


@command("sintercard")
def sintercard(t: Txn, args: Args) -> Reply:
    numkeys = parse_int(args[1], NUMKEYS_POSITIVE)
    if numkeys < 1:
        raise ReplyError(NUMKEYS_POSITIVE)
    if numkeys > len(args) - 2:
        raise ReplyError(TOO_MANY_KEYS)
    limit = 0
    i = 2 + numkeys
    while i < len(args):
        if args[i].lower() == b"limit" and i + 1 < len(args):
            limit = _positive(args[i + 1], LIMIT_NEGATIVE)
            i += 2
        else:
            raise ReplyError(SYNTAX_ERROR)
    return len(_inter(t, _sources(t, args[2 : 2 + numkeys]), limit))


@command("sunion")
def sunion(t: Txn, args: Args) -> Reply:
    return _union(t, _sources(t, args[1:]))


@command("sunionstore")
def sunionstore(t: Txn, args: Args) -> Reply:
    return _store(t, args[1], _union(t, _sources(t, args[2:])))


@command("sdiff")
def sdiff(t: Txn, args: Args) -> Reply:
    return _diff(t, _sources(t, args[1:]))


@command("sdiffstore")
def sdiffstore(t: Txn, args: Args) -> Reply:
    return _store(t, args[1], _diff(t, _sources(t, args[2:])))
