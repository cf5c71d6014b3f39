"""Connection and server basics: PING, ECHO, TIME (Redis 7.0 ``server.c``)."""

from __future__ import annotations

import time

from kvgate.engine.registry import command
from kvgate.engine.storage import Txn
from kvgate.error_texts import wrong_arity
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply


@command("ping")
def ping(t: Txn, args: Args) -> Reply:
    # The table allows any count (arity -1); Redis takes at most one message.
    if len(args) > 2:
        raise ReplyError(wrong_arity("ping"))
    return b"PONG" if len(args) == 1 else args[1]


@command("echo")
def echo(t: Txn, args: Args) -> Reply:
    return args[1]


@command("time")
def time_(t: Txn, args: Args) -> Reply:
    """Seconds and microseconds as bulk strings.  The unit's clock ``t.now`` gives the
    milliseconds (so TIME agrees with expiry decisions of the same unit); the real clock
    adds the microseconds below them."""
    micros = t.now * 1000 + (time.time_ns() // 1000) % 1000
    seconds, micros = divmod(micros, 1_000_000)
    return [b"%d" % seconds, b"%d" % micros]
