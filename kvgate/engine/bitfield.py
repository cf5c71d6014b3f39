"""BITFIELD and BITFIELD_RO: signed and unsigned integers of 1 to 64 bits (unsigned up to
63) at any bit offset of a string, as Redis 7.0's ``bitfieldGeneric`` runs them.

Everything is parsed before anything runs (an error anywhere leaves the key alone); a
command with a SET or INCRBY then makes or pads the string up to the farthest bit it may
write, as Redis does, even when every write fails under OVERFLOW FAIL.  Overflow is
computed on exact integers rather than with Redis's 64-bit tricks: for the values its
checks accept the two agree (WRAP is two's complement wrap-around, SAT the nearer bound).
"""

from __future__ import annotations

from dataclasses import dataclass

from kvgate.engine.bitmaps import bit_offset, cstr, patched
from kvgate.engine.numbers import parse_int, to_int
from kvgate.engine.registry import command, typed
from kvgate.engine.storage import KeyType, Txn
from kvgate.error_texts import BITFIELD_OVERFLOW, BITFIELD_RO_GET_ONLY, BITFIELD_TYPE, SYNTAX_ERROR
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

_ARGUMENTS = {b"GET": 2, b"SET": 3, b"INCRBY": 3}
_OVERFLOWS = (b"WRAP", b"SAT", b"FAIL")
_UINT64 = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class _Op:
    name: bytes  # GET, SET or INCRBY
    signed: bool
    bits: int
    offset: int
    value: int  # SET's value or INCRBY's increment
    overflow: bytes

    def bounds(self) -> tuple[int, int]:
        if self.signed:
            return -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        return 0, (1 << self.bits) - 1

    def wrap(self, value: int) -> int:
        value &= (1 << self.bits) - 1
        if self.signed and value >> (self.bits - 1):
            value -= 1 << self.bits
        return value


def _type(arg: bytes) -> tuple[bool, int]:
    """``getBitfieldTypeFromArgument``: ``i1``..``i64`` or ``u1``..``u63`` (lower case)."""
    signed = arg[:1] == b"i"
    bits = to_int(arg[1:].split(b"\0", 1)[0]) if arg[:1] in (b"i", b"u") else None
    if bits is None or bits < 1 or bits > (64 if signed else 63):
        raise ReplyError(BITFIELD_TYPE)
    return signed, bits


def _parse(args: Args) -> list[_Op]:
    ops: list[_Op] = []
    overflow = b"WRAP"
    j = 2
    while j < len(args):
        name = cstr(args[j])
        if name == b"OVERFLOW" and j + 1 < len(args):
            overflow = cstr(args[j + 1])
            if overflow not in _OVERFLOWS:
                raise ReplyError(BITFIELD_OVERFLOW)
            j += 2
            continue
        wanted = _ARGUMENTS.get(name)
        if wanted is None or len(args) - j - 1 < wanted:
            raise ReplyError(SYNTAX_ERROR)
        signed, bits = _type(args[j + 1])
        offset = bit_offset(args[j + 2], bits)
        value = 0 if name == b"GET" else parse_int(args[j + 3])
        ops.append(_Op(name, signed, bits, offset, value, overflow))
        j += wanted + 1
    return ops


def _read(buf: bytes | bytearray, op: _Op) -> int:
    """The field at ``op.offset`` (bytes past the end read as zeros)."""
    low, high = op.offset >> 3, (op.offset + op.bits - 1) >> 3
    chunk = int.from_bytes(bytes(buf[low : high + 1]).ljust(high - low + 1, b"\0"))
    value = (chunk >> ((high + 1) * 8 - op.offset - op.bits)) & ((1 << op.bits) - 1)
    return op.wrap(value)


def _write(buf: bytearray, op: _Op, value: int) -> None:
    low, high = op.offset >> 3, (op.offset + op.bits - 1) >> 3
    shift = (high + 1) * 8 - op.offset - op.bits
    mask = ((1 << op.bits) - 1) << shift
    chunk = int.from_bytes(buf[low : high + 1])
    chunk = (chunk & ~mask) | ((value & ((1 << op.bits) - 1)) << shift)
    buf[low : high + 1] = chunk.to_bytes(high - low + 1)


def _apply(buf: bytearray, op: _Op) -> tuple[Reply, bool]:
    """One SET or INCRBY: its reply, and whether it changed the field."""
    old = _read(buf, op)
    low, high = op.bounds()
    # SET into an unsigned field takes the int64 as C's uint64 does
    unsigned = op.value if op.signed else op.value & _UINT64
    wanted = old + op.value if op.name == b"INCRBY" else unsigned
    new = wanted
    if not low <= wanted <= high:
        if op.overflow == b"FAIL":
            return None, False
        new = op.wrap(wanted) if op.overflow == b"WRAP" else (high if wanted > high else low)
    _write(buf, op, new)
    return (new if op.name == b"INCRBY" else old), new != old


def _bitfield(t: Txn, args: Args, read_only: bool) -> Reply:
    ops = _parse(args)
    writes = [op for op in ops if op.name != b"GET"]
    if writes and read_only:
        raise ReplyError(BITFIELD_RO_GET_ONLY)
    key = typed(t, args[1], KeyType.STRING)
    old = b"" if key is None else key.value or b""
    if not writes:
        return [_read(old, op) for op in ops]
    size = max(op.offset + op.bits - 1 for op in writes) // 8 + 1
    buf = bytearray(patched(old, len(old), bytes(max(size - len(old), 0))))
    replies: list[Reply] = []
    changed = key is None or len(buf) != len(old)
    for op in ops:
        if op.name == b"GET":
            replies.append(_read(buf, op))
            continue
        reply, change = _apply(buf, op)
        replies.append(reply)
        changed = changed or change
    if changed:
        t.set_string(args[1], bytes(buf), None if key is None else key.expire_at)
    return replies


@command("bitfield")
def bitfield(t: Txn, args: Args) -> Reply:
    return _bitfield(t, args, read_only=False)


@command("bitfield_ro")
def bitfield_ro(t: Txn, args: Args) -> Reply:
    return _bitfield(t, args, read_only=True)
