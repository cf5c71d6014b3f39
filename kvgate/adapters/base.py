"""The interface every backend implements.

A backend runs batches of already-validated commands (``list[bytes]`` each) and returns
one reply per command: ``bytes``, ``int``, ``None``, nested lists, or a
:class:`~kvgate.errors.ReplyError` value.  Failures to reach the store raise a
:class:`~kvgate.errors.BackendError` subclass instead; the caller then cannot know
whether the commands ran.

Each backend also says which commands it serves, with their facts (:attr:`Backend.commands`),
and, where it has pub/sub, opens subscriptions of kvgate's own shape
(:class:`Subscription`), so that nothing above the adapters knows a client library.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from kvgate.commands import CommandTable, default_table
from kvgate.protocol import Args, Reply
from kvgate.reply_limit import ReplyBudget


@dataclass
class Health:
    ok: bool
    detail: str = ""
    gauges: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BackendSettings:
    """The database settings a backend reads; their defaults and help are in
    ``kvgate.config.DATABASE_SETTINGS``."""

    pool_size: int | None  # None: the backend's own default (its registry entry)
    max_inflight: int
    timeout: float
    max_subscriptions: int
    max_reply_bytes: int


@dataclass(frozen=True, slots=True)
class Message:
    """One pub/sub event: ``kind`` is subscribe, psubscribe, message or pmessage; for a
    (p)subscribe confirmation ``data`` is the subscription count."""

    kind: bytes
    channel: bytes
    data: bytes | int
    pattern: bytes | None = None


class Subscription(ABC):
    """A backend connection of its own, receiving pub/sub messages.  Failures raise
    :class:`~kvgate.errors.BackendError` subclasses (unavailable, overloaded)."""

    @abstractmethod
    async def subscribe(self, *channels: bytes) -> None: ...

    @abstractmethod
    async def psubscribe(self, *patterns: bytes) -> None: ...

    @abstractmethod
    async def unsubscribe(self) -> None:
        """Leave every channel and pattern."""

    @abstractmethod
    async def next_message(self, timeout: float) -> Message | None:
        """The next message, or None when none came within ``timeout`` seconds."""

    @abstractmethod
    async def close(self) -> None: ...


class Backend(ABC):
    #: Short name used in messages and metrics: the backend's registry entry name.
    kind: ClassVar[str] = "backend"
    #: Whether the store understands ``#!lua flags=...`` shebangs in scripts.
    knows_shebang: ClassVar[bool] = True

    def __init__(self, url: str, settings: BackendSettings | None = None) -> None:
        from kvgate.adapters import settings_for  # the registry imports this module

        self.url = url
        self.settings = settings_for(self.kind, settings)

    def reply_budget(self) -> ReplyBudget:
        """What one request's replies may hold (``max_reply_bytes``): every backend counts
        the replies of each ``execute``/``transaction`` call against a new one."""
        return ReplyBudget(self.settings.max_reply_bytes)

    @property
    def pool_size(self) -> int:
        size = self.settings.pool_size
        assert size is not None, f"the {self.kind} backend has no pool"
        return size

    @classmethod
    @abstractmethod
    def parse_url(cls, url: str) -> object:
        """Check a URL of this backend, raising ``ValueError`` with one clear sentence;
        return what the backend reads from it."""

    def preflight(self) -> None:  # noqa: B027 - optional hook
        """Check, before serving, what can never work (raise ``StartupError``); the store
        being down is not such a thing."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections.  Must not fail when the store is down: keep retrying."""

    @abstractmethod
    async def close(self) -> None: ...

    @property
    def commands(self) -> CommandTable:
        """The commands this backend serves, with their facts and kvgate's policy; a
        command it does not run is marked unsupported.  Read per request: a backend may
        learn its commands after start (a Redis reads its server's ``COMMAND``)."""
        return default_table()

    @abstractmethod
    async def execute(self, commands: list[Args]) -> list[Reply]:
        """Run commands in order, not atomically; one reply per command.  A reply that
        would take the call's replies past ``max_reply_bytes`` is
        :class:`~kvgate.reply_limit.ReplyTooLarge` instead (:meth:`reply_budget`)."""

    @abstractmethod
    async def transaction(self, commands: list[Args]) -> list[Reply]:
        """Run commands atomically (MULTI/EXEC semantics); raise ``ReplyError`` (EXECABORT)
        when the transaction is discarded as a whole;
        :class:`~kvgate.reply_limit.ReplyTooLarge` when it ran but its replies together
        pass ``max_reply_bytes``."""

    @abstractmethod
    def health(self) -> Health: ...

    def subscription(self) -> Subscription:
        """A new subscription; only backends whose registry entry has ``pubsub``."""
        raise NotImplementedError(f"the {self.kind} backend has no pub/sub")
