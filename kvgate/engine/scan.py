"""SCAN, HSCAN, SSCAN and ZSCAN arguments as Redis 7.0 reads them (``scanGenericCommand``)."""

from __future__ import annotations

from dataclasses import dataclass

from kvgate.engine.glob import glob_match
from kvgate.engine.numbers import parse_int
from kvgate.engine.storage import Key, Member, Txn
from kvgate.error_texts import INVALID_CURSOR, SYNTAX_ERROR
from kvgate.errors import ReplyError

_UINT64_MAX = 2**64 - 1
#: A collection this small is returned whole by one call with cursor 0, as Redis does for
#: its compact encodings (listpack, intset) and for small hash tables.
SMALL_COLLECTION = 128


@dataclass(slots=True)
class ScanOptions:
    count: int = 10
    pattern: bytes | None = None  # None: no filtering ("*" counts as none)
    type: bytes | None = None  # SCAN only

    def matches(self, name: bytes) -> bool:
        return self.pattern is None or glob_match(self.pattern, name)


def parse_cursor(raw: bytes) -> int:
    """``strtoul`` as Redis checks it: no leading space, whole string, no overflow.  Like
    strtoul, a sign is accepted and ``-n`` wraps around."""
    text = raw.decode("latin-1")
    if not text or text[0].isspace():
        if not text:
            return 0
        raise ReplyError(INVALID_CURSOR)
    sign = 1
    body = text
    if body[0] in "+-":
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if not body.isdigit() or not body.isascii() or len(body.lstrip("0")) > 20:
        raise ReplyError(INVALID_CURSOR)
    value = int(body)
    if value > _UINT64_MAX:
        raise ReplyError(INVALID_CURSOR)
    return value if sign > 0 else (-value) & _UINT64_MAX


def parse_options(args: list[bytes], start: int, allow_type: bool) -> ScanOptions:
    opts = ScanOptions()
    i = start
    while i < len(args):
        word = args[i].lower()
        more = len(args) - i >= 2
        if word == b"count" and more:
            opts.count = parse_int(args[i + 1])
            if opts.count < 1:
                raise ReplyError(SYNTAX_ERROR)
        elif word == b"match" and more:
            opts.pattern = None if args[i + 1] == b"*" else args[i + 1]
        elif word == b"type" and allow_type and more:
            opts.type = args[i + 1]
        else:
            raise ReplyError(SYNTAX_ERROR)
        i += 2
    return opts


def scan_members(t: Txn, key: Key, cursor: int, opts: ScanOptions) -> tuple[int, list[Member]]:
    """One page of a collection scan, MATCH applied to the member (after COUNT, as Redis
    does).  Small collections come back whole, whatever the cursor (as Redis answers for
    its compact encodings)."""
    if t.count(key) <= SMALL_COLLECTION:
        page = t.members(key)
        nxt = 0
    else:
        nxt, page = t.member_scan(key, cursor, opts.count)
    return nxt, [m for m in page if opts.matches(m.member)]
