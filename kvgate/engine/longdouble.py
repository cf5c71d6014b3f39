"""C ``long double`` arithmetic as Redis does it for INCRBYFLOAT and HINCRBYFLOAT.

Redis 7.0 on x86-64 parses with ``strtold`` (``string2ld``), adds two ``long double``
values and prints the sum with ``ld2string(..., LD_STR_HUMAN)``: ``%.17Lf`` with trailing
zeros (and a trailing dot) removed, ``-0`` shown as ``0``.  A ``long double`` there is the
x87 80-bit extended format: a 64-bit significand (integer bit included), exponents
-16382..16383, gradual underflow down to ``2**-16445``.

This module models that exactly and without platform help: a finite value is a
:class:`~fractions.Fraction` holding exactly the binary value the C code would hold (every
result rounded to 64 significant bits, half to even), so sums and printed digits are those
glibc produces.  Infinities are Python floats (``math.inf``, ``-math.inf``) and NaN is
``math.nan``; only :func:`parse` (``"inf"``) and :func:`add` (overflow, ``inf - inf``)
produce them.

What Redis does with infinities: ``string2ld`` accepts ``inf``/``-inf``/``infinity`` (any
case, optional sign), since ``strtold`` reads them without ``ERANGE``; it refuses NaN, an
overflowing literal (``1e5000``) and one that underflows to zero (``1e-5000``), but keeps a
subnormal (``1e-4940``).  INCRBYFLOAT therefore takes ``inf`` and then answers
``ERR increment would produce NaN or Infinity``; HINCRBYFLOAT checks the increment with
:func:`is_finite` first (``ERR value is NaN or Infinity``).  A value stored by Redis is
always finite.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

#: A long double: exact finite value, or a float infinity/NaN.
LongDouble = Fraction | float

PRECISION = 64  # significand bits
MIN_EXP = -16382  # exponent of the smallest normal value (2**MIN_EXP)
MAX_EXP = 16383
MAX_VALUE = Fraction((2**PRECISION - 1) * 2 ** (MAX_EXP - PRECISION + 1))

#: ``MAX_LONG_DOUBLE_CHARS`` in Redis: string2ld refuses inputs this long or longer.
MAX_CHARS = 5 * 1024

_DECIMAL = re.compile(rb"([+-]?)(?:([0-9]+)\.?([0-9]*)|\.([0-9]+))(?:[eE]([+-]?[0-9]+))?")
_HEX = re.compile(rb"([+-]?)0[xX](?:([0-9a-fA-F]+)\.?([0-9a-fA-F]*)|\.([0-9a-fA-F]+))(?:[pP]([+-]?[0-9]+))?")
_INF = re.compile(rb"([+-]?)inf(?:inity)?", re.IGNORECASE)

# Exponents beyond these give the same result (overflow or zero) for any mantissa that
# fits in MAX_CHARS, so they are clamped to keep the exact arithmetic small.
_DEC_EXP_LIMIT = 20_000
_BIN_EXP_LIMIT = 100_000


def is_finite(x: LongDouble) -> bool:
    return isinstance(x, Fraction)


def round_ld(x: Fraction) -> LongDouble:
    """``x`` rounded to the nearest long double (half to even); +-inf on overflow."""
    if x == 0:
        return Fraction(0)
    mag = abs(x)
    exp = _floor_log2(mag)
    quantum = max(exp, MIN_EXP) - PRECISION + 1
    scaled = mag / Fraction(2) ** quantum
    units = round(scaled)  # Fraction rounds half to even
    result = Fraction(units) * Fraction(2) ** quantum
    if result > MAX_VALUE:
        return math.inf if x > 0 else -math.inf
    return result if x > 0 else -result


def _floor_log2(mag: Fraction) -> int:
    """``floor(log2(mag))`` for a positive fraction, exactly."""
    exp = mag.numerator.bit_length() - mag.denominator.bit_length()
    # 2**exp is within a factor of two of mag: adjust once.
    if Fraction(2) ** exp > mag:
        exp -= 1
    return exp


def parse(raw: bytes) -> LongDouble | None:
    """Redis's ``string2ld``: the value, or None when Redis refuses the string."""
    if not raw or len(raw) >= MAX_CHARS:
        return None
    if m := _INF.fullmatch(raw):
        return -math.inf if m.group(1) == b"-" else math.inf
    if m := _HEX.fullmatch(raw):
        exact = _mantissa(m, 16, 4, _BIN_EXP_LIMIT)
    elif m := _DECIMAL.fullmatch(raw):
        exact = _mantissa(m, 10, 1, _DEC_EXP_LIMIT)
    else:
        return None
    value = round_ld(exact)
    if not is_finite(value) or (value == 0 and exact != 0):
        return None  # ERANGE: overflow, or underflow to zero
    return value


def _clamped_exponent(raw: bytes, limit: int) -> int:
    """An exponent, clamped to ``±limit`` before conversion (Python refuses to convert
    more than 4300 digits, and anything that long saturates anyway)."""
    sign = -1 if raw[:1] == b"-" else 1
    digits = raw.lstrip(b"+-").lstrip(b"0") or b"0"
    if len(digits) > 20:
        return sign * limit
    return max(-limit, min(limit, int(raw)))


def _mantissa(m: re.Match[bytes], base: int, bits_per_digit: int, limit: int) -> Fraction:
    """The exact value of a matched decimal (``base`` 10, exponent of 10) or hex float
    (``base`` 16, exponent of 2) literal."""
    sign, whole, frac, only_frac, exponent = m.groups()
    digits = (whole or b"") + (frac if whole is not None else only_frac)
    scale = len(frac if whole is not None else only_frac)
    number = _digits_to_int(digits, base)
    exp = _clamped_exponent(exponent, limit) if exponent else 0
    if base == 10:
        value = Fraction(number) * Fraction(10) ** (exp - scale)
    else:
        value = Fraction(number) * Fraction(2) ** (exp - scale * bits_per_digit)
    return -value if sign == b"-" else value


def add(a: LongDouble, b: LongDouble) -> LongDouble:
    """``a + b`` in long double: rounded, inf on overflow, NaN for ``inf - inf``."""
    if is_finite(a) and is_finite(b):
        return round_ld(Fraction(a) + Fraction(b))
    return float(a) + float(b)


def to_bytes(x: LongDouble) -> bytes:
    """``ld2string(LD_STR_HUMAN)``: ``%.17Lf``, trailing zeros and dot removed, no ``-0``."""
    if not is_finite(x):
        if math.isnan(x):
            return b"nan"  # never stored by Redis: INCRBYFLOAT refuses NaN first
        return b"inf" if x > 0 else b"-inf"
    mag = abs(Fraction(x))
    units = round(mag * 10**17)  # exact binary value to 17 decimals, half to even
    whole, frac = divmod(units, 10**17)
    text = f"{_int_to_decimal(whole)}.{frac:017d}".rstrip("0").rstrip(".")
    if x < 0 and text != "0":
        text = "-" + text
    return text.encode()


# Python refuses decimal conversions of more than 4300 digits by default (a process-wide
# setting we leave alone); long doubles reach 4933 integer digits, inputs 5119 chars.
_CHUNK = 4000


def _digits_to_int(digits: bytes, base: int) -> int:
    number = 0
    for start in range(0, len(digits), _CHUNK):
        chunk = digits[start : start + _CHUNK]
        number = number * base ** len(chunk) + int(chunk, base)
    return number


def _int_to_decimal(n: int) -> str:
    if n < 10**_CHUNK:
        return str(n)
    high, low = divmod(n, 10**_CHUNK)
    return _int_to_decimal(high) + f"{low:0{_CHUNK}d}"
