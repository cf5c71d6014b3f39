"""Bitmap commands on strings (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP), as Redis 7.0's
``bitops.c`` answers them, and Redis 8.2's BITOP DIFF, DIFF1, ANDOR and ONE.

Bit 0 is the most significant bit of the first byte.  A write keeps the key's TTL (Redis
edits the string in place) except BITOP, which sets its destination as SET does.  Reads
scan the stored bytes where they are (a regular expression finds the first byte worth
looking at, counts run over a memoryview in slices), so a large bitmap is never copied
whole; a write builds the new string once.  The longest string is proto-max-bulk-len
(512 MB), which bounds offsets as in Redis: bit 2^32 - 1 is the last one.
"""

from __future__ import annotations

import re
from functools import reduce

from kvgate.engine.numbers import INT64_MAX, parse_int, to_int
from kvgate.engine.registry import command, typed
from kvgate.engine.storage import Key, KeyType, Txn
from kvgate.engine.strings import MAX_STRING
from kvgate.error_texts import (
    BIT_OFFSET,
    BIT_VALUE,
    BITOP_NOT_ONE_SOURCE,
    BITPOS_BIT,
    SYNTAX_ERROR,
    bitop_two_sources,
)
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

#: Bytes counted at a time (a popcount through a big integer of that many bytes).
_CHUNK = 1 << 20
_ANY_SET = re.compile(rb"[^\x00]")
_ANY_CLEAR = re.compile(rb"[^\xff]")


def cstr(arg: bytes) -> bytes:
    """An option as Redis's ``strcasecmp`` sees it: up to the first NUL, upper case."""
    return arg.split(b"\0", 1)[0].upper()


def _int64(value: int) -> int:
    """C's wrap-around of a 64-bit multiplication."""
    return (value + INT64_MAX + 1) % (1 << 64) - INT64_MAX - 1


def bit_offset(raw: bytes, hash_bits: int = 0) -> int:
    """``getBitOffsetFromArgument``: a bit offset below 2^32 (512 MB of bits); with
    ``hash_bits`` (BITFIELD), ``#n`` means ``n * hash_bits``."""
    use_hash = hash_bits > 0 and raw[:1] == b"#"
    value = to_int(raw[1:] if use_hash else raw)
    if value is None:
        raise ReplyError(BIT_OFFSET)
    if use_hash:
        value = _int64(value * hash_bits)
    if value < 0 or value >> 3 >= MAX_STRING:
        raise ReplyError(BIT_OFFSET)
    return value


def _string(t: Txn, name: bytes) -> Key | None:
    return typed(t, name, KeyType.STRING)


def patched(old: bytes, at: int, patch: bytes) -> bytes:
    """``old`` with ``patch`` written at byte ``at``, zero-padded as needed: one copy."""
    view = memoryview(old)
    gap = bytes(max(at - len(old), 0))
    return b"".join((view[:at], gap, patch, view[at + len(patch) :]))


# --- SETBIT / GETBIT --------------------------------------------------------------------


@command("setbit")
def setbit(t: Txn, args: Args) -> Reply:
    offset = bit_offset(args[2])
    on = to_int(args[3])
    if on is None or on & ~1:
        raise ReplyError(BIT_VALUE)
    key = _string(t, args[1])
    old = b"" if key is None else key.value or b""
    byte, shift = offset >> 3, 7 - (offset & 7)
    current = old[byte] if byte < len(old) else 0
    was = (current >> shift) & 1
    if key is None or byte >= len(old) or was != on:  # Redis makes or pads the string even for a 0
        new = (current & ~(1 << shift)) | (on << shift)
        t.set_string(args[1], patched(old, byte, bytes((new,))), None if key is None else key.expire_at)
    return was


@command("getbit")
def getbit(t: Txn, args: Args) -> Reply:
    offset = bit_offset(args[2])
    key = _string(t, args[1])
    value = b"" if key is None else key.value or b""
    byte = offset >> 3
    return (value[byte] >> (7 - (offset & 7))) & 1 if byte < len(value) else 0


# --- BITCOUNT / BITPOS ------------------------------------------------------------------


def _unit(arg: bytes) -> bool:
    """True for BIT, False for BYTE; a syntax error otherwise."""
    unit = cstr(arg)
    if unit not in (b"BIT", b"BYTE"):
        raise ReplyError(SYNTAX_ERROR)
    return unit == b"BIT"


def _clamp(start: int, end: int, total: int) -> tuple[int, int]:
    """Negative indexes from the end, then both clamped into ``[0, total - 1]`` as Redis
    does (``start`` may pass ``end``: an empty range)."""
    if start < 0:
        start += total
    if end < 0:
        end += total
    return max(start, 0), min(max(end, 0), total - 1)


def _popcount(value: bytes, first: int, last: int) -> int:
    """Set bits among bits ``first..last`` (inclusive) of ``value``."""
    view = memoryview(value)
    low, high = first >> 3, last >> 3
    count = 0
    for at in range(low, high + 1, _CHUNK):
        count += int.from_bytes(view[at : min(at + _CHUNK, high + 1)]).bit_count()
    count -= (value[low] >> (8 - (first & 7))).bit_count()  # bits before ``first``
    count -= (value[high] & (0xFF >> ((last & 7) + 1))).bit_count()  # bits after ``last``
    return count


@command("bitcount")
def bitcount(t: Txn, args: Args) -> Reply:
    key = _string(t, args[1])
    if key is None:
        return 0
    value = key.value or b""
    if len(args) == 2:
        first, last = 0, len(value) * 8 - 1
    elif len(args) in (4, 5):
        start, end = parse_int(args[2]), parse_int(args[3])
        if start < 0 and end < 0 and start > end:
            return 0
        in_bits = len(args) == 5 and _unit(args[4])
        start, end = _clamp(start, end, len(value) * (8 if in_bits else 1))
        if start > end:
            return 0
        first, last = (start, end) if in_bits else (start * 8, end * 8 + 7)
    else:
        raise ReplyError(SYNTAX_ERROR)
    return _popcount(value, first, last) if first <= last else 0


def first_bit(value: bytes, bit: int, first: int, last: int) -> int | None:
    """The position of the first bit equal to ``bit`` among bits ``first..last``."""
    low, high = first >> 3, last >> 3
    worth = _ANY_SET if bit else _ANY_CLEAR
    at = low
    while at <= high:
        found = worth.search(value, at, high + 1)
        if found is None:
            return None
        at = found.start()
        byte = value[at] if bit else value[at] ^ 0xFF  # now: the first 1 in ``byte``
        if at == low:
            byte &= 0xFF >> (first & 7)
        if at == high:
            byte &= (0xFF << (7 - (last & 7))) & 0xFF
        if byte:
            return at * 8 + 8 - byte.bit_length()
        at += 1
    return None


@command("bitpos")
def bitpos(t: Txn, args: Args) -> Reply:
    bit = parse_int(args[2])
    if bit not in (0, 1):
        raise ReplyError(BITPOS_BIT)
    key = _string(t, args[1])
    if key is None:  # an endless run of zeros
        return -1 if bit else 0
    value = key.value or b""
    end_given = False
    if len(args) == 3:
        first, last = 0, len(value) * 8 - 1
    elif len(args) in (4, 5, 6):
        start = parse_int(args[3])
        in_bits = len(args) == 6 and _unit(args[5])
        end = len(value) - 1
        if len(args) >= 5:
            end, end_given = parse_int(args[4]), True
        start, end = _clamp(start, end, len(value) * (8 if in_bits else 1))
        if start > end:
            return -1
        first, last = (start, end) if in_bits else (start * 8, end * 8 + 7)
    else:
        raise ReplyError(SYNTAX_ERROR)
    if first > last:
        return -1
    found = first_bit(value, bit, first, last)
    if found is not None:
        return found
    # No 1 anywhere; no 0 in an explicit range; without an end, the string goes on as zeros.
    return -1 if bit or end_given else last + 1


# --- BITOP ------------------------------------------------------------------------------


def _diff(first: int, rest: int, mask: int) -> int:
    return first & ~rest


def _diff1(first: int, rest: int, mask: int) -> int:
    return ~first & rest & mask


def _andor(first: int, rest: int, mask: int) -> int:
    return first & rest


#: Redis 8.2's operations of the first source against the OR of the others.
_AGAINST_REST = {b"DIFF": _diff, b"DIFF1": _diff1, b"ANDOR": _andor}
_OPERATIONS = {b"AND", b"OR", b"XOR", b"NOT", b"ONE", *_AGAINST_REST}


def _exactly_one(values: list[int]) -> int:
    once = more = 0
    for v in values:
        more |= once & v
        once |= v
    return once & ~more


@command("bitop")
def bitop(t: Txn, args: Args) -> Reply:
    op = cstr(args[1])
    if op not in _OPERATIONS:
        raise ReplyError(SYNTAX_ERROR)
    if op == b"NOT" and len(args) != 4:
        raise ReplyError(BITOP_NOT_ONE_SOURCE)
    if op in _AGAINST_REST and len(args) < 5:
        raise ReplyError(bitop_two_sources(op.decode("utf-8", "replace")))
    sources = []
    for name in args[3:]:
        key = _string(t, name)
        sources.append(b"" if key is None else key.value or b"")
    size = max(map(len, sources))
    if size == 0:  # nothing to store: the destination goes
        dest = t.lookup(args[2])
        if dest is not None:
            t.delete(dest)
        return 0
    # each source as a number, zero-padded on the right to the longest
    values = [int.from_bytes(s) << (8 * (size - len(s))) for s in sources]
    mask = (1 << (8 * size)) - 1
    if op == b"AND":
        result = reduce(int.__and__, values)
    elif op == b"OR":
        result = reduce(int.__or__, values)
    elif op == b"XOR":
        result = reduce(int.__xor__, values)
    elif op == b"NOT":
        result = ~values[0] & mask
    elif op == b"ONE":
        result = _exactly_one(values)
    else:
        result = _AGAINST_REST[op](values[0], reduce(int.__or__, values[1:]), mask)
    t.set_string(args[2], result.to_bytes(size), None)
    return size
