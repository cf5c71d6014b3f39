"""RESP2 encoding (hiredis's C encoder) and the MULTI/EXEC framing shared by the RESP-speaking adapters."""

from __future__ import annotations

from collections.abc import Sequence

from hiredis import pack_command

from kvgate.error_texts import EXECABORT
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply


def encode(args: Args) -> bytes:
    return pack_command(tuple(args))  # type: ignore[arg-type]  # hiredis's stub types one argument


def encode_many(commands: Sequence[Args]) -> bytes:
    return b"".join([pack_command(tuple(c)) for c in commands])  # type: ignore[arg-type]


MULTI = encode([b"MULTI"])
EXEC = encode([b"EXEC"])


def encode_transaction(commands: Sequence[Args]) -> bytes:
    """One contiguous block, so nothing else on a shared connection can land inside it."""
    return MULTI + encode_many(commands) + EXEC


def exec_replies(replies: list[Reply]) -> list[Reply]:
    """From the replies to MULTI, each queued command and EXEC, the transaction's result;
    raises the EXECABORT error when Redis discarded the transaction."""
    result = replies[-1]
    if isinstance(result, ReplyError):
        raise result
    if not isinstance(result, list):  # nil: only after WATCH, which kvgate never sends
        raise ReplyError(EXECABORT)
    return result
