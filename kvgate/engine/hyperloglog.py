"""HyperLogLog commands (PFADD, PFCOUNT, PFMERGE) on strings, as Redis 7.0 runs them.

An HLL is a string in Redis's own format (:mod:`kvgate.engine.hll_sketch`), so GET, SET,
COPY and scripts see the bytes Redis would hold (an HLL moves between Redis and kvgate
by GET and SET), and each command keeps the key's TTL, as Redis's in-place edits do.
Corrupt strings behave as on Redis too (a sparse body found short or long when read, a
last XZERO cut short: see ``Sketch.cut``), checked against Redis on random bodies.

PFCOUNT of one key stores the cardinality it computed in the header, as Redis does (the
"cached cardinality": GET afterwards shows it).  Redis flags PFCOUNT ``readonly`` and
``may_replicate``; the engine runs ``may_replicate`` commands on a writable unit (see
``kvgate.engine._reads``), so a read-only token may still run PFCOUNT and the cache is
written as on Redis.  On a unit that cannot write (one a store opened for reads only),
PFCOUNT answers the same count and leaves the cache stale.
"""

from __future__ import annotations

from kvgate.engine import hll_sketch as hll
from kvgate.engine.registry import OK, command, typed
from kvgate.engine.storage import Key, KeyType, Txn
from kvgate.error_texts import HLL_CORRUPT, HLL_WRONGTYPE
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply


def _hll(t: Txn, name: bytes) -> Key | None:
    """The key holding a valid HLL string, None when missing: ``isHLLObjectOrReply``
    (WRONGTYPE for another type, its own WRONGTYPE text for a string that is no HLL)."""
    key = typed(t, name, KeyType.STRING)
    if key is not None and not hll.is_valid(key.value or b""):
        raise ReplyError(HLL_WRONGTYPE)
    return key


def _store(t: Txn, key: Key | None, name: bytes, value: bytes) -> None:
    t.set_string(name, value, None if key is None else key.expire_at)


@command("pfadd")
def pfadd(t: Txn, args: Args) -> Reply:
    key = _hll(t, args[1])
    sketch = hll.Sketch(hll.empty() if key is None else key.value or b"")
    updated = key is None
    for element in args[2:]:
        result = sketch.add(element)
        if result < 0:
            if updated:  # Redis edits in place: what was added before stays
                _store(t, key, args[1], sketch.to_bytes())
            raise ReplyError(HLL_CORRUPT)
        updated = updated or result == 1
    if not updated:
        return 0
    sketch.invalidate()
    _store(t, key, args[1], sketch.to_bytes())
    return 1


@command("pfcount")
def pfcount(t: Txn, args: Args) -> Reply:
    if len(args) > 2:
        return hll.estimate(hll.histogram_of(_union(t, args[1:])[0]))
    key = _hll(t, args[1])
    if key is None:
        return 0
    value = key.value or b""
    card = hll.cached(value)
    if card is not None:
        return card
    histogram = hll.Sketch(value).histogram()
    if histogram is None:
        raise ReplyError(HLL_CORRUPT)
    card = hll.estimate(histogram)
    if t.writable:
        _store(t, key, args[1], hll.with_cache(value, card))
    return card


def _union(t: Txn, names: Args) -> tuple[bytes, bool]:
    """The registers ``max`` over the HLLs at ``names`` (missing ones are empty) and
    whether one of them is dense; errors in Redis's order, key by key."""
    registers = bytes(hll.REGISTERS)
    dense = False
    for name in names:
        key = _hll(t, name)
        if key is None:
            continue
        sketch = hll.Sketch(key.value or b"")
        dense = dense or sketch.dense is not None
        own = sketch.registers()
        if own is None:
            raise ReplyError(HLL_CORRUPT)
        registers = hll.register_max(registers, own)
    return registers, dense


@command("pfmerge")
def pfmerge(t: Txn, args: Args) -> Reply:
    registers, dense = _union(t, args[1:])  # the destination is a source too
    key = t.lookup(args[1])
    sketch = hll.Sketch(hll.empty() if key is None else key.value or b"")
    if dense:
        sketch.to_dense()  # cannot fail: the destination was read whole above
    sketch.merge_registers(registers)
    sketch.invalidate()
    _store(t, key, args[1], sketch.to_bytes())
    return OK
