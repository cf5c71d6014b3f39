"""Following RESP replies without keeping them: where each ends, and how big it is.

hiredis's reader keeps a reply's bytes until the whole reply is in, then builds it: a
100 MB bulk string is 100 MB buffered, then 100 MB more as a Python object.  It does not
say where in the stream a reply starts, so it cannot be told to drop one.  A
:class:`Skimmer` reads the same bytes and keeps only the shape of the reply in progress
(how many elements each open array still waits for, how many payload bytes are still to
come), so the Redis adapter can notice an oversized reply from its header, give up its
hiredis reader, skip the rest of it and hand what follows to a fresh reader at exactly
the next reply.

It is Python, so it reads only what it must: a bulk payload is skipped by its length, and
the adapter runs a skimmer only around big replies (``redis_mux._Connection``).  Size is
counted as :func:`kvgate.reply_limit.reply_size` counts a built reply.  RESP3's types are
read too, in case a connection is ever switched to RESP3.
"""

from __future__ import annotations

from kvgate.reply_limit import ELEMENT_BYTES, UNLIMITED

#: Types whose header is a length followed by that many bytes and CRLF.
_BLOBS = frozenset(b"$!=")
#: Aggregates of ``n`` elements; a map (``%``) has ``2n``; an attribute (``|``) has ``2n``
#: and then the reply it annotates, so ``2n + 1`` here.
_ARRAYS = frozenset(b"*~>")
_MAPS = frozenset(b"%|")
_AGGREGATES = _ARRAYS | _MAPS
#: One-line types whose text becomes a string (a status, an error): they count its bytes.
_TEXTS = frozenset(b"+-")
#: A header line longer than this is not RESP (Redis's are short): the stream is broken.
MAX_LINE = 64 * 1024


class RespError(ValueError):
    """Bytes that are not RESP: the connection can no longer be followed."""


class Skimmer:
    """Follows one connection's replies from a reply boundary on (see the module docstring).

    ``size`` is the size of the reply in progress as far as it is known, a bulk string's
    whole length counting from its header on; ``replies`` counts replies completed and
    ``last_size`` is the size of the last; ``reply_start`` is where in the data last fed
    the reply in progress began (-1: before it).

    Reading an array costs Python work per element, which hiredis does in C.  So a
    skimmer may leave arrays to hiredis: from reply number ``suspend_at`` on, it stops
    before a reply that is an array (``suspended``, ``reply_start`` where it begins), and
    its owner watches that reply by its bytes alone until they pass the budget."""

    __slots__ = (
        "_line",
        "_open",
        "_skip",
        "last_size",
        "replies",
        "reply_start",
        "size",
        "suspend_at",
        "suspended",
    )

    def __init__(self) -> None:
        self._open: list[int] = []  # elements still to come, per open aggregate
        self._line = b""  # a header line cut by the end of a chunk
        self._skip = 0  # payload bytes (and CRLF) of a blob still to come
        self.size = 0
        self.last_size = 0
        self.replies = 0
        self.reply_start = 0
        self.suspend_at = UNLIMITED
        self.suspended = False

    @property
    def in_reply(self) -> bool:
        """Whether the bytes so far end inside a reply."""
        return bool(self._open or self._line or self._skip)

    def feed(self, data: bytes, start: int = 0, stop_after_reply: bool = False) -> int:
        """Read ``data[start:]``; return where reading stopped: the end of the data, or,
        with ``stop_after_reply``, just after the first reply that completes in it."""
        end = len(data)
        pos = start
        self.reply_start = -1 if self.in_reply else start
        self.suspended = False
        while pos < end:
            if (
                not self._open
                and not self._skip
                and not self._line
                and self.replies >= self.suspend_at
                and data[pos] in _AGGREGATES
            ):
                self.suspended = True
                self.reply_start = pos
                return pos
            if self._skip:
                taken = min(self._skip, end - pos)
                self._skip -= taken
                pos += taken
                if self._skip:
                    break
                if self._element_done():
                    self.reply_start = pos
                    if stop_after_reply:
                        return pos
                continue
            newline = data.find(b"\n", pos)
            if newline < 0:
                self._line += data[pos:]
                if len(self._line) > MAX_LINE:
                    raise RespError(f"a RESP header line longer than {MAX_LINE} bytes")
                return end
            line = data[pos:newline]
            if self._line:
                line = self._line + line
                self._line = b""
            pos = newline + 1
            if self._header(line):
                self.reply_start = pos
                if stop_after_reply:
                    return pos
        return pos

    def _header(self, line: bytes) -> bool:
        """Read one header line; True when it completed a reply."""
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            raise RespError("an empty RESP line")
        kind = line[0]
        self.size += ELEMENT_BYTES
        if kind in _BLOBS:
            length = self._number(line)
            if length < 0:  # nil
                return self._element_done()
            self.size += length
            self._skip = length + 2
            return False
        if kind in _ARRAYS or kind in _MAPS:
            count = self._number(line)
            if kind in _MAPS:
                count = 2 * count + (kind == ord("|"))
            if count <= 0:  # empty or nil
                return self._element_done()
            self._open.append(count)
            return False
        if kind in _TEXTS:
            self.size += len(line) - 1
        elif kind not in b":,#_(":
            raise RespError(f"not a RESP type: {line[:20]!r}")
        return self._element_done()

    @staticmethod
    def _number(line: bytes) -> int:
        try:
            return int(line[1:])
        except ValueError:
            raise RespError(f"not a RESP length: {line[:40]!r}") from None

    def _element_done(self) -> bool:
        """One element ended: close every aggregate it completes; True when that was a
        whole reply."""
        opened = self._open
        while opened:
            opened[-1] -= 1
            if opened[-1]:
                return False
            opened.pop()
        self.replies += 1
        self.last_size = self.size
        self.size = 0
        return True
