"""Hash slots: which of Redis Cluster's 16,384 slots a key, a command or a transaction is in.

A key's slot is ``CRC16(key) mod 16384`` (CRC16-CCITT, XMODEM: ``binascii.crc_hqx`` is
that CRC in C), where only the hash tag is hashed when the key has one: the bytes between
the first ``{`` and the first ``}`` after it, if there are any (``{user:1}:name`` and
``{user:1}:mail`` share a slot; ``{}x`` hashes whole).  Checked against the server's own
``CLUSTER KEYSLOT`` by the tests.

A command's keys are where its command table entry's key specs say (the server's own
``COMMAND``, so module commands are routed too).  Several keys must share a slot, as Redis
Cluster demands, else :data:`CROSSSLOT` is the answer, in Redis's own words.
"""

from __future__ import annotations

from binascii import crc_hqx
from collections.abc import Iterable, Sequence

from kvgate.commands import Command

SLOTS = 16384


def key_slot(key: bytes) -> int:
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return crc_hqx(key, 0) & (SLOTS - 1)


class CrossSlot(Exception):
    """Keys of one command (or transaction) in different slots."""


def command_slot(command: Command, args: Sequence[bytes]) -> int | None:
    """The slot of a command's keys, None when it has none; :class:`CrossSlot` when they
    are in several slots."""
    slot: int | None = None
    for spec in command.key_specs:
        for pos in spec.positions(args):
            s = key_slot(args[pos])
            if slot is None:
                slot = s
            elif s != slot:
                raise CrossSlot
    return slot


def common_slot(slots: Iterable[int | None]) -> int | None:
    """The one slot of several (keyless ones, None, go anywhere); :class:`CrossSlot`."""
    found: int | None = None
    for slot in slots:
        if slot is None:
            continue
        if found is None:
            found = slot
        elif slot != found:
            raise CrossSlot
    return found
