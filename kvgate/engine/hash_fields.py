"""Hash field expiration and Redis 7.4-8.2's hash commands (``t_hash.c`` of Redis 8.2).

A field's expiry is its member's ``score``: milliseconds since the epoch, 0 for none (see
:mod:`kvgate.engine.storage`).  Stores hide expired fields from every read, and a hash
whose fields have all expired from :meth:`Txn.lookup`, so the hash commands of
:mod:`kvgate.engine.hashes` (and Lua scripts, which run them) never see one; this module
only sets, reads and clears expiries.  The engine never stores an expiry already past: a
time in the past deletes the field (reply 2), as Redis does.

Arguments are checked in Redis's order: the key's type first (WRONGTYPE before a bad
time), then the time, the condition, the ``FIELDS numfields field...`` block.  Redis words
the ``numfields`` errors differently per command; each handler uses its command's words.
"""

from __future__ import annotations

from kvgate.engine.numbers import parse_int
from kvgate.engine.registry import command, drop_if_empty, typed, typed_or_create
from kvgate.engine.storage import Key, KeyType, Member, Txn
from kvgate.error_texts import (
    FIELD_EXPIRE_MISSING,
    FIELD_EXPIRE_NEGATIVE,
    FIELDS_MISSING,
    HSETEX_EXPIRATIONS,
    HSETEX_FNX_FXX,
    NUMFIELDS_GREATER_THAN_0,
    NUMFIELDS_INVALID,
    NUMFIELDS_MISMATCH,
    NUMFIELDS_POSITIVE,
    SYNTAX_ERROR,
    invalid_expire_time,
    unknown_argument,
    wrong_arity,
)
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

HASH = KeyType.HASH
#: The latest expiry a command may set (``HFE_MAX_ABS_TIME_MSEC``: ``EB_EXPIRE_TIME_MAX >> 2``,
#: 2^46 - 1 ms, in the year 4199); exact as a float, so a member's score holds it.
MAX_FIELD_EXPIRE_MS = ((1 << 48) - 1) >> 2
LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
#: Per-field replies (``SetExRes``, ``GetExpireTimeRes``, ``SetPersistRes``).
NO_FIELD, NOT_MET, NO_TTL, SET, DELETED = -2, 0, -1, 1, 2

_CONDITIONS = (b"nx", b"xx", b"gt", b"lt")


def expiry_of(m: Member) -> int | None:
    """A field's expiry in ms since the epoch, or None."""
    return int(m.score) if m.score else None


def _name(args: Args) -> str:
    return args[0].decode("utf-8", "replace").lower()


def parse_expire(t: Txn, raw: bytes, seconds: bool, relative: bool, name: str) -> int:
    """``parseExpireTime``: an absolute expiry in ms from a relative or absolute time in
    seconds or ms, within :data:`MAX_FIELD_EXPIRE_MS`."""
    value = parse_int(raw)
    if value < 0:
        raise ReplyError(FIELD_EXPIRE_NEGATIVE)
    base = t.now if relative else 0
    if seconds:
        if value > MAX_FIELD_EXPIRE_MS // 1000:
            raise ReplyError(invalid_expire_time(name))
        value *= 1000
    if value > MAX_FIELD_EXPIRE_MS - base:
        raise ReplyError(invalid_expire_time(name))
    return value + base


def fields_block(args: Args, at: int, not_positive: str) -> list[bytes]:
    """The fields of ``FIELDS numfields field...`` with ``FIELDS`` at ``args[at]``: it runs
    to the end of the command, and ``numfields`` must count them exactly."""
    if at >= len(args) or args[at].lower() != b"fields":
        raise ReplyError(FIELDS_MISSING)
    if at + 1 >= len(args):
        raise ReplyError(wrong_arity(_name(args)))
    numfields = parse_int(args[at + 1], not_positive)
    if numfields < 1:
        raise ReplyError(not_positive)
    fields = list(args[at + 2 :])
    if numfields != len(fields):
        raise ReplyError(NUMFIELDS_MISMATCH)
    return fields


def _hash(t: Txn, name: bytes) -> Key | None:
    return typed(t, name, HASH)


# --- HEXPIRE, HPEXPIRE, HEXPIREAT, HPEXPIREAT ------------------------------------------


def _hexpire(t: Txn, args: Args, seconds: bool, relative: bool) -> Reply:
    key = _hash(t, args[1])
    expire_at = parse_expire(t, args[2], seconds, relative, _name(args))
    condition = args[3].lower() if args[3].lower() in _CONDITIONS else None
    fields = fields_block(args, 4 if condition else 3, NUMFIELDS_GREATER_THAN_0)
    if key is None:
        return [NO_FIELD] * len(fields)
    replies: list[Reply] = [_expire_field(t, key, f, expire_at, condition) for f in fields]
    drop_if_empty(t, key)
    return replies


def _expire_field(t: Txn, key: Key, field: bytes, expire_at: int, condition: bytes | None) -> int:
    """``hashTypeSetEx``: a field without an expiry counts as one at infinity (LT sets it,
    GT and XX do not)."""
    m = t.get(key, field)
    if m is None:
        return NO_FIELD
    old = expiry_of(m)
    if old is None:
        if condition in (b"xx", b"gt"):
            return NOT_MET
    elif (
        condition == b"nx"
        or (condition == b"gt" and old >= expire_at)
        or (condition == b"lt" and old <= expire_at)
    ):
        return NOT_MET
    if expire_at <= t.now:
        t.remove(key, field)
        return DELETED
    t.put(key, field, m.value, float(expire_at))
    return SET


@command("hexpire")
def hexpire(t: Txn, args: Args) -> Reply:
    return _hexpire(t, args, seconds=True, relative=True)


@command("hpexpire")
def hpexpire(t: Txn, args: Args) -> Reply:
    return _hexpire(t, args, seconds=False, relative=True)


@command("hexpireat")
def hexpireat(t: Txn, args: Args) -> Reply:
    return _hexpire(t, args, seconds=True, relative=False)


@command("hpexpireat")
def hpexpireat(t: Txn, args: Args) -> Reply:
    return _hexpire(t, args, seconds=False, relative=False)


# --- HTTL, HPTTL, HEXPIRETIME, HPEXPIRETIME, HPERSIST -----------------------------------


def _httl(t: Txn, args: Args, seconds: bool, relative: bool) -> Reply:
    key = _hash(t, args[1])
    fields = fields_block(args, 2, NUMFIELDS_POSITIVE)
    out: list[Reply] = []
    for field in fields:
        m = None if key is None else t.get(key, field)
        expire_at = None if m is None else expiry_of(m)
        if m is None:
            out.append(NO_FIELD)
        elif expire_at is None:
            out.append(NO_TTL)
        else:
            left = expire_at - (t.now if relative else 0)
            out.append((left + 999) // 1000 if seconds else left)  # seconds round up
    return out


@command("httl")
def httl(t: Txn, args: Args) -> Reply:
    return _httl(t, args, seconds=True, relative=True)


@command("hpttl")
def hpttl(t: Txn, args: Args) -> Reply:
    return _httl(t, args, seconds=False, relative=True)


@command("hexpiretime")
def hexpiretime(t: Txn, args: Args) -> Reply:
    return _httl(t, args, seconds=True, relative=False)


@command("hpexpiretime")
def hpexpiretime(t: Txn, args: Args) -> Reply:
    return _httl(t, args, seconds=False, relative=False)


@command("hpersist")
def hpersist(t: Txn, args: Args) -> Reply:
    key = _hash(t, args[1])
    fields = fields_block(args, 2, NUMFIELDS_POSITIVE)
    out: list[Reply] = []
    for field in fields:
        m = None if key is None else t.get(key, field)
        if m is None:
            out.append(NO_FIELD)
        elif expiry_of(m) is None:
            out.append(NO_TTL)
        else:
            assert key is not None
            t.put(key, field, m.value, 0.0)
            out.append(SET)
    return out


# --- HGETDEL, HGETEX -------------------------------------------------------------------


@command("hgetdel")
def hgetdel(t: Txn, args: Args) -> Reply:
    key = _hash(t, args[1])
    fields = fields_block(args, 2, NUMFIELDS_POSITIVE)
    if key is None:
        return [None] * len(fields)
    out: list[Reply] = []
    for field in fields:
        m = t.get(key, field)
        out.append(None if m is None else m.value)
        if m is not None:
            t.remove(key, field)
    drop_if_empty(t, key)
    return out


_TIMES = {b"ex": (True, True), b"px": (False, True), b"exat": (True, False), b"pxat": (False, False)}


@command("hgetex")
def hgetex(t: Txn, args: Args) -> Reply:
    """``HGETEX key [EX s | PX ms | EXAT s | PXAT ms | PERSIST] FIELDS n field...``: the
    values, and the new expiry (or none, with PERSIST) on the fields that exist."""
    key = _hash(t, args[1])
    option = args[2].lower()
    expire_at: int | None = None
    at = 2
    if option in _TIMES:
        seconds, relative = _TIMES[option]
        expire_at = parse_expire(t, args[3], seconds, relative, _name(args))
        at = 4
    elif option == b"persist":
        at = 3
    fields = fields_block(args, at, NUMFIELDS_POSITIVE)
    if key is None:
        return [None] * len(fields)
    out: list[Reply] = []
    for field in fields:
        m = t.get(key, field)
        out.append(None if m is None else m.value)
        if m is None or at == 2:
            continue
        if expire_at is None:  # PERSIST
            if expiry_of(m) is not None:
                t.put(key, field, m.value, 0.0)
        elif expire_at <= t.now:
            t.remove(key, field)
        else:
            t.put(key, field, m.value, float(expire_at))
    drop_if_empty(t, key)
    return out


# --- HSETEX ----------------------------------------------------------------------------


def _hsetex_options(t: Txn, args: Args) -> tuple[bytes | None, int | None, bool, list[bytes]]:
    """``hsetexParseArgs``: (FNX/FXX, the expiry, KEEPTTL, field value...).  Options come
    in any order before ``FIELDS``; everything after its ``numfields`` is fields."""
    condition: bytes | None = None
    expire_at: int | None = None
    keep_ttl = False
    i = 2
    while i < len(args):
        word = args[i].lower()
        if word == b"fields":
            if i >= len(args) - 3:
                raise ReplyError(wrong_arity(_name(args)))
            numfields = parse_int(args[i + 1], NUMFIELDS_INVALID)
            if not 1 <= numfields <= INT_MAX:
                raise ReplyError(NUMFIELDS_INVALID)
            rest = len(args) - i - 2
            if rest % 2 or numfields != rest // 2:
                raise ReplyError(wrong_arity(_name(args)))
            return condition, expire_at, keep_ttl, list(args[i + 2 :])
        if word in _TIMES or word == b"keepttl":
            if expire_at is not None or keep_ttl:
                raise ReplyError(HSETEX_EXPIRATIONS)
            if word == b"keepttl":
                keep_ttl = True
            else:
                if i >= len(args) - 1:
                    raise ReplyError(FIELD_EXPIRE_MISSING)
                i += 1
                seconds, relative = _TIMES[word]
                expire_at = parse_expire(t, args[i], seconds, relative, _name(args))
        elif word in (b"fnx", b"fxx"):
            if condition is not None:
                raise ReplyError(HSETEX_FNX_FXX)
            condition = word
        else:
            raise ReplyError(unknown_argument(args[i].decode("utf-8", "replace")))
        i += 1
    raise ReplyError(SYNTAX_ERROR)  # unreachable with HSETEX's arity (-6): kept for safety


@command("hsetex")
def hsetex(t: Txn, args: Args) -> Reply:
    """``HSETEX key [FNX | FXX] [EX.. | PX.. | EXAT.. | PXAT.. | KEEPTTL] FIELDS n field
    value...``: 1 when the fields were set, 0 when FNX or FXX forbade it.  Without an
    expiry option a set field loses its expiry, as with HSET."""
    condition, expire_at, keep_ttl, pairs = _hsetex_options(t, args)
    key = _hash(t, args[1])
    if key is None and condition == b"fxx":
        return 0
    if key is not None and condition is not None:
        found = [t.get(key, pairs[i]) is not None for i in range(0, len(pairs), 2)]
        if (condition == b"fxx" and not all(found)) or (condition == b"fnx" and any(found)):
            return 0
    key = typed_or_create(t, args[1], HASH)
    for i in range(0, len(pairs), 2):
        field, value = pairs[i], pairs[i + 1]
        if expire_at is not None and expire_at <= t.now:
            t.remove(key, field)  # set, then expired at once: Redis deletes it
            continue
        score = 0.0
        if expire_at is not None:
            score = float(expire_at)
        elif keep_ttl:
            old = t.get(key, field)
            score = old.score if old is not None else 0.0
        t.put(key, field, value, score)
    drop_if_empty(t, key)
    return 1
