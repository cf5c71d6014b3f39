"""Geo commands (GEOADD, GEOSEARCH...) on sorted sets, as Redis 7.0 runs them (``geo.c``).

A geo key is a plain sorted set whose scores are 52-bit geohashes
(:mod:`kvgate.engine.geo_hash`), so ZSCORE, ZRANGE and every sorted-set command see what
Redis shows.  GEOADD turns each point into its score and hands the rest to ZADD, as Redis
does, which keeps one home for NX/XX/CH and for the type check.

A search reads only the score ranges of the nine cells around its centre (through the
store's ``by_score``, an index range in SQLite), in Redis's order, and filters them by
distance.  Without ASC/DESC the reply keeps that order, which is Redis's; with them the
sort is stable, as glibc's ``qsort`` (a merge sort) is.  With COUNT below the number
found, Redis sorts only the first COUNT places with its ``pqsort`` (Bentley and McIlroy's
quicksort, cut short), which is not stable: :func:`partial_sort` makes the same moves, so
members at exactly the same distance come out in Redis's order there too.

Arguments are checked in Redis's order, each error as it meets it: the key's type first,
then the centre and the shape, then the options left to right, then the combinations.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Flag, auto
from functools import partial

from kvgate.engine.geo_hash import (
    LAT_MAX,
    LAT_MIN,
    LONG_MAX,
    LONG_MIN,
    Shape,
    distance,
    format_coordinate,
    format_distance,
    point_score,
    score_point,
    standard_geohash,
)
from kvgate.engine.numbers import parse_float, parse_int
from kvgate.engine.registry import command, typed
from kvgate.engine.storage import Key, KeyType, ScoreBound, Txn
from kvgate.engine.zsets import _store, zadd
from kvgate.error_texts import (
    GEO_ANY_NEEDS_COUNT,
    GEO_COUNT_POSITIVE,
    GEO_HEIGHT_NOT_FLOAT,
    GEO_MEMBER_NOT_FOUND,
    GEO_NEGATIVE_BOX,
    GEO_NEGATIVE_RADIUS,
    GEO_RADIUS_NOT_FLOAT,
    GEO_UNIT,
    GEO_WIDTH_NOT_FLOAT,
    SYNTAX_ERROR,
    geo_invalid_pair,
    geo_needs_center,
    geo_needs_shape,
    geo_store_with_options,
)
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

#: Meters per unit (``extractUnitOrReply``).
UNITS = {b"m": 1.0, b"km": 1000.0, b"ft": 0.3048, b"mi": 1609.34}


def _zset(t: Txn, name: bytes) -> Key | None:
    return typed(t, name, KeyType.ZSET)


def _unit(raw: bytes) -> float:
    conversion = UNITS.get(raw.lower())
    if conversion is None:
        raise ReplyError(GEO_UNIT)
    return conversion


def _point(lon_raw: bytes, lat_raw: bytes) -> tuple[float, float]:
    """``extractLongLatOrReply``: two floats inside Redis's ranges."""
    lon, lat = parse_float(lon_raw), parse_float(lat_raw)
    if not (LONG_MIN <= lon <= LONG_MAX and LAT_MIN <= lat <= LAT_MAX):
        raise ReplyError(geo_invalid_pair(lon, lat))
    return lon, lat


def _member_point(t: Txn, key: Key, member: bytes) -> tuple[float, float]:
    found = t.get(key, member)
    if found is None:
        raise ReplyError(GEO_MEMBER_NOT_FOUND)
    return score_point(found.score)


def _radius(args: Args, i: int) -> tuple[float, float]:
    """``extractDistanceOrReply``: (radius, meters per unit) from ``args[i:i+2]``."""
    radius = parse_float(args[i], GEO_RADIUS_NOT_FLOAT)
    if radius < 0:
        raise ReplyError(GEO_NEGATIVE_RADIUS)
    return radius, _unit(args[i + 1])


def _box(args: Args, i: int) -> tuple[float, float, float]:
    """``extractBoxOrReply``: (width, height, meters per unit) from ``args[i:i+3]``."""
    width = parse_float(args[i], GEO_WIDTH_NOT_FLOAT)
    height = parse_float(args[i + 1], GEO_HEIGHT_NOT_FLOAT)
    if height < 0 or width < 0:
        raise ReplyError(GEO_NEGATIVE_BOX)
    return width, height, _unit(args[i + 2])


# --- GEOADD, GEOPOS, GEOHASH, GEODIST ----------------------------------------------------------

_ADD_OPTIONS = frozenset((b"nx", b"xx", b"ch"))


@command("geoadd")
def geoadd(t: Txn, args: Args) -> Reply:
    first = 2
    while first < len(args) and args[first].lower() in _ADD_OPTIONS:
        first += 1
    options = {a.lower() for a in args[2:first]}
    if (len(args) - first) % 3 or {b"nx", b"xx"} <= options:
        raise ReplyError(SYNTAX_ERROR)
    as_zadd = [b"zadd", *args[1:first]]
    for i in range(first, len(args), 3):
        lon, lat = _point(args[i], args[i + 1])
        as_zadd += [b"%d" % point_score(lon, lat), args[i + 2]]
    return zadd(t, as_zadd)


@command("geopos")
def geopos(t: Txn, args: Args) -> Reply:
    key = _zset(t, args[1])
    out: list[Reply] = []
    for member in args[2:]:
        found = t.get(key, member) if key is not None else None
        if found is None:
            out.append(None)
        else:
            out.append([format_coordinate(v) for v in score_point(found.score)])
    return out


@command("geohash")
def geohash(t: Txn, args: Args) -> Reply:
    key = _zset(t, args[1])
    out: list[Reply] = []
    for member in args[2:]:
        found = t.get(key, member) if key is not None else None
        out.append(standard_geohash(found.score) if found is not None else None)
    return out


@command("geodist")
def geodist(t: Txn, args: Args) -> Reply:
    if len(args) > 5:
        raise ReplyError(SYNTAX_ERROR)
    conversion = _unit(args[4]) if len(args) == 5 else 1.0
    key = _zset(t, args[1])
    if key is None:
        return None
    one, two = t.get(key, args[2]), t.get(key, args[3])
    if one is None or two is None:
        return None
    return format_distance(distance(*score_point(one.score), *score_point(two.score)) / conversion)


# --- searches -------------------------------------------------------------------------------


class Form(Flag):
    """``georadiusGeneric``'s flags: which command is parsing."""

    COORDS = auto()  # GEORADIUS[_RO]: longitude latitude radius unit
    MEMBER = auto()  # GEORADIUSBYMEMBER[_RO]: member radius unit
    NOSTORE = auto()  # the _RO forms
    SEARCH = auto()  # GEOSEARCH[STORE]: FROM... BY... options
    SEARCHSTORE = auto()


@dataclass(slots=True)
class Search:
    """A parsed search.  ``center`` stays None when the key is missing (Redis then skips
    FROMMEMBER's lookup but goes on parsing, for its errors and the reply's shape)."""

    center: tuple[float, float] | None = None
    radius: float | None = None
    width: float = 0.0
    height: float = 0.0
    conversion: float = 1.0
    withdist: bool = False
    withhash: bool = False
    withcoord: bool = False
    order: int = 0  # 0 none, 1 ascending, -1 descending
    count: int = 0  # 0: all
    any: bool = False
    store: bytes | None = None
    storedist: bool = False

    def shape(self) -> Shape:
        assert self.center is not None
        return Shape(*self.center, self.conversion, self.radius, self.width, self.height)


def _parse(t: Txn, args: Args, key: Key | None, form: Form) -> Search:
    s = Search()
    if form & Form.COORDS:
        base = 6
        s.center = _point(args[2], args[3])
        s.radius, s.conversion = _radius(args, 4)
    elif form & Form.MEMBER:
        base = 5
        if key is not None:
            s.center = _member_point(t, key, args[2])
            s.radius, s.conversion = _radius(args, 3)
    else:
        base = 3 if form & Form.SEARCHSTORE else 2
        if form & Form.SEARCHSTORE:
            s.store = args[1]
    search, stores = bool(form & Form.SEARCH), not form & (Form.NOSTORE | Form.SEARCH)
    from_member = from_point = by_radius = by_box = False
    i, n = base, len(args)
    while i < n:
        word, left = args[i].lower(), n - i - 1  # arguments after this one
        if word == b"withdist":
            s.withdist = True
        elif word == b"withhash":
            s.withhash = True
        elif word == b"withcoord":
            s.withcoord = True
        elif word == b"any":
            s.any = True
        elif word in (b"asc", b"desc"):
            s.order = 1 if word == b"asc" else -1
        elif word == b"count" and left >= 1:
            s.count = parse_int(args[i + 1])
            if s.count <= 0:
                raise ReplyError(GEO_COUNT_POSITIVE)
            i += 1
        elif word in (b"store", b"storedist") and left >= 1 and stores:
            s.store, s.storedist = args[i + 1], word == b"storedist"
            i += 1
        elif word == b"storedist" and form & Form.SEARCHSTORE:
            s.storedist = True
        elif word == b"frommember" and left >= 1 and search and not from_point:
            if key is not None:
                s.center = _member_point(t, key, args[i + 1])
            from_member = True
            i += 1
        elif word == b"fromlonlat" and left >= 2 and search and not from_member:
            s.center = _point(args[i + 1], args[i + 2])
            from_point = True
            i += 2
        elif word == b"byradius" and left >= 2 and search and not by_box:
            s.radius, s.conversion = _radius(args, i + 1)
            by_radius = True
            i += 2
        elif word == b"bybox" and left >= 3 and search and not by_radius:
            s.width, s.height, s.conversion = _box(args, i + 1)
            by_box = True
            i += 3
        else:
            raise ReplyError(SYNTAX_ERROR)
        i += 1
    if s.store is not None and (s.withdist or s.withhash or s.withcoord):
        raise ReplyError(geo_store_with_options(bool(form & Form.SEARCHSTORE)))
    name = args[0].decode("utf-8", "replace")
    if search and not (from_member or from_point):
        raise ReplyError(geo_needs_center(name))
    if search and not (by_radius or by_box):
        raise ReplyError(geo_needs_shape(name))
    if s.any and not s.count:
        raise ReplyError(GEO_ANY_NEEDS_COUNT)
    return s


@dataclass(slots=True)
class Found:
    member: bytes
    score: float
    longitude: float
    latitude: float
    dist: float  # meters


def _find(t: Txn, key: Key, shape: Shape, limit: int) -> list[Found]:
    """``membersOfAllNeighbors``: members inside ``shape``, cell by cell in Redis's order,
    each cell in score order; with ``limit`` (ANY), stop once that many are found."""
    found: list[Found] = []
    for cell in shape.cells():
        if limit and len(found) >= limit:
            break
        low, high = cell.scores()
        for m in t.by_score(key, ScoreBound(float(low)), ScoreBound(float(high), open=True)):
            inside = shape.within(m.score)
            if inside is not None:
                found.append(Found(m.member, m.score, *inside))
            if limit and len(found) >= limit:
                break
    return found


def _search(t: Txn, args: Args, form: Form) -> Reply:
    source = 2 if form & Form.SEARCHSTORE else 1
    key = _zset(t, args[source])
    s = _parse(t, args, key, form)
    if key is None:
        if s.store is None:
            return []
        return _store(t, s.store, [])
    if s.count and not s.order and not s.any:
        s.order = 1  # the closest COUNT, not any COUNT
    found = _find(t, key, s.shape(), s.count if s.any else 0)
    if s.order and s.count and s.count < len(found):
        partial_sort(found, s.order, s.count)
        del found[s.count :]
    elif s.order:
        found.sort(key=lambda f: f.dist, reverse=s.order < 0)  # stable, as glibc's qsort is
    if s.store is not None:
        items = [(f.member, f.dist / s.conversion if s.storedist else f.score) for f in found]
        return _store(t, s.store, items)
    if not (s.withdist or s.withhash or s.withcoord):
        return [f.member for f in found]
    out: list[Reply] = []
    for f in found:
        item: list[Reply] = [f.member]
        if s.withdist:
            item.append(format_distance(f.dist / s.conversion))
        if s.withhash:
            item.append(int(f.score))
        if s.withcoord:
            item.append([format_coordinate(f.longitude), format_coordinate(f.latitude)])
        out.append(item)
    return out


for _name, _form in (
    ("georadius", Form.COORDS),
    ("georadius_ro", Form.COORDS | Form.NOSTORE),
    ("georadiusbymember", Form.MEMBER),
    ("georadiusbymember_ro", Form.MEMBER | Form.NOSTORE),
    ("geosearch", Form.SEARCH),
    ("geosearchstore", Form.SEARCH | Form.SEARCHSTORE),
):
    command(_name)(partial(_search, form=_form))


# --- Redis's partial sort ---------------------------------------------------------------------


def partial_sort(items: list[Found], order: int, count: int) -> None:
    """``pqsort(items, .., 0, count - 1)``: Bentley and McIlroy's quicksort (pivot by
    median of three, or the ninther past 40 elements; equal keys gathered at both ends,
    then swapped to the middle; insertion sort below 7), recursing only into the parts that
    reach the first ``count`` places.  By distance, ascending (``order`` 1) or descending."""

    def cmp(i: int, j: int) -> int:
        a, b = items[i].dist, items[j].dist
        result = 1 if a > b else 0 if a == b else -1
        return result * order

    def swap(i: int, j: int) -> None:
        items[i], items[j] = items[j], items[i]

    def swap_run(i: int, j: int, n: int) -> None:
        for k in range(n):
            swap(i + k, j + k)

    def med3(a: int, b: int, c: int) -> int:
        if cmp(a, b) < 0:
            return b if cmp(b, c) < 0 else (c if cmp(a, c) < 0 else a)
        return b if cmp(b, c) > 0 else (a if cmp(a, c) < 0 else c)

    def wanted(start: int, n: int) -> bool:
        """Whether [start, start + n) overlaps the first ``count`` places."""
        return start < count

    def run(a: int, n: int) -> None:
        while True:
            if n < 7:
                for m in range(a + 1, a + n):
                    j = m
                    while j > a and cmp(j - 1, j) > 0:
                        swap(j, j - 1)
                        j -= 1
                return
            m = a + n // 2
            if n > 7:
                lo, hi = a, a + n - 1
                if n > 40:
                    d = n // 8
                    lo = med3(lo, lo + d, lo + 2 * d)
                    m = med3(m - d, m, m + d)
                    hi = med3(hi - 2 * d, hi - d, hi)
                m = med3(lo, m, hi)
            swap(a, m)
            pa = pb = a + 1
            pc = pd = a + n - 1
            while True:
                while pb <= pc and (c := cmp(pb, a)) <= 0:
                    if c == 0:
                        swap(pa, pb)
                        pa += 1
                    pb += 1
                while pb <= pc and (c := cmp(pc, a)) >= 0:
                    if c == 0:
                        swap(pc, pd)
                        pd -= 1
                    pc -= 1
                if pb > pc:
                    break
                swap(pb, pc)
                pb += 1
                pc -= 1
            end = a + n
            r = min(pa - a, pb - pa)
            swap_run(a, pb - r, r)
            r = min(pd - pc, end - pd - 1)
            swap_run(pb, end - r, r)
            if (r := pb - pa) > 1 and wanted(a, r):
                run(a, r)
            if (r := pd - pc) > 1 and wanted(end - r, r):
                a, n = end - r, r
                continue
            return

    run(0, len(items))
