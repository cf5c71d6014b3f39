"""Lua scripts as kvgate reads them before any backend runs them: SHA1s and shebangs.

This module must not import lupa or :mod:`kvgate.engine`: the gateway imports it for
every backend, Redis-only deployments included.  kvgate's engine reads a shebang with
:func:`parse_shebang` (Redis 7.0's own reading, errors included); the gateway rewrites
one with :func:`normalize`; both read the first line with :func:`shebang_words` and know
the flags of :data:`KNOWN_FLAGS`.

Upstash accepts ``#!lua flags=allow-key-locking`` (used by ``@upstash/ratelimit`` 2.2+), a
flag stock Redis rejects with ``ERR Unexpected flag in script shebang``.  kvgate strips flags
Redis does not know before the script reaches the backend, and remembers which SHA1 the
client computed (of the original text) so that ``EVALSHA <original sha>`` runs the
normalized script.  ``SCRIPT LOAD`` answers the original script's SHA1, as Upstash does.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from kvgate import error_texts as errors
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

#: Flags Redis 7.0 understands in a script shebang.
KNOWN_FLAGS = frozenset({b"no-writes", b"allow-oom", b"allow-stale", b"no-cluster", b"allow-cross-slot-keys"})

Fixup = Callable[[Reply], Reply]


def sha1_hex(script: bytes) -> bytes:
    """A script's name for EVALSHA: the lower-case hex SHA1 of its text."""
    return hashlib.sha1(script).hexdigest().encode()


# --- reading a shebang ------------------------------------------------------------------


def split_args(line: bytes) -> list[bytes] | None:
    """Redis's ``sdssplitargs``: words, "double" quotes with escapes, 'single' quotes; None
    for unbalanced quotes."""
    words: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i : i + 1].isspace():
            i += 1
        if i >= n:
            return words
        word, i = _split_word(line, i)
        if word is None:
            return None
        words.append(word)


_ESCAPES = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("a"): b"\a"}
_HEX = b"0123456789abcdefABCDEF"


def _split_word(line: bytes, i: int) -> tuple[bytes | None, int]:
    out = bytearray()
    n = len(line)
    quote = 0  # 0, or the opening quote character
    while True:
        c = line[i] if i < n else 0
        if quote == ord('"'):
            if c == ord("\\") and i + 3 < n + 0 and line[i + 1] == ord("x") and _is_hex(line, i + 2):
                out.append(int(line[i + 2 : i + 4], 16))
                i += 3
            elif c == ord("\\") and i + 1 < n:
                i += 1
                out += _ESCAPES.get(line[i], line[i : i + 1])
            elif c == ord('"'):
                if i + 1 < n and not line[i + 1 : i + 2].isspace():
                    return None, i
                return bytes(out), i + 1
            elif i >= n:
                return None, i
            else:
                out.append(c)
        elif quote == ord("'"):
            if c == ord("\\") and i + 1 < n and line[i + 1] == ord("'"):
                i += 1
                out.append(ord("'"))
            elif c == ord("'"):
                if i + 1 < n and not line[i + 1 : i + 2].isspace():
                    return None, i
                return bytes(out), i + 1
            elif i >= n:
                return None, i
            else:
                out.append(c)
        elif i >= n or c in b" \n\r\t":
            return bytes(out), i + 1 if i < n else i
        elif c in b"\"'":
            quote = c
        else:
            out.append(c)
        i += 1


def _is_hex(line: bytes, i: int) -> bool:
    return i + 1 < len(line) and line[i] in _HEX and line[i + 1] in _HEX


def shebang_words(line: bytes) -> list[bytes] | None:
    """The words of a ``#!`` first line (its newline excluded) as Redis reads them: up to a
    NUL byte, split by :func:`split_args`; None for unbalanced quotes."""
    return split_args(line.split(b"\0", 1)[0])


def flag_values(word: bytes) -> list[bytes]:
    """The flags of a ``flags=a,b`` word (``flags=`` alone: none)."""
    value = word.removeprefix(b"flags=")
    return value.split(b",") if value else []


@dataclass(frozen=True)
class Shebang:
    """What a ``#!lua`` first line says.  ``compat``: no shebang (a plain EVAL script)."""

    compat: bool
    flags: frozenset[bytes]
    length: int  # bytes of the first line, without its newline

    @property
    def no_writes(self) -> bool:
        return not self.compat and b"no-writes" in self.flags


def parse_shebang(body: bytes) -> Shebang:
    """``evalExtractShebangFlags`` of Redis 7.0, with its error texts."""
    if not body.startswith(b"#!"):
        return Shebang(True, frozenset(), 0)
    end = body.find(b"\n")
    if end < 0:
        raise ReplyError(errors.SHEBANG_INVALID)
    parts = shebang_words(body[:end])
    if not parts:
        raise ReplyError(errors.SHEBANG_INVALID_ENGINE)
    if parts[0] != b"#!lua":
        raise ReplyError(errors.shebang_unexpected_engine(_text(parts[0])))
    flags: set[bytes] = set()
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            raise ReplyError(errors.shebang_unknown_option(_text(part)))
        for flag in flag_values(part):
            if flag not in KNOWN_FLAGS:
                raise ReplyError(errors.shebang_unexpected_flag(_text(flag)))
            flags.add(flag)
    return Shebang(False, frozenset(flags), end)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# --- normalizing for a backend ----------------------------------------------------------


def normalize(script: bytes, *, backend_knows_shebang: bool = True) -> bytes:
    """Drop unknown flags from a ``#!lua`` first line; for a backend with no shebang support
    at all (fakeredis) turn the line into a Lua comment, keeping line numbers.  A script
    Redis would refuse for another reason (no newline after the shebang, another engine,
    unbalanced quotes) is left for the backend to refuse in its own words."""
    if not script.startswith(b"#!"):
        return script
    end = script.find(b"\n")
    first, rest = (script, b"") if end < 0 else (script[:end], script[end:])
    words = shebang_words(first)
    if not words or words[0] != b"#!lua":
        return script
    if not backend_knows_shebang:
        return b"--" + first[2:] + rest
    kept = [words[0]]
    dropped = False
    for word in words[1:]:
        if word.startswith(b"flags="):
            flags = flag_values(word)
            known = [f for f in flags if f in KNOWN_FLAGS]
            dropped |= len(known) < len(flags)
            if known:
                kept.append(b"flags=" + b",".join(known))
        else:
            kept.append(word)
    if not dropped:
        return script
    if len(kept) == 1:
        # Nothing Redis knows is left.  A bare "#!lua" would make Redis treat the script
        # as a writing one (refused by EVAL_RO); a comment keeps it a plain script.
        return b"--" + first[2:] + rest
    return b" ".join(kept) + rest


class ScriptRegistry:
    """Rewrites script commands and remembers original → normalized SHA1s (bounded LRU)."""

    def __init__(self, *, backend_knows_shebang: bool = True, capacity: int = 10_000) -> None:
        self._knows_shebang = backend_knows_shebang
        self._capacity = capacity
        self._sha: OrderedDict[bytes, bytes] = OrderedDict()
        self._hooks: dict[str, Callable[[Args], Fixup | None]] = {
            "eval": self._eval,
            "eval_ro": self._eval,
            "evalsha": self._evalsha,
            "evalsha_ro": self._evalsha,
            "script|load": self._script_load,
            "script|exists": self._script_exists,
        }

    def __len__(self) -> int:
        return len(self._sha)

    def rewrite(self, name: str, args: Args) -> Fixup | None:
        """Rewrite ``args`` in place when ``name`` is a script command; return a function
        to apply to its reply, if the reply needs one."""
        hook = self._hooks.get(name)
        return hook(args) if hook is not None else None

    def _normalize_at(self, args: Args, pos: int) -> bytes:
        original = args[pos]
        fixed = normalize(original, backend_knows_shebang=self._knows_shebang)
        original_sha = sha1_hex(original)
        if fixed is not original:
            args[pos] = fixed
            self._sha[original_sha] = sha1_hex(fixed)
            self._sha.move_to_end(original_sha)
            while len(self._sha) > self._capacity:
                self._sha.popitem(last=False)
        return original_sha

    def _translate(self, sha: bytes) -> bytes:
        return self._sha.get(sha.lower(), sha)

    def _eval(self, args: Args) -> None:
        self._normalize_at(args, 1)

    def _evalsha(self, args: Args) -> None:
        args[1] = self._translate(args[1])

    def _script_load(self, args: Args) -> Fixup:
        original_sha = self._normalize_at(args, 2)
        return lambda reply: original_sha if isinstance(reply, bytes) else reply

    def _script_exists(self, args: Args) -> None:
        args[2:] = [self._translate(sha) for sha in args[2:]]
