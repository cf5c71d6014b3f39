"""What ``redis.call``/``redis.pcall`` run: the command ``argv`` names, and its reply kind.

Inside a script they run commands through the engine on the same unit ``t`` as the script
(atomic with it), checked first as Redis checks them (unknown command, arity, ``noscript``,
writes from read-only scripts); a command the engine lacks answers the engine's own "not
supported" error.
"""

from __future__ import annotations

from collections.abc import Sequence

from kvgate.commands import Command
from kvgate.engine.registry import HANDLERS
from kvgate.engine.storage import Txn
from kvgate.error_texts import not_supported
from kvgate.errors import ReplyError
from kvgate.protocol import Reply


def resolve(argv: Sequence[bytes]) -> Command | None:
    """``lookupCommand``: the command (or subcommand) ``argv`` names in the engine's table,
    or None."""
    from kvgate.engine import command_table  # the engine package imports this module

    name = argv[0].lower()
    if b"|" in name:
        return None
    cmd = command_table().get(name.decode("latin-1"))
    if cmd is None or not cmd.subcommands or len(argv) == 1:
        return cmd
    return cmd.subcommands.get(argv[1].lower())


def is_status(cmd: Command, argv: Sequence[bytes]) -> bool:
    """Whether the reply is a status (``+OK``), not a bulk string: engine handlers return
    both as ``bytes``, and Lua must see a status as an ``{ok=...}`` table.  The command's
    facts say (``status_reply``), but for the two whose reply kind hangs on arguments."""
    if cmd.name == "set":
        return not any(a.upper() == b"GET" for a in argv[3:])
    if cmd.name == "ping":
        return len(argv) == 1
    return cmd.status_reply


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
