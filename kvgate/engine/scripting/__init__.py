"""Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD/EXISTS/FLUSH/KILL/HELP.

Scripts run in Lua 5.1, as in Redis, through ``lupa.lua51`` (lupa's Lua 5.1 build).  Script
bodies live in the store (``Txn.script_*``) so that EVALSHA works in every process sharing
it.  Everything else is per database and per process, held by the database's
:class:`~kvgate.engine.scripting.state.Scripting` (``t.scripting`` of every unit): its
limits, the scripts that units which may not write have seen, and one Lua runtime per
thread.  Nothing is shared between two databases of one process.

The modules, by what they do:

* :mod:`.commands`: the command handlers (EVAL and friends, SCRIPT ...);
* :mod:`.state`: one database's scripting in this process;
* :mod:`.sandbox` and ``sandbox.lua``: one Lua runtime, what scripts may reach, the limits;
* ``strings.lua``: the string functions (and ``table.sort``) the time limit can stop;
* :mod:`.watchdog`: the thread that makes a script past its time limit stop at once;
* :mod:`.calls`: which command ``redis.call`` names, and running it on the engine;
* :mod:`.convert`: replies between Lua and Redis, and a script's error texts.

Reading a shebang and computing a SHA1 live in :mod:`kvgate.scripts` (no lupa there: the
gateway reads shebangs for Redis backends too).

Known differences from Redis 7.0:

* ``redis.setresp(3)`` is refused (the engine answers RESP2 only);
* ``cjson``, ``cmsgpack``, ``struct`` and ``bit`` are not available;
* ``math.random`` is Python's generator (Redis's sequence depends on its history anyway);
* a ``-0`` argument to ``redis.call`` arrives as ``0`` (lupa hands integral numbers to
  Python as ``int``), Redis sends ``-0``;
* an error raised by a base-library wrapper (``pairs``, ``next``, ``rawget``, ``rawset``,
  ``setmetatable``, ``loadstring``, ``load``, ``xpcall``, ``type``, ``coroutine.*``) or by
  ``string.find``/``match``/``gmatch``/``gfind``/``gsub`` or ``table.sort`` (Lua functions
  here, see ``strings.lua``) reached through a tail call (``return pairs(nil)``) has no
  line: ``on =(tail call):-1``; ``string.dump`` of one of these dumps kvgate's Lua;
* a pattern function over a long subject whose pattern could backtrack (by an estimate of
  the C matcher's cost) runs a port of Lua's matcher in Lua: the same answers, slower; a
  ``table.sort`` of over 100,000 elements compares in Lua (3.5 times slower), and
  ``string.rep`` is Python (1.3 us a call);
* coroutines a script leaves suspended are kept until it ends (the watchdog may need them);
* inside a coroutine, an argument error of a ``redis.*`` helper or ``math.random`` names
  the function ``'?'`` and the line of the code that resumed the coroutine;
* ``getmetatable`` of a library table is ``false`` (Redis: nil); ``error({})`` (which crashes
  Redis 7.0.15) answers ``ERR Error running script <sha>, execution failure``; replies
  nested deeper than 200 tables end in ``ERR reached lua stack limit``;
* redis.call replies keep their status/bulk kind by command (the ``status_reply`` fact of
  ``kvgate/engine/commands.json``), since engine handlers return both as ``bytes``;
* ``SCRIPT KILL`` always answers NOTBUSY (kvgate stops a script itself at its time limit,
  and other requests do not wait for it: the SQLite backend runs scripts on threads of
  their own); ``SCRIPT DEBUG`` is not supported;
* kvgate limits a script's time and memory (see :mod:`.sandbox`), inside C functions too.
"""

from __future__ import annotations

from kvgate.engine.scripting import commands  # noqa: F401  (registers the handlers)
from kvgate.engine.scripting.sandbox import Limits, LuaSandbox
from kvgate.engine.scripting.state import Scripting

__all__ = ["Limits", "LuaSandbox", "Scripting"]
