"""EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT ...: the handlers the engine runs.

Each reaches its database's scripting through the unit (``t.scripting``): the runtime of
the calling thread, and the scripts read-only units could not store.
"""

from __future__ import annotations

from kvgate import error_texts as errors
from kvgate.engine.numbers import parse_int
from kvgate.engine.registry import OK, command
from kvgate.engine.scripting.sandbox import Script
from kvgate.engine.storage import Txn
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply
from kvgate.scripts import sha1_hex

SCRIPT_HELP = [
    b"SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"DEBUG (YES|SYNC|NO)",
    b"    Set the debug mode for subsequent scripts executed.",
    b"EXISTS <sha1> [<sha1> ...]",
    b"    Return information about the existence of the scripts in the script cache.",
    b"FLUSH [ASYNC|SYNC]",
    b"    Flush the Lua scripts cache. Very dangerous on replicas.",
    b"    When called without the optional mode argument, the behavior is determined by the",
    b"    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    b"    * ASYNC: Asynchronously flush the scripts cache.",
    b"    * SYNC: Synchronously flush the scripts cache.",
    b"KILL",
    b"    Kill the currently executing Lua script.",
    b"LOAD <script>",
    b"    Load a script into the scripts cache without executing it.",
    b"HELP",
    b"    Prints this help.",
]


def _numkeys(args: Args) -> int:
    numkeys = parse_int(args[2])
    if numkeys > len(args) - 3:
        raise ReplyError(errors.TOO_MANY_KEYS)
    if numkeys < 0:
        raise ReplyError(errors.NEGATIVE_KEYS)
    return numkeys


def _run(t: Txn, args: Args, script: Script, numkeys: int, ro: bool) -> Reply:
    if ro and not script.shebang.compat and not script.shebang.no_writes:
        raise ReplyError(errors.RO_WITH_WRITE_FLAG)
    keys, argv = args[3 : 3 + numkeys], args[3 + numkeys :]
    return t.scripting.sandbox().execute(script, t, keys, argv, ro)


def _eval(t: Txn, args: Args, ro: bool) -> Reply:
    numkeys = _numkeys(args)
    body = args[1]
    sha = sha1_hex(body)
    script = t.scripting.sandbox().script(sha.decode(), body)
    t.scripting.remember(t, sha, body)
    return _run(t, args, script, numkeys, ro)


def _evalsha(t: Txn, args: Args, ro: bool) -> Reply:
    if len(args[1]) != 40:
        raise ReplyError(errors.NOSCRIPT)
    numkeys = _numkeys(args)
    sha = args[1].lower()
    body = t.scripting.lookup(t, sha)
    if body is None:
        raise ReplyError(errors.NOSCRIPT)
    script = t.scripting.sandbox().script(sha.decode("latin-1"), body)
    return _run(t, args, script, numkeys, ro)


@command("eval")
def eval_(t: Txn, args: Args) -> Reply:
    return _eval(t, args, ro=False)


@command("eval_ro")
def eval_ro(t: Txn, args: Args) -> Reply:
    return _eval(t, args, ro=True)


@command("evalsha")
def evalsha(t: Txn, args: Args) -> Reply:
    return _evalsha(t, args, ro=False)


@command("evalsha_ro")
def evalsha_ro(t: Txn, args: Args) -> Reply:
    return _evalsha(t, args, ro=True)


@command("script|load")
def script_load(t: Txn, args: Args) -> Reply:
    body = args[2]
    sha = sha1_hex(body)
    t.scripting.sandbox().script(sha.decode(), body)
    t.scripting.remember(t, sha, body)
    return sha


@command("script|exists")
def script_exists(t: Txn, args: Args) -> Reply:
    return [1 if t.scripting.lookup(t, sha.lower()) is not None else 0 for sha in args[2:]]


@command("script|flush")
def script_flush(t: Txn, args: Args) -> Reply:
    if len(args) > 3 or (len(args) == 3 and args[2].lower() not in (b"sync", b"async")):
        raise ReplyError(errors.SCRIPT_FLUSH_MODE)
    t.scripting.forget_all(t)
    return OK


@command("script|kill")
def script_kill(t: Txn, args: Args) -> Reply:
    # A unit runs one command at a time: no script is ever running when this one runs.
    raise ReplyError(errors.NOTBUSY)


@command("script|help")
def script_help(t: Txn, args: Args) -> Reply:
    return list(SCRIPT_HELP)
