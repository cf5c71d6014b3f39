"""String commands, as Redis 7.0's ``t_string.c`` answers them.

SET and its variants (SETNX, SETEX, PSETEX, GETSET, MSET, MSETNX), GET and its variants
(GETEX, GETDEL, MGET), ranges (GETRANGE, SUBSTR, SETRANGE), APPEND, STRLEN, the counters
(INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT) and LCS.

Redis rules kept here: a plain write (SET, GETSET, MSET...) drops the TTL, KEEPTTL and the
in-place updates (APPEND, SETRANGE, INCR..., INCRBYFLOAT) keep it; expiry times are
absolute milliseconds, and each command checks its arguments in Redis's order so that the
same error wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from kvgate.engine import longdouble
from kvgate.engine.numbers import INT64_MAX, INT64_MIN, format_int, parse_int
from kvgate.engine.registry import OK, command, typed
from kvgate.engine.storage import Key, KeyType, Txn
from kvgate.error_texts import (
    DECREMENT_OVERFLOW,
    LCS_LEN_AND_IDX,
    LCS_NOT_STRINGS,
    LCS_TOO_BIG,
    NAN_OR_INF_RESULT,
    NOT_FLOAT,
    OFFSET_OUT_OF_RANGE,
    OVERFLOW,
    STRING_TOO_BIG,
    SYNTAX_ERROR,
    invalid_expire_time,
    wrong_arity,
)
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

#: ``proto-max-bulk-len`` default: the largest string APPEND/SETRANGE may build.
MAX_STRING = 512 * 1024 * 1024


def _string(t: Txn, name: bytes) -> Key | None:
    return typed(t, name, KeyType.STRING)


def _value(t: Txn, name: bytes) -> bytes | None:
    """GET's lookup: the value, None when missing, WRONGTYPE for another type."""
    key = _string(t, name)
    return None if key is None else key.value


def _cstr(arg: bytes) -> bytes:
    """An argument as Redis's option parsers see it (a C string: up to the first NUL),
    upper-cased for case-insensitive comparison."""
    return arg.split(b"\0", 1)[0].upper()


# --- SET / GETEX options ------------------------------------------------------------


@dataclass
class _Options:
    flags: set[bytes]
    expire: bytes | None = None  # the raw EX/PX/EXAT/PXAT argument

    @property
    def seconds(self) -> bool:
        return bool(self.flags & {b"EX", b"EXAT"})

    @property
    def relative(self) -> bool:
        return bool(self.flags & {b"EX", b"PX"})


_EXPIRES = {b"EX", b"PX", b"EXAT", b"PXAT"}
# Which flags each option refuses to follow (Redis's parseExtendedStringArgumentsOrReply);
# an option repeated (EX 1 EX 2) is accepted, the last value wins.
_SET_ONLY = {b"NX": {b"XX"}, b"XX": {b"NX"}, b"GET": set(), b"KEEPTTL": {b"PERSIST"} | _EXPIRES}
_GET_ONLY = {b"PERSIST": {b"KEEPTTL"} | _EXPIRES}
_WITH_VALUE = {opt: {b"KEEPTTL", b"PERSIST"} | (_EXPIRES - {opt}) for opt in _EXPIRES}


def _parse_options(args: Args, for_set: bool) -> _Options:
    opts = _Options(set())
    own = _SET_ONLY if for_set else _GET_ONLY
    j = 3 if for_set else 2
    while j < len(args):
        opt = _cstr(args[j])
        if opt in own and not opts.flags & own[opt]:
            opts.flags.add(opt)
        elif opt in _WITH_VALUE and not opts.flags & _WITH_VALUE[opt] and j + 1 < len(args):
            opts.flags.add(opt)
            opts.expire = args[j + 1]
            j += 1
        else:
            raise ReplyError(SYNTAX_ERROR)
        j += 1
    return opts


def _expire_at(t: Txn, raw: bytes, seconds: bool, relative: bool, name: str) -> int:
    """Redis's getExpireMillisecondsOrReply: the absolute expiry in ms."""
    value = parse_int(raw)
    invalid = invalid_expire_time(name)
    if value <= 0 or (seconds and value > INT64_MAX // 1000):
        raise ReplyError(invalid)
    if seconds:
        value *= 1000
    if relative:
        value += t.now
    if value > INT64_MAX:  # int64 overflow in Redis
        raise ReplyError(invalid)
    return value


# --- SET family ---------------------------------------------------------------------


_LOOKS_FIRST = frozenset((b"NX", b"XX", b"GET", b"KEEPTTL"))


def set_reads_first(args: Args) -> bool:
    """Whether ``SET`` with these arguments reads its key (NX, XX, GET, KEEPTTL), so a
    store that skips reading blind writes should read it first after all."""
    return any(a.upper() in _LOOKS_FIRST for a in args[3:])


@command("set")
def set_(t: Txn, args: Args) -> Reply:
    opts = _parse_options(args, for_set=True)
    expire_at = None
    if opts.expire is not None:
        expire_at = _expire_at(t, opts.expire, opts.seconds, opts.relative, "set")
    name, value = args[1], args[2]
    if not opts.flags & _LOOKS_FIRST:  # plain SET (with or without an expiry): nothing to read first
        t.set_string(name, value, expire_at)
        return OK
    get = b"GET" in opts.flags
    old = _value(t, name) if get else None
    key = t.lookup(name)
    if (b"NX" in opts.flags and key is not None) or (b"XX" in opts.flags and key is None):
        return old
    if b"KEEPTTL" in opts.flags and key is not None:
        expire_at = key.expire_at
    t.set_string(name, value, expire_at)
    return old if get else OK


@command("setnx")
def setnx(t: Txn, args: Args) -> Reply:
    if t.lookup(args[1]) is not None:
        return 0
    t.set_string(args[1], args[2], None)
    return 1


def _set_with_expire(t: Txn, args: Args, seconds: bool) -> Reply:
    name = args[0].decode("utf-8", "replace").lower()
    expire_at = _expire_at(t, args[2], seconds, True, name)
    t.set_string(args[1], args[3], expire_at)
    return OK


@command("setex")
def setex(t: Txn, args: Args) -> Reply:
    return _set_with_expire(t, args, seconds=True)


@command("psetex")
def psetex(t: Txn, args: Args) -> Reply:
    return _set_with_expire(t, args, seconds=False)


@command("getset")
def getset(t: Txn, args: Args) -> Reply:
    old = _value(t, args[1])
    t.set_string(args[1], args[2], None)
    return old


def _check_pairs(args: Args) -> None:
    if len(args) % 2 == 0:
        raise ReplyError(wrong_arity(args[0].decode("utf-8", "replace").lower()))


@command("mset")
def mset(t: Txn, args: Args) -> Reply:
    _check_pairs(args)
    for i in range(1, len(args), 2):
        t.set_string(args[i], args[i + 1], None)
    return OK


@command("msetnx")
def msetnx(t: Txn, args: Args) -> Reply:
    _check_pairs(args)
    if any(t.lookup(args[i]) is not None for i in range(1, len(args), 2)):
        return 0
    for i in range(1, len(args), 2):
        t.set_string(args[i], args[i + 1], None)
    return 1


# --- GET family ---------------------------------------------------------------------


@command("get")
def get(t: Txn, args: Args) -> Reply:
    return _value(t, args[1])


@command("getex")
def getex(t: Txn, args: Args) -> Reply:
    opts = _parse_options(args, for_set=False)
    key = _string(t, args[1])
    if key is None:
        return None
    value = key.value
    if opts.expire is not None:
        expire_at = _expire_at(t, opts.expire, opts.seconds, opts.relative, "getex")
        if not opts.relative and expire_at <= t.now:
            t.delete(key)  # EXAT/PXAT in the past
        else:
            t.set_expire(key, expire_at)
    elif b"PERSIST" in opts.flags and key.expire_at is not None:
        t.set_expire(key, None)
    return value


@command("getdel")
def getdel(t: Txn, args: Args) -> Reply:
    key = _string(t, args[1])
    if key is None:
        return None
    t.delete(key)
    return key.value


@command("mget")
def mget(t: Txn, args: Args) -> Reply:
    replies: list[Reply] = []
    for name in args[1:]:
        key = t.lookup(name)
        replies.append(key.value if key is not None and key.type is KeyType.STRING else None)
    return replies


@command("strlen")
def strlen(t: Txn, args: Args) -> Reply:
    key = _string(t, args[1])
    return 0 if key is None else len(key.value or b"")


# --- ranges and APPEND --------------------------------------------------------------


@command("getrange", "substr")
def getrange(t: Txn, args: Args) -> Reply:
    start, end = parse_int(args[2]), parse_int(args[3])
    value = _value(t, args[1])
    if value is None:
        return b""
    size = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(size + start, 0)
    if end < 0:
        end = max(size + end, 0)
    end = min(end, size - 1)
    if start > end or size == 0:
        return b""
    return value[start : end + 1]


def _check_length(size: int, extra: int) -> None:
    if size + extra > MAX_STRING:
        raise ReplyError(STRING_TOO_BIG)


@command("setrange")
def setrange(t: Txn, args: Args) -> Reply:
    offset, patch = parse_int(args[2]), args[3]
    if offset < 0:
        raise ReplyError(OFFSET_OUT_OF_RANGE)
    key = _string(t, args[1])
    old = b"" if key is None else key.value or b""
    if not patch:
        return len(old)  # nothing to write; a missing key stays missing
    _check_length(offset, len(patch))
    padded = old.ljust(offset, b"\0")
    new = padded[:offset] + patch + padded[offset + len(patch) :]
    t.set_string(args[1], new, None if key is None else key.expire_at)
    return len(new)


@command("append")
def append(t: Txn, args: Args) -> Reply:
    key = _string(t, args[1])
    if key is None:
        t.set_string(args[1], args[2], None)
        return len(args[2])
    old = key.value or b""
    _check_length(len(old), len(args[2]))
    new = old + args[2]
    t.set_string(args[1], new, key.expire_at)
    return len(new)


# --- counters -----------------------------------------------------------------------


def _incr(t: Txn, name: bytes, delta: int) -> Reply:
    key = _string(t, name)
    current = 0 if key is None else parse_int(key.value or b"")
    result = current + delta
    if not INT64_MIN <= result <= INT64_MAX:
        raise ReplyError(OVERFLOW)
    t.set_string(name, format_int(result), None if key is None else key.expire_at)
    return result


@command("incr")
def incr(t: Txn, args: Args) -> Reply:
    return _incr(t, args[1], 1)


@command("decr")
def decr(t: Txn, args: Args) -> Reply:
    return _incr(t, args[1], -1)


@command("incrby")
def incrby(t: Txn, args: Args) -> Reply:
    return _incr(t, args[1], parse_int(args[2]))


@command("decrby")
def decrby(t: Txn, args: Args) -> Reply:
    delta = parse_int(args[2])
    if delta == INT64_MIN:
        raise ReplyError(DECREMENT_OVERFLOW)
    return _incr(t, args[1], -delta)


@command("incrbyfloat")
def incrbyfloat(t: Txn, args: Args) -> Reply:
    key = _string(t, args[1])
    current = longdouble.parse(key.value or b"") if key is not None else Fraction(0)
    increment = longdouble.parse(args[2])
    if current is None or increment is None:
        raise ReplyError(NOT_FLOAT)
    result = longdouble.add(current, increment)
    if not longdouble.is_finite(result):
        raise ReplyError(NAN_OR_INF_RESULT)
    text = longdouble.to_bytes(result)
    t.set_string(args[1], text, None if key is None else key.expire_at)
    return text


# --- LCS ----------------------------------------------------------------------------


@dataclass
class _LcsOptions:
    length: bool = False
    idx: bool = False
    with_match_len: bool = False
    min_match_len: int = 0


def _lcs_options(args: Args) -> _LcsOptions:
    opts = _LcsOptions()
    j = 3
    while j < len(args):
        opt = _cstr(args[j])
        if opt == b"IDX":
            opts.idx = True
        elif opt == b"LEN":
            opts.length = True
        elif opt == b"WITHMATCHLEN":
            opts.with_match_len = True
        elif opt == b"MINMATCHLEN" and j + 1 < len(args):
            opts.min_match_len = max(parse_int(args[j + 1]), 0)
            j += 1
        else:
            raise ReplyError(SYNTAX_ERROR)
        j += 1
    if opts.length and opts.idx:
        raise ReplyError(LCS_LEN_AND_IDX)
    return opts


class _LcsTable:
    """The LCS length table of ``a`` and ``b``, one bit vector per row (Hyyrö's
    bit-parallel algorithm): bit ``j`` of ``rows[i]`` is 0 when the LCS of ``a[:i]`` and
    ``b[:j + 1]`` is one longer than that of ``a[:i]`` and ``b[:j]``.  Redis keeps the
    whole table of lengths; this gives the same lengths in 1/32 of the memory."""

    def __init__(self, a: bytes, b: bytes) -> None:
        full = (1 << len(b)) - 1
        masks: dict[int, int] = {}
        for j, ch in enumerate(b):
            masks[ch] = masks.get(ch, 0) | (1 << j)
        row = full
        self.rows = [row]
        for ch in a:
            match = row & masks.get(ch, 0)
            row = ((row + match) | (row - match)) & full
            self.rows.append(row)

    def __call__(self, i: int, j: int) -> int:
        """Length of the LCS of ``a[:i]`` and ``b[:j]``."""
        return j - (self.rows[i] & ((1 << j) - 1)).bit_count()


def _lcs_walk(a: bytes, b: bytes, table: _LcsTable, opts: _LcsOptions) -> tuple[bytes, list[Reply]]:
    """The LCS string and the matching ranges, walked back from the end as Redis does
    (so ranges come last-first)."""
    i, j = len(a), len(b)
    chars: list[int] = []
    ranges: list[Reply] = []
    current: list[int] | None = None  # [a_start, a_end, b_start, b_end]
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            chars.append(a[i - 1])
            if current is None:
                current = [i - 1, i - 1, j - 1, j - 1]
            elif current[0] == i and current[2] == j:
                current[0] -= 1
                current[2] -= 1
            else:
                emit = True
            if current[0] == 0 or current[2] == 0:
                emit = True
            i, j = i - 1, j - 1
        else:
            if table(i - 1, j) > table(i, j - 1):
                i -= 1
            else:
                j -= 1
            emit = current is not None
        if emit and current is not None:
            match_len = current[1] - current[0] + 1
            if opts.min_match_len == 0 or match_len >= opts.min_match_len:
                entry: list[Reply] = [[current[0], current[1]], [current[2], current[3]]]
                if opts.with_match_len:
                    entry.append(match_len)
                ranges.append(entry)
            current = None
    return bytes(reversed(chars)), ranges


@command("lcs")
def lcs(t: Txn, args: Args) -> Reply:
    first, second = t.lookup(args[1]), t.lookup(args[2])
    if any(k is not None and k.type is not KeyType.STRING for k in (first, second)):
        raise ReplyError(LCS_NOT_STRINGS)
    a = b"" if first is None else first.value or b""
    b = b"" if second is None else second.value or b""
    opts = _lcs_options(args)
    if (len(a) + 1) * (len(b) + 1) * 4 > MAX_STRING:
        raise ReplyError(LCS_TOO_BIG)
    table = _LcsTable(a, b)
    if opts.length:
        return table(len(a), len(b))
    text, ranges = _lcs_walk(a, b, table, opts)
    if opts.idx:
        return [b"matches", ranges, b"len", table(len(a), len(b))]
    return text
