"""Lua scripting in kvgate's engine (EVAL, EVALSHA, *_RO, SCRIPT ...) against a real Redis.

Scripts run on units as the SQLite backend runs them: everything not flagged ``readonly``
(EVAL, EVALSHA, SCRIPT ...) on a writing unit, EVAL_RO/EVALSHA_RO on a read-only one.  The
oracle's script cache outlives FLUSHALL, so tests that depend on it start with SCRIPT FLUSH.

Never send ``error({})`` or a table that contains itself to the oracle: Redis 7.0.15 crashes
on the first and recurses on the second.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from kvgate.engine.scripting import Limits, Scripting
from kvgate.error_texts import NOSCRIPT
from kvgate.errors import ReplyError
from kvgate.scripts import split_args
from tests.support.engine import Arg, EngineClient, Oracle, assert_same, comparable, sqlite_client


@pytest.fixture
def kv(engine: EngineClient) -> EngineClient:
    """EVAL and SCRIPT are not read-only: the client runs them on writing units."""
    return engine


def sha1(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


def evals(*scripts: str) -> list[list[Arg]]:
    return [["EVAL", s, 0] for s in scripts]


# --- values: Lua -> Redis --------------------------------------------------------------


def test_return_values(oracle: Oracle, kv: EngineClient) -> None:
    assert_same(
        oracle,
        kv,
        evals(
            "return 1",
            "return -7",
            "return 3.99",
            "return -3.99",
            "return -0.5",
            "return 0",
            "return 1e20",
            "return -1e20",
            "return 0/0",
            "return 1/0",
            "return 9007199254740993",
            "return 9223372036854775807",
            "return 9223372036854775295",
            "return 'hello'",
            "return ''",
            "return 'a\\0b'",
            "return true",
            "return false",
            "return nil",
            "return",
            "return function() end",
            "return coroutine.create(function() end)",
            "return 1, 2",
            "return {}",
            "return {1, 'two', {3, {4, 'five'}}, false, true, 2.5}",
            "return {1, nil, 3}",
            "return {[1] = 'a', [2] = 'b', [4] = 'd'}",
            "return {a = 1}",
            "return {ok = 'fine'}",
            "return {ok = 'a\\r\\nb'}",
            "return {ok = 1}",
            "return {err = 'MY code'}",
            "return {err = 'nocode'}",
            "return {err = '-x'}",
            "return {err = 'a\\nb'}",
            "return {err = 5}",
            "return {err = 'x', ok = 'y'}",
            "return {1, 2, err = 'x'}",
            "return {ok = 'y', 1}",
            "return {'a', {err = 'E nested'}, {ok = 'fine'}}",
            "return {double = 1.5}",
            "return {double = 0.1}",
            "return {double = 1/0}",
            "return {double = -1/0}",
            "return {double = 0/0}",
            "return {double = '1.5'}",
            "return {big_number = '123456789012345678901234567890'}",
            "return {big_number = 'a\\nb'}",
            "return {verbatim_string = {format = 'txt', string = 'hi'}}",
            "return {verbatim_string = {string = 'hi'}}",
            "return {map = {a = 1}}",
            "return {set = {x = true}}",
            "return {map = {}}",
            "return redis.status_reply('FINE')",
            "return redis.status_reply('a\\r\\nb')",
            "return redis.error_reply('ERR boom')",
            "return redis.error_reply('MY boom')",
            "return redis.error_reply('x')",
            "return redis.error_reply('-x')",
            "return redis.error_reply('-x y')",
            "return redis.error_reply('- x')",
            "return redis.error_reply('')",
            "return redis.error_reply('E \\r\\nmsg\\n')",
            "return redis.error_reply(1)",
            "return redis.error_reply()",
            "return redis.error_reply('a', 'b')",
            "return redis.status_reply(1)",
            "return redis.status_reply()",
            "return {redis.status_reply('A'), redis.error_reply('B c')}",
            "return tostring(12345678901234567)",
            "return 'x' .. 1.5",
            "return #KEYS + #ARGV",
        ),
    )


def test_keys_and_argv(oracle: Oracle, kv: EngineClient) -> None:
    assert_same(
        oracle,
        kv,
        [
            ["EVAL", "return {KEYS, ARGV}", 2, "a", "b", "c", "d"],
            ["EVAL", "return {KEYS, ARGV}", 0, "c", "d"],
            ["EVAL", "return {KEYS, ARGV}", 2, "a", "b"],
            ["EVAL", "return {#KEYS, #ARGV}", 0],
            ["EVAL", "return KEYS[1] .. ARGV[1]", 1, "k", "é\x00v"],
            ["EVAL", "KEYS[1] = 'changed' return KEYS", 1, "k"],
            ["EVAL", "return ARGV[5]", 0, "a"],
            ["EVAL", "return 1", "abc"],
            ["EVAL", "return 1", "1.0"],
            ["EVAL", "return 1", " 1", "a"],
            ["EVAL", "return 1", 2, "a"],
            ["EVAL", "return 1", -1],
            ["EVAL", "return 1", "99999999999999999999"],
            ["EVAL", "return 1"],
            ["EVAL"],
            ["EVAL", "return +", "x"],
            ["EVAL", "return +", 5],
        ],
    )


# --- values: Redis -> Lua --------------------------------------------------------------


def test_call_replies_seen_by_lua(oracle: Oracle, kv: EngineClient) -> None:
    assert_same(
        oracle,
        kv,
        [
            ["RPUSH", "list", "a", "b"],
            ["HSET", "hash", "f", "v", "g", "w"],
            *evals(
                "local r = redis.call('set', 'a', 'b') return {type(r), r.ok}",
                "return redis.call('set', 'a', 'b')",
                "return {redis.call('set', 'a', 'b')}",
                "return redis.call('set', 'a', 'c', 'GET')",
                "return type(redis.call('set', 'a', 'c', 'get'))",
                "return type(redis.call('set', 'a', 'c', 'NX'))",
                "return redis.call('get', 'a')",
                "return type(redis.call('get', 'a'))",
                "return type(redis.call('get', 'missing'))",
                "return {redis.call('get', 'missing'), 1}",
                "return tostring(redis.call('get', 'missing'))",
                "return redis.call('incr', 'n') + 10",
                "return type(redis.call('incr', 'n'))",
                "return redis.call('incrby', 'big', '9007199254740993')",
                "return redis.call('incrbyfloat', 'f', 1.5)",
                "return redis.call('type', 'a')",
                "return {redis.call('type', 'a')}",
                "return redis.call('type', 'hash').ok",
                "return redis.call('ping')",
                "return type(redis.call('ping'))",
                "return redis.call('ping', 'x')",
                "return redis.call('echo', 'x')",
                "return redis.call('mset', 'm1', '1', 'm2', '2').ok",
                "return redis.call('mget', 'm1', 'missing', 'm2')",
                "return #redis.call('mget', 'm1', 'missing', 'm2')",
                "return redis.call('lrange', 'list', 0, -1)",
                "return redis.call('lrange', 'list', 0, -1)[2]",
                "return type(redis.call('lrange', 'nolist', 0, -1))",
                "return redis.call('hgetall', 'hash')",
                "return redis.call('lset', 'list', 0, 'z').ok",
                "return redis.call('ltrim', 'list', 0, 0)",
                "return redis.call('rename', 'list', 'list2')",
                "return redis.call('hmset', 'hash', 'x', 'y')",
                "return redis.call('setex', 'ex', 100, 'v')",
                "return redis.call('psetex', 'px', 100000, 'v')",
                "return redis.call('lpop', 'nolist', 2)",
                "return type(redis.call('lpop', 'nolist', 2))",
                "return redis.call('exists', 'a', 'missing', 'a')",
                "return redis.pcall('lpush', 'a', 'x')",
                "local e = redis.pcall('lpush', 'a', 'x') return {type(e), e.err, tostring(e.ignore_error_stats_update)}",
                "local e = redis.pcall('nosuch') return {e.err, tostring(e.ignore_error_stats_update)}",
                "local e = redis.pcall() return {e.err, tostring(e.ignore_error_stats_update)}",
                "return redis.pcall('incr', 'a')",
                "return redis.call('flushdb')",
                "return redis.call('dbsize')",
            ),
        ],
    )


def test_arguments_to_redis(oracle: Oracle, kv: EngineClient) -> None:
    assert_same(
        oracle,
        kv,
        [
            *evals(
                "redis.call('set', 'x', 0.1) return redis.call('get', 'x')",
                "redis.call('set', 'x', 3) return redis.call('get', 'x')",
                "redis.call('set', 'x', -3.25) return redis.call('get', 'x')",
                "redis.call('set', 'x', 1e20) return redis.call('get', 'x')",
                "redis.call('set', 'x', 2^63) return redis.call('get', 'x')",
                "redis.call('set', 'x', 1/3) return redis.call('get', 'x')",
                "redis.call('set', 'x', 0/0) return redis.call('get', 'x')",
                "redis.call('set', 'x', 1/0) return redis.call('get', 'x')",
                "redis.call('set', 'x', -1/0) return redis.call('get', 'x')",
                "redis.call('set', 'x', '') return redis.call('strlen', 'x')",
                "redis.call('set', 'x', 'a\\0b') return redis.call('strlen', 'x')",
                "return redis.call('SET', 'x', true)",
                "return redis.call('set', 'x', nil)",
                "return redis.call('set', 'x', {})",
                "return redis.call('set', 'x', function() end)",
                "return redis.pcall('set', 'x', false)",
                "return redis.call(1)",
                "return redis.call()",
                "return redis.pcall()",
                "return redis.call({})",
                "return redis.call('get', 'x', nil)",
                "return redis.call('incrby', 'n', 5)",
                "return redis.call('incrby', 'n', 2.5)",
                "return redis.call('expire', 'n', 100.0)",
                "return redis.call('pexpire', 'n', 1e5)",
                "local t = redis.call('pttl', 'n') return t > 90000 and t <= 100000",
                "return redis.call('GeT', 'n')",
            ),
        ],
    )


# --- errors --------------------------------------------------------------------------


def test_script_errors(oracle: Oracle, kv: EngineClient) -> None:
    assert_same(
        oracle,
        kv,
        [
            ["SET", "s", "1"],
            *evals(
                "return 1 +",
                "return +",
                "local x = ",
                "\n\nreturn end",
                "\x1bLua",
                "error('boom')",
                "error('a\\nb')",
                "error('boom', 0)",
                "error('boom', 2)",
                "error(nil)",
                "error(12)",
                "error(true)",
                "error({err = 'MY thing'})",
                "error({err = 'nospace'})",
                "error({err = 12})",
                "error({err = 'x', source = 'src', line = 9})",
                "local function f()\n  error('deep')\nend\n\nf()",
                "local function f() error('tail') end return f()",
                "local x = nil\nreturn x.y",
                "return 1 + {}",
                "return #nil",
                "return ('x'):nosuch()",
                "assert(false, 'assertion')",
                "assert(false)",
                "assert(1 == 2, 'n' .. 1)",
                "return string.rep()",
                "return string.rep('x', 2, 3, 4)",
                "return tonumber()",
                "local t = setmetatable({}, {__index = function() error('in index') end}) return t.x",
                "local function f() f() end f()",
                "return redis.call('nosuch')",
                "return redis.call('NOSUCH', 'a')",
                "return redis.call('get')",
                "return redis.call('get', 'a', 'b')",
                "return redis.call('GET', 'a', 'b')",
                "\n\nreturn redis.call('get')",
                "local x = 1\nlocal y = redis.call('lpush', 's', 'x')\nreturn y",
                "return redis.call('lpush', 's', 'x')",
                "return redis.call('incr', 's', 'x')",
                "return redis.call('script', 'load', 'return 1')",
                "return redis.call('script', 'exists', 'x')",
                "return redis.call('script')",
                "return redis.call('script', 'nosuch')",
                "return redis.call('script|load', 'x')",
                "return redis.call('config', 'get')",
                "return redis.call('eval', 'return 1', 0)",
                "return redis.call('evalsha', 'x', 0)",
                "return redis.call('multi')",
                "return redis.call('exec')",
                "return redis.call('watch', 'a')",
                "return redis.call('subscribe', 'c')",
                "return redis.pcall('nosuch')",
                "return redis.pcall('get')",
                "return redis.pcall('eval', 'return 1', 0)",
                "return redis.pcall('lpush', 's', 'x')",
                "return redis.pcall('get', {})",
                "redis.call('set', 'written', 'before') error('after')",
                "return redis.call('get', 'written')",
                "return {pcall(redis.call, 'nosuch')}",
                "return {pcall(redis.call, 'lpush', 's', 'x')}",
                "return {pcall(error, {err = 'x'})}",
                "return {pcall(error, {err = 5})}",
                "return type(({pcall(error, {})})[2])",
                "return {pcall(error, 'msg')}",
                "return {pcall(error, 'msg', 0)}",
                "return {pcall(error)}",
                "return {pcall()}",
                "return {pcall(nil)}",
                "return {pcall(function(...) return ... end, 1, nil, 3)}",
                "return select('#', pcall(function() return 1, nil, nil end))",
                "return {xpcall(function() redis.call('nosuch') end, function(e) return type(e) end)}",
                "return {xpcall(function() redis.call('nosuch') end, function(e) return e.err end)}",
                "return {xpcall(function() error('x') end, function(e) return e end)}",
                "return {xpcall(function() return 1, 2 end, function(e) return e end)}",
                "local ok, e = coroutine.resume(coroutine.create(function() redis.call('nosuch') end)) "
                "return {tostring(ok), type(e), e.err}",
                "return coroutine.wrap(function() redis.call('nosuch') end)()",
                "return coroutine.wrap(function() error('in co') end)()",
                "local co = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end) "
                "return {co(1), co(5)}",
            ),
        ],
    )


def test_globals_are_protected(oracle: Oracle, kv: EngineClient) -> None:
    assert_same(
        oracle,
        kv,
        evals(
            "x = 1",
            "KEYS = 1",
            "redis = nil",
            "_G.x = 1",
            "rawset(_G, 'x', 1)",
            "setmetatable(_G, {})",
            "string.x = 1",
            "string.rep = nil",
            "redis.call = nil",
            "math.pi = 3",
            "table.insert = nil",
            "coroutine.x = 1",
            "return y",
            "return _G.y",
            "return _G['nope' .. 1]",
            "return rawget(_G, 'nope')",
            "return rawget(_G, 'KEYS')[1]",
            "return type(_G)",
            "return _G == _G._G",
            "return type(_G.redis)",
            "return type(getmetatable(_G))",
            "return getmetatable('').__index == string",
            "return ('abc'):upper()",
            "return pairs({}) == next",
            "local t = {} for k in pairs(string) do t[#t + 1] = k end table.sort(t) return t",
            "local t = {} for k in pairs(math) do t[#t + 1] = k end table.sort(t) return t",
            "local t = {} for k in pairs(table) do t[#t + 1] = k end table.sort(t) return t",
            "local t = {} for k in pairs(coroutine) do t[#t + 1] = k end table.sort(t) return t",
            "local t = {} for k in pairs(redis) do t[#t + 1] = k end table.sort(t) return t",
            "local t = {} for k in next, redis do t[#t + 1] = k end table.sort(t) return t",
            "return type(os)",
            "return type(io)",
            "return type(debug)",
            "return type(require)",
            "return type(package)",
            "return type(module)",
            "return type(loadfile)",
            "return type(dofile)",
            "return type(print)",
            "return type(getfenv)",
            "return type(setfenv)",
            "return type(newproxy)",
            "return type(python)",
            "return {type(assert), type(error), type(gcinfo), type(collectgarbage), type(ipairs), type(load)}",
            "return {type(loadstring), type(rawequal), type(select), type(tonumber), type(tostring), type(unpack)}",
            "return {type(xpcall), type(setmetatable), type(getmetatable), type(__redis__err__handler)}",
            "return _VERSION",
            "return loadstring('return 5')()",
            "return {loadstring('return +')}",
            "return select(2, loadstring('return +'))",
            "return select(2, loadstring('return +', 'named'))",
            "local f = loadstring('x = 1') return {pcall(f)}",
            "local f = loadstring('return KEYS') return type(f())",
            "return {loadstring(string.dump(function() return 1 end))}",
            "return select(2, loadstring(string.dump(function() return 1 end)))",
            "local i = 0 return load(function() i = i + 1 if i == 1 then return 'return 42' end end)()",
            "return {load(function() return nil end)}",
            "return {pcall(pairs)}",
            "return {pcall(rawset, {}, nil, 1)}",
            "local t = setmetatable({}, {__metatable = 'locked'}) return {pcall(setmetatable, t, {})}",
            "local t = {} rawset(t, 'a', 1) return rawget(t, 'a')",
            "local t = setmetatable({}, {__index = {a = 1}}) return {t.a, rawget(t, 'a')}",
            "return math.floor(2.7) + math.max(1, 5)",
            "return string.format('%5.2f|%d|%s', 3.14159, 42, 'x')",
            "return table.concat({1, 2, 3}, ',')",
            "return {string.byte('ABC', 1, -1)}",
            "return string.gsub('hello world', 'o', '0')",
            "return tostring(tonumber('0x10'))",
            "return unpack({1, 2, 3})",
        ),
    )


# --- read-only scripts and shebangs ------------------------------------------------------


def test_read_only_scripts(oracle: Oracle, kv: EngineClient) -> None:
    assert_same(
        oracle,
        kv,
        [
            ["SET", "a", "1"],
            ["EVAL_RO", "return redis.call('get', 'a')", 1, "a"],
            ["EVAL_RO", "return redis.call('set', 'a', 'b')", 1, "a"],
            ["EVAL_RO", "return redis.pcall('set', 'a', 'b')", 1, "a"],
            ["EVAL_RO", "return redis.pcall('incr', 'a')", 1, "a"],
            ["EVAL_RO", "return redis.call('pfcount', 'a')", 1, "a"],
            ["EVAL_RO", "return redis.call('publish', 'a', 'b')", 0],
            ["EVAL_RO", "return redis.call('nosuch')", 0],
            ["EVAL_RO", "return redis.call('set')", 0],
            ["EVAL_RO", "return redis.call('eval', 'return 1', 0)", 0],
            ["EVAL_RO", "return redis.call('exists', 'a')", 0],
            ["EVAL_RO", "return 1", "x"],
            ["EVAL_RO", "return +", 0],
            ["EVAL_RO", "error('ro')", 0],
            ["GET", "a"],
            ["EVAL_RO", "#!lua\nreturn 1", 0],
            ["EVAL_RO", "#!lua flags=no-writes\nreturn redis.call('get', 'a')", 0],
            ["EVAL_RO", "#!lua flags=no-writes,allow-oom\nreturn 2", 0],
            ["EVAL", "#!lua\nreturn redis.call('set', 'a', 'b')", 0],
            ["EVAL", "#!lua flags=no-writes\nreturn redis.call('set', 'a', 'c')", 0],
            ["EVAL", "#!lua flags=no-writes\nreturn redis.pcall('set', 'a', 'c')", 0],
            ["EVAL", "#!lua flags=no-writes\nerror('x')", 0],
            [
                "EVAL",
                "#!lua flags=allow-stale,no-cluster,allow-cross-slot-keys\nreturn redis.call('get', 'a')",
                0,
            ],
            ["EVAL", "#!lua flags=no-writes\nreturn redis.call('pfcount', 'a')", 0],
            ["GET", "a"],
        ],
    )


def test_shebangs(oracle: Oracle, kv: EngineClient) -> None:
    bodies = [
        "#!lua\nreturn 1",
        "#!lua",
        "#!lux\nreturn 1",
        "#!lua flags=no-writes,bad\nreturn 1",
        "#!lua flags=\nreturn 1",
        "#!lua flags=no-writes,\nreturn 1",
        "#!lua flags=no-writes,,allow-oom\nreturn 1",
        "#!lua name=x\nreturn 1",
        "#!lua flags=no-writes name=x\nreturn 1",
        "#! lua\nreturn 1",
        "#!\nreturn 1",
        '#!lua "flags=no-writes"\nreturn 1',
        '#!lua "flags=no-writes\nreturn 1',
        '#!lua "flags=no-writes"x\nreturn 1',
        "#!lua 'flags=no-writes'\nreturn 1",
        '#!lua "fl\\x61gs=no-writes"\nreturn 1',
        "#!lua   flags=no-writes  \t\nreturn 1",
        "#!lua flags=NO-WRITES\nreturn 1",
        "#!LUA\nreturn 1",
        "#!lua flags=no-writes\nreturn +",
        "#!lua flags=no-writes\n\nerror('line')",
        "#!lua\r\nreturn 1",
        "  #!lua\nreturn 1",
    ]
    commands: list[list[Arg]] = [["SCRIPT", "FLUSH"]]
    for body in bodies:
        commands += [["EVAL", body, 0], ["EVAL_RO", body, 0], ["SCRIPT", "LOAD", body]]
    assert_same(oracle, kv, commands)


# --- the script cache ----------------------------------------------------------------------


def test_evalsha_and_script_cache(oracle: Oracle, kv: EngineClient) -> None:
    counter = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    cached = "return 'cached by eval'"
    ro = "#!lua flags=no-writes\nreturn redis.call('GET', KEYS[1])"
    missing = "f" * 40
    assert_same(
        oracle,
        kv,
        [
            ["SCRIPT", "FLUSH"],
            ["EVALSHA", sha1(counter), 1, "c", 5],
            ["SCRIPT", "EXISTS", sha1(counter), sha1(cached), missing],
            ["SCRIPT", "LOAD", counter],
            ["SCRIPT", "EXISTS", sha1(counter), sha1(counter).upper(), sha1(cached), missing, "x"],
            ["EVALSHA", sha1(counter), 1, "c", 5],
            ["EVALSHA", sha1(counter).upper(), 1, "c", 5],
            ["EVALSHA_RO", sha1(counter), 1, "c", 5],
            ["EVALSHA", sha1(counter), 1, "c"],
            ["EVALSHA", sha1(counter), "x", "c"],
            ["EVALSHA", sha1(counter), 2, "c"],
            ["EVALSHA", sha1(counter), -1],
            ["EVALSHA", "abc", 0],
            ["EVALSHA", "abc", "x"],
            ["EVALSHA", missing, "x"],
            ["EVALSHA", missing, 0],
            ["EVALSHA", sha1(counter) + "0", 0],
            ["EVAL", cached, 0],
            ["EVALSHA", sha1(cached), 0],
            ["SCRIPT", "EXISTS", sha1(cached)],
            ["EVAL_RO", ro, 1, "c"],
            ["EVALSHA_RO", sha1(ro), 1, "c"],
            ["EVALSHA", sha1(ro), 1, "c"],
            ["SCRIPT", "LOAD", "return +"],
            ["SCRIPT", "EXISTS", sha1("return +")],
            ["SCRIPT", "LOAD", counter],
            ["SCRIPT", "FLUSH", "SYNC"],
            ["SCRIPT", "EXISTS", sha1(counter), sha1(cached)],
            ["EVALSHA", sha1(counter), 1, "c", 5],
            ["SCRIPT", "LOAD", counter],
            ["SCRIPT", "FLUSH", "async"],
            ["EVALSHA", sha1(counter), 1, "c", 5],
            ["SCRIPT", "FLUSH", "bad"],
            ["SCRIPT", "FLUSH", "sync", "x"],
            ["SCRIPT", "EXISTS"],
            ["SCRIPT", "LOAD"],
            ["SCRIPT", "LOAD", "a", "b"],
            ["SCRIPT", "LOAD", ""],
            ["EVALSHA", sha1(""), 0],
            ["SCRIPT", "KILL"],
            ["SCRIPT", "KILL", "x"],
            ["SCRIPT", "HELP"],
            ["SCRIPT", "help", "x"],
            ["SCRIPT", "nosuch"],
            ["SCRIPT"],
            ["GET", "c"],
        ],
    )


def test_eval_ro_caches_its_script(oracle: Oracle, kv: EngineClient) -> None:
    script = "return 'from eval_ro'"
    assert_same(
        oracle,
        kv,
        [
            ["SCRIPT", "FLUSH"],
            ["EVAL_RO", script, 0],
            ["SCRIPT", "EXISTS", sha1(script)],
            ["EVALSHA_RO", sha1(script), 0],
            ["EVALSHA", sha1(script), 0],
            ["SCRIPT", "FLUSH"],
            ["EVALSHA_RO", sha1(script), 0],
        ],
    )


# --- redis.* helpers ---------------------------------------------------------------------


def test_redis_helpers(oracle: Oracle, kv: EngineClient) -> None:
    assert_same(
        oracle,
        kv,
        evals(
            "return redis.sha1hex('')",
            "return redis.sha1hex('abc')",
            "return redis.sha1hex(12)",
            "return redis.sha1hex(1.5)",
            "return redis.sha1hex(nil)",
            "return redis.sha1hex({})",
            "return redis.sha1hex()",
            "return redis.sha1hex('a', 'b')",
            "return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}",
            "redis.log(redis.LOG_WARNING, 'hi', 1, {}) return 1",
            "redis.log(redis.LOG_DEBUG, 'quiet') return 2",
            "redis.log('1', 'y') return 3",
            "redis.log(2.9, 'y') return 4",
            "redis.log(1)",
            "redis.log()",
            "redis.log('x', 'y')",
            "redis.log(7, 'y')",
            "redis.log(-1, 'y')",
            "redis.setresp(2) return redis.call('hgetall', 'nohash')",
            "redis.setresp(4)",
            "redis.setresp('x')",
            "redis.setresp()",
            "redis.setresp(2, 3)",
            "return redis.replicate_commands()",
            "return redis.breakpoint()",
            "return redis.debug('x')",
            "return redis.set_repl(redis.REPL_ALL)",
            "return {redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL}",
            "return redis.set_repl(7)",
            "return redis.set_repl(-1)",
            "return redis.set_repl()",
            "return redis.acl_check_cmd('get', 'x')",
            "return redis.acl_check_cmd('get')",
            "return redis.acl_check_cmd('script', 'load')",
            "return redis.acl_check_cmd('script', 'nosuch')",
            "return redis.acl_check_cmd('nosuch')",
            "return redis.acl_check_cmd()",
            "return redis.acl_check_cmd({})",
            "return redis.REDIS_VERSION",
            "return redis.REDIS_VERSION_NUM",
            "local r = math.random() return r >= 0 and r < 1",
            "local r = math.random(5) return r >= 1 and r <= 5 and r == math.floor(r)",
            "local r = math.random(3, 4) return r >= 3 and r <= 4",
            "return math.random(0)",
            "return math.random(5, 4)",
            "return math.random('x')",
            "return math.random(1, 2, 3)",
            "math.randomseed(7) local a = math.random(1000) math.randomseed(7) return a == math.random(1000)",
        ),
    )


# --- scripts that do real work -----------------------------------------------------------

FIXED_WINDOW = """
local key           = KEYS[1]
local window        = ARGV[1]
local incrementBy   = ARGV[2]

local r = redis.call("INCRBY", key, incrementBy)
if r == tonumber(incrementBy) then
  redis.call("PEXPIRE", key, window)
end
return r
"""

SLIDING_WINDOW = """
local currentKey  = KEYS[1]
local previousKey = KEYS[2]
local tokens      = tonumber(ARGV[1])
local now         = ARGV[2]
local window      = ARGV[3]
local incrementBy = ARGV[4]

local requestsInCurrentWindow = redis.call("GET", currentKey)
if requestsInCurrentWindow == false then
  requestsInCurrentWindow = 0
end

local requestsInPreviousWindow = redis.call("GET", previousKey)
if requestsInPreviousWindow == false then
  requestsInPreviousWindow = 0
end
local percentageInCurrent = ( now % window ) / window
requestsInPreviousWindow = math.floor(( 1 - percentageInCurrent ) * requestsInPreviousWindow)

if requestsInPreviousWindow + requestsInCurrentWindow >= tokens then
  return -1
end

local newValue = redis.call("INCRBY", currentKey, incrementBy)
if newValue == tonumber(incrementBy) then
  redis.call("PEXPIRE", currentKey, window * 2 + 1000)
end
return tokens - ( newValue + requestsInPreviousWindow )
"""

TOKEN_BUCKET = """
local key         = KEYS[1]
local maxTokens   = tonumber(ARGV[1])
local interval    = tonumber(ARGV[2])
local refillRate  = tonumber(ARGV[3])
local now         = tonumber(ARGV[4])
local incrementBy = tonumber(ARGV[5])

local bucket = redis.call("HMGET", key, "refilledAt", "tokens")

local refilledAt
local tokens

if bucket[1] == false then
  refilledAt = now
  tokens = maxTokens
else
  refilledAt = tonumber(bucket[1])
  tokens = tonumber(bucket[2])
end

if now >= refilledAt + interval then
  local numRefills = math.floor((now - refilledAt) / interval)
  tokens = math.min(maxTokens, tokens + numRefills * refillRate)
  refilledAt = refilledAt + numRefills * interval
end

if tokens == 0 and incrementBy > 0 then
  return {-1, refilledAt + interval}
end

local remaining = tokens - incrementBy
local expireAt = math.ceil(((maxTokens - remaining) / refillRate)) * interval

redis.call("HSET", key, "refilledAt", refilledAt, "tokens", remaining)
redis.call("PEXPIRE", key, expireAt)
return {remaining, refilledAt + interval}
"""

MULTI_KEY = """
local total = 0
for i, key in ipairs(KEYS) do
  local v = redis.call("HINCRBY", "totals", key, ARGV[i])
  redis.call("SET", key, v)
  redis.call("ZADD", "board", v, key)
  total = total + v
end
redis.call("RPUSH", "log", table.concat(ARGV, ","))
return {total, redis.call("ZRANGE", "board", 0, -1, "WITHSCORES"), redis.call("LLEN", "log")}
"""


def ttl_between(key: str, low: int, high: int) -> list[Arg]:
    check = "local t = redis.call('pttl', KEYS[1]) return {t > tonumber(ARGV[1]), t <= tonumber(ARGV[2])}"
    return ["EVAL", check, 1, key, low, high]


def test_rate_limit_scripts(oracle: Oracle, kv: EngineClient) -> None:
    now = 1_700_000_000_000
    commands: list[list[Arg]] = [["SCRIPT", "FLUSH"]]
    for _ in range(4):
        commands.append(["EVAL", FIXED_WINDOW, 1, "rl:fixed", 10000, 2])
    commands += [ttl_between("rl:fixed", 9000, 10000), ["GET", "rl:fixed"]]
    commands.append(["SET", "rl:prev", 6])
    for i in range(6):
        commands.append(["EVAL", SLIDING_WINDOW, 2, "rl:cur", "rl:prev", 5, now + i * 700, 10000, 1])
    commands += [ttl_between("rl:cur", 20000, 21000), ["GET", "rl:cur"]]
    for i in range(5):
        commands.append(["EVAL", TOKEN_BUCKET, 1, "rl:bucket", 3, 1000, 1, now + i * 400, 1])
    commands += [["HGETALL", "rl:bucket"], ttl_between("rl:bucket", 2000, 3000)]
    # what @upstash/ratelimit does: EVALSHA first, EVAL on NOSCRIPT, EVALSHA afterwards
    commands += [
        ["EVALSHA", sha1(FIXED_WINDOW), 1, "rl:sha", 1000, 1],
        ["EVAL", FIXED_WINDOW, 1, "rl:sha", 1000, 1],
        ["EVALSHA", sha1(FIXED_WINDOW), 1, "rl:sha", 1000, 1],
        ["EVALSHA", sha1(SLIDING_WINDOW), 2, "x", "y", 5, now, 1000, 1],
    ]
    commands += [
        ["EVAL", MULTI_KEY, 3, "k1", "k2", "k3", 1, 2, 3],
        ["EVAL", MULTI_KEY, 2, "k3", "k1", 10, 20],
        ["MGET", "k1", "k2", "k3"],
        ["HGETALL", "totals"],
        ["LRANGE", "log", 0, -1],
        ["SET", "totals", "string"],
        ["EVAL", MULTI_KEY, 1, "k1", 1],
        ["GET", "k1"],
    ]
    assert_same(oracle, kv, commands)


def test_scripts_see_expiry_and_their_own_writes(oracle: Oracle, kv: EngineClient) -> None:
    assert_same(
        oracle,
        kv,
        [
            ["SET", "gone", "v", "PX", 1],
            ["EVAL", "return 1", 0],
        ],
    )
    time.sleep(0.01)
    assert_same(
        oracle,
        kv,
        [
            ["EVAL", "return {redis.call('exists', 'gone'), type(redis.call('get', 'gone'))}", 0],
            [
                "EVAL",
                "redis.call('set', KEYS[1], 'v', 'PX', 100000) redis.call('pexpire', KEYS[1], 5000) "
                "return {redis.call('pttl', KEYS[1]), redis.call('get', KEYS[1])}",
                1,
                "k",
            ],
            ["EVAL", "redis.call('del', 'k') return redis.call('exists', 'k')", 0],
            [
                "EVAL",
                "redis.call('rpush', 'l', 1, 2) redis.call('lpop', 'l', 2) return redis.call('type', 'l')",
                0,
            ],
        ],
    )


def test_scan_in_a_script(oracle: Oracle, kv: EngineClient) -> None:
    script = """
    local found, cursor = {}, '0'
    repeat
      local page = redis.call('SCAN', cursor, 'MATCH', ARGV[1])
      cursor = page[1]
      for _, key in ipairs(page[2]) do found[#found + 1] = key end
    until cursor == '0'
    table.sort(found)
    for _, key in ipairs(found) do redis.call('DEL', key) end
    return found
    """
    assert_same(
        oracle,
        kv,
        [
            ["MSET", "deny:1", "a", "deny:2", "b", "other", "c"],
            ["EVAL", script, 0, "deny:*"],
            ["EXISTS", "deny:1", "deny:2", "other"],
        ],
    )


# --- kvgate's own behaviour (no Redis equivalent) ---------------------------------------------


@pytest.fixture
def limits(kv: EngineClient) -> Limits:
    """The store's script limits (every test has a store of its own)."""
    with kv.units(False) as t:
        return t.scripting.limits


ENDLESS = [
    "while true do end",
    "while true do pcall(function() while true do end end) end",
    "while true do xpcall(function() while true do end end, function(e) return e end) end",
    "local co = coroutine.wrap(function() while true do end end) co()",
    "local ok = coroutine.resume(coroutine.create(function() while true do end end)) while true do end",
    "local function f() return f() end return f()",
    "while true do redis.pcall('incr', 'n') end",
    "local f = loadstring('while true do end') f()",
]


@pytest.mark.parametrize("script", ENDLESS)
def test_endless_scripts_time_out(kv: EngineClient, limits: Limits, script: str) -> None:
    limits.time_limit_ms = 100
    started = time.monotonic()
    reply = kv("EVAL", script, 0)
    assert time.monotonic() - started < 2
    assert comparable(reply) == (
        "error",
        "ERR script timed out after 100 ms and was aborted (kvgate's script time limit)",
    )
    assert kv("EVAL", "return 'still works'", 0) == b"still works"


def test_timed_out_script_keeps_its_writes(kv: EngineClient, limits: Limits) -> None:
    limits.time_limit_ms = 100
    reply = kv("EVAL", "redis.call('set', 'before', 'yes') while true do end", 0)
    assert isinstance(reply, ReplyError)
    assert kv("GET", "before") == b"yes"


def test_memory_limit(kv: EngineClient, limits: Limits) -> None:
    limits.memory_limit = 16 * 1024 * 1024
    error = ("error", "ERR script ran out of memory and was aborted (kvgate's script memory limit is 16 MiB)")
    assert comparable(kv("EVAL", "return string.rep('x', 64 * 1024 * 1024)", 0)) == error
    hog = "local t = {} for i = 1, 1e7 do t[i] = {i} end return #t"
    assert comparable(kv("EVAL", hog, 0)) == error
    caught = "local ok, e = pcall(string.rep, 'x', 64 * 1024 * 1024) return {tostring(ok), e}"
    assert kv("EVAL", caught, 0) == [b"false", b"not enough memory"]
    assert kv("EVAL", "return #string.rep('x', 1024 * 1024)", 0) == 1024 * 1024


SANDBOX_PROBES = [
    "return redis.call.__class__",
    "return redis.call['__globals__']",
    "return redis.pcall.__call__",
    "return redis.sha1hex.__self__",
    "local ok, e = pcall(error, 'x') return getmetatable(e)",
    "return loadstring('return python')()",
    "return loadstring('return os')()",
    "return load(function() return nil end)",
    "return getmetatable('').__index.x",
    "getmetatable('').__index.rep = nil",
    "getmetatable(string).__index = {}",
    "return string.dump(function() end):byte(1)",
    "return loadstring(string.dump(function() return os end))()",
    "return tostring(redis.call):find('Python') or tostring(redis.call):find('method')",
]


@pytest.mark.parametrize("probe", SANDBOX_PROBES)
def test_sandbox(kv: EngineClient, probe: str) -> None:
    reply = kv("EVAL", probe, 0)
    text = comparable(reply)
    assert not isinstance(reply, bytes) or b"python" not in reply.lower()
    assert "Traceback" not in str(text)
    assert kv("EVAL", "return ('x'):rep(3) .. type(string.rep) .. type(getmetatable('').__index.rep)", 0) == (
        b"xxxfunctionfunction"
    )


def test_no_python_or_os_from_lua(kv: EngineClient) -> None:
    assert isinstance(kv("EVAL", "return redis.call.__class__", 0), ReplyError)
    for name in ("python", "os", "io", "debug", "require", "package", "loadfile", "dofile", "print"):
        reply = comparable(kv("EVAL", f"return {name}", 0))
        assert reply[0] == "error" and f"nonexistent global variable '{name}'" in reply[1]


def test_what_redis_would_crash_on(kv: EngineClient) -> None:
    assert comparable(kv("EVAL", "error({})", 0)) == (
        "error",
        f"ERR Error running script {sha1('error({})')}, execution failure ",
    )
    assert kv("EVAL", "local t = {} t[1] = t return 1", 0) == 1
    deep = kv("EVAL", "local t = {} t[1] = t return t", 0)
    for _ in range(201):
        assert isinstance(deep, list)
        deep = deep[0]
    assert comparable(deep) == ("error", "ERR reached lua stack limit")


def test_resp3_is_refused(kv: EngineClient) -> None:
    assert comparable(kv("EVAL", "redis.setresp(3)", 0)) == (
        "error",
        "ERR redis.setresp(3) is not supported: kvgate runs scripts in RESP2 only "
        f"script: {sha1('redis.setresp(3)')}, on @user_script:1.",
    )


def test_command_the_engine_lacks(kv: EngineClient) -> None:
    name = kv.name
    assert comparable(kv("EVAL", "return redis.pcall('sort', 'k')", 0)) == (
        "error",
        f"ERR command 'sort' is not supported by the {name} backend",
    )
    assert comparable(kv("EVAL", "return redis.pcall('object', 'encoding', 'k')", 0)) == (
        "error",
        f"ERR command 'object|encoding' is not supported by the {name} backend",
    )


def test_evalsha_across_processes(tmp_path: Path) -> None:
    """Two stores on one SQLite file stand for two kvgate processes."""
    first = sqlite_client(tmp_path / "shared.db")
    second = sqlite_client(tmp_path / "shared.db")
    assert first("SCRIPT", "FLUSH") == b"OK"
    script = "return redis.call('incr', KEYS[1])"
    assert comparable(second("EVALSHA", sha1(script), 1, "n")) == ("error", NOSCRIPT)
    assert first("SCRIPT", "LOAD", script) == sha1(script).encode()
    assert second("EVALSHA", sha1(script), 1, "n") == 1
    assert second("SCRIPT", "EXISTS", sha1(script)) == [1]
    assert first("SCRIPT", "FLUSH") == b"OK"
    assert comparable(second("EVALSHA", sha1(script), 1, "n")) == ("error", NOSCRIPT)
    assert first("EVAL", script, 1, "n") == 2
    assert comparable(second("EVALSHA_RO", sha1("return 1"), 0)) == ("error", NOSCRIPT)
    assert second("EVALSHA", sha1(script), 1, "n") == 3


def test_threads_get_their_own_runtime() -> None:
    scripting = Scripting()
    seen: list[object] = []

    def work() -> None:
        seen.append(scripting.sandbox())

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen[0] is not seen[1]
    assert scripting.sandbox() is scripting.sandbox()


def test_databases_share_no_scripting_state(tmp_path: Path) -> None:
    """Two databases in one process: each has its own limits, Lua runtimes and scripts
    seen by read-only units (EVAL_RO runs on a read-only unit, which cannot store them)."""
    first, second = sqlite_client(tmp_path / "first.db"), sqlite_client(tmp_path / "second.db")
    with first.units(False) as a, second.units(False) as b:
        assert a.scripting is not b.scripting
        assert a.scripting.sandbox() is not b.scripting.sandbox()
        a.scripting.limits.memory_limit = 16 * 1024 * 1024
    assert first("EVAL_RO", "return 1", 0) == 1
    assert first("EVALSHA_RO", sha1("return 1"), 0) == 1
    assert comparable(second("EVALSHA_RO", sha1("return 1"), 0)) == ("error", NOSCRIPT)
    big = "return #string.rep('x', 32 * 1024 * 1024)"
    assert isinstance(first("EVAL", big, 0), ReplyError)
    assert second("EVAL", big, 0) == 32 * 1024 * 1024


def test_declared_reply_kinds_and_flags_name_real_commands() -> None:
    """The engine's status_reply and may_replicate facts patch commands Redis has (a
    misspelt name would otherwise be a new command with no facts)."""
    import json
    from importlib.resources import files

    from kvgate.commands import default_table
    from kvgate.engine import command_table

    declared = json.loads(files("kvgate.engine").joinpath("commands.json").read_text())["commands"]
    for name, facts in declared.items():
        if set(facts) <= {"flags", "status_reply"}:
            assert default_table().get(name) is not None, name
    assert command_table().get("xgroup|create").status_reply  # type: ignore[union-attr]
    assert "may_replicate" in command_table().get("publish").flags  # type: ignore[union-attr]


def test_split_args() -> None:
    assert split_args(b"#!lua \"a b\" c'd' \t e") == [b"#!lua", b"a b", b"cd", b"e"]
    assert split_args(b'"\\x41\\n"') == [b"A\n"]
    assert split_args(b'"open') is None
    assert split_args(b"'x'y") is None
    assert split_args(b"   ") == []
