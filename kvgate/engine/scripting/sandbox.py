"""One Lua runtime for scripts: what a script may reach, and the limits on it.

Sandbox: scripts reach no Python object and no OS.  ``redis.call``, ``redis.pcall`` and the
helpers Redis writes in C are Python callables (so that they are C functions to Lua, which
keeps error locations right); Lua sees them as functions, and lupa's attribute access on
them is refused.  The globals a script sees are Redis's allow-list (``string``, ``math``,
``table``, ``coroutine``, ``redis``, ``pcall``, ``loadstring``... but no ``io``, ``os``,
``debug``, ``require``, ``package``, ``loadfile``, ``dofile``, ``print``,
``getfenv``/``setfenv``).  Binary chunks are never loaded (parsed as text, as Redis does).
Globals are read-only as in Redis: reading an unknown one raises ``Script attempted to access
nonexistent global variable 'x'``, assigning one ``Attempt to modify a readonly table``;
library tables are read-only proxies (``pairs``/``next``/``rawget`` see through them).  The
Lua half of all this is ``sandbox.lua``, run once per runtime.

Limits kvgate adds (Redis has ``lua-time-limit``/BUSY instead, and no memory limit), set per
database by its :class:`Limits`:

* time: a script running longer than ``time_limit_ms`` (default 5000 ms) is aborted
  with ``ERR script timed out after 5000 ms and was aborted (kvgate's script time limit)``,
  even through ``pcall``.  Writes it made before stay applied, as for any script error.
  The count hook checks the time every 100,000 Lua instructions and before each
  ``redis.call``; once the deadline has passed, the watchdog thread (:mod:`.watchdog`)
  makes it check at the very next instruction (within 10 ms, coroutines included), since
  100,000 instructions on long strings can take minutes.  What runs in one piece, a C
  function or one instruction, is kept short instead of interrupted:

  - ``string.find``/``match``/``gmatch``/``gsub`` call C only when an estimate of the
    matcher's steps stays under 10^7 (at most ~80 ms); past it a port of Lua's matcher in
    Lua runs, with the same results and errors, which the hook can stop (``strings.lua``);
    a plain find past 2^30 compared bytes runs window by window;
  - ``string.rep`` (Python) refuses a result past the memory limit at once, and a count of
    2^31 empty strings takes no time; ``table.sort`` past 100,000 elements compares in Lua;
  - every other C function and instruction is linear in its operands, which the memory
    limit bounds: at the default 256 MiB, measured at most 0.54 s (``loadstring`` of a
    200 MB source) and 0.19 s (``upper``, ``format('%q')`` or ``..`` on 120 MB); one
    ``redis.call`` runs to its end.

  So a script stops within about 10 ms of its limit, plus what is left of the call under
  way then (at most ~80 ms for a pattern function, ~0.5 s for the largest strings the
  memory limit allows).  Measured at a 100 ms limit: the backtracking pattern of issue 15
  (``string.find(string.rep("a", 200), string.rep("a*", 4) .. "b")``, 35 s in C) stops at
  104 ms; a loop comparing two 10 MB strings (9.7 s) at 103 ms, in a coroutine at 101 ms.
* memory: a script's Lua code may have ``memory_limit`` bytes (default 256 MiB, per
  runtime, garbage not yet collected included); a script needing more fails with ``ERR
  script ran out of memory and was aborted (kvgate's script memory limit is 256 MiB)``
  unless it catches the error with ``pcall``.  The limit is lifted while Python runs (lupa's
  API does not survive a failed allocation) and put back by the count hook; in between a
  script may take :data:`PUSH_SLACK` (1 MiB) more.  ``string.rep``, being Python, checks
  its result's size against the limit itself.

A runtime must not be entered by two threads at once: each thread of a database gets its
own (see :class:`~kvgate.engine.scripting.state.Scripting`).
"""

from __future__ import annotations

import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from lupa import lua51

from kvgate import error_texts as errors
from kvgate.engine.scripting.calls import dispatch, is_status, resolve
from kvgate.engine.scripting.convert import lua_arg, lua_error_text, script_error, to_reply
from kvgate.engine.scripting.watchdog import WATCHDOG, Watch, main_state
from kvgate.engine.storage import Txn
from kvgate.errors import ReplyError
from kvgate.protocol import Reply
from kvgate.scripts import Shebang, parse_shebang, sha1_hex

#: The Lua half of the sandbox, run once per runtime as chunk ``=kvgate``.
BOOTSTRAP = files(__package__).joinpath("sandbox.lua").read_bytes()
#: String functions the time limit can stop, handed to the bootstrap (also ``=kvgate``).
STRINGS = files(__package__).joinpath("strings.lua").read_bytes()
INTERNAL_SOURCE = b"=kvgate"

#: Bytes a script may allocate beyond the memory limit between a call into Python and the
#: next count hook (lupa's pushes, a stack growing).
PUSH_SLACK = 1024 * 1024


@dataclass
class Limits:
    """One database's limits on its scripts; a runtime reads them at each script, so a
    change applies from the next one."""

    time_limit_ms: int = 5000
    memory_limit: int = 256 * 1024 * 1024  # bytes, per runtime (per thread); 0: none
    compiled_scripts: int = 500  # compiled functions kept per runtime


@dataclass
class Script:
    sha: str
    shebang: Shebang
    function: Any  # the compiled Lua chunk


@dataclass
class _Run:
    """The script running now on a sandbox."""

    t: Txn
    read_only: bool
    deadline: float
    timed_out: bool = False
    failure: Exception | None = None
    out_of_memory: bool = False
    #: string.rep refused a result past the memory limit: an uncaught "not enough memory"
    #: is then the memory limit's error (Python cannot raise Lua's own memory error).
    memory_refused: bool = False

    def expired(self) -> bool:
        """Whether the script must stop (checked at each hook and each redis.call)."""
        if not self.timed_out and time.monotonic() > self.deadline:
            self.timed_out = True
        return self.timed_out or self.failure is not None


class _Raise(Exception):
    """Carries a Lua error value (a table) from Python back into Lua."""

    def __init__(self, value: Any) -> None:
        super().__init__("Lua error")
        self.value = value


class _Builtin:
    """A Python function as Lua sees it: a C function (``tostring`` shows no Python).  Every
    way into Python runs inside :meth:`LuaSandbox.enter`/:meth:`LuaSandbox.leave`."""

    __slots__ = ("box", "function")

    def __init__(self, box: LuaSandbox, function: Callable[..., Any]) -> None:
        self.box = box
        self.function = function

    def __call__(self, *args: Any) -> Any:
        box = self.box
        box.enter()
        result = None
        try:
            result = self.function(*args)
            return result
        finally:
            box.leave(result)

    def __str__(self) -> str:
        box = self.box
        box.enter()
        result = f"function: 0x{id(self):012x}"
        box.leave(result)
        return result


class _Trampoline(_Builtin):
    """A Lua helper behind a C function: it returns ``true, results...`` or ``false, error``
    and the error is raised from here, so that the script's frame is the caller."""

    __slots__ = ()

    def __call__(self, *args: Any) -> Any:
        box = self.box
        box.enter()
        results: tuple[Any, ...] = ()
        try:
            try:
                outcome = self.function(*args)
            except lua51.LuaError as exc:  # the hook aborted the script
                raise _Raise(str(exc).encode()) from None
            if not isinstance(outcome, tuple):
                outcome = (outcome,)
            if not outcome[0]:
                raise _Raise(outcome[1] if len(outcome) > 1 else None)
            results = outcome[1:]
            return results
        finally:
            box.leave(results)


@dataclass
class _Callbacks:
    """What Lua calls in Python.  Only ``call``/``pcall`` raise into Lua, and only
    :class:`_Raise`."""

    box: LuaSandbox
    rng: random.Random = field(default_factory=random.Random)

    def call(self, *args: Any) -> Any:
        failed, value = self._command(args)
        if failed:
            raise _Raise(value)
        return value

    def pcall(self, *args: Any) -> Any:
        failed, value = self._command(args)
        if failed == 2:
            raise _Raise(value)
        return value

    def _command(self, args: tuple[Any, ...]) -> tuple[int, Any]:
        """(0, value), (1, error table) or (2, abort: the script must stop)."""
        box = self.box
        run = box.run
        if run is None:
            return 1, box.error_table(errors.LUA_OUTSIDE_SCRIPT.encode())
        if not args:
            return 1, box.error_table(errors.err(errors.LUA_NO_ARGS).encode())
        argv = [lua_arg(a) for a in args]
        if None in argv:
            return 1, box.error_table(errors.err(errors.LUA_BAD_ARG).encode())
        if not run.expired():
            try:
                return box.call(run, argv)  # type: ignore[arg-type]
            except Exception as exc:  # a store failure: abort the script, re-raised after it
                run.failure = exc
        return 2, box.error_table(errors.SCRIPT_ABORTED.encode())

    def unwrap(self, error: Any) -> Any:
        return error.value if isinstance(error, _Raise) else error

    def check(self) -> bool:
        """The count hook: True aborts the script.  Outside other calls into Python, it
        puts the memory limit back where it belongs (lupa pushes a boolean without
        allocating)."""
        box = self.box
        run = box.run
        if run is None or not box.armed:
            return False
        if box.inside == 0:
            box.set_limit(box.limits.memory_limit)
        return run.expired()

    def disarm(self) -> None:
        self.box.armed = False

    def rep(self, *args: Any) -> bytes:
        """string.rep: C's loops ``count`` times even for an empty string (2^31 times is
        6 s in one C call) and builds its result in one C call; here a result past the
        memory limit is refused before it is made."""
        box = self.box
        if len(args) >= 2 and type(args[0]) is bytes and type(args[1]) is int:
            text, count = args[0], args[1]
        else:
            outcome = box.api.rep_args(*args)
            if not outcome[0]:
                raise _Raise(outcome[1])
            text, count = outcome[1], outcome[2]
        count = _c_int(_lua_integer(count))  # luaL_checkint: 2^32 + 3 repeats 3 times
        if count <= 0 or not text:
            return b""
        limit = box.limits.memory_limit
        if limit and box.lua.get_memory_used() + len(text) * count > limit:
            return self._refuse()
        try:
            return text * count
        except (MemoryError, OverflowError):
            return self._refuse()

    def _refuse(self) -> bytes:
        if self.box.run is not None:
            self.box.run.memory_refused = True
        raise _Raise(errors.LUA_OUT_OF_MEMORY.encode())

    def thread(self, text: bytes, done: bool) -> None:
        """A coroutine of the running script starts or returns (see the watchdog)."""
        watch = self.box.watch
        if watch is not None:
            WATCHDOG.thread(watch, text, done)

    def random(self, seed: int | None = None) -> float | None:
        if seed is not None:
            self.rng.seed(seed)
            return None
        return self.rng.random()

    @staticmethod
    def known(*argv: bytes) -> bool:
        return resolve(argv) is not None


class LuaSandbox:
    """One Lua 5.1 runtime and its compiled scripts.

    The memory limit applies to a script's Lua code only: lupa's own API calls (building
    tables, pushing strings) do not survive an allocation failure.  A call into Python
    lifts it (:meth:`enter`); returning, it allows what lupa must push plus
    :data:`PUSH_SLACK` (:meth:`leave`), and the count hook puts the limit back.
    """

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits if limits is not None else Limits()
        self.lua = lua51.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=self._deny_attributes,
            max_memory=0,  # counted, not limited: see set_limit()
        )
        self.run: _Run | None = None
        self.watch: Watch | None = None  # the watchdog's view of the script running now
        self.armed = False  # a script runs: the hook may arm the memory limit
        self.inside = 0  # depth of calls into Python
        self._limit: int | None = None
        self.scripts: OrderedDict[str, Script] = OrderedDict()
        callbacks = _Callbacks(self)
        self.lua.execute("kvgate_probe = coroutine.create(function() end)")  # alive meanwhile
        probe = self.lua.eval("tostring(kvgate_probe)")
        self.state = main_state(self.lua, probe) if WATCHDOG.available() else None
        self.lua.execute("kvgate_probe = nil")
        if self.state is None:
            _warn_no_watchdog()
        loader = self.lua.eval("function(src, name) return assert(loadstring(src, name)) end")
        self.api = loader(BOOTSTRAP, INTERNAL_SOURCE)(
            _Builtin(self, callbacks.call),
            _Builtin(self, callbacks.pcall),
            _Builtin(self, callbacks.unwrap),
            callbacks.check,
            callbacks.random,
            sha1_hex,
            callbacks.known,
            lambda helper: _Trampoline(self, helper),
            _Builtin(self, callbacks.disarm),
            _Builtin(self, callbacks.rep),
            _Builtin(self, callbacks.thread),
            loader(STRINGS, INTERNAL_SOURCE),
            errors.LUA_NO_ARGS.encode(),
            errors.LUA_BAD_ARG.encode(),
            errors.SCRIPT_ABORTED.encode(),
        )
        # Nothing outside the bootstrap's closures may reach Python or the OS.
        self.lua.execute(
            "python = nil; io = nil; os = nil; debug = nil; require = nil; package = nil; "
            "module = nil; dofile = nil; loadfile = nil; print = nil"
        )

    def _deny_attributes(self, obj: object, name: object, is_setting: bool) -> str:
        self.enter()
        try:
            raise AttributeError("Python attributes are not reachable from scripts")
        finally:
            self.leave(None)

    # --- memory -------------------------------------------------------------------

    def set_limit(self, limit: int | None) -> None:
        """Let Lua allocate ``limit`` bytes (beyond the runtime's own); None: no limit."""
        if not self.limits.memory_limit:
            limit = None
        if limit != self._limit:
            self.lua.set_max_memory(limit or 0)
            self._limit = limit

    def enter(self) -> None:
        """A call from Lua into Python starts: Python works without a memory limit."""
        self.inside += 1
        self.set_limit(None)

    def leave(self, result: Any) -> None:
        """It ends: lupa must still push ``result`` (strings allocate)."""
        self.inside -= 1
        if self.inside == 0 and self.armed:
            need = self.lua.get_memory_used() + _push_size(result) + PUSH_SLACK
            self.set_limit(max(self.limits.memory_limit, need))

    # --- compiling ----------------------------------------------------------------

    def script(self, sha: str, body: bytes) -> Script:
        """The compiled script, from the cache or compiled now (errors as Redis's)."""
        script = self.scripts.get(sha)
        if script is not None:
            self.scripts.move_to_end(sha)
            return script
        shebang = parse_shebang(body)
        function, error = self.api.compile(body[shebang.length :])
        if function is None:
            raise ReplyError(errors.script_compile_error((error or b"").decode("utf-8", "replace")))
        script = Script(sha, shebang, function)
        self.scripts[sha] = script
        while len(self.scripts) > self.limits.compiled_scripts:
            self.scripts.popitem(last=False)
        return script

    # --- running ------------------------------------------------------------------

    def execute(
        self, script: Script, t: Txn, keys: Sequence[bytes], argv: Sequence[bytes], ro: bool
    ) -> Reply:
        limits = self.limits
        run = _Run(t, ro or script.shebang.no_writes, time.monotonic() + limits.time_limit_ms / 1000)
        keys_table, argv_table = self.lua.table_from(list(keys)), self.lua.table_from(list(argv))
        self.run, self.armed = run, True
        self.watch = watch = WATCHDOG.watch(self.state, run.deadline) if self.state is not None else None
        self.set_limit(limits.memory_limit)
        try:
            outcome = self.api.run(script.function, keys_table, argv_table)
        except lua51.LuaError as exc:  # aborted outside the script's own xpcall
            outcome = (False, False, str(exc).encode())
        finally:
            if watch is not None:
                WATCHDOG.unwatch(watch)  # first: the watchdog must not touch what goes next
            self.run, self.armed, self.watch = None, False, None
            self.set_limit(None)
        try:
            return self._reply(run, script.sha, outcome)
        finally:
            self._settle(run, watch)

    def _reply(self, run: _Run, sha: str, outcome: tuple[Any, ...]) -> Reply:
        if run.failure is not None:
            raise run.failure
        if run.timed_out:
            return ReplyError(errors.script_timed_out(self.limits.time_limit_ms))
        if outcome[0]:
            return to_reply(outcome[1], outcome[2])
        is_table, msg, source, line = (*outcome[1:], None, None, None)[:4]
        if (not is_table and msg == errors.LUA_OUT_OF_MEMORY.encode()) or (
            run.memory_refused and msg == errors.err(errors.LUA_OUT_OF_MEMORY).encode()
        ):
            run.out_of_memory = True
            return ReplyError(errors.script_out_of_memory(self.limits.memory_limit))
        return script_error(sha, is_table, msg, source, line)

    def _settle(self, run: _Run, watch: Watch | None) -> None:
        """After an abort (or a poke of the watchdog) the hook fires on every instruction:
        back to normal; the coroutines the watchdog knew may go.  Lua 5.1 has no emergency
        collection: collect the garbage of a big script now."""
        if run.timed_out or run.failure is not None or (watch is not None and watch.poked):
            self.api.idle()
        if watch is not None and watch.started_threads:
            self.api.forget_threads()
        if run.out_of_memory or self.lua.get_memory_used() > self.limits.memory_limit // 2:
            self.lua.gccollect()

    # --- redis.call -----------------------------------------------------------------

    def call(self, run: _Run, argv: list[bytes]) -> tuple[int, Any]:
        """Run one command for ``redis.call``: (0, value) or (1, error table)."""
        cmd = resolve(argv)
        if cmd is None:
            return 1, self.script_error_table(errors.LUA_UNKNOWN_COMMAND)
        if not cmd.arity_ok(len(argv)):
            return 1, self.script_error_table(errors.LUA_WRONG_ARITY)
        if "noscript" in cmd.flags:
            return 1, self.script_error_table(errors.LUA_NOT_ALLOWED)
        if run.read_only and ("write" in cmd.flags or "may_replicate" in cmd.flags):
            return 1, self.script_error_table(errors.LUA_WRITE_FROM_READ_ONLY)
        reply = dispatch(run.t, cmd, argv)
        if isinstance(reply, ReplyError):
            return 1, self.script_error_table("-" + reply.message)
        if isinstance(reply, bytes) and is_status(cmd, argv):
            return 0, self.lua.table_from({b"ok": reply})
        return 0, self.to_lua(reply)

    def to_lua(self, reply: Reply) -> Any:
        if reply is None:
            return False
        if isinstance(reply, list):
            return self.lua.table_from([self.to_lua(r) for r in reply])
        if isinstance(reply, ReplyError):
            return self.script_error_table("-" + reply.message)
        return reply

    def error_table(self, text: bytes) -> Any:
        return self.lua.table_from({b"err": text})

    def script_error_table(self, text: str) -> Any:
        """``luaPushError`` plus the ``ignore_error_stats_update`` mark Redis adds."""
        return self.lua.table_from(
            {b"err": lua_error_text(text.encode()), b"ignore_error_stats_update": True}
        )


def _lua_integer(count: float) -> int:
    """``(lua_Integer) count`` as C casts it on x86-64 (out of range: the lowest integer)."""
    if count != count or not -(2**63) <= count < 2**63:
        return -(2**63)
    return int(count)


def _c_int(value: int) -> int:
    """``(int) value``: its low 32 bits, signed."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


_warned: list[bool] = []


def _warn_no_watchdog() -> None:
    if not _warned:
        _warned.append(True)
        logging.getLogger("kvgate.scripting").warning(
            "scripts: cannot reach this lupa's Lua state; the time limit is checked every "
            "100,000 Lua instructions only (a loop of slow instructions may overrun it)"
        )


def _push_size(result: Any) -> int:
    if isinstance(result, (bytes, str)):
        return len(result) + 64
    if isinstance(result, tuple):
        return sum(_push_size(r) for r in result)
    return 0
