"""How command implementations register, and the helpers they share.

A handler is ``def handler(t: Txn, args: list[bytes]) -> Reply``.  ``args`` is the whole
command (``args[0]`` is its name), already checked against the command table (the command
exists, its arity is right), so a handler only checks what the table cannot know.  A
handler raises :class:`~kvgate.errors.ReplyError` with Redis's exact text for errors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from kvgate.engine.storage import Key, KeyType, Txn
from kvgate.error_texts import WRONGTYPE, reply_too_large
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

Handler = Callable[[Txn, Args], Reply]

#: Command name (lower case, as in the command table) -> implementation.
HANDLERS: dict[str, Handler] = {}

OK = b"OK"
#: Redis streams a reply of any size; kvgate builds each reply in memory, so commands
#: whose reply size the caller picks (HRANDFIELD k -1000000000) are capped.
MAX_REPLY_ELEMENTS = 1_000_000


def check_reply_size(elements: int) -> None:
    if elements > MAX_REPLY_ELEMENTS:
        raise ReplyError(reply_too_large(MAX_REPLY_ELEMENTS))


def command(*names: str) -> Callable[[Handler], Handler]:
    """Register ``handler`` for each of ``names`` (lower-case command table names)."""

    def register(handler: Handler) -> Handler:
        for name in names:
            if name in HANDLERS:
                raise RuntimeError(f"command {name!r} registered twice")
            HANDLERS[name] = handler
        return handler

    return register


def typed(t: Txn, name: bytes, type: KeyType) -> Key | None:
    """The live key ``name`` if it holds ``type``; None when missing; WRONGTYPE otherwise."""
    key = t.lookup(name)
    if key is not None and key.type is not type:
        raise ReplyError(WRONGTYPE)
    return key


def typed_or_create(t: Txn, name: bytes, type: KeyType) -> Key:
    key = typed(t, name, type)
    return key if key is not None else t.create(name, type)


def remove_members(t: Txn, key: Key, members: Iterable[bytes]) -> int:
    """Remove elements; the key goes with its last one.  How many were there."""
    removed = t.remove_many(key, members)
    drop_if_empty(t, key)
    return removed


def drop_if_empty(t: Txn, key: Key) -> bool:
    """Redis deletes a collection with its last element (and its TTL with it)."""
    if t.count(key) == 0:
        t.delete(key)
        return True
    return False
