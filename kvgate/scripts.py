"""Lua script shebang normalization.

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

from kvgate.protocol import Args, Reply

# Flags Redis 7.0 understands in a script shebang.
KNOWN_FLAGS = frozenset({b"no-writes", b"allow-oom", b"allow-stale", b"no-cluster", b"allow-cross-slot-keys"})

Fixup = Callable[[Reply], Reply]


def sha1_hex(script: bytes) -> bytes:
    return hashlib.sha1(script).hexdigest().encode()


def normalize(script: bytes, *, backend_knows_shebang: bool = True) -> bytes:
    """Drop unknown flags from a ``#!lua`` first line; for a backend with no shebang support
    at all (fakeredis) turn the line into a Lua comment, keeping line numbers."""
    if not script.startswith(b"#!"):
        return script
    end = script.find(b"\n")
    first, rest = (script, b"") if end < 0 else (script[:end], script[end:])
    words = first.split()
    if words[0] != b"#!lua":
        return script  # let the backend reject an unknown engine in its own words
    if not backend_knows_shebang:
        return b"--" + first[2:] + rest
    kept = [words[0]]
    dropped = False
    for word in words[1:]:
        if word.startswith(b"flags="):
            flags = [f for f in word[6:].split(b",") if f in KNOWN_FLAGS]
            dropped |= len(flags) < len(word[6:].split(b","))
            if flags:
                kept.append(b"flags=" + b",".join(flags))
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
