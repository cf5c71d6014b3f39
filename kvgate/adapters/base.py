"""The interface every backend implements.

A backend runs batches of already-validated commands (``list[bytes]`` each) and returns
one reply per command: ``bytes``, ``int``, ``None``, nested lists, or a
:class:`~kvgate.errors.ReplyError` value.  Failures to reach the store raise a
:class:`~kvgate.errors.BackendError` subclass instead; the caller then cannot know
whether the commands ran.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from kvgate.protocol import Args, Reply


@dataclass
class Health:
    ok: bool
    detail: str = ""
    gauges: dict[str, float] = field(default_factory=dict)


class Backend(ABC):
    #: Whether the store understands ``#!lua flags=...`` shebangs in scripts.
    knows_shebang: bool = True
    #: Short name used in messages and metrics.
    kind: str = "backend"

    def preflight(self) -> None:  # noqa: B027 - optional hook
        """Check, before serving, what can never work (raise ``StartupError``); the store
        being down is not such a thing."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections.  Must not fail when the store is down: keep retrying."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def execute(self, commands: list[Args]) -> list[Reply]:
        """Run commands in order, not atomically; one reply per command."""

    @abstractmethod
    async def transaction(self, commands: list[Args]) -> list[Reply]:
        """Run commands atomically (MULTI/EXEC semantics); raise ``ReplyError`` (EXECABORT)
        when the transaction is discarded as a whole."""

    @abstractmethod
    def health(self) -> Health: ...

    def supports(self, name: str) -> bool:
        """Whether the backend runs command ``name`` (a command table name).  A Redis
        runs everything; kvgate's own engine only what it implements."""
        return True

    @abstractmethod
    def pubsub(self) -> Any:
        """A redis-py asyncio ``PubSub`` on a dedicated connection (for SSE subscribe)."""
