"""Redis's HyperLogLog string format, read and written byte for byte (``hyperloglog.c``
of Redis 7.0), so that ``GET`` of a kvgate HLL is what Redis would hold after the same
commands and a string either one made is accepted by the other.

Layout: a 16-byte header (``HYLL``, the encoding, 3 unused bytes, the cached cardinality
as 8 bytes little endian whose top bit marks it stale), then 16,384 six-bit registers,
either dense (12,288 bytes, register ``r`` at bit ``6r``, low bits first) or sparse:
opcodes ZERO (``00xxxxxx``, 1-64 zero registers), XZERO (``01xxxxxx yyyyyyyy``, up to
16,384) and VAL (``1vvvvvxx``, 1-4 registers of value 1-32).  A sparse HLL turns dense
when it would pass 3,000 bytes (``hll-sparse-max-bytes``) or a register passes 32.

Why the sparse form is kept as a list of opcodes: Redis edits it in place, merging equal
neighbours only near the edit, so its bytes depend on the order of the additions and have
to be replayed exactly; the list (with each opcode's first register, for a bisection)
replays one addition in O(log n) plus a list splice, where walking the bytes in Python
for each element took O(n).
"""

from __future__ import annotations

import math
import re
import struct
from bisect import bisect_right
from itertools import accumulate
from operator import itemgetter

MAGIC = b"HYLL"
HEADER = 16
REGISTERS = 16384
REGISTER_BITS = 6
DENSE_BODY = REGISTERS * REGISTER_BITS // 8
DENSE_SIZE = HEADER + DENSE_BODY
DENSE, SPARSE = 0, 1
#: ``hll-sparse-max-bytes``'s default: a sparse HLL growing past it turns dense.
SPARSE_MAX_BYTES = 3000
_Q = 64 - 14  # hash bits left for the run of zeros
_VAL_MAX = 32
_VAL_MAX_LEN = 4
_ZERO_MAX_LEN = 64
_XZERO_MAX_LEN = 16384
_ALPHA_INF = 0.721347520444481703680  # 0.5 / ln(2)

# Sparse opcodes, as (kind, value, run length) tuples.
ZERO, XZERO, VAL = 0, 1, 2
Op = tuple[int, int, int]

_M = 0xC6A4A7935BD1E995
_MASK = (1 << 64) - 1
_SEED = 0xADC83B19


def murmur64a(data: bytes, seed: int = _SEED) -> int:
    """MurmurHash64A as Redis has it (endian neutral: words read little endian)."""
    n = len(data)
    h = (seed ^ (n * _M)) & _MASK
    whole = n - (n & 7)
    for (k,) in struct.iter_unpack("<Q", data[:whole]):
        k = (k * _M) & _MASK
        k ^= k >> 47
        h ^= (k * _M) & _MASK
        h = (h * _M) & _MASK
    if n & 7:
        h = ((h ^ int.from_bytes(data[whole:], "little")) * _M) & _MASK
    h ^= h >> 47
    h = (h * _M) & _MASK
    return h ^ (h >> 47)


def pattern(element: bytes) -> tuple[int, int]:
    """``hllPatLen``: the register an element goes to and the value it offers (the
    length of the run of zeros after the register bits, plus one)."""
    h = murmur64a(element)
    rest = (h >> 14) | (1 << _Q)
    return h & (REGISTERS - 1), (rest & -rest).bit_length()


def is_valid(value: bytes) -> bool:
    """``isHLLObjectOrReply``: the header looks right; a dense one has its exact size.
    (A sparse body is only found corrupt when read.)"""
    return (
        len(value) >= HEADER
        and value[:4] == MAGIC
        and value[4] <= SPARSE
        and (value[4] != DENSE or len(value) == DENSE_SIZE)
    )


def empty() -> bytes:
    """``createHLLObject``: sparse, one XZERO for all the registers, cache 0 and valid."""
    return MAGIC + bytes([SPARSE]) + bytes(11) + _encode([(XZERO, 0, REGISTERS)])


def cached(value: bytes) -> int | None:
    """The cached cardinality, None when it is stale."""
    return None if value[15] & 0x80 else int.from_bytes(value[8:16], "little")


def with_cache(value: bytes, card: int) -> bytes:
    return value[:8] + card.to_bytes(8, "little") + value[16:]


# --- dense registers --------------------------------------------------------------------


def _table(f: object) -> bytes:
    return bytes(f(b) for b in range(256))  # type: ignore[operator]


_LOW6 = _table(lambda b: b & 63)
_SHR6 = _table(lambda b: b >> 6)
_LOW4_SHL2 = _table(lambda b: (b & 15) << 2)
_SHR4 = _table(lambda b: b >> 4)
_LOW2_SHL4 = _table(lambda b: (b & 3) << 4)
_SHR2 = _table(lambda b: b >> 2)
_LOW2_SHL6 = _table(lambda b: (b & 3) << 6)
_LOW4_SHL4 = _table(lambda b: (b & 15) << 4)
_SHL2 = _table(lambda b: (b << 2) & 0xFF)


def _or(a: bytes, b: bytes) -> bytes:
    """Bytewise OR of two equally long byte strings (at C speed, through big integers)."""
    return (int.from_bytes(a, "little") | int.from_bytes(b, "little")).to_bytes(len(a), "little")


def unpack(body: bytes) -> bytes:
    """Dense registers (12,288 bytes) as 16,384 bytes, one register each: every 3 bytes
    hold 4 registers, taken apart by byte tables rather than 16,384 Python steps."""
    b0, b1, b2 = body[0::3], body[1::3], body[2::3]
    out = bytearray(REGISTERS)
    out[0::4] = b0.translate(_LOW6)
    out[1::4] = _or(b0.translate(_SHR6), b1.translate(_LOW4_SHL2))
    out[2::4] = _or(b1.translate(_SHR4), b2.translate(_LOW2_SHL4))
    out[3::4] = b2.translate(_SHR2)
    return bytes(out)


def pack(registers: bytes) -> bytes:
    """The inverse of :func:`unpack` (registers below 64)."""
    r0, r1, r2, r3 = registers[0::4], registers[1::4], registers[2::4], registers[3::4]
    out = bytearray(DENSE_BODY)
    out[0::3] = _or(r0, r1.translate(_LOW2_SHL6))
    out[1::3] = _or(r1.translate(_SHR2), r2.translate(_LOW4_SHL4))
    out[2::3] = _or(r2.translate(_SHR4), r3.translate(_SHL2))
    return bytes(out)


_HIGH = int.from_bytes(b"\x80" * REGISTERS, "little")
_REG_BYTES = REGISTERS


def register_max(a: bytes, b: bytes) -> bytes:
    """Registers ``max(a[i], b[i])`` (values below 128), eight bits a lane in one big
    integer: ``(x | 0x80) - y`` keeps the lane's top bit exactly when ``x >= y``."""
    x, y = int.from_bytes(a, "little"), int.from_bytes(b, "little")
    keep = ((((x | _HIGH) - y) & _HIGH) >> 7) * 0xFF
    return ((x & keep) | (y & ~keep)).to_bytes(_REG_BYTES, "little")


def _dense_get(regs: bytearray, r: int) -> int:
    byte, fb = r * 6 >> 3, r * 6 & 7
    return ((regs[byte] >> fb) | (regs[byte + 1] << (8 - fb))) & 63


def _dense_set(regs: bytearray, r: int, value: int) -> None:
    byte, fb = r * 6 >> 3, r * 6 & 7
    regs[byte] = (regs[byte] & ~(63 << fb) | value << fb) & 0xFF
    regs[byte + 1] = regs[byte + 1] & ~(63 >> (8 - fb)) & 0xFF | value >> (8 - fb)


# --- sparse opcodes ---------------------------------------------------------------------


def _one_byte(b: int) -> Op:
    if b & 0x80:
        return (VAL, ((b >> 2) & 31) + 1, (b & 3) + 1)
    return (ZERO, 0, b + 1)  # (an XZERO's first byte never goes through this table)


_ONE_BYTE = [_one_byte(b) for b in range(256)]
_XZERO_FIRST = re.compile(rb"[\x40-\x7f]")


def _decode(body: bytes) -> tuple[list[Op], bool]:
    """The opcodes of a sparse body (the bytes between two XZEROs, which are few, are
    one-byte opcodes, read through a table at C speed), and whether its last XZERO is
    cut short."""
    ops: list[Op] = []
    i, n = 0, len(body)
    while True:
        found = _XZERO_FIRST.search(body, i)
        j = n if found is None else found.start()
        ops += map(_ONE_BYTE.__getitem__, body[i:j])
        if found is None:
            return ops, False
        if j + 1 == n:  # a cut XZERO reads C's terminating zero
            ops.append((XZERO, 0, ((body[j] & 0x3F) << 8) + 1))
            return ops, True
        low = body[j + 1]
        ops.append((XZERO, 0, ((body[j] & 0x3F) << 8 | low) + 1))
        i = j + 2


class _Encoding(dict[Op, bytes]):
    """Each opcode's bytes, made on first use."""

    def __missing__(self, op: Op) -> bytes:
        kind, value, run = op
        if kind == VAL:
            code = bytes((0x80 | (value - 1) << 2 | (run - 1),))
        elif kind == XZERO:
            code = bytes((0x40 | (run - 1) >> 8, (run - 1) & 0xFF))
        else:
            code = bytes((run - 1,))
        self[op] = code
        return code


_ENCODING = _Encoding()


def _encode(ops: list[Op]) -> bytes:
    return b"".join(map(_ENCODING.__getitem__, ops))


def _size(op: Op) -> int:
    return 2 if op[0] == XZERO else 1


def _zeros(run: int) -> Op:
    return (XZERO if run > _ZERO_MAX_LEN else ZERO, 0, run)


def _sparse_registers(ops: list[Op]) -> bytes | None:
    """``hllSparseToDense``/``hllMerge``'s reading: None when the runs do not cover
    exactly 16,384 registers."""
    regs = bytearray(REGISTERS)
    i = 0
    for kind, value, run in ops:
        if kind == VAL:
            if i + run > REGISTERS:
                return None
            regs[i : i + run] = bytes((value,)) * run
        i += run
    return bytes(regs) if i == REGISTERS else None


# --- the estimator (Ertl, "New cardinality estimation algorithms for HyperLogLog
# sketches", arXiv:1702.01284), as Redis 7.0 computes it, operation for operation ---


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if previous == z:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= math.pow(1 - x, 2) * y  # C's pow, as Redis calls it (not x * x)
        if previous == z:
            return z / 3


def estimate(histogram: list[int]) -> int:
    """``hllCount`` from the register histogram (64 counts; registers above 51 count
    for nothing, as in Redis)."""
    m = float(REGISTERS)
    z = m * _tau((m - histogram[_Q + 1]) / m)
    for j in range(_Q, 0, -1):
        z += histogram[j]
        z *= 0.5
    z += m * _sigma(histogram[0] / m)
    if z == 0.0:
        return 1 << 63  # only crafted registers all above 51 get here: C's llroundl(inf)
    e = _ALPHA_INF * m * m / z
    whole = math.floor(e)
    return int(whole) + (1 if e - whole >= 0.5 else 0)  # llroundl: halves away from zero


def histogram_of(registers: bytes) -> list[int]:
    """How many registers hold each value, counted from 0 up until all are counted (a
    dense HLL's registers sit low: about 15 counts at C speed, where a Counter took
    three times as long)."""
    histogram = [0] * 64
    left = len(registers)
    for value in range(64):
        if not left:
            break
        histogram[value] = found = registers.count(value)
        left -= found
    return histogram


_NONZERO = re.compile(rb"[^\x00]")


class Sketch:
    """One HLL string being read and changed, as Redis changes it in place."""

    def __init__(self, value: bytes) -> None:
        self.header = bytearray(value[:HEADER])
        self.dense: bytearray | None = None
        self.ops: list[Op] = []
        self.starts: list[int] = []  # each opcode's first register
        self.size = len(value)  # of the sparse string, header included
        #: A corrupt sparse body whose last XZERO lacks its second byte: Redis reads the
        #: string's terminator in its place and keeps counting the body one byte short
        #: (see :meth:`_cut_again`).
        self.cut = False
        if value[4] == DENSE:
            self.dense = bytearray(value[HEADER:])
            self.dense.append(0)  # C reads (and writes zero into) the terminator
        else:
            self.ops, self.cut = _decode(value[HEADER:])
            self._index()

    def _index(self) -> None:
        self.starts = list(accumulate(map(itemgetter(2), self.ops), initial=0))
        self.starts.pop()

    def to_bytes(self) -> bytes:
        if self.dense is not None:
            return bytes(self.header) + bytes(self.dense[:DENSE_BODY])
        body = _encode(self.ops)
        return bytes(self.header) + (body[:-1] if self.cut else body)

    def invalidate(self) -> None:
        self.header[15] |= 0x80

    def registers(self) -> bytes | None:
        """All registers, one byte each; None for a corrupt sparse body."""
        if self.dense is not None:
            return unpack(bytes(self.dense[:DENSE_BODY]))
        return _sparse_registers(self.ops)

    def histogram(self) -> list[int] | None:
        """``hllCount``'s histogram; None when a sparse body does not cover 16,384
        registers (the dense one is always whole)."""
        if self.dense is not None:
            return histogram_of(unpack(bytes(self.dense[:DENSE_BODY])))
        histogram = [0] * 64
        total = 0
        for kind, value, run in self.ops:
            histogram[value if kind == VAL else 0] += run
            total += run
        return histogram if total == REGISTERS else None

    def add(self, element: bytes) -> int:
        """``hllAdd``: 1 when a register grew, 0 when none did, -1 for a corrupt body."""
        index, count = pattern(element)
        return self.set(index, count)

    def set(self, index: int, count: int) -> int:
        if self.dense is not None:
            if count > _dense_get(self.dense, index):
                _dense_set(self.dense, index, count)
                return 1
            return 0
        return self._sparse_set(index, count)

    def to_dense(self) -> bool:
        """``hllSparseToDense``; False (and no change) for a corrupt sparse body."""
        if self.dense is not None:
            return True
        registers = _sparse_registers(self.ops)
        if registers is None:
            return False
        self.dense = bytearray(pack(registers))
        self.dense.append(0)
        self.header[4] = DENSE
        self.ops, self.starts, self.cut = [], [], False
        return True

    def merge_registers(self, registers: bytes) -> None:
        """PFMERGE's write of the merged registers (which include this HLL's own) into
        this HLL: each non-zero one set in turn, as Redis does."""
        if self.dense is not None:
            self.dense = bytearray(pack(registers))
            self.dense.append(0)
            return
        for found in _NONZERO.finditer(registers):
            j = found.start()
            self.set(j, registers[j])
            if self.dense is not None:  # promoted on the way: the rest is the maximum
                self.dense = bytearray(pack(registers))
                self.dense.append(0)
                return

    def _sparse_set(self, index: int, count: int) -> int:
        """``hllSparseSet``: split the opcode covering ``index``, then merge equal VAL
        neighbours among the five opcodes from the one before it."""
        if count > _VAL_MAX:
            return self._promote(index, count)
        ops, starts = self.ops, self.starts
        pos = bisect_right(starts, index) - 1
        if pos < 0 or index >= starts[pos] + ops[pos][2]:
            return -1
        kind, value, run = ops[pos]
        first = starts[pos]
        if kind == VAL and value >= count:
            return 0
        if run == 1 and kind != XZERO:  # a VAL or ZERO of one register: changed in place
            ops[pos] = (VAL, count, 1)
        else:
            last = first + run - 1
            seq: list[Op] = []
            if kind == VAL:
                if index != first:
                    seq.append((VAL, value, index - first))
                seq.append((VAL, count, 1))
                if index != last:
                    seq.append((VAL, value, last - index))
            else:
                if index != first:
                    seq.append(_zeros(index - first))
                seq.append((VAL, count, 1))
                if index != last:
                    seq.append(_zeros(last - index))
            delta = sum(map(_size, seq)) - _size(ops[pos])
            if delta > 0 and self.size + delta > SPARSE_MAX_BYTES:
                return self._promote(index, count)
            seq_starts, at = [], first
            for op in seq:
                seq_starts.append(at)
                at += op[2]
            ops[pos : pos + 1] = seq
            starts[pos : pos + 1] = seq_starts
            self.size += delta
        self._merge_near(max(pos - 1, 0))
        if self.cut:
            self._cut_again()
        self.invalidate()
        return 1

    def _cut_again(self) -> None:
        """After an edit of a cut body, Redis's string is the opcodes less their last byte,
        the terminator it writes reading as that byte: a last XZERO loses its low byte, a
        last one-byte opcode goes (and the body is whole again)."""
        kind, _, run = self.ops[-1]
        if kind == XZERO:
            self.ops[-1] = (XZERO, 0, ((run - 1) & 0x3F00) + 1)
        else:
            self.ops.pop()
            self.starts.pop()
            self.cut = False

    def _merge_near(self, p: int) -> None:
        ops, starts = self.ops, self.starts
        scan = 5
        while p < len(ops) and scan:
            scan -= 1
            kind, value, run = ops[p]
            if kind != VAL:
                p += 1
                continue
            if p + 1 < len(ops):
                nkind, nvalue, nrun = ops[p + 1]
                if nkind == VAL and nvalue == value and run + nrun <= _VAL_MAX_LEN:
                    ops[p + 1] = (VAL, value, run + nrun)
                    del ops[p]
                    del starts[p + 1]
                    self.size -= 1
                    continue
            p += 1

    def _promote(self, index: int, count: int) -> int:
        if not self.to_dense():
            return -1
        return self.set(index, count)
