"""Values between Lua and Redis, as Redis 7.0 converts them (RESP2).

Into Lua (``redis.call`` replies): integer -> number, bulk -> string, nil -> false, array ->
table, status -> ``{ok=...}``, error -> ``{err=...}``.  Out of Lua (a script's return
value, and ``redis.call`` arguments): number -> integer (truncated toward zero), string ->
bulk, table -> array up to the first nil (or an ``ok``/``err``/``double``/``map``/``set``...
table), false/nil -> nil, true -> 1.  Tables cross as one flat string that ``sandbox.lua``
encodes (``api.encode``) and :func:`decode` reads, so that Python never walks a Lua table
while a script's memory limit is armed.

Error texts follow Redis 7.0.15, e.g. ``ERR user_script:1: boom script: <sha>, on
@user_script:1.``.
"""

from __future__ import annotations

import math
from typing import Any

from kvgate import error_texts as errors
from kvgate.engine.numbers import INT64_MAX, INT64_MIN
from kvgate.errors import ReplyError
from kvgate.protocol import Reply


def lua_arg(value: Any) -> bytes | None:
    """``luaArgsToRedisArgv`` for one argument: strings as they are, numbers ``%.17g``."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    if math.isnan(number):  # C prints the sign of a NaN (0/0 is negative on x86)
        return b"-nan" if math.copysign(1.0, number) < 0 else b"nan"
    return b"%.17g" % number


def to_reply(kind: bytes, value: Any) -> Reply:
    """A script's return value as a reply (``luaReplyToRedisReply``)."""
    if kind == b"table":
        return decode(value)
    if kind == b"string":
        return value
    if kind == b"number":
        return lua_number_to_int(value)
    if kind == b"boolean":
        return 1 if value else None
    return None  # nil, functions, coroutines, userdata


def script_error(
    sha: str, is_table: bool, msg: bytes | None, source: bytes | None, line: bytes | None
) -> ReplyError:
    """``luaCallFunction``'s error reply."""
    if not is_table:
        return ReplyError(
            errors.script_run_error(sha, _text(msg) if msg is not None else "execution failure")
        )
    if msg is None:  # error({}): Redis 7.0 crashes here
        return ReplyError(errors.script_run_error(sha, "execution failure"))
    if source is not None and line is not None:
        return ReplyError(errors.script_error_at(_text(msg), sha, _text(source), _text(line)))
    return ReplyError(_text(msg).replace("\r", " ").replace("\n", " "))


def lua_error_text(buf: bytes) -> bytes:
    """``luaPushErrorBuff``: ``-CODE msg`` keeps its code, anything else gets ``ERR``."""
    buf = buf.split(b"\0", 1)[0]
    code, msg = b"ERR", buf
    if buf.startswith(b"-"):
        head, sep, tail = buf[1:].partition(b" ")
        code, msg = (head, tail) if sep else (b"ERR", head)
    return code + b" " + msg.strip(b"\r\n")


def lua_number_to_int(value: float) -> int:
    """C's ``(long long)`` cast of a double as x86-64 does it (out of range: INT64_MIN)."""
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else INT64_MIN
    if math.isnan(value) or not (-(2.0**63) <= value < 2.0**63):
        return INT64_MIN
    return int(value)


def decode(flat: bytes) -> Reply:
    """Read what ``api.encode`` wrote."""
    return _decode(flat, 0)[0]


def _decode(flat: bytes, i: int) -> tuple[Reply, int]:
    kind = flat[i : i + 1]
    if kind == b"_":
        return None, i + 1
    if kind == b"#":
        end = flat.index(b";", i)
        return lua_number_to_int(float(flat[i + 1 : end])), end + 1
    if kind == b"*":
        end = flat.index(b";", i)
        count = int(flat[i + 1 : end])
        items: list[Reply] = []
        i = end + 1
        for _ in range(count):
            item, i = _decode(flat, i)
            items.append(item)
        return items, i
    colon = flat.index(b":", i)
    size = int(flat[i + 1 : colon])
    data = flat[colon + 1 : colon + 1 + size]
    end = colon + 1 + size
    if kind == b"$":
        return data, end
    text = data.split(b"\0", 1)[0].replace(b"\r", b" ").replace(b"\n", b" ")
    if kind == b"+":
        return text, end
    return ReplyError(_text(text)), end


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")
