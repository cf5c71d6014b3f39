"""What ``redis.call``/``redis.pcall`` run: the command ``argv`` names, and its reply kind.

Inside a script they run commands through the engine on the same unit ``t`` as the script
(atomic with it), checked first as Redis checks them (unknown command, arity, ``noscript``,
writes from read-only scripts); a command the engine lacks answers the engine's own "not
supported" error.
"""

from __future__ import annotations

from collections.abc import Sequence

from kvgate.commands import Command, default_table
from kvgate.engine.registry import HANDLERS
from kvgate.engine.storage import Txn
from kvgate.error_texts import not_supported
from kvgate.errors import ReplyError
from kvgate.protocol import Reply

#: Commands Redis 7.0 flags ``may_replicate`` (the command table leaves that flag out):
#: read-only scripts may not call them either.
MAY_REPLICATE = frozenset({"pfcount", "publish", "spublish", "eval", "evalsha", "fcall"})

#: Commands whose reply is a status (``+OK``), not a bulk string.  Engine handlers return
#: both as ``bytes``; Lua must see a status as an ``{ok=...}`` table.
STATUS_REPLIES = frozenset(
    {
        "flushall",
        "flushdb",
        "hmset",
        "lset",
        "ltrim",
        "migrate",
        "mset",
        "pfmerge",
        "psetex",
        "rename",
        "restore",
        "select",
        "setex",
        "swapdb",
        "type",
        "xgroup|create",
        "xgroup|setid",
        "xsetid",
    }
)


def resolve(argv: Sequence[bytes]) -> Command | None:
    """``lookupCommand``: the command (or subcommand) ``argv`` names, or None."""
    name = argv[0].lower()
    if b"|" in name:
        return None
    cmd = default_table().get(name.decode("latin-1"))
    if cmd is None or not cmd.subcommands or len(argv) == 1:
        return cmd
    return cmd.subcommands.get(argv[1].lower())


def is_status(cmd: Command, argv: Sequence[bytes]) -> bool:
    if cmd.name == "set":
        return not any(a.upper() == b"GET" for a in argv[3:])
    if cmd.name == "ping":
        return len(argv) == 1
    return cmd.name in STATUS_REPLIES


def dispatch(t: Txn, cmd: Command, argv: list[bytes]) -> Reply:
    """Run a checked command on the engine; one it lacks answers the engine's own error."""
    handler = HANDLERS.get(cmd.name)
    if handler is None:
        return ReplyError(not_supported(cmd.name, backend_name(t)))
    try:
        return handler(t, argv)
    except ReplyError as exc:
        return exc


def backend_name(t: Txn) -> str:
    """The store's name as its backend gives it to the engine (``SqliteTxn``: sqlite)."""
    return getattr(t, "backend", None) or type(t).__name__.lower().removesuffix("txn")
