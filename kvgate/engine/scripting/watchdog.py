"""The time limit between any two Lua instructions, whatever they cost.

A script's count hook checks its deadline every 100,000 VM instructions.  Most take
nanoseconds, but some take milliseconds: comparing or concatenating strings of megabytes,
a library call over a long string.  A loop of those (``while true do local _ = a < b end``
on two 10 MB strings) went 100,000 instructions, 10 s, between two checks.

Lua's own answer is what ``lua.c`` does on Ctrl-C: from outside the running thread, set
the hook's count to 1 (``lua_sethook``, which Lua lets a signal handler or another thread
call), so that the hook fires at the next instruction.  One watchdog thread per process
does that for every script past its deadline, and again every :data:`POKE_EVERY` seconds
until the script has stopped (so a coroutine entered meanwhile is reached too).  The hook
then finds the deadline passed and aborts the script as it always did.  A single C call
still runs to its end: :mod:`strings.lua <kvgate.engine.scripting>` keeps those short.

lupa does not hand out a runtime's ``lua_State``.  :func:`main_state` reads it from lupa's
runtime object and from Lua's own global state (reached through a coroutine, whose address
Lua prints), and trusts it only when both agree; otherwise the watchdog stays off for that
runtime (the count hook alone remains) and says so once in the log.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from lupa import lua51

log = logging.getLogger("kvgate.scripting")

#: Seconds between two pokes of a script that is past its deadline and still running.
POKE_EVERY = 0.01
# Lua 5.1.5's structures (lstate.h, a default build): lua_State.l_G and
# global_State.mainthread; and lupa's LuaRuntime._state (after PyObject_HEAD and the vtable).
_L_G = 32
_MAINTHREAD = 176
_LUPA_STATE = 24


class _LuaApi:
    def __init__(self) -> None:
        lib = ctypes.CDLL(lua51.__file__)
        self.gethook = lib.lua_gethook
        self.gethook.argtypes, self.gethook.restype = [ctypes.c_void_p], ctypes.c_void_p
        self.gethookmask = lib.lua_gethookmask
        self.gethookmask.argtypes, self.gethookmask.restype = [ctypes.c_void_p], ctypes.c_int
        self.sethook = lib.lua_sethook
        self.sethook.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        self.sethook.restype = ctypes.c_int

    def poke(self, state: int) -> None:
        """Make ``state``'s hook fire at its next instruction (its function and mask kept)."""
        hook, mask = self.gethook(state), self.gethookmask(state)
        if hook and mask:
            self.sethook(state, hook, mask, 1)


def _address(text: bytes) -> int:
    """A Lua thread's address from its ``tostring`` ("thread: 0x55d1c0a1b2c8")."""
    return int(text.split()[-1], 16)


def main_state(runtime: Any, coroutine_text: bytes) -> int | None:
    """The main ``lua_State`` of a lupa runtime, or None when not sure of it.
    ``coroutine_text``: ``tostring`` of a coroutine of that runtime, alive meanwhile."""
    if type(runtime).__basicsize__ < _LUPA_STATE + 8:
        return None
    try:
        global_state = ctypes.c_void_p.from_address(_address(coroutine_text) + _L_G).value
        if not global_state:
            return None
        from_lua = ctypes.c_void_p.from_address(global_state + _MAINTHREAD).value
    except ValueError:
        return None
    from_lupa = ctypes.c_void_p.from_address(id(runtime) + _LUPA_STATE).value
    return from_lupa if from_lupa and from_lupa == from_lua else None


@dataclass(eq=False)
class Watch:
    """One script running: its runtime's main state, the coroutines it has started."""

    state: int
    deadline: float
    threads: set[int] = field(default_factory=set)
    started_threads: bool = False
    poked: bool = False


class Watchdog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._watches: set[Watch] = set()
        self._next = float("inf")  # when the thread wakes next, as it last planned
        self._thread: threading.Thread | None = None
        self._api: _LuaApi | None = None

    def available(self) -> bool:
        if self._api is None:
            try:
                self._api = _LuaApi()
            except (OSError, AttributeError):  # pragma: no cover - a Lua without these symbols
                log.warning("scripts: the time limit is checked every 100,000 instructions only")
                return False
        return True

    def watch(self, state: int, deadline: float) -> Watch:
        watch = Watch(state, deadline)
        with self._lock:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="kvgate-script-watchdog", daemon=True)
                self._thread.start()
            if deadline < self._next:
                self._wake.notify()
        return watch

    def unwatch(self, watch: Watch) -> None:
        """From here on the watchdog leaves the script's threads alone (it waits for a poke
        under way to end)."""
        with self._lock:
            self._watches.discard(watch)

    def thread(self, watch: Watch, text: bytes, done: bool) -> None:
        """A coroutine of the script starts (it is poked too from now on) or returns."""
        address = _address(text)
        with self._lock:
            if done:
                watch.threads.discard(address)
            else:
                watch.threads.add(address)
                watch.started_threads = True

    def _run(self) -> None:
        api = self._api
        assert api is not None
        with self._lock:
            while True:
                now = time.monotonic()
                upcoming = float("inf")
                for watch in self._watches:
                    if watch.deadline <= now:
                        watch.poked = True
                        api.poke(watch.state)
                        for thread in watch.threads:
                            api.poke(thread)
                        upcoming = min(upcoming, now + POKE_EVERY)
                    else:
                        upcoming = min(upcoming, watch.deadline)
                self._next = upcoming
                self._wake.wait(None if upcoming == float("inf") else upcoming - now)


#: The process's watchdog, shared by every runtime of every database.
WATCHDOG = Watchdog()
