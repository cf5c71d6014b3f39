"""The Upstash REST wire format: request bodies and paths in, JSON replies out.

Pure functions, no I/O.  Arguments become ``bytes``; replies (bytes, int, None, lists and
:class:`~kvgate.errors.ReplyError`) become JSON following the Upstash rules.
"""

from __future__ import annotations

import json
from base64 import b64encode
from codecs import getincrementaldecoder
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes

from kvgate.error_texts import (
    BODY_EMPTY,
    BODY_TOO_DEEP,
    COMMAND_NOT_ARRAY,
    COMMANDS_NOT_ARRAY,
    NO_COMMAND,
    bad_argument,
    body_not_json,
)
from kvgate.errors import BadRequest, ReplyError

Args = list[bytes]
#: One command's reply.  Arrays are read-only ``Sequence``s to the type checker, so that a
#: handler may answer a ``list[bytes]`` where a reply is expected; they are ``list`` at run time.
Reply = bytes | int | None | Sequence["Reply"] | ReplyError

try:  # orjson is an optional speed-up
    import orjson

    _orjson_loads: Callable[[bytes], Any] | None = orjson.loads

    def dumps(obj: Any) -> bytes:
        try:
            return orjson.dumps(obj)
        except TypeError:  # integers beyond 64 bits
            return json.dumps(obj, ensure_ascii=False).encode()

except ImportError:  # pragma: no cover - exercised only without orjson
    _orjson_loads = None

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


class _Number(str):
    """A JSON number as its source text: 13.361389 stays 13.361389, 2**64 stays exact.
    A ``str`` (an argument is its text), marked so that an object or array argument is
    written back with its numbers as numbers."""

    __slots__ = ()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _quick_loads(body: bytes) -> Any:
    """orjson's reading of a body (1.1 us where :func:`_loads` takes 14 for a 1 KB
    JSON.SET), None where it fails (invalid, lone surrogates...): :func:`_loads` then
    decides and words the error.  Its numbers are not their text: see :func:`_strings`."""
    if _orjson_loads is None:
        return None
    try:
        return _orjson_loads(body)
    except ValueError:
        return None


def _strings(value: Any) -> Args | None:
    """A command read by :func:`_quick_loads` whose arguments are strings or integers
    (``["INCRBY","k",5]``, as the JavaScript client sends it), encoded; None otherwise (a
    double, 0, an object: read again, numbers as written)."""
    if type(value) is not list or not value:
        return None
    try:
        return [v.encode() for v in value]
    except AttributeError:
        pass
    args: Args = []
    for v in value:
        if type(v) is str:
            args.append(v.encode())
        elif type(v) is int and v:  # an integer's text is its literal; 0 may have been -0
            args.append(str(v).encode())
        else:
            return None
    return args


def _loads(body: bytes) -> Any:
    if not body.strip():
        raise BadRequest(BODY_EMPTY)
    try:
        return json.loads(
            body,
            parse_int=_Number,
            parse_float=_Number,
            parse_constant=_reject_constant,
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(body_not_json(str(exc))) from None
    except RecursionError:
        raise BadRequest(BODY_TOO_DEEP) from None


def _arg(value: Any, position: int) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if value is True:
        return b"true"
    if value is False:
        return b"false"
    if value is None:
        raise BadRequest(bad_argument(position, "null"))
    # An object or an array is sent as its JSON text, as Upstash takes it: the Python
    # client sends JSON.SET's document that way (``redis.json.set(key, "$", {...})``).
    return _json_text(value).encode("utf-8", "surrogatepass")


def _json_text(value: Any) -> str:
    """Compact JSON for a parsed value, numbers exactly as they were written."""
    if isinstance(value, _Number):
        return str.__str__(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{_json_text(v)}" for k, v in value.items())
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    return "true" if value is True else "false" if value is False else "null"


def command_from_json(value: Any) -> Args:
    if not isinstance(value, list) or not value:
        raise BadRequest(COMMAND_NOT_ARRAY)
    try:  # the common case: every argument is a string (numbers arrive as their text)
        return [v.encode() for v in value]
    except (AttributeError, UnicodeEncodeError):
        return [_arg(v, i) for i, v in enumerate(value, 1)]


def parse_command(body: bytes) -> Args:
    quick = _strings(_quick_loads(body))
    return quick if quick is not None else command_from_json(_loads(body))


def parse_commands(body: bytes) -> list[Args]:
    """A ``/pipeline`` or ``/multi-exec`` body: an array of commands."""
    value = _quick_loads(body)
    if type(value) is list and value:
        commands = []
        for command in value:
            args = _strings(command)
            if args is None:
                break
            commands.append(args)
        else:
            return commands
    value = _loads(body)
    if not isinstance(value, list) or not value:
        raise BadRequest(COMMANDS_NOT_ARRAY)
    return [command_from_json(cmd) for cmd in value]


def path_args(path: str, body: bytes, raw_query: str) -> Args:
    """The path form: ``/set/foo/bar``, URL-decoded segments; a request body becomes the
    last argument; query pairs ``k=v`` follow it as two arguments (``_token`` excluded)."""
    args = [unquote_to_bytes(seg) if "%" in seg else seg.encode() for seg in path.split("/")] if path else []
    if body:
        args.append(body)
    if raw_query:
        for pair in raw_query.split("&"):
            if not pair:
                continue
            key, eq, value = pair.partition("=")
            k = unquote_plus_to_bytes(key)
            if k == b"_token":
                continue
            args.append(k)
            if eq:
                args.append(unquote_plus_to_bytes(value))
    if not args or not args[0]:
        raise BadRequest(NO_COMMAND)
    return args


def unquote_plus_to_bytes(text: str) -> bytes:
    """Query-string decoding: ``+`` is a space, ``%xx`` is a byte."""
    return unquote_to_bytes(text.replace("+", " "))


# --- replies ------------------------------------------------------------------------


def _as_text(value: Reply) -> Any:
    if type(value) is bytes:
        return value.decode("utf-8", "replace")
    if type(value) is list:
        return [_as_text(v) for v in value]
    if isinstance(value, ReplyError):
        return value.message
    return value


def _as_base64(value: Reply) -> Any:
    if type(value) is bytes:
        return b64encode(value).decode("ascii")
    if type(value) is list:
        return [_as_base64(v) for v in value]
    if isinstance(value, ReplyError):  # an error nested in a script's reply: a string there
        return b64encode(value.message.encode()).decode("ascii")
    return value


def result_encoder(base64: bool) -> Callable[[Reply], Any]:
    """How a top-level result is rendered.  With ``Upstash-Encoding: base64`` every string at
    every depth is base64, except a top-level ``OK`` (clients compare it literally)."""
    if not base64:
        return _as_text

    def encode(value: Reply) -> Any:
        if value == b"OK":
            return "OK"
        return _as_base64(value)

    return encode


def encodes_base64(encode: Callable[[Reply], Any]) -> bool:
    """Whether an encoder from :func:`result_encoder` renders strings as base64."""
    return encode is not _as_text


def envelope(value: Reply, encode: Callable[[Reply], Any]) -> dict[str, Any]:
    if isinstance(value, ReplyError):
        return {"error": value.message}
    return {"result": encode(value)}


def result_pieces(value: bytes, base64: bool, piece: int = 256 * 1024) -> Iterator[bytes]:
    """``{"result": "<value>"}`` for one string result, as the same bytes ``dumps`` would
    give, a piece at a time: a large value is sent without its JSON text ever existing
    whole (with the value, that would be two or three more full copies per request)."""
    yield b'{"result":"'
    if base64:  # whole 3-byte groups per piece, so the pieces join into one base64 text
        step = max(3, piece - piece % 3)
        for at in range(0, len(value), step):
            yield b64encode(value[at : at + step])
    else:
        decoder = getincrementaldecoder("utf-8")("replace")
        view = memoryview(value)
        for at in range(0, len(value), piece):
            text = decoder.decode(view[at : at + piece], final=at + piece >= len(value))
            yield dumps(text)[1:-1]
    yield b'"}'


# --- Upstash-Response-Format: resp2 ------------------------------------------------------


def resp2(value: Reply, command: bytes | None = None) -> bytes:
    """A reply as the RESP2 bytes Redis sends for it (``Upstash-Response-Format: resp2``).
    Strings are bulk strings except a status: ``OK`` at the top, ``PONG`` for PING without
    an argument, TYPE's answer; an error is ``-<text>``."""
    out: list[bytes] = []
    _resp2(value, out, top=True, command=(command or b"").lower())
    return b"".join(out)


def _resp2(value: Reply, out: list[bytes], top: bool = False, command: bytes = b"") -> None:
    if type(value) is bytes:
        if top and (value == b"OK" or (command == b"type") or (command == b"ping" and value == b"PONG")):
            out.append(b"+%s\r\n" % value)
        else:
            out.append(b"$%d\r\n%s\r\n" % (len(value), value))
    elif value is None:
        out.append(b"$-1\r\n")
    elif isinstance(value, ReplyError):
        out.append(b"-%s\r\n" % value.message.replace("\r", " ").replace("\n", " ").encode())
    elif isinstance(value, int):
        out.append(b":%d\r\n" % value)
    else:
        items = list(value)
        out.append(b"*%d\r\n" % len(items))
        for item in items:
            _resp2(item, out)


# --- Upstash's SCAN extension ------------------------------------------------------


def split_withtype(options: Args) -> tuple[Args, bool]:
    """SCAN's options without Upstash's ``WITHTYPE`` flag (a word of its own where an option name is due:
    ``MATCH withtype`` is a pattern), and whether it was there."""
    rest: Args = []
    found = False
    i = 0
    while i < len(options):
        word = options[i].lower()
        if word == b"withtype":
            found = True
            i += 1
        elif word in (b"count", b"match", b"type") and i + 1 < len(options):
            rest += options[i : i + 2]
            i += 2
        else:
            rest.append(options[i])
            i += 1
    return rest, found
