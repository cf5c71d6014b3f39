"""Hash commands (``t_hash.c`` of Redis 7.0).

A hash is a collection whose members are the fields, each with its value.  Small hashes in
Redis (listpack) answer in insertion order, which :meth:`Txn.members` keeps, so HGETALL,
HKEYS, HVALS and HSCAN reply in that order.  A field's expiry (Redis 7.4+) is its member's
score, set by :mod:`kvgate.engine.hash_fields`: HSET and HSETNX write 0 (a set field loses
its expiry), the increments keep it, and the store hides expired fields from every read.
Arguments are checked in Redis's order (an increment before the key's type, the key's type
before the stored value) and everything that can fail is checked before anything is written.
"""

from __future__ import annotations

import random

from kvgate.engine import longdouble
from kvgate.engine.numbers import INT64_MAX, INT64_MIN, format_int, parse_int, to_int
from kvgate.engine.registry import (
    OK,
    check_reply_size,
    command,
    remove_members,
    typed,
    typed_or_create,
)
from kvgate.engine.scan import parse_cursor, parse_options, scan_members
from kvgate.engine.storage import Key, KeyType, Member, Txn
from kvgate.error_texts import (
    HASH_NOT_FLOAT,
    HASH_NOT_INTEGER,
    NAN_OR_INF_INCREMENT,
    NAN_OR_INF_RESULT,
    NOT_FLOAT,
    OUT_OF_RANGE,
    OVERFLOW,
    SYNTAX_ERROR,
    out_of_range_between,
    wrong_arity,
)
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

HASH = KeyType.HASH
LONG_MAX = INT64_MAX


def _hash(t: Txn, name: bytes) -> Key | None:
    return typed(t, name, HASH)


def _value(t: Txn, key: Key | None, field: bytes) -> bytes | None:
    if key is None:
        return None
    found = t.get(key, field)
    return None if found is None else found.value


# --- writes ---------------------------------------------------------------------------


@command("hset", "hmset")
def hset(t: Txn, args: Args) -> Reply:
    if len(args) % 2 == 1:
        raise ReplyError(wrong_arity(args[0].decode("utf-8", "replace").lower()))
    key = typed_or_create(t, args[1], HASH)
    created = sum(t.put(key, args[i], args[i + 1]) for i in range(2, len(args), 2))
    return created if args[0][1:2].lower() == b"s" else OK


@command("hsetnx")
def hsetnx(t: Txn, args: Args) -> Reply:
    key = typed_or_create(t, args[1], HASH)
    if t.get(key, args[2]) is not None:
        return 0
    t.put(key, args[2], args[3])
    return 1


@command("hdel")
def hdel(t: Txn, args: Args) -> Reply:
    key = _hash(t, args[1])
    if key is None:
        return 0
    return remove_members(t, key, dict.fromkeys(args[2:]))


@command("hincrby")
def hincrby(t: Txn, args: Args) -> Reply:
    incr = parse_int(args[3])
    key = _hash(t, args[1])
    found = None if key is None else t.get(key, args[2])
    old = 0 if found is None else to_int(found.value)
    if old is None:
        raise ReplyError(HASH_NOT_INTEGER)
    new = old + incr
    if not INT64_MIN <= new <= INT64_MAX:
        raise ReplyError(OVERFLOW)
    _store(t, key, args[1], args[2], format_int(new), found)
    return new


@command("hincrbyfloat")
def hincrbyfloat(t: Txn, args: Args) -> Reply:
    incr = longdouble.parse(args[3])
    if incr is None:
        raise ReplyError(NOT_FLOAT)
    if not longdouble.is_finite(incr):
        raise ReplyError(NAN_OR_INF_INCREMENT)
    key = _hash(t, args[1])
    found = None if key is None else t.get(key, args[2])
    old = longdouble.parse(b"0" if found is None else found.value)
    if old is None:
        raise ReplyError(HASH_NOT_FLOAT)
    new = longdouble.add(old, incr)
    if not longdouble.is_finite(new):
        raise ReplyError(NAN_OR_INF_RESULT)
    text = longdouble.to_bytes(new)
    _store(t, key, args[1], args[2], text, found)
    return text


def _store(t: Txn, key: Key | None, name: bytes, field: bytes, value: bytes, old: Member | None) -> None:
    """An increment changes a field's value, not the field: its expiry (the member's
    score, see :mod:`kvgate.engine.hash_fields`) stays, as in Redis 7.4+."""
    if key is None:
        key = t.create(name, HASH)
    t.put(key, field, value, old.score if old is not None else 0.0)


# --- reads ----------------------------------------------------------------------------


@command("hget")
def hget(t: Txn, args: Args) -> Reply:
    return _value(t, _hash(t, args[1]), args[2])


@command("hmget")
def hmget(t: Txn, args: Args) -> Reply:
    key = _hash(t, args[1])
    return [_value(t, key, field) for field in args[2:]]


@command("hgetall")
def hgetall(t: Txn, args: Args) -> Reply:
    return _flatten(_all(t, args[1]), with_values=True)


@command("hkeys")
def hkeys(t: Txn, args: Args) -> Reply:
    return [m.member for m in _all(t, args[1])]


@command("hvals")
def hvals(t: Txn, args: Args) -> Reply:
    return [m.value for m in _all(t, args[1])]


def _all(t: Txn, name: bytes) -> list[Member]:
    key = _hash(t, name)
    return [] if key is None else t.members(key)


def _flatten(members: list[Member], with_values: bool) -> list[Reply]:
    if not with_values:
        return [m.member for m in members]
    out: list[Reply] = []
    for m in members:
        out += (m.member, m.value)
    return out


@command("hlen")
def hlen(t: Txn, args: Args) -> Reply:
    key = _hash(t, args[1])
    return 0 if key is None else t.count(key)


@command("hexists")
def hexists(t: Txn, args: Args) -> Reply:
    return int(_value(t, _hash(t, args[1]), args[2]) is not None)


@command("hstrlen")
def hstrlen(t: Txn, args: Args) -> Reply:
    value = _value(t, _hash(t, args[1]), args[2])
    return 0 if value is None else len(value)


# --- HRANDFIELD -----------------------------------------------------------------------


@command("hrandfield")
def hrandfield(t: Txn, args: Args) -> Reply:
    if len(args) == 2:
        key = _hash(t, args[1])
        return None if key is None else random.choice(t.members(key)).member
    count = parse_long_in(args[2], -LONG_MAX, LONG_MAX)
    if len(args) > 4 or (len(args) == 4 and args[3].lower() != b"withvalues"):
        raise ReplyError(SYNTAX_ERROR)
    with_values = len(args) == 4
    if with_values and abs(count) > LONG_MAX // 2:
        raise ReplyError(OUT_OF_RANGE)
    key = _hash(t, args[1])
    if key is None or count == 0:
        return []
    return _flatten(random_members(t, key, count), with_values)


def parse_long_in(raw: bytes, low: int, high: int) -> int:
    """``getRangeLongFromObjectOrReply`` without a custom message."""
    value = parse_int(raw)
    if not low <= value <= high:
        raise ReplyError(out_of_range_between(low, high))
    return value


def random_members(t: Txn, key: Key, count: int) -> list[Member]:
    """HRANDFIELD/SRANDMEMBER picking: ``count > 0`` distinct members (all of them, in
    order, when the collection is not bigger), ``count < 0`` ``-count`` members that may
    repeat."""
    if count < 0:
        check_reply_size(-count)
        return random.choices(t.members(key), k=-count)
    members = t.members(key)
    if count >= len(members):
        return members
    picked = sorted(random.sample(range(len(members)), count))
    return [members[i] for i in picked]


# --- HSCAN ----------------------------------------------------------------------------


@command("hscan")
def hscan(t: Txn, args: Args) -> Reply:
    cursor = parse_cursor(args[2])
    key = _hash(t, args[1])
    if key is None:
        return [b"0", []]
    opts = parse_options(args, 3, allow_type=False)
    nxt, page = scan_members(t, key, cursor, opts)
    return [format_int(nxt), _flatten(page, with_values=True)]
