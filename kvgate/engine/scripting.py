"""Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD/EXISTS/FLUSH/KILL/HELP.

Scripts run in Lua 5.1, as in Redis, through ``lupa.lua51`` (lupa's Lua 5.1 build).  Each
thread that runs scripts gets one :class:`LuaSandbox` (one ``LuaRuntime``), created on first
use and reused: the SQLite backend runs EVAL on its writer thread and EVAL_RO on the event
loop, and a runtime must not be entered by two threads at once.  Compiled scripts are kept
per runtime by SHA1 (a bounded LRU); script bodies live in the store (``Txn.script_*``) so
that EVALSHA works in every process sharing it.  A unit that may not write (EVAL_RO on a
read-only connection) keeps the body in this process until a writing unit stores it.

Inside a script ``redis.call``/``redis.pcall`` run commands through the engine on the same
unit ``t`` as the script (atomic with it), checked first as Redis checks them (unknown
command, arity, ``noscript``, writes from read-only scripts); a command the engine lacks
answers the engine's own "not supported" error.  Replies convert as in Redis 7.0 (RESP2):
integer -> number, bulk -> string, nil -> false, array -> table, status -> ``{ok=...}``,
error -> ``{err=...}``; and back: number -> integer (truncated toward zero), string -> bulk,
table -> array up to the first nil (or an ``ok``/``err``/``double``/``map``/``set``...
table), false/nil -> nil, true -> 1.  Error texts follow Redis 7.0.15, e.g.
``ERR user_script:1: boom script: <sha>, on @user_script:1.``.

Sandbox: scripts reach no Python object and no OS.  ``redis.call``, ``redis.pcall`` and the
helpers Redis writes in C are Python callables (so that they are C functions to Lua, which
keeps error locations right); Lua sees them as functions, and lupa's attribute access on
them is refused.  The globals a script sees are Redis's allow-list (``string``, ``math``,
``table``, ``coroutine``, ``redis``, ``pcall``, ``loadstring``... but no ``io``, ``os``,
``debug``, ``require``, ``package``, ``loadfile``, ``dofile``, ``print``,
``getfenv``/``setfenv``).  Binary chunks are never loaded (parsed as text, as Redis does).
Globals are read-only as in Redis: reading an unknown one raises ``Script attempted to access
nonexistent global variable 'x'``, assigning one ``Attempt to modify a readonly table``;
library tables are read-only proxies (``pairs``/``next``/``rawget`` see through them).

Limits kvgate adds (Redis has ``lua-time-limit``/BUSY instead, and no memory limit):

* time: a script running longer than ``LIMITS.time_limit_ms`` (default 5000 ms) is aborted
  with ``ERR script timed out after 5000 ms and was aborted (kvgate's script time limit)``,
  even through ``pcall``.  Writes it made before stay applied, as for any script error.  The
  check runs every 100,000 Lua instructions and at each ``redis.call``; a single long C call
  (a huge ``string.rep``, a pathological pattern) is not interrupted.
* memory: a script's Lua code may have ``LIMITS.memory_limit`` bytes (default 256 MiB, per
  runtime, garbage not yet collected included); a script needing more fails with ``ERR
  script ran out of memory and was aborted (kvgate's script memory limit is 256 MiB)``
  unless it catches the error with ``pcall``.  The limit is lifted while Python runs (lupa's
  API does not survive a failed allocation) and put back by the count hook; in between a
  script may take :data:`PUSH_SLACK` (1 MiB) more.

Change them with :func:`configure`.  Known differences from Redis 7.0:

* ``redis.setresp(3)`` is refused (the engine answers RESP2 only);
* ``cjson``, ``cmsgpack``, ``struct`` and ``bit`` are not available;
* ``math.random`` is Python's generator (Redis's sequence depends on its history anyway);
* a ``-0`` argument to ``redis.call`` arrives as ``0`` (lupa hands integral numbers to
  Python as ``int``), Redis sends ``-0``;
* an error raised by a base-library wrapper (``pairs``, ``next``, ``rawget``, ``rawset``,
  ``setmetatable``, ``loadstring``, ``load``, ``xpcall``, ``type``, ``coroutine.*``) reached
  through a tail call (``return pairs(nil)``) has no line: ``on =(tail call):-1``;
* inside a coroutine, an argument error of a ``redis.*`` helper or ``math.random`` names
  the function ``'?'`` and the line of the code that resumed the coroutine;
* ``getmetatable`` of a library table is ``false`` (Redis: nil); ``error({})`` (which crashes
  Redis 7.0.15) answers ``ERR Error running script <sha>, execution failure``; replies
  nested deeper than 200 tables end in ``ERR reached lua stack limit``;
* redis.call replies keep their status/bulk kind by command (``STATUS_REPLIES``), since
  engine handlers return both as ``bytes``;
* ``SCRIPT KILL`` always answers NOTBUSY (no script runs while another command of the same
  store waits); ``SCRIPT DEBUG`` is not supported.
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lupa import lua51

from kvgate.commands import Command, default_table
from kvgate.engine.numbers import INT64_MAX, INT64_MIN, parse_int
from kvgate.engine.registry import HANDLERS, OK, command
from kvgate.engine.storage import Txn
from kvgate.error_texts import not_supported
from kvgate.errors import ReplyError
from kvgate.protocol import Args, Reply

NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
RO_WITH_WRITE_FLAG = "ERR Can not execute a script with write flag using *_ro command."

#: Commands Redis 7.0 flags ``may_replicate`` (the command table leaves that flag out):
#: read-only scripts may not call them either.
MAY_REPLICATE = frozenset({"pfcount", "publish", "spublish", "eval", "evalsha", "fcall"})

#: Commands whose reply is a status (``+OK``), not a bulk string.  Engine handlers return
#: both as ``bytes``; Lua must see a status as an ``{ok=...}`` table.
STATUS_REPLIES = frozenset(
    {
        "flushall",
        "flushdb",
        "hmset",
        "lset",
        "ltrim",
        "migrate",
        "mset",
        "pfmerge",
        "psetex",
        "rename",
        "restore",
        "select",
        "setex",
        "swapdb",
        "type",
        "xgroup|create",
        "xgroup|setid",
        "xsetid",
    }
)

SHEBANG_FLAGS = frozenset({"no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"})

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


@dataclass
class Limits:
    time_limit_ms: int = 5000
    memory_limit: int = 256 * 1024 * 1024  # bytes, per runtime (per thread)
    compiled_scripts: int = 500  # compiled functions kept per runtime


LIMITS = Limits()


def configure(
    time_limit_ms: int | None = None, memory_limit: int | None = None, compiled_scripts: int | None = None
) -> None:
    """Change the limits; runtimes created earlier pick up the new memory limit on their
    next script."""
    if time_limit_ms is not None:
        LIMITS.time_limit_ms = time_limit_ms
    if memory_limit is not None:
        LIMITS.memory_limit = memory_limit
    if compiled_scripts is not None:
        LIMITS.compiled_scripts = compiled_scripts


def sha1hex(body: bytes) -> bytes:
    return hashlib.sha1(body).hexdigest().encode()


# --- shebang ------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Shebang:
    """What a ``#!lua`` first line says.  ``compat``: no shebang (a plain EVAL script)."""

    compat: bool
    flags: frozenset[str]
    length: int  # bytes of the first line, without its newline

    @property
    def no_writes(self) -> bool:
        return not self.compat and "no-writes" in self.flags


def parse_shebang(body: bytes) -> Shebang:
    """``evalExtractShebangFlags`` of Redis 7.0, with its error texts."""
    if not body.startswith(b"#!"):
        return Shebang(True, frozenset(), 0)
    end = body.find(b"\n")
    if end < 0:
        raise ReplyError("ERR Invalid script shebang")
    parts = split_args(body[:end].split(b"\0", 1)[0])
    if not parts:
        raise ReplyError("ERR Invalid engine in script shebang")
    if parts[0] != b"#!lua":
        raise ReplyError(f"ERR Unexpected engine in script shebang: {_text(parts[0])}")
    flags: set[str] = set()
    for part in parts[1:]:
        if not part.startswith(b"flags="):
            raise ReplyError(f"ERR Unknown lua shebang option: {_text(part)}")
        value = part[6:]
        for flag in value.split(b",") if value else []:
            if _text(flag) not in SHEBANG_FLAGS:
                raise ReplyError(f"ERR Unexpected flag in script shebang: {_text(flag)}")
            flags.add(_text(flag))
    return Shebang(False, frozenset(flags), end)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# --- the Lua side -------------------------------------------------------------------

INTERNAL_SOURCE = b"=kvgate"

# Runs once per runtime, as chunk "=kvgate" (its frames are hidden from error locations).
# Receives the Python callbacks; returns the functions Python calls.
BOOTSTRAP = rb"""
local py_call, py_pcall, py_unwrap, py_check, py_random, py_sha1, py_known, py_trampoline, py_disarm = ...
local INTERNAL = '=kvgate'

local type, error, select, tostring, tonumber = type, error, select, tostring, tonumber
local next, rawget, rawset, setmetatable, getmetatable = next, rawget, rawset, setmetatable, getmetatable
local raw_pcall, xpcall, unpack, setfenv = pcall, xpcall, unpack, setfenv
local raw_loadstring = loadstring
local format, sub, byte, find, gsub, concat = string.format, string.sub, string.byte, string.find, string.gsub, table.concat
local floor, ceil = math.floor, math.ceil
local getinfo, sethook, raw_getmetatable = debug.getinfo, debug.sethook, debug.getmetatable

local COUNT = 100000
local READONLY = 'Attempt to modify a readonly table'

-- Read-only tables: a proxy is an empty table reading through to the real one.
local real_of = setmetatable({}, {__mode = 'k'})

local function readonly_error()
  error(READONLY, 2)
end

-- Python callables Lua sees as functions: type() says 'function' for them.
local builtins = setmetatable({}, {__mode = 'k'})

local function proxy(real)
  local p = setmetatable({}, {__index = real, __newindex = readonly_error, __metatable = false})
  real_of[p] = real
  return p
end

local function copy(t)
  local c = {}
  for k, v in next, t do c[k] = v end
  return c
end

-- The script's globals, for the script running now (loadstring gives them to its chunks).
local current_env

-- The count hook: aborts a script when Python says so (time limit, a failure of the
-- store), then fires on every instruction, raising until the script is gone, even through
-- pcall.  Python also arms the memory limit again there (see LuaSandbox).
local ABORT = {err = 'ERR script aborted'}
local hook
hook = function()
  if py_check() then
    sethook(hook, '', 1)
    error(ABORT, 0)
  end
end

-- Error tables as luaPushErrorBuff builds them: "-CODE msg" or "msg".
local function error_table(buf)
  buf = (find(buf, '\0', 1, true)) and sub(buf, 1, find(buf, '\0', 1, true) - 1) or buf
  local code, msg = 'ERR', buf
  if byte(buf, 1) == 45 then
    local sp = find(buf, ' ', 1, true)
    if sp then
      code, msg = sub(buf, 2, sp - 1), sub(buf, sp + 1)
    else
      msg = sub(buf, 2)
    end
  end
  msg = gsub(gsub(msg, '^[\r\n]+', ''), '[\r\n]+$', '')
  return {err = code .. ' ' .. msg}
end

-- redis.call / redis.pcall
local NO_ARGS = 'Please specify at least one argument for this redis lib call'
local BAD_ARG = 'Lua redis lib command arguments must be strings or integers'

local function to_argv(...)
  local n = select('#', ...)
  if n == 0 then return nil, NO_ARGS end
  local argv = {...}
  for i = 1, n do
    local a = argv[i]
    local ta = type(a)
    if ta == 'number' then
      argv[i] = format('%.17g', a)
    elseif ta ~= 'string' then
      return nil, BAD_ARG
    end
  end
  return argv, n
end

-- redis.call and redis.pcall are Python callables: C functions to Lua, so that the
-- script's frame stays visible for error locations even in "return redis.call(...)".
local redis = {}
redis.call = py_call
redis.pcall = py_pcall
builtins[py_call], builtins[py_pcall] = true, true

-- Errors raised by redis.call travel through Python as userdata: back to their table.
local function unwrap(e)
  if type(e) == 'userdata' then return py_unwrap(e) end
  return e
end

local function single_field(field, ...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  return {[field] = s}
end

redis.status_reply = function(...) return single_field('ok', ...) end
redis.error_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then
    return {err = 'ERR wrong number or type of arguments'}
  end
  if byte(s, 1) ~= 45 then s = '-' .. s end
  return error_table(s)
end

-- Helpers Redis implements in C run behind a Python trampoline (a C function to Lua, so
-- that a script's "return f(...)" keeps its frame): they return true, results... or
-- false, error value, and the trampoline raises the error.
local helpers = {}

-- The trampoline's frame (the first frame that is not kvgate's): its name as the caller
-- sees it, and luaL_where(L, 1) of it ("user_script:3: " or "").
local function c_function()
  local level = 2
  while true do
    local i = getinfo(level, 'Sn')
    if not i then return '', nil end
    if i.source ~= INTERNAL and i.what ~= 'tail' then
      local caller = getinfo(level + 1, 'Sl')
      if caller and caller.currentline > 0 then
        return caller.short_src .. ':' .. caller.currentline .. ': ', i.name
      end
      return '', i.name
    end
    level = level + 1
  end
end

local function fail(msg)  -- luaPushError + luaError
  return false, {err = 'ERR ' .. msg}
end

local function located(msg)  -- luaL_error
  return false, c_function() .. msg
end

local function bad_arg(i, msg)  -- luaL_argerror
  local where, name = c_function()
  return false, where .. format("bad argument #%d to '%s' (%s)", i, name or '?', msg)
end

local function got(n, i, v)
  if i > n then return 'no value' end
  return type(v)
end

local function to_int(v)
  v = tonumber(v) or 0
  if v >= 0 then return floor(v) end
  return ceil(v)
end

function helpers.sha1hex(...)
  if select('#', ...) ~= 1 then return fail('wrong number of arguments') end
  local s = ...
  if type(s) == 'number' then s = tostring(s) elseif type(s) ~= 'string' then s = '' end
  return true, py_sha1(s)
end

function helpers.log(...)
  local n = select('#', ...)
  if n < 2 then return fail('redis.log() requires two arguments or more.') end
  if not tonumber((...)) then return fail('First argument must be a number (log level).') end
  local level = to_int((...))
  if level < 0 or level > 3 then return fail('Invalid debug level.') end
  return true
end

function helpers.setresp(...)
  if select('#', ...) ~= 1 then return fail('redis.setresp() requires one argument.') end
  local resp = to_int((...))
  if resp ~= 2 and resp ~= 3 then return fail('RESP version must be 2 or 3.') end
  if resp == 3 then return fail('redis.setresp(3) is not supported: kvgate runs scripts in RESP2 only') end
  return true
end

function helpers.set_repl(...)
  if select('#', ...) ~= 1 then return fail('redis.set_repl() requires two arguments.') end
  local flags = to_int((...))
  if flags < 0 or flags > 3 then
    return fail('Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.')
  end
  return true
end

function helpers.acl_check_cmd(...)
  local argv, n = to_argv(...)
  if not argv then return fail(n) end
  if not py_known(unpack(argv, 1, n)) then return fail('Invalid command passed to redis.acl_check_cmd()') end
  return true, true
end

-- math.random and math.randomseed as Redis has them, on Python's generator.
local function check_int(n, i, v)
  local num = tonumber(v)
  if num == nil then return nil, 'number expected, got ' .. got(n, i, v) end
  return to_int(num)
end

function helpers.random(...)
  local n = select('#', ...)
  local a, b = ...
  if n > 2 then return located('wrong number of arguments') end
  local r = py_random()
  if n == 0 then return true, r end
  local l, u, err = 1, nil, nil
  if n == 1 then
    u, err = check_int(n, 1, a)
    if err then return bad_arg(1, err) end
    if u < 1 then return bad_arg(1, 'interval is empty') end
  else
    l, err = check_int(n, 1, a)
    if err then return bad_arg(1, err) end
    u, err = check_int(n, 2, b)
    if err then return bad_arg(2, err) end
    if l > u then return bad_arg(2, 'interval is empty') end
  end
  return true, floor(r * (u - l + 1)) + l
end

function helpers.randomseed(...)
  local seed, err = check_int(select('#', ...), 1, (...))
  if err then return bad_arg(1, err) end
  py_random(seed)
  return true
end

local function builtin(helper)
  local f = py_trampoline(helper)
  builtins[f] = true
  return f
end

for name, helper in next, helpers do
  if name ~= 'random' and name ~= 'randomseed' then redis[name] = builtin(helper) end
end
local math_real = copy(math)
math_real.random = builtin(helpers.random)
math_real.randomseed = builtin(helpers.randomseed)

redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.replicate_commands = function() return true end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = '7.0.15', 458767

-- Argument errors of kvgate's Lua wrappers, worded as luaL_argerror: 'level' is the
-- wrapper's frame as seen from the caller of arg_error.
local function arg_error(level, i, msg)
  local info = getinfo(level + 1, 'n')
  local name = info and info.name or '?'
  error(format("bad argument #%d to '%s' (%s)", i, name, msg), level + 2)
end

local function check_table(level, n, t)
  if type(t) ~= 'table' then arg_error(level + 1, 1, 'table expected, got ' .. got(n, 1, t)) end
end

local function check_any(level, n, i)
  if i > n then arg_error(level + 1, i, 'value expected') end
end

local function w_type(...)
  local v = ...
  check_any(1, select('#', ...), 1)
  local t = type(v)
  if t == 'userdata' and builtins[v] then return 'function' end
  return t
end

-- Base functions that must see through the proxies or refuse to write them.
local function w_next(...)
  local t, k = ...
  check_table(1, select('#', ...), t)
  return next(real_of[t] or t, k)
end

local function proxy_next(t, k)
  return next(real_of[t], k)
end

local function w_pairs(...)
  local t = ...
  check_table(1, select('#', ...), t)
  if real_of[t] then return proxy_next, t, nil end
  return next, t, nil
end

local function w_rawget(...)
  local n, t, k = select('#', ...), ...
  check_table(1, n, t)
  check_any(1, n, 2)
  return rawget(real_of[t] or t, k)
end

local function w_rawset(...)
  local n, t, k, v = select('#', ...), ...
  check_table(1, n, t)
  check_any(1, n, 2)
  check_any(1, n, 3)
  if real_of[t] then error(READONLY, 0) end
  if k == nil then error('table index is nil', 0) end
  if k ~= k then error('table index is NaN', 0) end
  return rawset(t, k, v)
end

local function w_setmetatable(...)
  local n, t, mt = select('#', ...), ...
  check_table(1, n, t)
  if n < 2 or (mt ~= nil and type(mt) ~= 'table') then arg_error(1, 2, 'nil or table expected') end
  if real_of[t] then error(READONLY, 0) end
  local old = raw_getmetatable(t)
  if old and rawget(old, '__metatable') ~= nil then error('cannot change a protected metatable', 2) end
  return setmetatable(t, mt)
end

-- Redis's pcall: an error table with an 'err' string comes back as that string.
local function pack(...)
  return {n = select('#', ...), ...}
end

local function w_pcall(...)
  if select('#', ...) == 0 then return false, 'attempt to call a boolean value' end
  local r = pack(raw_pcall(...))
  if r[1] then return unpack(r, 1, r.n) end
  local e = unwrap(r[2])
  if type(e) == 'table' then
    local m = e.err
    if type(m) == 'string' or type(m) == 'number' then e = m end
  end
  return false, e
end

local function w_xpcall(...)
  local n, f, handler = select('#', ...), ...
  if n < 2 then arg_error(1, 2, 'value expected') end
  return xpcall(f, function(e) return handler(unwrap(e)) end)
end

local raw_resume = coroutine.resume
local function resumed(ok, ...)
  if ok then return ok, ... end
  return false, unwrap((...))
end

-- A new coroutine has no hook (Lua 5.1 keeps hook functions per thread): its body sets it.
local raw_create, raw_wrap = coroutine.create, coroutine.wrap
local function hooked(f)
  if type(f) ~= 'function' or getinfo(f, 'S').what == 'C' then
    arg_error(2, 1, 'Lua function expected')
  end
  return function(...)
    sethook(hook, '', COUNT)
    return f(...)
  end
end

local coroutine_real = copy(coroutine)
coroutine_real.resume = function(...)
  return resumed(raw_resume(...))
end
coroutine_real.create = function(...)
  return raw_create(hooked((...)))
end
coroutine_real.wrap = function(...)
  return raw_wrap(hooked((...)))
end

-- Chunks are always parsed as text (Redis cannot load bytecode) and get the script's globals.
local function w_loadstring(...)
  local n, s, name = select('#', ...), ...
  if type(s) == 'number' then s = tostring(s) end
  if type(s) ~= 'string' then arg_error(1, 1, 'string expected, got ' .. got(n, 1, s)) end
  if type(name) == 'number' then name = tostring(name) end
  if name == nil then name = s end
  if type(name) ~= 'string' then arg_error(1, 2, 'string expected, got ' .. type(name)) end
  if byte(s, 1) == 27 then s = ' ' .. s end
  local f, err = raw_loadstring(s, name)
  if f then setfenv(f, current_env) end
  return f, err
end

local function w_load(...)
  local n, reader, name = select('#', ...), ...
  if type(reader) ~= 'function' then arg_error(1, 1, 'function expected, got ' .. got(n, 1, reader)) end
  local parts = {}
  while true do
    local piece = reader()
    if piece == nil or piece == '' then break end
    if type(piece) ~= 'string' then return nil, 'reader function must return a string' end
    parts[#parts + 1] = piece
  end
  return w_loadstring(concat(parts), name or '=(load)')
end

-- The error handler: Redis's __redis__err__handler, skipping kvgate's own frames.
local function user_frame(level)
  local i = getinfo(level, 'nSl')
  while i and i.source == INTERNAL do
    level = level + 1
    i = getinfo(level, 'nSl')
  end
  return i, level
end

local function err_handler(err)
  err = unwrap(err)
  local i, level = user_frame(3)
  if i and i.what == 'C' then i = user_frame(level + 1) end
  if type(err) == 'string' and i and i.currentline > 0 then
    -- raised while kvgate's own code ran (the hook, at the stack's limit): the script's line
    err = gsub(err, '^kvgate:%d+: ', function() return i.short_src .. ':' .. i.currentline .. ': ' end)
  end
  if type(err) ~= 'table' then err = {err = 'ERR ' .. tostring(err)} end
  if i then
    rawset(err, 'source', i.source)
    rawset(err, 'line', i.currentline)
  end
  return err
end

-- The globals every script sees (Redis 7.0's allow-list, less the C libraries lupa lacks).
local base = {
  _VERSION = _VERSION, assert = assert, collectgarbage = collectgarbage, error = error,
  gcinfo = gcinfo, getmetatable = getmetatable, ipairs = ipairs, load = w_load,
  loadstring = w_loadstring, next = w_next, pairs = w_pairs, pcall = w_pcall,
  rawequal = rawequal, rawget = w_rawget, rawset = w_rawset, select = select,
  setmetatable = w_setmetatable, tonumber = tonumber, tostring = tostring, type = w_type,
  unpack = unpack, xpcall = w_xpcall, __redis__err__handler = err_handler,
  string = proxy(string), table = proxy(table), coroutine = proxy(coroutine_real),
  math = proxy(math_real), redis = proxy(redis),
}
getmetatable('').__metatable = proxy({__index = base.string})
local ENV_META = proxy({})

local function new_env(keys, argv)
  local g = copy(base)
  g.KEYS, g.ARGV = keys, argv
  local env = setmetatable({}, {
    __index = function(t, k)
      local v = g[k]
      if v == nil then
        error(format("Script attempted to access nonexistent global variable '%s'", tostring(k)), 2)
      end
      return v
    end,
    __newindex = readonly_error,
    __metatable = ENV_META,
  })
  g._G = env
  real_of[env] = g
  return env
end

-- Python API -------------------------------------------------------------------------

local api = {}
api.keep = 'debug'  -- lupa looks this global up on every call: the string must exist
function api.compile(body)
  if byte(body, 1) == 27 then body = ' ' .. body end
  local f, err = raw_loadstring(body, '@user_script')
  return f, err
end

function api.idle()
  current_env = nil
  sethook(hook, '', COUNT)
end

-- Error details as luaExtractErrorInformation reads them.
function api.error_info(e)
  if type(e) ~= 'table' then
    if type(e) == 'string' or type(e) == 'number' then return false, tostring(e) end
    return false, nil
  end
  local function str(v)
    if type(v) == 'string' or type(v) == 'number' then return tostring(v) end
    return nil
  end
  return true, str(rawget(e, 'err')), str(rawget(e, 'source')), str(rawget(e, 'line'))
end

-- A table reply flattened: '$' bulk, '#' number (text), '_' nil, '-' error, '+' status,
-- '*' array.  Strings are length-prefixed: '$3:abc'.
local STACK_LIMIT = 'ERR reached lua stack limit'
local MAX_DEPTH = 200

local function encode(v, buf, depth)
  local t = type(v)
  if t == 'string' then
    buf[#buf + 1] = '$' .. #v .. ':' .. v
  elseif t == 'number' then
    buf[#buf + 1] = '#' .. format('%.17g', v) .. ';'
  elseif t == 'boolean' then
    buf[#buf + 1] = v and '#1;' or '_'
  elseif t ~= 'table' then
    buf[#buf + 1] = '_'
  elseif depth > MAX_DEPTH then
    buf[#buf + 1] = '-' .. #STACK_LIMIT .. ':' .. STACK_LIMIT
  else
    local err = rawget(v, 'err')
    if type(err) == 'string' then
      buf[#buf + 1] = '-' .. #err .. ':' .. err
      return
    end
    local ok = rawget(v, 'ok')
    if type(ok) == 'string' then
      buf[#buf + 1] = '+' .. #ok .. ':' .. ok
      return
    end
    local d = rawget(v, 'double')
    if type(d) == 'number' then
      local s = format('%.17g', d)
      buf[#buf + 1] = '$' .. #s .. ':' .. s
      return
    end
    local big = rawget(v, 'big_number')
    if type(big) == 'string' then
      big = gsub(big, '[\r\n]', ' ')
      buf[#buf + 1] = '$' .. #big .. ':' .. big
      return
    end
    local verbatim = rawget(v, 'verbatim_string')
    if type(verbatim) == 'table' and type(rawget(verbatim, 'format')) == 'string' then
      local s = rawget(verbatim, 'string')
      if type(s) == 'string' then
        buf[#buf + 1] = '$' .. #s .. ':' .. s
        return
      end
    end
    local map = rawget(v, 'map')
    if type(map) == 'table' then
      local at, n = #buf + 1, 0
      buf[at] = false
      for k, item in next, map do
        encode(k, buf, depth + 1)
        encode(item, buf, depth + 1)
        n = n + 2
      end
      buf[at] = '*' .. n .. ';'
      return
    end
    local set = rawget(v, 'set')
    if type(set) == 'table' then
      local at, n = #buf + 1, 0
      buf[at] = false
      for k in next, set do
        encode(k, buf, depth + 1)
        n = n + 1
      end
      buf[at] = '*' .. n .. ';'
      return
    end
    local at, n = #buf + 1, 0
    buf[at] = false
    while true do
      local item = rawget(v, n + 1)
      if item == nil then break end
      encode(item, buf, depth + 1)
      n = n + 1
    end
    buf[at] = '*' .. n .. ';'
  end
end

function api.encode(v)
  local buf = {}
  encode(v, buf, 0)
  return concat(buf)
end

-- Runs a script; answers only strings, numbers and booleans (Python must get no table: the
-- memory limit is armed while the script runs).  true, type, value (a table encoded), or
-- false, error_info(...).
function api.run(f, keys, argv)
  local env = new_env(keys, argv)
  setfenv(f, env)
  current_env = env
  sethook(hook, '', COUNT)
  local ok, res = xpcall(f, err_handler)
  py_disarm()
  current_env = nil
  sethook(hook, '', COUNT)
  local t = type(res)
  if not ok then return false, api.error_info(res) end
  if t == 'table' then return true, t, api.encode(res) end
  if t == 'string' or t == 'number' or t == 'boolean' then return true, t, res end
  return true, t, nil
end

return api
"""


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


NO_ARGS = "Please specify at least one argument for this redis lib call"
BAD_ARG = "Lua redis lib command arguments must be strings or integers"


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


class _Builtin:
    """A Python function as Lua sees it: a C function (``tostring`` shows no Python).  Every
    way into Python runs inside :meth:`LuaSandbox.callback`."""

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
            return 1, box.error_table(b"ERR redis.call/pcall can only be called inside a script invocation")
        if not args:
            return 1, box.error_table(b"ERR " + NO_ARGS.encode())
        argv = [lua_arg(a) for a in args]
        if None in argv:
            return 1, box.error_table(b"ERR " + BAD_ARG.encode())
        if not run.expired():
            try:
                return box.call(run, argv)  # type: ignore[arg-type]
            except Exception as exc:  # a store failure: abort the script, re-raised after it
                run.failure = exc
        return 2, box.error_table(b"ERR script aborted")

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
            box.set_limit(LIMITS.memory_limit)
        return run.expired()

    def disarm(self) -> None:
        self.box.armed = False

    def random(self, seed: int | None = None) -> float | None:
        if seed is not None:
            self.rng.seed(seed)
            return None
        return self.rng.random()

    @staticmethod
    def sha1(data: bytes) -> bytes:
        return sha1hex(data)

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

    def __init__(self) -> None:
        self.lua = lua51.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=self._deny_attributes,
            max_memory=0,  # counted, not limited: see limit()
        )
        self.run: _Run | None = None
        self.armed = False  # a script runs: the hook may arm the memory limit
        self.inside = 0  # depth of calls into Python
        self._limit: int | None = None
        self.scripts: OrderedDict[str, Script] = OrderedDict()
        callbacks = _Callbacks(self)
        loader = self.lua.eval("function(src, name) return assert(loadstring(src, name)) end")
        self.api = loader(BOOTSTRAP, INTERNAL_SOURCE)(
            _Builtin(self, callbacks.call),
            _Builtin(self, callbacks.pcall),
            _Builtin(self, callbacks.unwrap),
            callbacks.check,
            callbacks.random,
            callbacks.sha1,
            callbacks.known,
            lambda helper: _Trampoline(self, helper),
            _Builtin(self, callbacks.disarm),
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
        if not LIMITS.memory_limit:
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
            self.set_limit(max(LIMITS.memory_limit, need))

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
            raise ReplyError(_one_line(f"ERR Error compiling script (new function): {_text(error or b'')}"))
        script = Script(sha, shebang, function)
        self.scripts[sha] = script
        while len(self.scripts) > LIMITS.compiled_scripts:
            self.scripts.popitem(last=False)
        return script

    # --- running ------------------------------------------------------------------

    def execute(
        self, script: Script, t: Txn, keys: Sequence[bytes], argv: Sequence[bytes], ro: bool
    ) -> Reply:
        run = _Run(t, ro or script.shebang.no_writes, time.monotonic() + LIMITS.time_limit_ms / 1000)
        keys_table, argv_table = self.lua.table_from(list(keys)), self.lua.table_from(list(argv))
        self.run, self.armed = run, True
        self.set_limit(LIMITS.memory_limit)
        try:
            outcome = self.api.run(script.function, keys_table, argv_table)
        except lua51.LuaError as exc:  # aborted outside the script's own xpcall
            outcome = (False, False, str(exc).encode())
        finally:
            self.run, self.armed = None, False
            self.set_limit(None)
        try:
            return self._reply(run, script.sha, outcome)
        finally:
            self._settle(run)

    def _reply(self, run: _Run, sha: str, outcome: tuple[Any, ...]) -> Reply:
        if run.failure is not None:
            raise run.failure
        if run.timed_out:
            return ReplyError(
                f"ERR script timed out after {LIMITS.time_limit_ms} ms and was aborted "
                "(kvgate's script time limit)"
            )
        if outcome[0]:
            return to_reply(outcome[1], outcome[2])
        is_table, msg, source, line = (*outcome[1:], None, None, None)[:4]
        if not is_table and msg == b"not enough memory":
            run.out_of_memory = True
            return ReplyError(
                "ERR script ran out of memory and was aborted "
                f"(kvgate's script memory limit is {_size(LIMITS.memory_limit)})"
            )
        return script_error(sha, is_table, msg, source, line)

    def _settle(self, run: _Run) -> None:
        """After an abort the hook fires on every instruction: back to normal.  Lua 5.1 has
        no emergency collection: collect the garbage of a big script now."""
        if run.timed_out or run.failure is not None:
            self.api.idle()
        if run.out_of_memory or self.lua.get_memory_used() > LIMITS.memory_limit // 2:
            self.lua.gccollect()

    # --- redis.call -----------------------------------------------------------------

    def call(self, run: _Run, argv: list[bytes]) -> tuple[int, Any]:
        """Run one command for ``redis.call``: (0, value) or (1, error table)."""
        cmd = resolve(argv)
        if cmd is None:
            return 1, self.script_error_table("Unknown Redis command called from script")
        if not cmd.arity_ok(len(argv)):
            return 1, self.script_error_table("Wrong number of args calling Redis command from script")
        if "noscript" in cmd.flags:
            return 1, self.script_error_table("This Redis command is not allowed from script")
        if run.read_only and ("write" in cmd.flags or cmd.name in MAY_REPLICATE):
            return 1, self.script_error_table("Write commands are not allowed from read-only scripts.")
        reply = _dispatch(run.t, cmd, argv)
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


def to_reply(kind: bytes, value: Any) -> Reply:
    """A script's return value as a reply (``luaReplyToRedisReply``)."""
    if kind == b"table":
        return decode(value)
    if kind == b"string":
        return value  # type: ignore[no-any-return]
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
        text = _text(msg)[:100] if msg is not None else "execution failure"
        return ReplyError(_one_line(f"ERR Error running script {sha}, {text} "))
    if msg is None:  # error({}): Redis 7.0 crashes here
        return ReplyError(f"ERR Error running script {sha}, execution failure ")
    text = _text(msg)
    if source is not None and line is not None:
        text += f" script: {sha}, on {_text(source)}:{_text(line)}."
    return ReplyError(_one_line(text))


#: Bytes a script may allocate beyond the memory limit between a call into Python and the
#: next count hook (lupa's pushes, a stack growing).
PUSH_SLACK = 1024 * 1024


def _push_size(result: Any) -> int:
    if isinstance(result, (bytes, str)):
        return len(result) + 64
    if isinstance(result, tuple):
        return sum(_push_size(r) for r in result)
    return 0


def _one_line(text: str) -> str:
    """Redis maps CR and LF to spaces in formatted error replies."""
    return text.replace("\r", " ").replace("\n", " ")


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n} bytes"


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


# --- commands and the engine -----------------------------------------------------------


def resolve(argv: Sequence[bytes]) -> Command | None:
    """``lookupCommand``: the command (or subcommand) ``argv`` names, or None."""
    name = argv[0].lower()
    if b"|" in name:
        return None
    cmd = default_table().get(name.decode("latin-1"))
    if cmd is None or not cmd.subcommands or len(argv) == 1:
        return cmd
    return cmd.subcommands.get(argv[1].lower())


def is_status(cmd: Command, argv: Sequence[bytes]) -> bool:
    if cmd.name == "set":
        return not any(a.upper() == b"GET" for a in argv[3:])
    if cmd.name == "ping":
        return len(argv) == 1
    return cmd.name in STATUS_REPLIES


def _dispatch(t: Txn, cmd: Command, argv: list[bytes]) -> Reply:
    """Run a checked command on the engine; one it lacks answers the engine's own error."""
    handler = HANDLERS.get(cmd.name)
    if handler is None:
        return ReplyError(not_supported(cmd.name, backend_name(t)))
    try:
        return handler(t, argv)
    except ReplyError as exc:
        return exc


def backend_name(t: Txn) -> str:
    """The store's name as its backend gives it to the engine (``SqliteTxn``: sqlite)."""
    return getattr(t, "backend", None) or type(t).__name__.lower().removesuffix("txn")


_LOCAL = threading.local()


def sandbox() -> LuaSandbox:
    """This thread's sandbox, created on first use."""
    box: LuaSandbox | None = getattr(_LOCAL, "sandbox", None)
    if box is None:
        box = _LOCAL.sandbox = LuaSandbox()
    return box


# --- the script store ------------------------------------------------------------------

# Scripts seen by units that may not write (EVAL_RO on a read-only connection): kept here
# until a writing unit stores them, so that EVALSHA finds them as in Redis.
_UNSAVED: OrderedDict[bytes, bytes] = OrderedDict()
_UNSAVED_MAX = 1000
_UNSAVED_LOCK = threading.Lock()


def remember(t: Txn, sha: bytes, body: bytes) -> None:
    if t.writable:
        t.script_put(sha, body)
        return
    with _UNSAVED_LOCK:
        _UNSAVED[sha] = body
        while len(_UNSAVED) > _UNSAVED_MAX:
            _UNSAVED.popitem(last=False)


def lookup(t: Txn, sha: bytes) -> bytes | None:
    body = t.script_get(sha)
    if body is not None:
        return body
    with _UNSAVED_LOCK:
        body = _UNSAVED.get(sha)
        if body is not None and t.writable:
            del _UNSAVED[sha]
    if body is not None and t.writable:
        t.script_put(sha, body)
    return body


def forget_all(t: Txn) -> None:
    t.script_flush()
    with _UNSAVED_LOCK:
        _UNSAVED.clear()


# --- EVAL and friends ------------------------------------------------------------------


def _numkeys(args: Args) -> int:
    numkeys = parse_int(args[2])
    if numkeys > len(args) - 3:
        raise ReplyError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise ReplyError("ERR Number of keys can't be negative")
    return numkeys


def _run(t: Txn, args: Args, script: Script, numkeys: int, ro: bool) -> Reply:
    if ro and not script.shebang.compat and not script.shebang.no_writes:
        raise ReplyError(RO_WITH_WRITE_FLAG)
    keys, argv = args[3 : 3 + numkeys], args[3 + numkeys :]
    return sandbox().execute(script, t, keys, argv, ro)


def _eval(t: Txn, args: Args, ro: bool) -> Reply:
    numkeys = _numkeys(args)
    body = args[1]
    sha = sha1hex(body)
    script = sandbox().script(sha.decode(), body)
    remember(t, sha, body)
    return _run(t, args, script, numkeys, ro)


def _evalsha(t: Txn, args: Args, ro: bool) -> Reply:
    if len(args[1]) != 40:
        raise ReplyError(NOSCRIPT)
    numkeys = _numkeys(args)
    sha = args[1].lower()
    body = lookup(t, sha)
    if body is None:
        raise ReplyError(NOSCRIPT)
    script = sandbox().script(sha.decode("latin-1"), body)
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
    sha = sha1hex(body)
    sandbox().script(sha.decode(), body)
    remember(t, sha, body)
    return sha


@command("script|exists")
def script_exists(t: Txn, args: Args) -> Reply:
    return [1 if lookup(t, sha.lower()) is not None else 0 for sha in args[2:]]


@command("script|flush")
def script_flush(t: Txn, args: Args) -> Reply:
    if len(args) > 3 or (len(args) == 3 and args[2].lower() not in (b"sync", b"async")):
        raise ReplyError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    forget_all(t)
    return OK


@command("script|kill")
def script_kill(t: Txn, args: Args) -> Reply:
    # A unit runs one command at a time: no script is ever running when this one runs.
    raise ReplyError("NOTBUSY No scripts in execution right now.")


@command("script|help")
def script_help(t: Txn, args: Args) -> Reply:
    return list(SCRIPT_HELP)


__all__: list[str] = ["LIMITS", "LuaSandbox", "configure", "parse_shebang", "sandbox", "sha1hex"]
