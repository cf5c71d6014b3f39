"""Running a request's commands against one database, HTTP aside.

Every command goes through :meth:`Database.prepare`: look it up in the command table
(unknown command, arity), apply the policy for where it arrived (REST, pipeline,
transaction), the token's rights, and script normalization.  Only then does the backend
see it.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import Enum

from kvgate import errors
from kvgate.adapters import Backend
from kvgate.commands import Command, CommandTable, Context
from kvgate.errors import Forbidden, ReplyError
from kvgate.protocol import Args, Reply
from kvgate.scripts import Fixup, ScriptRegistry


class Access(Enum):
    READ_WRITE = "read-write"
    READ_ONLY = "read-only"


@dataclass(slots=True)
class Prepared:
    command: Command
    args: Args
    fixup: Fixup | None


class NoPermission(ReplyError):
    """A read-only token ran a write command (answered 403 when it is the whole request)."""


class Database:
    def __init__(
        self,
        name: str,
        backend: Backend,
        table: CommandTable,
        tokens: tuple[str, ...],
        read_only_tokens: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.backend = backend
        self.table = table
        self._rw = tuple(t.encode() for t in tokens)
        self._ro = tuple(t.encode() for t in read_only_tokens)
        self.scripts = ScriptRegistry(backend_knows_shebang=backend.knows_shebang)

    def authenticate(self, token: str | None) -> Access | None:
        """Constant-time comparison against every configured token."""
        if not token:
            return None
        presented = token.encode()
        rw = ro = False
        for known in self._rw:
            rw |= hmac.compare_digest(presented, known)
        for known in self._ro:
            ro |= hmac.compare_digest(presented, known)
        return Access.READ_WRITE if rw else Access.READ_ONLY if ro else None

    def prepare(self, args: Args, access: Access, context: Context) -> Prepared:
        """Validate one command; raises ``ReplyError`` with the text the client sees."""
        command = self.table.lookup(args)
        if not command.allowed_in(context):
            reason = command.refusal or "not allowed inside a transaction"
            raise ReplyError(errors.not_available(command.name, reason))
        if command.refused_by_argument(args):
            raise ReplyError(
                errors.not_available(command.name, "blocking commands would hold a shared backend connection")
            )
        if access is Access.READ_ONLY and not command.readonly_token:
            raise NoPermission(errors.noperm(command.name))
        fixup = self.scripts.rewrite(command.name, args)
        return Prepared(command, args, fixup)

    async def run_one(self, args: Args, access: Access) -> Reply:
        try:
            prepared = self.prepare(args, access, Context.REST)
        except NoPermission as exc:
            raise Forbidden(exc.message) from None
        (reply,) = await self.backend.execute([prepared.args])
        return prepared.fixup(reply) if prepared.fixup else reply

    async def run_pipeline(self, commands: list[Args], access: Access) -> list[Reply]:
        """Not atomic; a command that fails validation answers its error in its slot and the
        others still run."""
        replies: list[Reply] = [None] * len(commands)
        runnable: list[tuple[int, Prepared]] = []
        for i, args in enumerate(commands):
            try:
                runnable.append((i, self.prepare(args, access, Context.PIPELINE)))
            except ReplyError as exc:
                replies[i] = exc
        if runnable:
            results = await self.backend.execute([p.args for _, p in runnable])
            for (i, prepared), reply in zip(runnable, results, strict=True):
                replies[i] = prepared.fixup(reply) if prepared.fixup else reply
        return replies

    async def run_transaction(self, commands: list[Args], access: Access) -> list[Reply]:
        """Atomic; as on Redis, a command refused while queueing discards the whole
        transaction (``EXECABORT``), while runtime errors answer in their slot."""
        prepared: list[Prepared] = []
        for args in commands:
            try:
                prepared.append(self.prepare(args, access, Context.TRANSACTION))
            except NoPermission as exc:  # the token, not the transaction, is at fault
                raise Forbidden(exc.message) from None
            except ReplyError:
                raise ReplyError(errors.EXECABORT) from None
        results = await self.backend.transaction([p.args for p in prepared])
        return [p.fixup(reply) if p.fixup else reply for p, reply in zip(prepared, results, strict=True)]
