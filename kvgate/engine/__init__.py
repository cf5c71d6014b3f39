"""kvgate's own Redis engine: Redis semantics over any :class:`~kvgate.engine.storage.Txn`.

Backends without a Redis behind them (SQLite, DynamoDB) store keys and members; the engine
turns commands into operations on them, with Redis's replies and error texts.  It does not
know how a store keeps data or runs a transaction.
"""

from __future__ import annotations

from kvgate.commands import default_table
from kvgate.engine import hashes, keys, lists, scripting, server, sets, strings, zsets  # noqa: F401
from kvgate.engine.registry import HANDLERS
from kvgate.engine.storage import Txn
from kvgate.error_texts import not_supported
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

__all__ = ["Engine", "not_supported"]

#: Commands with subcommands (SCRIPT, OBJECT...): their handlers are named "script|load".
CONTAINERS = frozenset(c.name for c in default_table() if c.subcommands)
#: Commands that only read (lower-case names): a store may run them on a read-only unit.
#: Everything else (writes, scripts, SCRIPT LOAD...) needs a writable one.
READS = frozenset(
    c.name.encode() for c in default_table() if "readonly" in c.flags or c.name in ("ping", "echo", "time")
)


class Engine:
    """Runs commands on a store.  ``backend`` names the store in error texts."""

    def __init__(self, backend: str) -> None:
        self.backend = backend

    @staticmethod
    def supports(name: str) -> bool:
        return name in HANDLERS

    @staticmethod
    def is_read(args: Args) -> bool:
        """Whether the command only reads (see :data:`READS`)."""
        return args[0].lower() in READS

    @staticmethod
    def implemented() -> frozenset[str]:
        return frozenset(HANDLERS)

    def execute(self, t: Txn, args: Args) -> Reply:
        """One command's reply; errors come back as :class:`ReplyError` values."""
        name = args[0].lower().decode("utf-8", "replace")
        handler = HANDLERS.get(name)
        if handler is None and len(args) > 1 and name in CONTAINERS:  # SCRIPT LOAD...
            name = f"{name}|{args[1].lower().decode('utf-8', 'replace')}"
            handler = HANDLERS.get(name)
        if handler is None:
            return ReplyError(not_supported(name, self.backend))
        try:
            return handler(t, args)
        except ReplyError as exc:
            return exc
