"""The ``max_reply_bytes`` limit: how big a reply is, and what one request may still get.

A request's replies together (one command's, or all of a pipeline's or transaction's)
may hold at most ``max_reply_bytes``.  Without a bound, a few ``GET``s of a 100 MB value
made kvgate hold gigabytes: the value as the backend handed it over, then its JSON text,
then the body, each a full copy per request.

Every backend counts the replies of one ``execute``/``transaction`` call (one request)
against a :class:`ReplyBudget` and puts an error in the place of a reply that does not
fit, so nothing downstream builds it.  The Redis adapter counts as bytes arrive and skips
an oversized reply without buffering it (:mod:`kvgate.adapters.resp_skim`); kvgate's
engine and fakeredis count each reply as it is made.

Size is measured the same way everywhere, so a limit means the same on every backend: a
string counts its bytes, and every element (string, number, nil, error, array) counts
:data:`ELEMENT_BYTES` more, about what Redis's protocol spends framing it.  An array of a
million empty strings is thus 8 MB, not nothing: each element costs memory and JSON.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from itertools import repeat

from kvgate.error_texts import reply_past_limit
from kvgate.errors import ReplyError
from kvgate.protocol import Reply

#: What each element of a reply counts besides its bytes.
ELEMENT_BYTES = 8
#: The budget of kvgate's own requests to a backend (the server's COMMAND table...).
UNLIMITED = sys.maxsize


class ReplyTooLarge(ReplyError):
    """A reply left out because the request's replies would pass ``max_reply_bytes``;
    the command ran (a ``GETDEL`` deleted its key).  Answered like any error reply: 400
    for a single command, in its slot in a pipeline, for the whole of a transaction."""

    def __init__(self, limit: int) -> None:
        super().__init__(reply_past_limit(limit))


def reply_size(reply: Reply) -> int:
    """The size of a reply as ``max_reply_bytes`` counts it (see the module docstring)."""
    if type(reply) is bytes:
        return len(reply) + ELEMENT_BYTES
    if type(reply) is list:
        if all(map(isinstance, reply, repeat(bytes))):  # LRANGE, HGETALL, KEYS: at C speed
            return ELEMENT_BYTES * (len(reply) + 1) + sum(map(len, reply))
        return ELEMENT_BYTES + sum(map(reply_size, reply))
    if isinstance(reply, ReplyError):
        return len(reply.message) + ELEMENT_BYTES
    if isinstance(reply, (list, tuple)):  # a Sequence made by a handler
        return ELEMENT_BYTES + sum(map(reply_size, reply))
    return ELEMENT_BYTES  # a number or nil


class ReplyBudget:
    """What is left of ``max_reply_bytes`` for one request's replies, taken in order.

    A reply that does not fit is replaced by :class:`ReplyTooLarge` and costs nothing, so
    the smaller replies after it are still answered.  ``refused`` tells a transaction,
    which is answered as a whole, that one did not fit."""

    __slots__ = ("left", "limit", "refused")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit
        self.refused = False

    def admit(self, reply: Reply) -> Reply:
        size = reply_size(reply)
        if size > self.left:
            self.refused = True
            return ReplyTooLarge(self.limit)
        self.left -= size
        return reply

    def admit_all(self, replies: Iterable[Reply]) -> list[Reply]:
        return [self.admit(reply) for reply in replies]

    def check(self) -> None:
        """For a transaction, answered as a whole (on Redis its replies are one, EXEC's):
        raise :class:`ReplyTooLarge` when one of its replies did not fit.  It ran all the
        same."""
        if self.refused:
            raise ReplyTooLarge(self.limit)

    def whole(self, replies: list[Reply]) -> list[Reply]:
        """A transaction's replies, counted; see :meth:`check`."""
        self.admit_all(replies)
        self.check()
        return replies
