-- kvgate's Lua sandbox: runs once per Lua runtime, as chunk "=kvgate" (its frames are
-- hidden from error locations).  Receives the Python callbacks and the error texts Python
-- shares with it (kvgate/error_texts.py); returns the functions Python calls (api).
-- See sandbox.py for the Python side and the package docstring for what scripts may do.

local py_call, py_pcall, py_unwrap, py_check, py_random, py_sha1, py_known, py_trampoline, py_disarm,
  py_rep, py_thread, bounded_strings, NO_ARGS, BAD_ARG, ABORTED = ...
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
local ABORT = {err = ABORTED}
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
        return caller.short_src .. ':' .. caller.currentline .. ': ', i.name, i.namewhat
      end
      return '', i.name, i.namewhat
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
  local where, name, namewhat = c_function()
  if namewhat == 'method' then  -- ('x'):rep(): self is not counted
    i = i - 1
    if i == 0 then return false, where .. format("calling '%s' on bad self (%s)", name, msg) end
  end
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

-- String functions the time limit can stop (strings.lua; string.rep is Python's, so that
-- string.rep('', 2^53) and a result past the memory limit answer at once).  They stand
-- for C functions: coroutine.create refuses them as it refuses string.find in Redis.
local stands_for_c = setmetatable({}, {__mode = 'k'})
do
  local bounded = bounded_strings(INTERNAL, builtins, raw_getmetatable)
  string.find, string.match, string.gsub = bounded.find, bounded.match, bounded.gsub
  string.gmatch, string.gfind = bounded.gmatch, bounded.gmatch
  table.sort = bounded.sort
  for _, f in next, {bounded.find, bounded.match, bounded.gsub, bounded.gmatch, bounded.sort} do
    stands_for_c[f] = true
  end
  string.rep = py_rep
  builtins[py_rep] = true
end

-- string.rep's arguments as luaL_checklstring and luaL_checkinteger read them: true, the
-- string, the count (a number), or false, the error.
function helpers.rep_args(...)
  local n, s, count = select('#', ...), ...
  local ts = type(s)
  if ts == 'number' then
    s = tostring(s)
  elseif ts ~= 'string' then
    return bad_arg(1, 'string expected, got ' .. got(n, 1, s))
  end
  local c = (type(count) == 'number' or type(count) == 'string') and tonumber(count)
  if not c then return bad_arg(2, 'number expected, got ' .. got(n, 2, count)) end
  return true, s, c
end

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
-- While it may run, the watchdog knows it (sandbox.py: it makes the hook of every thread of
-- a script past its time limit fire at once); 'live' keeps it alive until the watchdog has
-- forgotten it: when it returns, or when the script ends (api.forget_threads).
local raw_create, raw_wrap, running = coroutine.create, coroutine.wrap, coroutine.running
local live = {}

local function finished(co, ...)
  py_thread(tostring(co), true)
  live[co] = nil
  return ...
end

local function hooked(f)
  if type(f) ~= 'function' or stands_for_c[f] or getinfo(f, 'S').what == 'C' then
    arg_error(2, 1, 'Lua function expected')
  end
  return function(...)
    sethook(hook, '', COUNT)
    local co = running()
    live[co] = true
    py_thread(tostring(co), false)
    return finished(co, f(...))
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
  while i do
    if i.source ~= INTERNAL then
      -- a C function kvgate's code called (error() in a wrapper, C gsub under string.gsub)
      -- is kvgate's too; one the script called is the script's
      if i.what ~= 'C' then break end
      local caller = getinfo(level + 1, 'S')
      if not caller or caller.source ~= INTERNAL then break end
    end
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

function api.forget_threads()  -- after the watchdog has: the coroutines may go
  live = {}
end

api.rep_args = helpers.rep_args

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
