"""Ranges over sorted sets and their combinations, the way Redis 7.0 does them (``t_zset.c``).

* Score ranges (``ZRANGEBYSCORE``, ``ZCOUNT``...) are parsed with C's ``strtod`` and only
  Redis's few extra checks (``zslParseRange``): leading spaces and overflow are accepted,
  an empty string is 0, ``(`` makes a bound exclusive, NaN is refused.
* Lex ranges (``ZRANGEBYLEX``...) are ``-``, ``+``, ``(member`` or ``[member``.  Redis
  assumes every element has the same score; when they differ its answer depends on how it
  walks the elements.  :func:`lex_select` walks them as Redis does for a small sorted set
  (listpack): find the first element at or past the start bound, then take elements while
  they stay within the end bound.
* :func:`rank_window` is Redis's index sanitizing for ``ZRANGE``/``ZREMRANGEBYRANK``.
* :func:`listpack_score` prints a score the way ZSCAN shows it for a small sorted set.
* :func:`union`, :func:`inter` and :func:`diff` combine sorted sets (and plain sets, whose
  elements score 1) with Redis's weights and aggregation, NaN turned into 0 as it does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from kvgate.engine.storage import Key, KeyType, Member, ScoreBound, Txn
from kvgate.error_texts import MIN_MAX_NOT_FLOAT, MIN_MAX_NOT_LEX
from kvgate.errors import ReplyError

# What C's strtod consumes, whole string (leading white space stripped before).
_STRTOD = re.compile(
    rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?"
    rb"|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)",
    re.IGNORECASE,
)
_C_SPACE = b" \t\n\v\f\r"
_HALF_LLONG = float((2**63 - 1) // 2)  # C compares against (double)(LLONG_MAX/2)


def strtod_whole(raw: bytes) -> float | None:
    """``strtod`` over the C string ``raw`` that must consume all of it (``eptr[0] ==
    '\\0'``), as ``zslParseRange`` checks it; None when it does not or gives NaN."""
    text = raw.split(b"\0", 1)[0]  # the C string ends at the first NUL
    body = text.lstrip(_C_SPACE)
    if not body:
        # Nothing converted: strtod leaves eptr at the start, fine only for "".
        return 0.0 if not text else None
    if not _STRTOD.fullmatch(body):
        return None
    digits = body.lstrip(b"+-")
    if digits[:2].lower() == b"0x":
        try:
            value = float.fromhex(body.decode())
        except OverflowError:
            value = -math.inf if body.startswith(b"-") else math.inf
    else:
        value = float(body)
    return value


@dataclass(slots=True, frozen=True)
class ScoreRange:
    low: ScoreBound
    high: ScoreBound

    def empty(self) -> bool:
        """Redis's test for ranges that can hold nothing (``zzlIsInRange``)."""
        lo, hi = self.low, self.high
        return lo.value > hi.value or (lo.value == hi.value and (lo.open or hi.open))

    def contains(self, score: float) -> bool:
        return self.low.below(score) and self.high.above(score)


def _score_bound(raw: bytes) -> ScoreBound:
    open_ = raw[:1] == b"("
    value = strtod_whole(raw[1:] if open_ else raw)
    if value is None:
        raise ReplyError(MIN_MAX_NOT_FLOAT)
    return ScoreBound(value, open_)


def parse_score_range(low: bytes, high: bytes) -> ScoreRange:
    return ScoreRange(_score_bound(low), _score_bound(high))


# --- lex ranges -----------------------------------------------------------------------

_MINUS, _VALUE, _PLUS = -1, 0, 1


@dataclass(slots=True, frozen=True)
class LexBound:
    """``kind`` is -1 for ``-`` (below every string), +1 for ``+``, 0 for a member."""

    kind: int
    value: bytes = b""
    open: bool = True


def _lex_cmp(a: LexBound, b: LexBound) -> int:
    """``sdscmplex``: the sentinels compare below/above every string."""
    if a.kind == b.kind and a.kind != _VALUE:
        return 0
    if a.kind == _MINUS or b.kind == _PLUS:
        return -1
    if a.kind == _PLUS or b.kind == _MINUS:
        return 1
    return (a.value > b.value) - (a.value < b.value)


def _lex_bound(raw: bytes) -> LexBound:
    first, rest = raw[:1], raw[1:]
    ends = not rest or rest[0] == 0  # C reads c[1] == '\0'
    if first == b"+" and ends:
        return LexBound(_PLUS)
    if first == b"-" and ends:
        return LexBound(_MINUS)
    if first == b"(":
        return LexBound(_VALUE, rest, True)
    if first == b"[":
        return LexBound(_VALUE, rest, False)
    raise ReplyError(MIN_MAX_NOT_LEX)


@dataclass(slots=True, frozen=True)
class LexRange:
    low: LexBound
    high: LexBound

    def empty(self) -> bool:
        cmp = _lex_cmp(self.low, self.high)
        return cmp > 0 or (cmp == 0 and (self.low.open or self.high.open))

    def gte_min(self, member: bytes) -> bool:
        cmp = _lex_cmp(LexBound(_VALUE, member), self.low)
        return cmp > 0 if self.low.open else cmp >= 0

    def lte_max(self, member: bytes) -> bool:
        cmp = _lex_cmp(LexBound(_VALUE, member), self.high)
        return cmp < 0 if self.high.open else cmp <= 0


def parse_lex_range(low: bytes, high: bytes) -> LexRange:
    return LexRange(_lex_bound(low), _lex_bound(high))


def _lex_start(items: list[Member], rng: LexRange, rev: bool) -> int | None:
    """Index (in walking order) of the element a lex walk starts from, or None."""
    if not items or rng.empty():
        return None
    if not rng.gte_min(items[-1].member) or not rng.lte_max(items[0].member):
        return None
    walk = reversed(items) if rev else iter(items)
    for i, m in enumerate(walk):
        if rev and rng.lte_max(m.member):
            return i if rng.gte_min(m.member) else None
        if not rev and rng.gte_min(m.member):
            return i if rng.lte_max(m.member) else None
    return None


def lex_select(
    items: list[Member], rng: LexRange, offset: int = 0, limit: int = -1, rev: bool = False
) -> list[Member]:
    """Elements of ``items`` (in ``(score, member)`` order) in ``rng``, walked as Redis
    walks a listpack: ``offset`` elements skipped unchecked, then at most ``limit`` (-1:
    all) taken while they stay within the far bound."""
    start = _lex_start(items, rng, rev)
    if start is None or offset < 0:
        return []
    walk = items[::-1] if rev else items
    out: list[Member] = []
    for m in walk[start + offset :]:
        if len(out) == limit:
            break
        if not (rng.gte_min(m.member) if rev else rng.lte_max(m.member)):
            break
        out.append(m)
    return out


# --- ranks and printing -----------------------------------------------------------------


def rank_window(start: int, end: int, length: int) -> tuple[int, int] | None:
    """Redis's sanitizing of a rank range: ``(offset, count)`` or None when empty."""
    if start < 0:
        start += length
    if end < 0:
        end += length
    start = max(start, 0)
    if start > end or start >= length:
        return None
    end = min(end, length - 1)
    return start, end - start + 1


def listpack_score(score: float) -> bytes:
    """``d2string``: how a small sorted set keeps (and ZSCAN shows) a score."""
    if math.isinf(score):
        return b"inf" if score > 0 else b"-inf"
    if score == 0:
        return b"-0" if math.copysign(1.0, score) < 0 else b"0"
    if -_HALF_LLONG <= score <= _HALF_LLONG and score == int(score):
        return b"%d" % int(score)
    return b"%.17g" % score


# --- combining sorted sets (ZUNION, ZINTER, ZDIFF) ---------------------------------------------

#: Inputs of a set operation: each key (None when missing) with its weight.
Sources = list[tuple[Key | None, float]]


def entries(t: Txn, key: Key) -> list[tuple[bytes, float]]:
    """A source's elements with their scores; a plain set's elements score 1."""
    if key.type is KeyType.ZSET:
        return [(m.member, m.score) for m in t.members(key)]
    return [(m.member, 1.0) for m in t.members(key)]


def find_score(t: Txn, key: Key, member: bytes) -> float | None:
    found = t.get(key, member)
    if found is None:
        return None
    return found.score if key.type is KeyType.ZSET else 1.0


def aggregate(target: float, value: float, how: bytes) -> float:
    """``zunionInterAggregate``, comparisons as C writes them (NaN never wins)."""
    if how == b"sum":
        total = target + value
        return 0.0 if math.isnan(total) else total  # inf + -inf is 0 by convention
    if how == b"min":
        return value if value < target else target
    return value if value > target else target


def weighted(score: float, weight: float) -> float:
    value = score * weight
    return 0.0 if math.isnan(value) else value


def union(t: Txn, sources: Sources, how: bytes) -> dict[bytes, float]:
    acc: dict[bytes, float] = {}
    for key, weight in sources:
        if key is None:
            continue
        for member, score in entries(t, key):
            value = weighted(score, weight)
            acc[member] = aggregate(acc[member], value, how) if member in acc else value
    return acc


def inter(t: Txn, sources: Sources, how: bytes, limit: int = 0) -> tuple[dict[bytes, float], int]:
    """Members in every source with their aggregated scores, and how many there are
    (stopping at ``limit`` when it is not 0)."""
    result: dict[bytes, float] = {}
    cardinality = 0
    first, first_weight = sources[0]
    if first is None:
        return result, 0
    for member, score in entries(t, first):
        total = weighted(score, first_weight)
        for key, weight in sources[1:]:
            if key is None:
                break
            found = score if key.name == first.name else find_score(t, key, member)
            if found is None:
                break
            total = aggregate(total, found * weight, how)
        else:
            cardinality += 1
            result[member] = total
            if limit and cardinality >= limit:
                break
    return result, cardinality


def diff(t: Txn, sources: Sources) -> dict[bytes, float]:
    first = sources[0][0]
    others = [key for key, _ in sources[1:] if key is not None]
    if first is None or any(key.name == first.name for key in others):
        return {}
    return {
        member: score
        for member, score in entries(t, first)
        if all(find_score(t, key, member) is None for key in others)
    }
