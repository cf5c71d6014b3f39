"""Numbers the way Redis reads and prints them (Redis 7.0, the version kvgate is tested
against): ``string2ll``, ``strtod`` with Redis's extra checks, and reply formatting."""

from __future__ import annotations

import math
import re

from kvgate.error_texts import NOT_FLOAT, NOT_INTEGER
from kvgate.errors import ReplyError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

_INT = re.compile(rb"-?[1-9][0-9]*|0")
# What C's strtod accepts, whole string, no leading space (Redis refuses it).
_FLOAT = re.compile(
    rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?)",
    re.IGNORECASE,
)


def to_int(raw: bytes) -> int | None:
    """``string2ll``: optional ``-``, no ``+``, no leading zeros, no spaces, int64."""
    if len(raw) > 20 or not _INT.fullmatch(raw):
        return None
    value = int(raw)
    return value if INT64_MIN <= value <= INT64_MAX else None


def parse_int(raw: bytes, error: str = NOT_INTEGER) -> int:
    value = to_int(raw)
    if value is None:
        raise ReplyError(error)
    return value


def to_float(raw: bytes) -> float | None:
    """``string2d``/``strtod`` as Redis checks it: whole string, no leading space, no
    NaN, no overflow, no underflow to zero."""
    if not raw or not _FLOAT.fullmatch(raw):
        return None
    text = raw.decode()
    body = text.lstrip("+-")
    try:
        value = float.fromhex(text) if body[:2].lower() == "0x" else float(text)
    except OverflowError:  # a hex literal beyond double: strtod's ERANGE
        return None
    if math.isnan(value):
        return None
    if math.isinf(value) and body[:1].lower() != "i":
        return None  # overflow: strtod sets ERANGE
    if value == 0.0 and _has_nonzero_digit(body):
        return None  # underflow to zero: ERANGE
    return value


def _has_nonzero_digit(body: str) -> bool:
    mantissa = re.split("[pP]" if body[:2].lower() == "0x" else "[eE]", body)[0]
    if body[:2].lower() == "0x":
        mantissa = mantissa[2:]
    return any(c not in "0." for c in mantissa)


def parse_float(raw: bytes, error: str = NOT_FLOAT) -> float:
    value = to_float(raw)
    if value is None:
        raise ReplyError(error)
    return value


def format_double(value: float) -> bytes:
    """``addReplyDouble`` of Redis 7.0: ``%.17g``, ``inf``/``-inf``."""
    if math.isinf(value):
        return b"inf" if value > 0 else b"-inf"
    return b"%.17g" % value


def format_int(value: int) -> bytes:
    return b"%d" % value
