"""kvgate's own Redis engine: Redis semantics over any :class:`~kvgate.engine.storage.Txn`.

Backends without a Redis behind them (SQLite, DynamoDB) store keys and members; the engine
turns commands into operations on them, with Redis's replies and error texts.  It does not
know how a store keeps data or runs a transaction.

What the engine runs is data: :func:`command_table` is the baseline table with the facts
the engine declares (``commands.json``: flags and reply kinds the baseline lacks, whole
entries for commands beyond Redis 7.0) and with every command it has no handler for
marked unsupported.  Backends serve that table, so arity checks, read-only tokens,
pipelines, transactions and the docs follow it.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from kvgate.commands import CommandTable, default_table
from kvgate.engine import (  # noqa: F401
    bitfield,
    bitmaps,
    documents,
    geo,
    hash_fields,
    hashes,
    hyperloglog,
    keys,
    lists,
    pubsub,
    scripting,
    server,
    sets,
    stream_groups,
    streams,
    strings,
    zsets,
)
from kvgate.engine.registry import HANDLERS
from kvgate.engine.storage import Txn
from kvgate.error_texts import not_supported
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

__all__ = ["Engine", "command_table", "not_supported"]

FACTS_FILE = "commands.json"


@cache
def command_table() -> CommandTable:
    """The commands kvgate's engine serves, with their facts (see the module docstring)."""
    declared = json.loads(files(__package__).joinpath(FACTS_FILE).read_text())["commands"]
    table = default_table().with_declared(declared, f"kvgate/engine/{FACTS_FILE}")
    missing = sorted(set(HANDLERS) - {c.name for c in table.everything()})
    if missing:  # a handler without facts could never be reached
        raise RuntimeError(f"engine handlers without command facts: {', '.join(missing)}")
    return table.restricted(HANDLERS.__contains__, f"{len(HANDLERS)} run by kvgate's engine")


@cache
def _containers() -> frozenset[str]:
    """Commands with subcommands (SCRIPT, OBJECT...): their handlers are named "script|load"."""
    return frozenset(c.name for c in command_table() if c.subcommands)


@cache
def _reads() -> frozenset[bytes]:
    """Commands that never write (a read-only token may run them, so they must not): a
    store may run them on a read-only unit.  Everything else needs a writable one, and so
    do containers (SCRIPT, OBJECT...): what they do hangs on their subcommand, and so do
    commands Redis flags ``may_replicate`` beside ``readonly`` (PFCOUNT stores the count
    it computed in the HLL, as Redis does)."""
    return frozenset(
        c.name.encode()
        for c in command_table()
        if c.supported and c.readonly_token and not c.subcommands and "may_replicate" not in c.flags
    )


class Engine:
    """Runs commands on a store.  ``backend`` names the store in error texts."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._reads = _reads()
        self._containers = _containers()

    @staticmethod
    def supports(name: str) -> bool:
        command = command_table().get(name)
        return command is not None and command.supported

    @staticmethod
    def implemented() -> frozenset[str]:
        return frozenset(HANDLERS)

    def is_read(self, args: Args) -> bool:
        """Whether the command only reads (see :func:`_reads`)."""
        return args[0].lower() in self._reads

    def execute(self, t: Txn, args: Args) -> Reply:
        """One command's reply; errors come back as :class:`ReplyError` values."""
        name = args[0].lower().decode("utf-8", "replace")
        handler = HANDLERS.get(name)
        if handler is None and len(args) > 1 and name in self._containers:  # SCRIPT LOAD...
            name = f"{name}|{args[1].lower().decode('utf-8', 'replace')}"
            handler = HANDLERS.get(name)
        if handler is None:
            return ReplyError(not_supported(name, self.backend))
        try:
            return handler(t, args)
        except ReplyError as exc:
            return exc
