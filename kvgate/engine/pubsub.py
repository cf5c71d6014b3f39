"""PUBLISH and the PUBSUB introspection commands on the engine backends (Redis 7.0
``pubsub.c``), and :class:`LocalHub`, the subscribers one process holds.

Where subscribers are is the store's business (:meth:`Txn.publish`,
:meth:`Txn.subscriptions`): the memory store and DynamoDB know those of their own process
(a :class:`LocalHub`), SQLite those of every process on its file.  A message is delivered
only if the unit that published it commits, and PUBLISH answers how many subscriptions
receive it, counting a channel subscription and each matching pattern subscription
apart, as Redis counts clients.

Shard channels: kvgate offers no SSUBSCRIBE (a REST gateway has no connection to hold
one), so SPUBLISH reaches nobody and answers 0, and PUBSUB SHARDCHANNELS/SHARDNUMSUB see
none, exactly as a Redis 7.0 without shard subscribers answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from kvgate.engine.glob import glob_match
from kvgate.engine.registry import command
from kvgate.engine.storage import Txn
from kvgate.error_texts import subcommand_syntax
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

#: What a subscriber is given: (channel, payload, pattern or None for a channel message).
Deliver = Callable[[bytes, bytes, "bytes | None"], None]


@dataclass(frozen=True)
class Subscriptions:
    """A database's live subscriptions: channel (or pattern) -> subscriptions to it."""

    channels: dict[bytes, int] = field(default_factory=dict)
    patterns: dict[bytes, int] = field(default_factory=dict)

    def receivers(self, channel: bytes) -> int:
        """How many subscriptions a message on ``channel`` reaches (channel, then patterns)."""
        return self.channels.get(channel, 0) + sum(
            n for pattern, n in self.patterns.items() if glob_match(pattern, channel)
        )


class LocalHub:
    """One process's subscriptions to one database: each subscriber is a callable
    (:data:`Deliver`) registered per channel and per pattern.  Not thread-safe: used on
    the thread that runs the store's units (the event loop; the caller's for memory)."""

    def __init__(self) -> None:
        self.channels: dict[bytes, list[Deliver]] = {}
        self.patterns: dict[bytes, list[Deliver]] = {}

    def add(self, deliver: Deliver, names: Iterable[bytes], pattern: bool) -> None:
        where = self.patterns if pattern else self.channels
        for name in names:
            subscribers = where.setdefault(name, [])
            if deliver not in subscribers:  # Redis ignores a second SUBSCRIBE to a channel
                subscribers.append(deliver)

    def discard(self, deliver: Deliver) -> None:
        """Leave every channel and pattern."""
        for where in (self.channels, self.patterns):
            for name in [n for n, subs in where.items() if deliver in subs]:
                where[name].remove(deliver)
                if not where[name]:
                    del where[name]

    def subscriptions(self) -> Subscriptions:
        return Subscriptions(
            {c: len(s) for c, s in self.channels.items()}, {p: len(s) for p, s in self.patterns.items()}
        )

    def receivers(self, channel: bytes) -> list[tuple[Deliver, bytes | None]]:
        """Who gets a message on ``channel``, in Redis's order: the channel's subscribers,
        then each matching pattern's."""
        found: list[tuple[Deliver, bytes | None]] = [(d, None) for d in self.channels.get(channel, ())]
        for pattern, subscribers in self.patterns.items():
            if glob_match(pattern, channel):
                found += [(d, pattern) for d in subscribers]
        return found

    def count(self, channel: bytes) -> int:
        return len(self.receivers(channel))

    def deliver(self, channel: bytes, payload: bytes) -> int:
        receivers = self.receivers(channel)
        for deliver, pattern in receivers:
            deliver(channel, payload, pattern)
        return len(receivers)


# --- commands --------------------------------------------------------------------------


@command("publish")
def publish(t: Txn, args: Args) -> Reply:
    return t.publish(args[1], args[2])


@command("spublish")
def spublish(t: Txn, args: Args) -> Reply:
    return 0  # no shard subscribers (module docstring)


def _pattern(args: Args) -> bytes | None:
    """CHANNELS and SHARDCHANNELS take at most one pattern."""
    if len(args) > 3:
        raise ReplyError(subcommand_syntax("pubsub", args[1].decode("utf-8", "replace")))
    return args[2] if len(args) == 3 else None


@command("pubsub|channels")
def pubsub_channels(t: Txn, args: Args) -> Reply:
    pattern = _pattern(args)
    live = t.subscriptions().channels
    return [c for c in live if pattern is None or glob_match(pattern, c)]


@command("pubsub|numsub")
def pubsub_numsub(t: Txn, args: Args) -> Reply:
    live = t.subscriptions().channels if len(args) > 2 else {}
    reply: list[Reply] = []
    for channel in args[2:]:
        reply += [channel, live.get(channel, 0)]
    return reply


@command("pubsub|numpat")
def pubsub_numpat(t: Txn, args: Args) -> Reply:
    return len(t.subscriptions().patterns)


@command("pubsub|shardchannels")
def pubsub_shardchannels(t: Txn, args: Args) -> Reply:
    _pattern(args)
    return []


@command("pubsub|shardnumsub")
def pubsub_shardnumsub(t: Txn, args: Args) -> Reply:
    reply: list[Reply] = []
    for channel in args[2:]:
        reply += [channel, 0]
    return reply


PUBSUB_HELP: tuple[bytes, ...] = (
    b"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CHANNELS [<pattern>]",
    b"    Return the currently active channels matching a <pattern> (default: '*').",
    b"NUMPAT",
    b"    Return number of subscriptions to patterns.",
    b"NUMSUB [<channel> ...]",
    b"    Return the number of subscribers for the specified channels, excluding",
    b"    pattern subscriptions(default: no channels).",
    b"SHARDCHANNELS [<pattern>]",
    b"    Return the currently active shard level channels matching a <pattern> (default: '*').",
    b"SHARDNUMSUB [<shardchannel> ...]",
    b"    Return the number of subscribers for the specified shard level channel(s)",
    b"HELP",
    b"    Prints this help.",
)


@command("pubsub|help")
def pubsub_help(t: Txn, args: Args) -> Reply:
    return list(PUBSUB_HELP)
