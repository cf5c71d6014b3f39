"""One database: its backend, its tokens, and running a request's commands on it.

Every command goes through :meth:`Database.prepare`: look it up in the command table the
backend serves (unknown command, arity, whether this backend runs it), apply the policy
for where it arrived (REST, pipeline, transaction), the token's rights, and script
normalization.  Only then does the backend see it.
"""

from __future__ import annotations

import asyncio
import hmac
from enum import Enum

from kvgate import error_texts
from kvgate.adapters import Backend, BackendEntry, entry_named
from kvgate.commands import Context
from kvgate.errors import Forbidden, ReplyError
from kvgate.protocol import Args, Reply, split_withtype
from kvgate.scripts import Fixup, ScriptRegistry

#: Commands checked (or replies encoded) between two turns of the event loop in a large
#: batch: 10,000 commands take about 13 ms to check, which other clients would wait for.
LOOP_SLICE = 512


class Access(Enum):
    READ_WRITE = "read-write"
    READ_ONLY = "read-only"


class NoPermission(ReplyError):
    """A read-only token ran a write command (answered 403 when it is the whole request)."""


class Database:
    def __init__(
        self,
        name: str,
        backend: Backend,
        tokens: tuple[str, ...],
        read_only_tokens: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.backend = backend
        self.entry: BackendEntry = entry_named(backend.kind)
        self._rw = tuple(t.encode() for t in tokens)
        self._ro = tuple(t.encode() for t in read_only_tokens)
        self.scripts = ScriptRegistry(backend_knows_shebang=backend.knows_shebang)

    def authenticate(self, token: str | None) -> Access | None:
        """Constant-time comparison against every configured token."""
        if not token:
            return None
        presented = token.encode("utf-8", "surrogateescape")  # headers may hold any bytes
        rw = ro = False
        for known in self._rw:
            rw |= hmac.compare_digest(presented, known)
        for known in self._ro:
            ro |= hmac.compare_digest(presented, known)
        return Access.READ_WRITE if rw else Access.READ_ONLY if ro else None

    def prepare(self, args: Args, access: Access, context: Context) -> Fixup | None:
        """Validate one command, rewriting ``args`` in place where needed (scripts); return
        the function to apply to its reply, if any.  Raises ``ReplyError`` with the text the
        client sees."""
        command = self.backend.commands.lookup(args)
        if context not in command.contexts:
            reason = command.refusal or error_texts.NOT_IN_TRANSACTION
            raise ReplyError(error_texts.not_available(command.name, reason))
        option = command.refused_option
        if option is not None and option.present(args):
            raise ReplyError(error_texts.not_available(command.name, option.reason))
        if access is Access.READ_ONLY and not command.readonly_token:
            raise NoPermission(error_texts.noperm(command.name))
        if not command.supported:
            raise ReplyError(error_texts.not_supported(command.name, self.backend.kind))
        if command.alias_of is not None:
            args[0] = command.alias_of
        return self.scripts.rewrite(command.name, args)

    # -- SCAN ... WITHTYPE (Upstash's extension) where the backend lacks it
    def strip_withtype(self, args: Args) -> bool:
        """On a backend that is not kvgate's engine (Redis, fakeredis), take ``WITHTYPE`` out
        of a SCAN (validated already) and say so: :meth:`add_types` then asks each key's
        TYPE, pipelined.  kvgate's engine answers it itself."""
        if self.entry.engine or len(args) < 3 or args[0].lower() != b"scan":
            return False
        kept, found = split_withtype(args[2:])
        if found:
            args[2:] = kept
        return found

    async def add_types(self, reply: Reply) -> Reply:
        """``[cursor, [k1, k2]]`` -> ``[cursor, [k1, type1, k2, type2]]``; a key gone since
        the SCAN is ``none``."""
        if not isinstance(reply, list) or len(reply) != 2 or not isinstance(reply[1], list):
            return reply
        cursor, names = reply
        if not names:
            return [cursor, []]
        types = await self.backend.execute([[b"TYPE", name] for name in names])
        typed: list[Reply] = []
        for name, kind in zip(names, types, strict=True):
            typed += [name, kind if isinstance(kind, bytes) else b"none"]
        return [cursor, typed]

    async def run_one(self, args: Args, access: Access) -> Reply:
        try:
            fixup = self.prepare(args, access, Context.REST)
        except NoPermission as exc:
            raise Forbidden(exc.message) from None
        typed = self.strip_withtype(args)
        (reply,) = await self.backend.execute([args])
        if typed:
            reply = await self.add_types(reply)
        return fixup(reply) if fixup else reply

    async def run_pipeline(self, commands: list[Args], access: Access) -> list[Reply]:
        """Not atomic; a command that fails validation answers its error in its slot and the
        others still run."""
        replies: list[Reply] = [None] * len(commands)
        slots: list[int] = []
        runnable: list[Args] = []
        fixups: dict[int, Fixup] = {}
        typed: list[int] = []
        for i, args in enumerate(commands):
            if i and not i % LOOP_SLICE:
                await asyncio.sleep(0)  # a large batch lets other requests in meanwhile
            try:
                fixup = self.prepare(args, access, Context.PIPELINE)
            except ReplyError as exc:
                replies[i] = exc
                continue
            if fixup is not None:
                fixups[i] = fixup
            if self.strip_withtype(args):
                typed.append(i)
            slots.append(i)
            runnable.append(args)
        if runnable:
            results = await self.backend.execute(runnable)
            for i, reply in zip(slots, results, strict=True):
                replies[i] = reply
            for i in typed:
                replies[i] = await self.add_types(replies[i])
            for i, fixup in fixups.items():
                replies[i] = fixup(replies[i])
        return replies

    async def run_transaction(self, commands: list[Args], access: Access) -> list[Reply]:
        """Atomic; as on Redis, a command refused while queueing discards the whole
        transaction (``EXECABORT``), while runtime errors answer in their slot."""
        fixups: dict[int, Fixup] = {}
        for i, args in enumerate(commands):
            try:
                fixup = self.prepare(args, access, Context.TRANSACTION)
            except NoPermission as exc:  # the token, not the transaction, is at fault
                raise Forbidden(exc.message) from None
            except ReplyError:
                raise ReplyError(error_texts.EXECABORT) from None
            if fixup is not None:
                fixups[i] = fixup
        typed = [i for i, args in enumerate(commands) if self.strip_withtype(args)]
        results = await self.backend.transaction(commands)
        for i in typed:  # after EXEC: the types are read just after the transaction
            results[i] = await self.add_types(results[i])
        for i, fixup in fixups.items():
            results[i] = fixup(results[i])
        return results
