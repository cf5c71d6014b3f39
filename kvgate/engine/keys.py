"""Generic key commands (Redis 7.0 ``db.c`` and ``expire.c``): existence, type, expiry,
renaming and copying, iteration over the keyspace, flushing.

Argument checks follow Redis's order (options before the key lookup where Redis parses
them first), and nothing is written before every check has passed.
"""

from __future__ import annotations

from functools import partial

from kvgate.engine.glob import glob_match
from kvgate.engine.numbers import INT64_MAX, INT64_MIN, parse_int
from kvgate.engine.registry import OK, command
from kvgate.engine.scan import parse_cursor, parse_options
from kvgate.engine.storage import Key, Txn
from kvgate.error_texts import (
    EXPIRE_GT_LT_CONFLICT,
    EXPIRE_NX_CONFLICT,
    NO_SUCH_KEY,
    SAME_OBJECT,
    SYNTAX_ERROR,
    invalid_expire_time,
    unsupported_option,
)
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply, split_withtype


def _c_string(raw: bytes) -> bytes:
    """What C's string functions (``strcasecmp``, ``%s``) see: up to the first NUL."""
    return raw.split(b"\0", 1)[0]


def _c_equal(raw: bytes, word: bytes) -> bool:
    """``strcasecmp(raw, word) == 0``."""
    return _c_string(raw).lower() == word


def _c_div(a: int, b: int) -> int:
    """C's integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


# --- existence and type ------------------------------------------------------------


@command("del", "unlink")
def delete(t: Txn, args: Args) -> Reply:
    removed = 0
    for name in args[1:]:
        key = t.lookup(name)
        if key is not None:
            t.delete(key)
            removed += 1
    return removed


@command("exists", "touch")
def exists(t: Txn, args: Args) -> Reply:
    """Counts repeats: ``EXISTS k k`` is 2.  TOUCH only counts (there is no LRU here)."""
    return sum(1 for name in args[1:] if t.lookup(name) is not None)


@command("type")
def type_(t: Txn, args: Args) -> Reply:
    key = t.lookup(args[1])
    return b"none" if key is None else key.type.redis_name


# --- expiry ---------------------------------------------------------------------------

_EXPIRE_FLAGS = (b"nx", b"xx", b"gt", b"lt")


def _expire_flags(args: Args) -> set[bytes]:
    """``parseExtendedExpireArgumentsOrReply``: every option known, then conflicts."""
    flags: set[bytes] = set()
    for raw in args[3:]:
        word = _c_string(raw).lower()
        if word not in _EXPIRE_FLAGS:
            raise ReplyError(unsupported_option(_c_string(raw).decode("utf-8", "replace")))
        flags.add(word)
    if b"nx" in flags and len(flags) > 1:
        raise ReplyError(EXPIRE_NX_CONFLICT)
    if {b"gt", b"lt"} <= flags:
        raise ReplyError(EXPIRE_GT_LT_CONFLICT)
    return flags


def _expire_when(args: Args, base: int, seconds: bool) -> int:
    """The absolute expiry in ms, refusing what would overflow a C ``long long``."""
    when = parse_int(args[2])
    overflow = invalid_expire_time(args[0].lower().decode("utf-8", "replace"))
    if seconds:
        if when > _c_div(INT64_MAX, 1000) or when < _c_div(INT64_MIN, 1000):
            raise ReplyError(overflow)
        when *= 1000
    if when > INT64_MAX - base:
        raise ReplyError(overflow)
    return when + base


def _blocked(flags: set[bytes], current: int | None, when: int) -> bool:
    """Whether NX/XX/GT/LT forbid the change (no expiry counts as infinite)."""
    if b"nx" in flags and current is not None:
        return True
    if b"xx" in flags and current is None:
        return True
    if b"gt" in flags and (current is None or when <= current):
        return True
    return b"lt" in flags and current is not None and when >= current


def _expire(t: Txn, args: Args, relative: bool, seconds: bool) -> Reply:
    flags = _expire_flags(args)
    when = _expire_when(args, t.now if relative else 0, seconds)
    key = t.lookup(args[1])
    if key is None or _blocked(flags, key.expire_at, when):
        return 0
    if when <= t.now:
        t.delete(key)
    else:
        t.set_expire(key, when)
    return 1


# EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT: one implementation, read four ways.
for _name, _relative, _seconds in (
    ("expire", True, True),
    ("pexpire", True, False),
    ("expireat", False, True),
    ("pexpireat", False, False),
):
    command(_name)(partial(_expire, relative=_relative, seconds=_seconds))


def _ttl(t: Txn, args: Args, absolute: bool, ms: bool) -> Reply:
    """``ttlGenericCommand``: -2 missing, -1 no expiry; seconds rounded to nearest."""
    key = t.lookup(args[1])
    if key is None:
        return -2
    if key.expire_at is None:
        return -1
    ttl = key.expire_at if absolute else max(key.expire_at - t.now, 0)
    return ttl if ms else (ttl + 500) // 1000


# TTL, PTTL, EXPIRETIME, PEXPIRETIME.
for _name, _absolute, _ms in (
    ("ttl", False, False),
    ("pttl", False, True),
    ("expiretime", True, False),
    ("pexpiretime", True, True),
):
    command(_name)(partial(_ttl, absolute=_absolute, ms=_ms))


@command("persist")
def persist(t: Txn, args: Args) -> Reply:
    key = t.lookup(args[1])
    if key is None or key.expire_at is None:
        return 0
    t.set_expire(key, None)
    return 1


# --- rename and copy --------------------------------------------------------------


def _rename(t: Txn, args: Args, nx: bool) -> Reply:
    source, target = args[1], args[2]
    key = t.lookup(source)
    if key is None:
        raise ReplyError(NO_SUCH_KEY)
    if source == target:
        return 0 if nx else OK
    if nx and t.lookup(target) is not None:
        return 0
    t.rename(key, target)  # replaces the target in place (a SCAN under way still returns it)
    return 1 if nx else OK


@command("rename")
def rename(t: Txn, args: Args) -> Reply:
    return _rename(t, args, nx=False)


@command("renamenx")
def renamenx(t: Txn, args: Args) -> Reply:
    return _rename(t, args, nx=True)


@command("copy")
def copy(t: Txn, args: Args) -> Reply:
    """``COPY src dst [REPLACE]``.  The ``DB`` option never reaches the engine (the gateway
    refuses it); here it is a syntax error."""
    replace = False
    for raw in args[3:]:
        if not _c_equal(raw, b"replace"):
            raise ReplyError(SYNTAX_ERROR)
        replace = True
    source, target = args[1], args[2]
    if source == target:
        raise ReplyError(SAME_OBJECT)
    key = t.lookup(source)
    if key is None:
        return 0
    existing = t.lookup(target)
    if existing is not None:
        if not replace:
            return 0
        t.delete(existing)
    t.copy(key, target)
    return 1


# --- the keyspace -------------------------------------------------------------------


@command("keys")
def keys(t: Txn, args: Args) -> Reply:
    pattern = args[1]
    everything = pattern == b"*"
    live = t.keys()
    return [key.name for key in live if everything or glob_match(pattern, key.name)]


def _type_matches(key: Key, wanted: bytes | None) -> bool:
    """SCAN's TYPE filter: ``strcasecmp`` against the type name; an unknown name matches
    nothing."""
    return wanted is None or _c_equal(wanted, key.type.redis_name.lower())  # ReJSON-RL


@command("scan")
def scan(t: Txn, args: Args) -> Reply:
    cursor = parse_cursor(args[1])
    options, with_type = split_withtype(args[2:])
    opts = parse_options([*args[:2], *options], 2, allow_type=True)
    nxt, page = t.scan(cursor, opts.count)
    found = [key for key in page if _type_matches(key, opts.type) and opts.matches(key.name)]
    if with_type:  # Upstash's extension: each name followed by its type
        return [b"%d" % nxt, [item for key in found for item in (key.name, key.type.redis_name)]]
    return [b"%d" % nxt, [key.name for key in found]]


@command("randomkey")
def randomkey(t: Txn, args: Args) -> Reply:
    key = t.random_key()
    return None if key is None else key.name


@command("dbsize")
def dbsize(t: Txn, args: Args) -> Reply:
    return t.dbsize()


@command("flushdb", "flushall")
def flushdb(t: Txn, args: Args) -> Reply:
    """Both flush this one database (the gateway maps FLUSHALL to FLUSHDB)."""
    if [_c_string(a).lower() for a in args[1:]] not in ([], [b"sync"], [b"async"]):
        raise ReplyError(SYNTAX_ERROR)
    t.flush()
    return OK
