"""Redis's geohash arithmetic (``geohash.c``, ``geohash_helper.c`` of Redis 7.0), in doubles.

A geo member's score is a 52-bit geohash: 26 bits of longitude and 26 of latitude,
interleaved (latitude on the even bits), over Redis's latitude range of +-85.05112878
(Web Mercator's), not the standard +-90.  A point comes back as the centre of its cell,
so GEOPOS answers what Redis answers, not what was added.

A search covers its shape with the cell holding the centre and its eight neighbours, at a
precision chosen from the radius; each cell is a range of scores.  Every step here is the
same sequence of double operations Redis does, so the cells, the distances and the
in-or-out decisions are Redis's own, bit for bit.  Where C's libm gives NaN (``cos(inf)``,
``asin`` just above 1), Python raises: :func:`_c` gives C's NaN instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

STEP_MAX = 26  # 26 * 2 = 52 bits: what a double holds exactly
LAT_MIN, LAT_MAX = -85.05112878, 85.05112878
LONG_MIN, LONG_MAX = -180.0, 180.0
#: The standard geohash's ranges, which GEOHASH re-encodes to.
STANDARD_LAT = (-90.0, 90.0)

EARTH_RADIUS_IN_METERS = 6372797.560856  # Redis's quadratic mean radius (WGS-84)
MERCATOR_MAX = 20037726.37
D_R = math.pi / 180.0

_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1
_EVEN = 0x5555555555555555
_ODD = 0xAAAAAAAAAAAAAAAA
_BASE32 = b"0123456789bcdefghjkmnpqrstuvwxyz"


def _c(fn: Callable[[float], float]) -> Callable[[float], float]:
    """``fn`` as C's libm has it: NaN where Python raises on a domain error."""

    def c_fn(x: float) -> float:
        try:
            return fn(x)
        except ValueError:
            return math.nan

    return c_fn


_sin, _cos, _asin, _sqrt = _c(math.sin), _c(math.cos), _c(math.asin), _c(math.sqrt)


def deg_rad(angle: float) -> float:
    return angle * D_R


def rad_deg(angle: float) -> float:
    return angle / D_R


def to_uint64(score: float) -> int:
    """C's ``(uint64_t)`` of a double as x86-64 gcc code computes it (a score ZADD put
    there may be anything): truncation, modulo 2**64 for negatives, 0x8000... for NaN and
    whatever the signed conversion cannot hold."""
    if math.isnan(score):
        return 1 << 63
    if score >= 2.0**63:  # converted as score - 2**63, top bit set back
        rest = score - 2.0**63
        return 0 if rest >= 2.0**63 else (int(rest) | 1 << 63)
    if score < -(2.0**63):
        return 1 << 63
    return int(score) & _U64


# --- interleaving ---------------------------------------------------------------------


def _spread(v: int) -> int:
    """The 32 bits of ``v`` onto the even bits of 64."""
    v &= _U32
    for shift, mask in ((16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF), (4, 0x0F0F0F0F0F0F0F0F),
                        (2, 0x3333333333333333), (1, _EVEN)):  # fmt: skip
        v = (v | (v << shift)) & mask
    return v


def _squash(v: int) -> int:
    """The even bits of ``v`` packed into 32."""
    v &= _EVEN
    for shift, mask in ((1, 0x3333333333333333), (2, 0x0F0F0F0F0F0F0F0F), (4, 0x00FF00FF00FF00FF),
                        (8, 0x0000FFFF0000FFFF), (16, 0x00000000FFFFFFFF)):  # fmt: skip
        v = (v | (v >> shift)) & mask
    return v


#: The even bits of every 16-bit chunk packed into 8: four lookups squash 52 bits, where
#: the shifts and masks above take ten big-integer operations (a search decodes every
#: member of nine cells).
_SQUASH8 = [_squash(v) for v in range(1 << 8)]
_SQUASH16 = [_SQUASH8[v & 0xFF] | _SQUASH8[v >> 8] << 4 for v in range(1 << 16)]


def _squash52(v: int) -> int:
    t = _SQUASH16
    return (
        t[v & 0xFFFF] | t[(v >> 16) & 0xFFFF] << 8 | t[(v >> 32) & 0xFFFF] << 16 | t[(v >> 48) & 0xFFFF] << 24
    )


@dataclass(slots=True, frozen=True)
class Cell:
    """A geohash of ``step`` bits per coordinate.  Redis's zero hash (no cell: a
    neighbour ruled out) is ``Cell(0, 0)``."""

    bits: int
    step: int

    def is_zero(self) -> bool:
        return self.bits == 0 and self.step == 0

    def scores(self) -> tuple[int, int]:
        """The score range (min included, max excluded) of the members inside."""
        shift = 52 - self.step * 2
        return self.bits << shift, (self.bits + 1) << shift


NO_CELL = Cell(0, 0)


@dataclass(slots=True, frozen=True)
class Area:
    long_min: float
    long_max: float
    lat_min: float
    lat_max: float


def encode(
    longitude: float, latitude: float, step: int, lat_range: tuple[float, float] = (LAT_MIN, LAT_MAX)
) -> Cell:
    """``geohashEncode`` (the caller has checked the coordinates)."""
    lat_lo, lat_hi = lat_range
    lat_offset = (latitude - lat_lo) / (lat_hi - lat_lo) * float(1 << step)
    long_offset = (longitude - LONG_MIN) / (LONG_MAX - LONG_MIN) * float(1 << step)
    # the offsets become uint32_t: truncated (latitude == max gives 2**step, a bit beyond)
    return Cell(_spread(int(lat_offset)) | (_spread(int(long_offset)) << 1), step)


def decode(cell: Cell) -> Area:
    """``geohashDecode`` over Redis's ranges."""
    lat_i = _squash(cell.bits)
    long_i = _squash(cell.bits >> 1)
    scale = float(1 << cell.step)
    lat_scale, long_scale = LAT_MAX - LAT_MIN, LONG_MAX - LONG_MIN
    return Area(
        long_min=LONG_MIN + (long_i * 1.0 / scale) * long_scale,
        long_max=LONG_MIN + (((long_i + 1) & _U32) * 1.0 / scale) * long_scale,
        lat_min=LAT_MIN + (lat_i * 1.0 / scale) * lat_scale,
        lat_max=LAT_MIN + (((lat_i + 1) & _U32) * 1.0 / scale) * lat_scale,
    )


_SCALE = float(1 << STEP_MAX)
_LAT_SCALE, _LONG_SCALE = LAT_MAX - LAT_MIN, LONG_MAX - LONG_MIN


def score_point(score: float) -> tuple[float, float]:
    """``decodeGeohash``: the (longitude, latitude) a member's score stands for, the centre
    of its cell, clamped to the ranges.  :func:`decode`'s operations for a full-precision
    cell, inlined: this runs for every member a search reads."""
    if 0.0 <= score < 4503599627370496.0:  # 2**52: any score GEOADD gives
        bits = int(score)
        lat_i, long_i = _squash52(bits), _squash52(bits >> 1)
    else:  # a score ZADD put there: all 64 bits of C's conversion count
        bits = to_uint64(score)
        lat_i, long_i = _squash(bits), _squash(bits >> 1)
    long_min = LONG_MIN + (long_i * 1.0 / _SCALE) * _LONG_SCALE
    long_max = LONG_MIN + (((long_i + 1) & _U32) * 1.0 / _SCALE) * _LONG_SCALE
    lat_min = LAT_MIN + (lat_i * 1.0 / _SCALE) * _LAT_SCALE
    lat_max = LAT_MIN + (((lat_i + 1) & _U32) * 1.0 / _SCALE) * _LAT_SCALE
    longitude = min(max((long_min + long_max) / 2, LONG_MIN), LONG_MAX)
    latitude = min(max((lat_min + lat_max) / 2, LAT_MIN), LAT_MAX)
    return longitude, latitude


def point_score(longitude: float, latitude: float) -> int:
    """The score GEOADD gives a (checked) point."""
    return encode(longitude, latitude, STEP_MAX).bits


def standard_geohash(score: float) -> bytes:
    """GEOHASH's 11 characters: the point re-encoded over -90..90, the 11th always '0'."""
    longitude, latitude = score_point(score)
    bits = encode(longitude, latitude, STEP_MAX, STANDARD_LAT).bits
    chars = bytes(_BASE32[(bits >> (52 - (i + 1) * 5)) & 0x1F] for i in range(10))
    return chars + b"0"


# --- neighbours -----------------------------------------------------------------------


def _move(cell: Cell, d: int, moving: int, other: int) -> Cell:
    """``geohash_move_x``/``_y``: one cell along the bits of ``moving``, wrapping."""
    if d == 0:
        return cell
    width = 64 - cell.step * 2
    part, kept = cell.bits & moving, cell.bits & other
    zz = other >> width
    # uint64 arithmetic: Python's & of a negative int wraps the same way
    part = part + zz + 1 if d > 0 else (part | zz) - (zz + 1)
    return Cell(kept | (part & (moving >> width)), cell.step)


def _neighbour(cell: Cell, dx: int, dy: int) -> Cell:
    return _move(_move(cell, dx, _ODD, _EVEN), dy, _EVEN, _ODD)


#: Redis's visiting order (``membersOfAllNeighbors``): the cell, then N, S, E, W, NE, NW, SE, SW.
_ORDER = ((0, 1), (0, -1), (1, 0), (-1, 0), (1, 1), (-1, 1), (1, -1), (-1, -1))


# --- distances ------------------------------------------------------------------------


def lat_distance(lat1: float, lat2: float) -> float:
    return EARTH_RADIUS_IN_METERS * abs(deg_rad(lat2) - deg_rad(lat1))


def distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """``geohashGetDistance``: haversine on Redis's sphere, meters.  The math module's
    functions straight (4 calls a distance, each through :func:`_c` cost a third of a
    search); C's NaN rules only where one of them raises."""
    try:
        lon1r, lon2r = lon1 * D_R, lon2 * D_R
        v = math.sin((lon2r - lon1r) / 2)
        if v == 0.0:
            return EARTH_RADIUS_IN_METERS * abs(lat2 * D_R - lat1 * D_R)
        lat1r, lat2r = lat1 * D_R, lat2 * D_R
        u = math.sin((lat2r - lat1r) / 2)
        a = u * u + math.cos(lat1r) * math.cos(lat2r) * v * v
        return 2.0 * EARTH_RADIUS_IN_METERS * math.asin(math.sqrt(a))
    except ValueError:
        return _c_distance(lon1, lat1, lon2, lat2)


def _c_distance(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    lon1r, lon2r = deg_rad(lon1), deg_rad(lon2)
    v = _sin((lon2r - lon1r) / 2)
    if v == 0.0:
        return lat_distance(lat1, lat2)
    lat1r, lat2r = deg_rad(lat1), deg_rad(lat2)
    u = _sin((lat2r - lat1r) / 2)
    a = u * u + _cos(lat1r) * _cos(lat2r) * v * v
    return 2.0 * EARTH_RADIUS_IN_METERS * _asin(_sqrt(a))


# --- shapes ---------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class Shape:
    """A search: around (longitude, latitude), a circle of ``radius`` or a box of
    ``width`` x ``height``, in a unit worth ``conversion`` meters."""

    longitude: float
    latitude: float
    conversion: float
    radius: float | None = None
    width: float = 0.0
    height: float = 0.0

    def within(self, score: float) -> tuple[float, float, float] | None:
        """``geoWithinShape``: (longitude, latitude, distance in meters) of a member
        inside, None outside."""
        x, y = score_point(score)
        if self.radius is not None:
            dist = distance(self.longitude, self.latitude, x, y)
            return None if dist > self.radius * self.conversion else (x, y, dist)
        width_m, height_m = self.width * self.conversion, self.height * self.conversion
        if lat_distance(y, self.latitude) > height_m / 2:
            return None
        if distance(x, y, self.longitude, y) > width_m / 2:
            return None
        return x, y, distance(self.longitude, self.latitude, x, y)

    def _bounds(self) -> tuple[float, float, float, float]:
        """``geohashBoundingBox``: min longitude, min latitude, max longitude, max latitude."""
        height = self.conversion * (self.radius if self.radius is not None else self.height / 2)
        width = self.conversion * (self.radius if self.radius is not None else self.width / 2)
        lat = self.latitude
        lat_delta = rad_deg(height / EARTH_RADIUS_IN_METERS)
        top = rad_deg(width / EARTH_RADIUS_IN_METERS / _cos(deg_rad(lat + lat_delta)))
        bottom = rad_deg(width / EARTH_RADIUS_IN_METERS / _cos(deg_rad(lat - lat_delta)))
        long_delta = bottom if lat < 0 else top  # the wider edge: hemispheres differ
        return self.longitude - long_delta, lat - lat_delta, self.longitude + long_delta, lat + lat_delta

    def _radius_meters(self) -> float:
        if self.radius is not None:
            return self.radius * self.conversion
        half_w, half_h = self.width / 2, self.height / 2
        return _sqrt(half_w * half_w + half_h * half_h) * self.conversion

    def cells(self) -> list[Cell]:
        """``geohashCalculateAreasByShapeWGS84`` then ``membersOfAllNeighbors``: the cells
        to visit, in Redis's order, ruled-out ones and repeats of the previous one left out."""
        min_lon, min_lat, max_lon, max_lat = self._bounds()
        step = estimate_step(self._radius_meters(), self.latitude)
        cell = encode(self.longitude, self.latitude, step)
        around = [_neighbour(cell, dx, dy) for dx, dy in _ORDER]
        north, south, east, west = (decode(c) for c in around[:4])
        if step > 1 and (
            north.lat_max < max_lat
            or south.lat_min > min_lat
            or east.long_max < max_lon
            or west.long_min > min_lon
        ):
            step -= 1
            cell = encode(self.longitude, self.latitude, step)
            around = [_neighbour(cell, dx, dy) for dx, dy in _ORDER]
        if step >= 2:
            area = decode(cell)
            # indexes into _ORDER: N 0, S 1, E 2, W 3, NE 4, NW 5, SE 6, SW 7
            drop: set[int] = set()
            if area.lat_min < min_lat:
                drop |= {1, 6, 7}
            if area.lat_max > max_lat:
                drop |= {0, 4, 5}
            if area.long_min < min_lon:
                drop |= {3, 7, 5}
            if area.long_max > max_lon:
                drop |= {2, 6, 4}
            around = [NO_CELL if i in drop else c for i, c in enumerate(around)]
        visit = [cell]
        last: Cell | None = None  # the last neighbour visited (Redis never compares the cell)
        for c in around:
            if c.is_zero() or c == last:  # huge radii: neighbours can coincide
                continue
            visit.append(c)
            last = c
        return visit


def estimate_step(range_meters: float, lat: float) -> int:
    """``geohashEstimateStepsByRadius``: the precision whose cells hold the radius."""
    if range_meters == 0:
        return STEP_MAX
    step = 1
    while range_meters < MERCATOR_MAX:
        range_meters *= 2
        step += 1
    step -= 2
    if lat > 66 or lat < -66:
        step -= 1
        if lat > 80 or lat < -80:
            step -= 1
    return min(max(step, 1), STEP_MAX)


# --- reply formatting -----------------------------------------------------------------


def format_distance(value: float) -> bytes:
    """``fixedpoint_d2string(.., 4)``: rounded half to even at 4 decimals (``llrint``)."""
    if value == 0:
        return b"0.0000"
    scaled = value * 10000.0
    fixed = round(scaled) if math.isfinite(scaled) and abs(scaled) < 2.0**63 else -(2**63)
    sign = b"-" if fixed < 0 else b""
    whole, frac = divmod(abs(fixed), 10000)
    return b"%s%d.%04d" % (sign, whole, frac)


def format_coordinate(value: float) -> bytes:
    """``addReplyHumanLongDouble``: ``%.17Lf`` without trailing zeros (nor a bare dot)."""
    text = b"%.17f" % value
    text = text.rstrip(b"0").rstrip(b".")
    return b"0" if text == b"-0" else text
