"""Sorted-set commands, as Redis 7.0 runs them (``t_zset.c``).

Each element is a member row: ``member`` = element, ``score`` = score, value empty; the
store orders rows by ``(score, member)``, members compared as bytes, as Redis does.  Every
command parses and checks all of its arguments in Redis's order (which error wins), reads,
and only then writes, so it never half-applies.

Scores a small sorted set (Redis's listpack) keeps lose the sign of a zero, so ``-0`` is
stored as ``0``; replies print scores with ``%.17g`` (:func:`format_double`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from enum import Enum
from functools import partial

from kvgate.engine.numbers import INT64_MAX, format_double, parse_float, parse_int
from kvgate.engine.registry import (
    check_reply_size,
    command,
    drop_if_empty,
    remove_members,
    typed,
)
from kvgate.engine.scan import parse_cursor, parse_options, scan_members
from kvgate.engine.storage import Key, KeyType, Member, Txn
from kvgate.engine.zset_ranges import (
    LexRange,
    ScoreRange,
    diff,
    inter,
    lex_select,
    listpack_score,
    parse_lex_range,
    parse_score_range,
    rank_window,
    union,
)
from kvgate.error_texts import (
    COUNT_POSITIVE,
    LIMIT_NEGATIVE,
    MUST_BE_POSITIVE,
    NUMKEYS_POSITIVE,
    OUT_OF_RANGE,
    SCORE_NAN,
    SYNTAX_ERROR,
    WEIGHT_NOT_FLOAT,
    WRONGTYPE,
    ZADD_GT_LT_NX,
    ZADD_INCR_PAIRS,
    ZADD_XX_NX,
    ZRANGE_LIMIT_NEEDS_BY,
    ZRANGE_WITHSCORES_BYLEX,
    no_input_keys,
    out_of_range_between,
)
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

ZSET = KeyType.ZSET

#: Listpack limits of Redis's default config: a sorted set this small is kept compact.
LISTPACK_ENTRIES = 128
LISTPACK_VALUE = 64


def _zset(t: Txn, name: bytes) -> Key | None:
    return typed(t, name, ZSET)


def _flat(members: Iterable[Member], withscores: bool) -> list[Reply]:
    out: list[Reply] = []
    for m in members:
        out.append(m.member)
        if withscores:
            out.append(format_double(m.score))
    return out


def _store(t: Txn, name: bytes, members: list[tuple[bytes, float]]) -> int:
    """Replace ``name`` (any type, TTL dropped) with a sorted set of ``members``; an
    empty result deletes it.  The length stored."""
    old = t.lookup(name)
    if old is not None:
        t.delete(old)
    if members:
        key = t.create(name, ZSET)
        for member, score in members:
            t.put(key, member, b"", score + 0.0)  # + 0.0: a listpack keeps -0 as 0
    return len(members)


def _positive(raw: bytes, error: str) -> int:
    """``getRangeLongFromObjectOrReply(0 or 1, LONG_MAX, msg)`` with one text for both
    a non-integer and a value out of range."""
    value = parse_int(raw, error)
    if value < 0:
        raise ReplyError(error)
    return value


# --- ZADD, ZINCRBY ---------------------------------------------------------------------

_ADD_OPTIONS = frozenset((b"nx", b"xx", b"ch", b"incr", b"gt", b"lt"))


def _add_options(args: Args, incr: bool) -> tuple[set[bytes], int]:
    """ZADD's flags (checked for conflicts) and the index of its first score."""
    opts: set[bytes] = {b"incr"} if incr else set()
    i = 2
    while i < len(args) and args[i].lower() in _ADD_OPTIONS:
        opts.add(args[i].lower())
        i += 1
    rest = len(args) - i
    if rest % 2 or not rest:
        raise ReplyError(SYNTAX_ERROR)
    if {b"nx", b"xx"} <= opts:
        raise ReplyError(ZADD_XX_NX)
    if len(opts & {b"gt", b"lt", b"nx"}) > 1:
        raise ReplyError(ZADD_GT_LT_NX)
    if b"incr" in opts and rest > 2:
        raise ReplyError(ZADD_INCR_PAIRS)
    return opts, i


def _new_score(cur: float | None, score: float, opts: set[bytes]) -> float | None:
    """``zsetAdd``: the score an element ends with, or None when the flags leave it alone."""
    if cur is None:
        return None if b"xx" in opts else score
    if b"nx" in opts:
        return None
    if b"incr" in opts:
        score += cur
        if math.isnan(score):
            raise ReplyError(SCORE_NAN)
    if (b"lt" in opts and score >= cur) or (b"gt" in opts and score <= cur):
        return None
    return score


def _zadd(t: Txn, args: Args, incr: bool) -> Reply:
    opts, first = _add_options(args, incr)
    pairs = [(parse_float(args[j]), args[j + 1]) for j in range(first, len(args), 2)]
    key = _zset(t, args[1])
    if key is None and b"xx" in opts:
        return None if b"incr" in opts else 0

    current: dict[bytes, float | None] = {}  # scores as this command leaves them
    writes: dict[bytes, float] = {}
    added = updated = processed = 0
    result = 0.0
    for score, member in pairs:
        if member not in current:
            found = t.get(key, member) if key is not None else None
            current[member] = found.score if found is not None else None
        cur = current[member]
        new = _new_score(cur, score, opts)
        if new is None:
            continue
        processed += 1
        result = new
        if cur is None or new != cur:
            added += cur is None
            updated += cur is not None
            current[member] = writes[member] = new + 0.0  # a listpack keeps -0 as 0

    if writes:
        if key is None:
            key = t.create(args[1], ZSET)
        for member, score in writes.items():
            t.put(key, member, b"", score)
    if b"incr" in opts:
        return format_double(result) if processed else None
    return added + updated if b"ch" in opts else added


@command("zadd")
def zadd(t: Txn, args: Args) -> Reply:
    return _zadd(t, args, incr=False)


@command("zincrby")
def zincrby(t: Txn, args: Args) -> Reply:
    return _zadd(t, args, incr=True)


# --- single-key reads --------------------------------------------------------------------


@command("zcard")
def zcard(t: Txn, args: Args) -> Reply:
    key = _zset(t, args[1])
    return t.count(key) if key is not None else 0


@command("zscore")
def zscore(t: Txn, args: Args) -> Reply:
    key = _zset(t, args[1])
    found = t.get(key, args[2]) if key is not None else None
    return format_double(found.score) if found is not None else None


@command("zmscore")
def zmscore(t: Txn, args: Args) -> Reply:
    key = _zset(t, args[1])
    out: list[Reply] = []
    for member in args[2:]:
        found = t.get(key, member) if key is not None else None
        out.append(format_double(found.score) if found is not None else None)
    return out


def _rank(t: Txn, args: Args, rev: bool) -> Reply:
    key = _zset(t, args[1])
    return t.rank(key, args[2], rev) if key is not None else None


@command("zrank")
def zrank(t: Txn, args: Args) -> Reply:
    return _rank(t, args, rev=False)


@command("zrevrank")
def zrevrank(t: Txn, args: Args) -> Reply:
    return _rank(t, args, rev=True)


@command("zcount")
def zcount(t: Txn, args: Args) -> Reply:
    rng = parse_score_range(args[2], args[3])
    key = _zset(t, args[1])
    if key is None or rng.empty():
        return 0
    return t.count_by_score(key, rng.low, rng.high)


@command("zlexcount")
def zlexcount(t: Txn, args: Args) -> Reply:
    rng = parse_lex_range(args[2], args[3])
    key = _zset(t, args[1])
    if key is None or rng.empty():
        return 0
    return len(lex_select(t.ordered(key), rng))


# --- ZRANGE and its relatives --------------------------------------------------------------


class RangeType(Enum):
    RANK = "rank"
    SCORE = "score"
    LEX = "lex"


def _by_score(t: Txn, key: Key, rng: ScoreRange, offset: int, limit: int, rev: bool) -> list[Member]:
    if rng.empty() or offset < 0:
        return []
    return t.by_score(key, rng.low, rng.high, offset, limit, rev)


def _by_lex(t: Txn, key: Key, rng: LexRange, offset: int, limit: int, rev: bool) -> list[Member]:
    if rng.empty() or offset < 0:
        return []
    return lex_select(t.ordered(key), rng, offset, limit, rev)


def _zrange(t: Txn, args: Args, src: int, store: bool, kind: RangeType | None, rev: bool | None) -> Reply:
    """``zrangeGenericCommand``: ``args[src]`` is the source key, then min and max, then
    options.  ``kind``/``rev`` None mean the options choose them (ZRANGE, ZRANGESTORE)."""
    withscores = False
    offset, limit = 0, -1
    j = src + 3
    while j < len(args):
        word = args[j].lower()
        if not store and word == b"withscores":
            withscores = True
        elif word == b"limit" and len(args) - j - 1 >= 2:
            offset = parse_int(args[j + 1])
            limit = parse_int(args[j + 2])
            j += 2
        elif rev is None and word == b"rev":
            rev = True
        elif kind is None and word == b"bylex":
            kind = RangeType.LEX
        elif kind is None and word == b"byscore":
            kind = RangeType.SCORE
        else:
            raise ReplyError(SYNTAX_ERROR)
        j += 1
    rev = bool(rev)
    kind = kind or RangeType.RANK
    if limit != -1 and kind is RangeType.RANK:
        raise ReplyError(ZRANGE_LIMIT_NEEDS_BY)
    if withscores and kind is RangeType.LEX:
        raise ReplyError(ZRANGE_WITHSCORES_BYLEX)
    low, high = args[src + 1], args[src + 2]
    if rev and kind is not RangeType.RANK:
        low, high = high, low  # given as max, min
    score_rng: ScoreRange | None = None
    lex_rng: LexRange | None = None
    start = end = 0
    if kind is RangeType.RANK:
        start, end = parse_int(low), parse_int(high)
    elif kind is RangeType.SCORE:
        score_rng = parse_score_range(low, high)
    else:
        lex_rng = parse_lex_range(low, high)

    key = _zset(t, args[src])
    found: list[Member] = []
    if key is not None:
        if score_rng is not None:
            found = _by_score(t, key, score_rng, offset, limit, rev)
        elif lex_rng is not None:
            found = _by_lex(t, key, lex_rng, offset, limit, rev)
        else:
            window = rank_window(start, end, t.count(key))
            found = t.ordered(key, window[0], window[1], rev) if window else []
    if store:
        return _store(t, args[1], [(m.member, m.score) for m in found])
    return _flat(found, withscores)


# ZRANGE and ZRANGESTORE read their form from options; the legacy commands fix it.
for _name, _source, _stores, _kind, _rev in (
    ("zrange", 1, False, None, None),
    ("zrangestore", 2, True, None, None),
    ("zrevrange", 1, False, RangeType.RANK, True),
    ("zrangebyscore", 1, False, RangeType.SCORE, False),
    ("zrevrangebyscore", 1, False, RangeType.SCORE, True),
    ("zrangebylex", 1, False, RangeType.LEX, False),
    ("zrevrangebylex", 1, False, RangeType.LEX, True),
):
    command(_name)(partial(_zrange, src=_source, store=_stores, kind=_kind, rev=_rev))


# --- removal ---------------------------------------------------------------------------------


@command("zrem")
def zrem(t: Txn, args: Args) -> Reply:
    key = _zset(t, args[1])
    if key is None:
        return 0
    return remove_members(t, key, dict.fromkeys(args[2:]))


def _remove_found(t: Txn, key: Key, found: list[Member]) -> int:
    removed = t.remove_many(key, [m.member for m in found]) if found else 0
    drop_if_empty(t, key)
    return removed


@command("zremrangebyrank")
def zremrangebyrank(t: Txn, args: Args) -> Reply:
    start, end = parse_int(args[2]), parse_int(args[3])
    key = _zset(t, args[1])
    if key is None:
        return 0
    window = rank_window(start, end, t.count(key))
    return _remove_found(t, key, t.ordered(key, *window) if window else [])


@command("zremrangebyscore")
def zremrangebyscore(t: Txn, args: Args) -> Reply:
    rng = parse_score_range(args[2], args[3])
    key = _zset(t, args[1])
    if key is None:
        return 0
    return _remove_found(t, key, _by_score(t, key, rng, 0, -1, rev=False))


@command("zremrangebylex")
def zremrangebylex(t: Txn, args: Args) -> Reply:
    rng = parse_lex_range(args[2], args[3])
    key = _zset(t, args[1])
    if key is None:
        return 0
    return _remove_found(t, key, _by_lex(t, key, rng, 0, -1, rev=False))


# --- popping ---------------------------------------------------------------------------------


def _pop(t: Txn, names: list[bytes], rev: bool, count: int) -> tuple[Key, list[Member]] | None:
    """``genericZpopCommand``: the first existing key (WRONGTYPE if it is not a sorted
    set) loses its ``count`` lowest (highest with ``rev``) elements."""
    key = None
    for name in names:
        key = _zset(t, name)
        if key is not None:
            break
    if key is None:
        return None
    popped = t.ordered(key, 0, count, rev) if count else []
    if popped:
        _remove_found(t, key, popped)
    return key, popped


def _zpop(t: Txn, args: Args, rev: bool) -> Reply:
    if len(args) > 3:
        raise ReplyError(SYNTAX_ERROR)
    count = _positive(args[2], MUST_BE_POSITIVE) if len(args) == 3 else 1
    result = _pop(t, [args[1]], rev, count)
    return _flat(result[1], withscores=True) if result else []


@command("zpopmin")
def zpopmin(t: Txn, args: Args) -> Reply:
    return _zpop(t, args, rev=False)


@command("zpopmax")
def zpopmax(t: Txn, args: Args) -> Reply:
    return _zpop(t, args, rev=True)


@command("zmpop")
def zmpop(t: Txn, args: Args) -> Reply:
    numkeys = parse_int(args[1], NUMKEYS_POSITIVE)
    if numkeys < 1:
        raise ReplyError(NUMKEYS_POSITIVE)
    where = 1 + numkeys + 1
    if where >= len(args):
        raise ReplyError(SYNTAX_ERROR)
    side = args[where].lower()
    if side not in (b"min", b"max"):
        raise ReplyError(SYNTAX_ERROR)
    count = -1
    j = where + 1
    while j < len(args):
        if count == -1 and args[j].lower() == b"count" and j + 1 < len(args):
            count = parse_int(args[j + 1], COUNT_POSITIVE)
            if count < 1:
                raise ReplyError(COUNT_POSITIVE)
            j += 2
        else:
            raise ReplyError(SYNTAX_ERROR)
    result = _pop(t, args[2:where], side == b"max", max(count, 1))
    if result is None:
        return None
    key, popped = result
    return [key.name, [[m.member, format_double(m.score)] for m in popped]]


# --- ZUNION, ZINTER, ZDIFF (and their STORE forms), ZINTERCARD ---------------------------------


class SetOp(Enum):
    UNION = "union"
    INTER = "inter"
    DIFF = "diff"


def _setop(t: Txn, args: Args, name: str, numkeys_at: int, op: SetOp, card_only: bool = False) -> Reply:
    """``zunionInterDiffGenericCommand``; a STORE form has its destination at ``args[1]``."""
    store = numkeys_at == 2
    setnum = parse_int(args[numkeys_at])
    if setnum < 1:
        raise ReplyError(no_input_keys(name))
    first = numkeys_at + 1
    if setnum > len(args) - first:
        raise ReplyError(SYNTAX_ERROR)
    keys: list[Key | None] = []
    for raw in args[first : first + setnum]:
        key = t.lookup(raw)
        if key is not None and key.type not in (ZSET, KeyType.SET):
            raise ReplyError(WRONGTYPE)
        keys.append(key)

    weights = [1.0] * setnum
    how = b"sum"
    withscores = False
    limit = 0
    j = first + setnum
    while j < len(args):
        remaining = len(args) - j
        word = args[j].lower()
        combining = op is not SetOp.DIFF and not card_only
        if combining and remaining >= setnum + 1 and word == b"weights":
            weights = [parse_float(raw, WEIGHT_NOT_FLOAT) for raw in args[j + 1 : j + 1 + setnum]]
            j += setnum + 1
        elif combining and remaining >= 2 and word == b"aggregate":
            how = args[j + 1].lower()
            if how not in (b"sum", b"min", b"max"):
                raise ReplyError(SYNTAX_ERROR)
            j += 2
        elif not store and not card_only and word == b"withscores":
            withscores = True
            j += 1
        elif card_only and remaining >= 2 and word == b"limit":
            limit = _positive(args[j + 1], LIMIT_NEGATIVE)
            j += 2
        else:
            raise ReplyError(SYNTAX_ERROR)

    sources = list(zip(keys, weights, strict=True))
    if op is not SetOp.DIFF:  # smallest first, as Redis's (stable) qsort leaves them
        sources.sort(key=lambda src: t.count(src[0]) if src[0] is not None else 0)
    if op is SetOp.UNION:
        result = union(t, sources, how)
    elif op is SetOp.INTER:
        result, cardinality = inter(t, sources, how, limit)
        if card_only:
            return cardinality
    else:
        result = diff(t, sources)

    ordered = sorted(result.items(), key=lambda item: (item[1], item[0]))
    if store:
        return _store(t, args[1], ordered)
    out: list[Reply] = []
    for member, score in ordered:
        out.append(member)
        if withscores:
            out.append(format_double(score))
    return out


# ZUNION, ZINTER, ZDIFF and their STORE forms: one implementation.
for _name, _first_key, _op in (
    ("zunion", 1, SetOp.UNION),
    ("zinter", 1, SetOp.INTER),
    ("zdiff", 1, SetOp.DIFF),
    ("zunionstore", 2, SetOp.UNION),
    ("zinterstore", 2, SetOp.INTER),
    ("zdiffstore", 2, SetOp.DIFF),
):
    command(_name)(partial(_setop, name=_name, numkeys_at=_first_key, op=_op))


@command("zintercard")
def zintercard(t: Txn, args: Args) -> Reply:
    return _setop(t, args, "zintercard", 1, SetOp.INTER, card_only=True)


# --- ZRANDMEMBER, ZSCAN -------------------------------------------------------------------------

#: Case 3 of Redis's ZRANDMEMBER: a set this many times the count is sampled directly.
_SUB_STRATEGY_MUL = 3


def _random_members(t: Txn, key: Key, count: int, unique: bool) -> list[Member]:
    """``zrandmemberWithCountCommand``'s choices (order is random where Redis's is)."""
    if not unique:
        check_reply_size(count)
    everything = t.ordered(key)
    if not unique or count == 1:
        return [random.choice(everything) for _ in range(count)]
    if count >= len(everything):
        return everything[::-1]  # the whole set, as Redis's set-op iterator walks it (from the top)
    picked = random.sample(range(len(everything)), count)
    if count * _SUB_STRATEGY_MUL <= len(everything):
        picked.sort()  # a listpack is sampled in its order
    return [everything[i] for i in picked]


@command("zrandmember")
def zrandmember(t: Txn, args: Args) -> Reply:
    if len(args) == 2:
        key = _zset(t, args[1])
        return random.choice(t.ordered(key)).member if key is not None else None
    count = parse_int(args[2])
    if count < -INT64_MAX:
        raise ReplyError(out_of_range_between(-INT64_MAX, INT64_MAX))
    if len(args) > 4 or (len(args) == 4 and args[3].lower() != b"withscores"):
        raise ReplyError(SYNTAX_ERROR)
    withscores = len(args) == 4
    if withscores and not -(INT64_MAX // 2) <= count <= INT64_MAX // 2:
        raise ReplyError(OUT_OF_RANGE)
    key = _zset(t, args[1])
    if key is None or count == 0:
        return []
    return _flat(_random_members(t, key, abs(count), unique=count > 0), withscores)


def _is_listpack(t: Txn, key: Key) -> list[Member] | None:
    """The whole sorted set, in order, if Redis would keep it as a listpack (ZSCAN then
    ignores the cursor and returns everything with the scores as the listpack holds them)."""
    if t.count(key) > LISTPACK_ENTRIES:
        return None
    members = t.ordered(key)
    return members if all(len(m.member) <= LISTPACK_VALUE for m in members) else None


@command("zscan")
def zscan(t: Txn, args: Args) -> Reply:
    cursor = parse_cursor(args[2])
    key = t.lookup(args[1])
    if key is None:
        return [b"0", []]
    if key.type is not ZSET:
        raise ReplyError(WRONGTYPE)
    opts = parse_options(args, 3, allow_type=False)
    small = _is_listpack(t, key)
    out: list[Reply] = []
    if small is not None:
        for m in small:
            if opts.matches(m.member):
                out += [m.member, listpack_score(m.score)]
        return [b"0", out]
    nxt, page = scan_members(t, key, cursor, opts)
    for m in page:
        out += [m.member, format_double(m.score)]
    return [b"%d" % nxt, out]
