-- String functions a script's time limit can stop.  Loaded once per Lua runtime as chunk
-- "=kvgate", before sandbox.lua, which installs what this returns in place of string.find,
-- string.match, string.gmatch (and gfind), string.gsub and table.sort.
--
-- Lua's count hook fires between VM instructions, never inside a C function, and Lua 5.1's
-- pattern matcher backtracks inside one C call: string.find(string.rep('a', 200),
-- string.rep('a*', 4) .. 'b') runs for seconds, string.find(s, 'a*b') is quadratic in #s,
-- even a plain find is O(#s * #p).  So each call estimates, from the pattern and the
-- subject's length, how many steps the C matcher could take at worst:
--
--   * within BUDGET (a few ms of C at worst), the C function runs, as before;
--   * past it, a port of Lua 5.1.5's matcher (lstrlib.c) in Lua runs instead: the same
--     results and error texts, but made of VM instructions, so the hook (and the watchdog
--     that makes it fire, see sandbox.py) stops it at the time limit;
--   * a plain find past PLAIN_BUDGET runs the C search over bounded windows in turn.
--
-- The estimate, for n = #s: each start position costs at most (k items) x (w, the widest
-- single-character class); a quantifier (*, +, -) followed by more than capture marks
-- multiplies by n + 1, and so do %b and back-references; '?' multiplies by 2.  Without any
-- multiplier the expansions of a final quantifier add up to n at most (a match ends a
-- find, and gmatch and gsub go on after it).  Patterns that would raise an error (malformed,
-- bad capture indexes) always take the port, which raises it exactly as C would, at the
-- same point of the match.
--
-- Differences from the C functions, beyond speed: an error raised through a tail call to
-- one of these (return string.find(s, '%')) has no line, as for the base-library wrappers.

local INTERNAL, builtins, raw_getmetatable = ...
local c_find, c_match, c_gmatch, c_gsub = string.find, string.match, string.gmatch, string.gsub
local c_sort = table.sort
local byte, char, sub, format = string.byte, string.char, string.sub, string.format
local concat, unpack = table.concat, unpack
local type, tostring, tonumber, select, error = type, tostring, tonumber, select, error
local rawget, rawequal = rawget, rawequal
local floor, ceil = math.floor, math.ceil
local getinfo = debug.getinfo

-- Estimated matcher steps a C call may take (at 2 to 8 ns a step: at most ~80 ms).
local BUDGET = 1e7
-- Bytes a C plain search may compare (memchr and memcmp: ~50 ms at worst).
local PLAIN_BUDGET = 2 ^ 30
-- table.sort hands tables longer than this a Lua comparison (C's own takes ~20 ms here).
local SORT_DIRECT = 100000

local MAXCAPTURES = 32
local CAP_UNFINISHED, CAP_POSITION = -1, -2
local INT_MIN = -9223372036854775808

-- Item kinds of a compiled pattern.
local DONE, SINGLE, OPEN, POS, CLOSE, FINAL, BALANCE, FRONTIER, BACKREF, MALFORMED = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
local Q_NONE, Q_OPT, Q_STAR, Q_PLUS, Q_MIN = 0, 63, 42, 43, 45 -- '?', '*', '+', '-'

-- Errors as the C functions raise them -----------------------------------------------

-- A tail call to a Lua function would take its caller's frame off the stack, and with it
-- the name and line an error reports: 'return pass(f(...))' keeps it (the call to pass,
-- once f has returned, cannot fail).
local function pass(...)
  return ...
end

-- The function the script called stands for the C function: it is the outermost of the
-- kvgate frames running now.  Its name as its caller sees it (luaL_argerror's), and
-- luaL_where(L, 1): where its caller is, when that is a line of Lua.
local function c_frame()
  local level = 2
  while true do
    local above = getinfo(level + 1, 'S')
    if not above or above.source ~= INTERNAL then break end
    level = level + 1
  end
  local info = getinfo(level, 'n')
  local caller = getinfo(level + 1, 'Sl')
  local at = ''
  if caller and caller.currentline > 0 then at = caller.short_src .. ':' .. caller.currentline .. ': ' end
  return info.name, info.namewhat, at
end

local function fail(msg)  -- luaL_error
  local _, _, at = c_frame()
  error(at .. msg, 0)
end

local function arg_fail(narg, extramsg)  -- luaL_argerror
  local name, namewhat, at = c_frame()
  if namewhat == 'method' then
    narg = narg - 1
    if narg == 0 then error(at .. format("calling '%s' on bad self (%s)", name, extramsg), 0) end
  end
  error(at .. format("bad argument #%d to '%s' (%s)", narg, name or '?', extramsg), 0)
end

local function typename(v)
  if builtins[v] then return 'function' end
  return type(v)
end

local function got(n, i, v)
  if i > n then return 'no value' end
  return typename(v)
end

local function check_string(n, i, v)  -- luaL_checklstring: numbers become strings
  local t = type(v)
  if t == 'string' then return v end
  if t == 'number' then return tostring(v) end
  arg_fail(i, 'string expected, got ' .. got(n, i, v))
end

local function integer(x)  -- (lua_Integer) x, as the C cast gives it on x86-64
  if x ~= x or x >= 9223372036854775808 or x < INT_MIN then return INT_MIN end
  if x >= 0 then return floor(x) end
  return ceil(x)
end

local function opt_integer(n, i, v, default)  -- luaL_optinteger
  if v == nil then return default end
  local x = (type(v) == 'number' or type(v) == 'string') and tonumber(v)
  if not x then arg_fail(i, 'number expected, got ' .. got(n, i, v)) end
  return pass(integer(x))
end

local function opt_int(n, i, v, default)  -- luaL_optint: the same, cast to a C int
  if v == nil then return default end
  local x = opt_integer(n, i, v, default) % 4294967296
  if x >= 2147483648 then x = x - 4294967296 end
  return x
end

local function start_of(init, len)  -- str_find_aux's init, as a 1-based position
  if init < 0 then
    init = init + len + 1
    if init < 0 then init = 0 end
  end
  init = init - 1
  if init < 0 then init = 0 elseif init > len then init = len end
  return init + 1
end

-- Patterns ---------------------------------------------------------------------------

local classes = {}  -- single-character class text -> {[byte] = true}, asked of C itself
local nclasses = 0

local function class_of(text)
  local set = classes[text]
  if set then return set end
  set = {}
  if #text == 1 and text ~= '.' then
    set[byte(text)] = true
  else
    local pattern = '^' .. text
    for c = 0, 255 do
      if c_find(char(c), pattern) then set[c] = true end
    end
  end
  if #text <= 64 then  -- kept across scripts: only small ones
    if nclasses >= 512 then classes, nclasses = {}, 0 end
    classes[text], nclasses = set, nclasses + 1
  end
  return set
end

local function is_alnum(x)
  return (x >= 48 and x <= 57) or (x >= 65 and x <= 90) or (x >= 97 and x <= 122)
end

local function single_pattern(text)  -- a C pattern matching one character of class 'text'
  if #text == 1 and text ~= '.' and not is_alnum(byte(text)) then return '%' .. text end
  return text
end

-- A pattern as the C matcher walks it: the items are the same whatever the subject, so
-- they are read once.  An item that would raise (malformed) ends the list.
local function compile(p)
  local len = #p
  local kind, set, quant, arg1, arg2, text, run = {}, {}, {}, {}, {}, {}, {}
  local pat = {kind = kind, set = set, quant = quant, arg1 = arg1, arg2 = arg2, text = text, run = run}
  local i, pi = 0, 1

  local function class_end(at)  -- classEnd: the position after the class at 'at', or nil, error
    local c = byte(p, at)
    at = at + 1
    if c == 37 then  -- '%'
      if at > len then return nil, "malformed pattern (ends with '%')" end
      return at + 1
    elseif c == 91 then  -- '['
      if byte(p, at) == 94 then at = at + 1 end
      repeat
        if at > len then return nil, "malformed pattern (missing ']')" end
        local cc = byte(p, at)
        at = at + 1
        if cc == 37 and at <= len then at = at + 1 end
      until byte(p, at) == 93
      return at + 1
    end
    return at
  end

  while true do
    i = i + 1
    local c = byte(p, pi)
    if c == nil then
      kind[i] = DONE
      break
    elseif c == 40 then  -- '('
      if byte(p, pi + 1) == 41 then kind[i], pi = POS, pi + 2 else kind[i], pi = OPEN, pi + 1 end
    elseif c == 41 then  -- ')'
      kind[i], pi = CLOSE, pi + 1
    elseif c == 36 and pi == len then  -- '$' last
      kind[i], pi = FINAL, pi + 1
    elseif c == 37 and byte(p, pi + 1) == 98 then  -- '%b'
      if pi + 3 > len then
        kind[i], arg1[i] = MALFORMED, 'unbalanced pattern'
        break
      end
      kind[i], arg1[i], arg2[i], pi = BALANCE, byte(p, pi + 2), byte(p, pi + 3), pi + 4
    elseif c == 37 and byte(p, pi + 1) == 102 then  -- '%f'
      if byte(p, pi + 2) ~= 91 then
        kind[i], arg1[i] = MALFORMED, "missing '[' after '%f' in pattern"
        break
      end
      local ep, err = class_end(pi + 2)
      if not ep then
        kind[i], arg1[i] = MALFORMED, err
        break
      end
      kind[i], set[i], pi = FRONTIER, class_of(sub(p, pi + 2, ep - 1)), ep
    elseif c == 37 and (byte(p, pi + 1) or 0) >= 48 and byte(p, pi + 1) <= 57 then  -- '%0'..'%9'
      kind[i], arg1[i], pi = BACKREF, byte(p, pi + 1) - 49, pi + 2
    else
      local ep, err = class_end(pi)
      if not ep then
        kind[i], arg1[i] = MALFORMED, err
        break
      end
      local q = byte(p, ep)
      text[i] = sub(p, pi, ep - 1)
      kind[i], set[i] = SINGLE, class_of(text[i])
      if q == Q_OPT or q == Q_STAR or q == Q_PLUS or q == Q_MIN then
        quant[i], pi = q, ep + 1
        run[i] = '^' .. single_pattern(text[i]) .. '*'  -- the run max_expand counts, in C
      else
        quant[i], pi = Q_NONE, ep
      end
    end
  end
  pat.n = i

  -- What the estimate needs, and whether the C matcher could raise an error.
  local items, width, multipliers, options, safe = 0, 1, 0, 0, true
  local level, open = 0, {}
  for j = 1, pat.n do
    local k = kind[j]
    items = items + 1
    if k == SINGLE then
      if #text[j] > width then width = #text[j] end
      local q = quant[j]
      if q == Q_OPT then
        options = options + 1
      elseif q ~= Q_NONE then
        for after = j + 1, pat.n do
          local ka = kind[after]
          if ka ~= OPEN and ka ~= POS and ka ~= CLOSE and ka ~= DONE then
            multipliers = multipliers + 1
            break
          end
        end
      end
    elseif k == BALANCE or k == BACKREF then
      multipliers = multipliers + 1
      if k == BACKREF and (arg1[j] < 0 or arg1[j] >= level or open[arg1[j] + 1]) then safe = false end
    elseif k == OPEN or k == POS then
      level = level + 1
      if level > MAXCAPTURES then safe = false end
      open[level] = (k == OPEN)
    elseif k == CLOSE then
      local l = level
      while l > 0 and not open[l] do l = l - 1 end
      if l == 0 then safe = false else open[l] = false end
    elseif k == MALFORMED then
      safe = false
    end
  end
  for l = 1, level do
    if open[l] then safe = false end
  end
  pat.items, pat.width, pat.multipliers, pat.options, pat.safe, pat.level =
    items, width, multipliers, options, safe, level

  -- Where a match may start: the class of the first item that takes a character, if a
  -- match needs one (the port skips to it with a C search, linear in the distance).
  for j = 1, pat.n do
    local k = kind[j]
    if k == SINGLE and (quant[j] == Q_NONE or quant[j] == Q_PLUS) then
      if text[j] ~= '.' then pat.first = single_pattern(text[j]) end
      break
    elseif k ~= OPEN and k ~= POS then
      break
    end
  end
  return pat
end

local function matcher_text(p)  -- the pattern as C's matcher reads it: up to a zero byte
  local zero = c_find(p, '\0', 1, true)
  if zero then return sub(p, 1, zero - 1) end
  return p
end

local function has_specials(p)  -- strpbrk(p, SPECIALS): up to the first zero byte too
  return c_find(matcher_text(p), '[%^%$%*%+%?%.%(%[%%%-]') ~= nil
end

-- Patterns by their text, for find, match and gsub (a leading '^' anchors) and for gmatch
-- (5.1's gmatch reads '^' as a character).
local analyses, gmatch_patterns, cached = {}, {}, 0

local function remember(cache, p, value)
  if #p > 256 then return value end  -- kept across scripts: only small ones
  if cached >= 256 then analyses, gmatch_patterns, cached = {}, {}, 0 end
  cached = cached + 1
  if cache == 'gmatch' then gmatch_patterns[p] = value else analyses[p] = value end
  return value
end

local function analysed(p)
  local a = analyses[p]
  if a then return a end
  local text = matcher_text(p)
  local anchor = byte(text, 1) == 94
  return remember('find', p, {plain = not has_specials(p), anchor = anchor, pat = compile(anchor and sub(text, 2) or text)})
end

local function gmatch_pattern(p)
  return gmatch_patterns[p] or remember('gmatch', p, compile(matcher_text(p)))
end

local function cost(pat, n, starts)
  if pat.multipliers == 0 and pat.options == 0 then
    return (starts * pat.items + n) * pat.width
  end
  return starts * (n + 1) ^ pat.multipliers * 2 ^ pat.options * (pat.items + n) * pat.width
end

-- The matcher: lstrlib.c's match(), on positions (1-based; n + 1 is the end). -----------

local do_match

local function max_expand(ms, s, i)
  local _, e = c_find(ms.src, ms.pat.run[i], s)  -- the run of matching characters (linear)
  while e >= s - 1 do
    local r = do_match(ms, e + 1, i + 1)
    if r then return r end
    e = e - 1
  end
  return nil
end

local function min_expand(ms, s, i)
  local set, src, n = ms.pat.set[i], ms.src, ms.n
  while true do
    local r = do_match(ms, s, i + 1)
    if r then return r end
    if s <= n and set[byte(src, s)] then s = s + 1 else return nil end
  end
end

local function start_capture(ms, s, i, what)
  local level = ms.level
  if level >= MAXCAPTURES then fail('too many captures') end
  level = level + 1
  ms.cinit[level], ms.clen[level], ms.level = s, what, level
  local r = do_match(ms, s, i + 1)
  if not r then ms.level = ms.level - 1 end
  return r
end

local function end_capture(ms, s, i)
  local l = ms.level
  while l > 0 and ms.clen[l] ~= CAP_UNFINISHED do l = l - 1 end
  if l == 0 then fail('invalid pattern capture') end
  ms.clen[l] = s - ms.cinit[l]
  local r = do_match(ms, s, i + 1)
  if not r then ms.clen[l] = CAP_UNFINISHED end
  return r
end

do_match = function(ms, s, i)
  local pat, src, n = ms.pat, ms.src, ms.n
  local kind, set, quant = pat.kind, pat.set, pat.quant
  while true do
    local k = kind[i]
    if k == SINGLE then
      local q = quant[i]
      local m = s <= n and set[i][byte(src, s)]
      if q == Q_NONE then
        if not m then return nil end
        s, i = s + 1, i + 1
      elseif q == Q_OPT then
        if m then
          local r = do_match(ms, s + 1, i + 1)
          if r then return r end
        end
        i = i + 1
      elseif q == Q_STAR then
        return pass(max_expand(ms, s, i))
      elseif q == Q_PLUS then
        if not m then return nil end
        return pass(max_expand(ms, s + 1, i))
      else
        return pass(min_expand(ms, s, i))
      end
    elseif k == DONE then
      return s
    elseif k == OPEN then
      return pass(start_capture(ms, s, i, CAP_UNFINISHED))
    elseif k == POS then
      return pass(start_capture(ms, s, i, CAP_POSITION))
    elseif k == CLOSE then
      return pass(end_capture(ms, s, i))
    elseif k == FINAL then
      if s == n + 1 then return s end
      return nil
    elseif k == BALANCE then
      local b, e = pat.arg1[i], pat.arg2[i]
      if s > n or byte(src, s) ~= b then return nil end
      local cont, j = 1, s + 1
      while true do
        if j > n then return nil end
        local c = byte(src, j)
        if c == e then
          cont = cont - 1
          if cont == 0 then break end
        elseif c == b then
          cont = cont + 1
        end
        j = j + 1
      end
      s, i = j + 1, i + 1
    elseif k == FRONTIER then
      local f = set[i]
      local previous = s == 1 and 0 or byte(src, s - 1)
      local current = s <= n and byte(src, s) or 0
      if f[previous] or not f[current] then return nil end
      i = i + 1
    elseif k == BACKREF then
      local l = pat.arg1[i] + 1
      if l < 1 or l > ms.level or ms.clen[l] == CAP_UNFINISHED then fail('invalid capture index') end
      local len = ms.clen[l]
      if len < 0 or n - s + 1 < len then return nil end
      local init = ms.cinit[l]
      if sub(src, s, s + len - 1) ~= sub(src, init, init + len - 1) then return nil end
      s, i = s + len, i + 1
    else  -- MALFORMED: raised when reached, as C does
      fail(pat.arg1[i])
    end
  end
end

local function new_state(src, pat)
  return {src = src, n = #src, pat = pat, level = 0, cinit = {}, clen = {}}
end

local function capture(ms, i, s, e)  -- get_onecapture, i from 0
  if i >= ms.level then
    if i == 0 then return sub(ms.src, s, e - 1) end
    fail('invalid capture index')
  end
  local l = ms.clen[i + 1]
  if l == CAP_UNFINISHED then fail('unfinished capture') end
  local init = ms.cinit[i + 1]
  if l == CAP_POSITION then return init end
  return sub(ms.src, init, init + l - 1)
end

local function captures(ms, s, e, whole)  -- push_captures
  local count = ms.level
  if count == 0 and whole then count = 1 end
  if count == 0 then return end
  if count == 1 then return pass(capture(ms, 0, s, e)) end
  local out = {}
  for i = 1, count do out[i] = capture(ms, i - 1, s, e) end
  return unpack(out, 1, count)
end

-- The next position from 'at' where a match may start (the first item's class), or nil.
local function next_start(ms, at)
  local first = ms.pat.first
  if not first or at > ms.n then return at end
  return (c_find(ms.src, first, at))
end

local function port_find(src, pat, start, anchor, find)
  local ms = new_state(src, pat)
  local s = start
  while true do
    if not anchor then
      s = next_start(ms, s)
      if not s then return nil end
    end
    ms.level = 0
    local e = do_match(ms, s, 1)
    if e then
      if find then return s, e - 1, captures(ms, nil, nil, false) end
      return pass(captures(ms, s, e, true))
    end
    s = s + 1
    if anchor or s > ms.n + 1 then return nil end
  end
end

local function plain_find(s, p, start)  -- lmemfind over bounded C searches
  local n, m = #s, #p
  local last = n - m + 1  -- the last position a match may start at
  if m <= 32768 then
    local window = floor(PLAIN_BUDGET / m)
    local at = start
    while at <= last do
      local a, b = c_find(sub(s, at, at + window + m - 2), p, 1, true)
      if a then return at + a - 1, at + b - 1 end
      at = at + window
    end
    return nil
  end
  local first, piece = sub(p, 1, 1), 65536
  local at = start
  while true do
    at = c_find(s, first, at, true)
    if not at or at > last then return nil end
    local equal, from = true, 0
    while from < m do
      local to = from + piece
      if to > m then to = m end
      if sub(s, at + from, at + to - 1) ~= sub(p, from + 1, to) then
        equal = false
        break
      end
      from = to
    end
    if equal then return at, at + m - 1 end
    at = at + 1
  end
end

-- The wrappers.  Arguments of the usual types go straight to the estimate; anything else
-- takes C's conversions and argument errors first.

local function find_args(...)
  local n, s, p, init = select('#', ...), ...
  s = check_string(n, 1, s)
  p = check_string(n, 2, p)
  init = opt_integer(n, 3, init, 1)
  return s, p, start_of(init, #s)
end

local function find_aux(find, ...)
  local s, p, start = find_args(...)
  local n = #s
  local a = analysed(p)
  if find and ((select(4, ...)) or a.plain) then
    local m = #p
    if (n - m + 1) * m <= PLAIN_BUDGET then return c_find(s, p, start, true) end
    return pass(plain_find(s, p, start))
  end
  local pat = a.pat
  if pat.safe and cost(pat, n, a.anchor and 1 or n - start + 2) <= BUDGET then
    if find then return c_find(s, p, start) end
    return c_match(s, p, start)
  end
  return pass(port_find(s, pat, start, a.anchor, find))
end

local function w_find(...)
  local s, p, init, plain = ...
  if type(s) == 'string' and type(p) == 'string' and (init == nil or type(init) == 'number') then
    local a = analyses[p] or analysed(p)
    local n = #s
    if plain or a.plain then
      local m = #p
      if (n - m + 1) * m <= PLAIN_BUDGET then return c_find(s, p, init, plain) end
    elseif a.pat.safe and cost(a.pat, n, a.anchor and 1 or n + 1) <= BUDGET then
      return c_find(s, p, init)
    end
  end
  return pass(find_aux(true, ...))
end

local function w_match(...)
  local s, p, init = ...
  if type(s) == 'string' and type(p) == 'string' and (init == nil or type(init) == 'number') then
    local a = analyses[p] or analysed(p)
    local n = #s
    if a.pat.safe and cost(a.pat, n, a.anchor and 1 or n + 1) <= BUDGET then return c_match(s, p, init) end
  end
  return pass(find_aux(false, ...))
end

local function port_gmatch(src, pat)
  local ms = new_state(src, pat)
  local at = 1
  return function()
    local s = at
    while s <= ms.n + 1 do
      s = next_start(ms, s)
      if not s then break end
      ms.level = 0
      local e = do_match(ms, s, 1)
      if e then
        at = (e == s) and e + 1 or e
        return pass(captures(ms, s, e, true))
      end
      s = s + 1
    end
  end
end

local function w_gmatch(...)
  local n, s, p = select('#', ...), ...
  s = check_string(n, 1, s)
  p = check_string(n, 2, p)
  local pat = gmatch_pattern(p)
  if pat.safe and cost(pat, #s, #s + 1) <= BUDGET then return c_gmatch(s, p) end
  return port_gmatch(s, pat)
end

-- Whether add_s can use a replacement string with 'level' captures without an error.
local function replacement_fits(repl, level)
  local at = c_find(repl, '%', 1, true)
  while at do
    local d = byte(repl, at + 1)
    if d and d > 48 and d <= 57 and not (d - 49 < level or (d == 49 and level == 0)) then return false end
    at = c_find(repl, '%', at + 2, true)
  end
  return true
end

-- A replacement string's pieces: text, or the capture a '%d' names (0: the whole match).
local function replacement(repl)
  local pieces = {}
  local i, len = 1, #repl
  while i <= len do
    local pct = c_find(repl, '%', i, true)
    if not pct then
      pieces[#pieces + 1] = sub(repl, i)
      break
    end
    if pct > i then pieces[#pieces + 1] = sub(repl, i, pct - 1) end
    local d = byte(repl, pct + 1)
    if d == nil then
      pieces[#pieces + 1] = '\0'  -- add_s reads the string's terminating zero
    elseif d >= 48 and d <= 57 then
      pieces[#pieces + 1] = d - 48
    else
      pieces[#pieces + 1] = char(d)
    end
    i = pct + 2
  end
  return pieces
end

local function port_gsub(src, pat, anchor, repl, max_n)
  local ms = new_state(src, pat)
  local n = ms.n
  local rtype, pieces = type(repl), nil
  if rtype == 'string' then pieces = replacement(repl) end
  local out, nout = {}, 0
  local s, count = 1, 0
  while count < max_n do
    if not anchor then
      local nxt = next_start(ms, s)
      if not nxt then break end
      if nxt > s then
        nout = nout + 1
        out[nout] = sub(src, s, nxt - 1)
        s = nxt
      end
    end
    ms.level = 0
    local e = do_match(ms, s, 1)
    if e then
      count = count + 1
      local value
      if pieces then
        local parts = {}
        for j = 1, #pieces do
          local piece = pieces[j]
          if type(piece) == 'number' then
            if piece == 0 then
              piece = sub(src, s, e - 1)
            else
              piece = capture(ms, piece - 1, s, e)
              if type(piece) == 'number' then piece = tostring(piece) end
            end
          end
          parts[j] = piece
        end
        value = concat(parts)
      else
        if rtype == 'function' then
          value = repl(captures(ms, s, e, true))
        else
          value = repl[capture(ms, 0, s, e)]
        end
        if not value then
          value = sub(src, s, e - 1)
        elseif type(value) ~= 'string' and type(value) ~= 'number' then
          fail('invalid replacement value (a ' .. typename(value) .. ')')
        end
      end
      nout = nout + 1
      out[nout] = value
    end
    if e and e > s then
      s = e
    elseif s <= n then
      nout = nout + 1
      out[nout] = sub(src, s, s)
      s = s + 1
    else
      break
    end
    if anchor then break end
  end
  nout = nout + 1
  out[nout] = sub(src, s)
  return concat(out), count
end

local function checked_replacement(repl, at)  -- a function or table for C gsub, with add_value's check
  local lookup = type(repl) == 'table'
  return function(...)
    local value
    if lookup then value = repl[(...)] else value = repl(...) end
    if value and type(value) ~= 'string' and type(value) ~= 'number' then
      error(at .. 'invalid replacement value (a ' .. typename(value) .. ')', 0)
    end
    return value
  end
end

local function w_gsub(...)
  local n, s, p, repl, max_n = select('#', ...), ...
  s = check_string(n, 1, s)
  p = check_string(n, 2, p)
  max_n = opt_int(n, 4, max_n, #s + 1)
  local rtype = type(repl)
  if rtype ~= 'string' and rtype ~= 'number' and rtype ~= 'function' and rtype ~= 'table' then
    arg_fail(3, 'string/function/table expected')
  end
  if rtype == 'number' then repl = tostring(repl) end
  local a = analysed(p)
  local pat = a.pat
  local fits = pat.safe and cost(pat, #s, a.anchor and 1 or #s + 1) <= BUDGET
  if fits and rtype ~= 'function' and rtype ~= 'table' then fits = replacement_fits(repl, pat.level) end
  if not fits then return pass(port_gsub(s, pat, a.anchor, repl, max_n)) end
  if rtype == 'function' or rtype == 'table' then
    local _, _, at = c_frame()
    repl = checked_replacement(repl, at)
  end
  return c_gsub(s, p, repl, max_n)
end

-- table.sort: C's quicksort of a long table takes seconds without a single VM instruction
-- unless the comparison is Lua code: past SORT_DIRECT elements it gets less(), which
-- compares as lua_lessthan does (metamethods included) and fails as it does, without a line.
local function less(a, b)
  local ta, tb = type(a), type(b)
  if ta == tb then
    if ta == 'number' or ta == 'string' then return a < b end
    local ma, mb = raw_getmetatable(a), raw_getmetatable(b)
    local la = ma and rawget(ma, '__lt')
    if la ~= nil and rawequal(la, mb and rawget(mb, '__lt')) then return a < b end
  end
  if byte(ta, 3) == byte(tb, 3) then error(format('attempt to compare two %s values', ta), 0) end
  error(format('attempt to compare %s with %s', ta, tb), 0)
end

local function lt(a, b)
  return a < b
end

local function w_sort(...)
  local n, t, comp = select('#', ...), ...
  if type(t) ~= 'table' then arg_fail(1, 'table expected, got ' .. got(n, 1, t)) end
  if comp ~= nil and type(comp) ~= 'function' then arg_fail(2, 'function expected, got ' .. typename(comp)) end
  local len = #t
  if len <= SORT_DIRECT then return c_sort(t, comp) end
  if comp == nil then
    local kind = type(t[1])  -- all numbers or all strings: '<' cannot fail, a plain one will do
    if kind == 'number' or kind == 'string' then
      for i = 2, len do
        if type(t[i]) ~= kind then return c_sort(t, less) end
      end
      return c_sort(t, lt)
    end
    return c_sort(t, less)
  end
  if getinfo(comp, 'S').what == 'C' then
    local c = comp
    return c_sort(t, function(a, b) return c(a, b) end)
  end
  return c_sort(t, comp)
end

return {
  find = w_find, match = w_match, gmatch = w_gmatch, gsub = w_gsub, sort = w_sort,
  -- for the tests: the port, whatever the estimate says
  port = function(name, ...)
    if name == 'gmatch' then
      local n, s, p = select('#', ...), ...
      s, p = check_string(n, 1, s), check_string(n, 2, p)
      return port_gmatch(s, gmatch_pattern(p))
    elseif name == 'gsub' then
      local n, s, p, repl, max_n = select('#', ...), ...
      s, p = check_string(n, 1, s), check_string(n, 2, p)
      max_n = opt_int(n, 4, max_n, #s + 1)
      if type(repl) == 'number' then repl = tostring(repl) end
      local a = analysed(p)
      return pass(port_gsub(s, a.pat, a.anchor, repl, max_n))
    end
    local s, p, start = find_args(...)
    local a = analysed(p)
    if name == 'find' and ((select(4, ...)) or a.plain) then
      if #p == 0 then return c_find(s, p, start, true) end
      return pass(plain_find(s, p, start))
    end
    return pass(port_find(s, a.pat, start, a.anchor, name == 'find'))
  end,
}
