"""Randomized differential test: the same random command sequences go to the session's real
Redis (the oracle) and to kvgate's engine on the memory store, on a SQLite file and on
DynamoDB Local (through the DynamoDB backend), and every reply must be the same, error
texts included.

Why a ``RuleBasedStateMachine`` rather than ``@given`` over a list of commands: the machine
runs ``stateful_step_count`` commands per example (a list strategy averages a handful unless
a ``min_size`` is forced, which then blocks shrinking below it), Hypothesis shrinks a failure
by deleting steps, and it switches rules (one per command family) on and off per example
(swarm testing), which concentrates some examples on a few families and their
interactions.  There is no model state: Redis is the model, the engine is compared with it
after every command, and the whole key space (types, TTL or not, contents) is compared at
the end of each example, which catches a state that diverged silently.

Every example starts empty: FLUSHALL on Redis, a new memory store, a new SQLite file and
an emptied DynamoDB table, then an ``initialize`` step of up to 8 valid writes fills the key space.  A small key space
shared by all types (each family favours one key of its own, so collections grow; any key
a third of the time, so WRONGTYPE paths are hit constantly) and small member spaces keep
the commands colliding.  Commands that add elements are drawn more often than the others.

Replies are compared exactly, except (each normalization is in :func:`observe`/:func:`agree`):

* replies whose order Redis takes from a hash table (SMEMBERS, SUNION, SINTER, SDIFF, KEYS,
  SPOP with a count) are compared sorted; SCAN and SSCAN are run to the end (cursor back to
  0) and the set of what they returned is compared (their cursors and pages are internal);
* random replies (SRANDMEMBER, HRANDFIELD, ZRANDMEMBER, RANDOMKEY) are compared by shape:
  nil or not, length, membership in the collection (read back from the same system right
  after), distinctness for positive counts;
* times: TTL and EXPIRETIME within 1 s, PTTL and PEXPIRETIME within 1000 ms (the two
  systems run the command at slightly different instants);
* DBSIZE: every key is touched first, since Redis counts an expired key until then.

What is not generated, because Redis's reply would depend on its internals rather than on
the commands: hash values and set members over 64 bytes (they change Redis's encoding,
hence HGETALL's order and how a score of -0 prints), SPOP without a count (a random
removal: the states would diverge; drawn only with a count at least the member space),
SCAN/SSCAN from a cursor no earlier call returned.  Relative TTLs are never literals: a
:class:`Ttl` placeholder becomes ``bucket * 1000 + step`` seconds when the step runs, so
two TTLs set at different steps differ by at least a second and GT/LT comparisons cannot
depend on the millisecond each system ran in.  The only short TTL is the ``expire_soon``
rule's 1 ms, followed by a pause long enough for the key to be expired on every side.

Default: ``KVGATE_HYPOTHESIS_EXAMPLES`` (150) examples of 40 steps, about 60 s (memory,
SQLite and DynamoDB Local against Redis; the seed is random, so each run draws new
examples).  Long run::

    KVGATE_HYPOTHESIS_EXAMPLES=3000 python -m pytest -q -s tests/engine/test_engine_hypothesis.py

A failure prints the shrunk steps and the command sequence with the first difference, plus
the shortest subsequence that still shows one; rerun it with the ``@reproduce_failure`` blob
or ``--hypothesis-seed``.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hiredis
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kvgate.adapters.sqlite_store import SqliteStore
from kvgate.engine import Engine
from kvgate.protocol import Reply
from tests.support.engine import (
    Arg,
    DynamoEngineClient,
    EngineClient,
    comparable,
    encode,
    make_client,
    normalize,
)
from tests.support.servers import DynamoDBLocal, RedisServer

EXAMPLES = int(os.environ.get("KVGATE_HYPOTHESIS_EXAMPLES", "150"))
STEPS = 40

Strategy = st.SearchStrategy
Command = list[Any]  # str/bytes arguments and Ttl placeholders

# --- the argument spaces --------------------------------------------------------------------

KEY_NAMES: tuple[Arg, ...] = ("k1", "k2", "k3", "k4", "k5", b"k\x00\xff")
MEMBER_NAMES: tuple[Arg, ...] = ("a", "b", "c", "1", "-2", "")
#: SPOP counts at least the size of the member space: the whole set, whatever Redis picks.
WHOLE = str(len(MEMBER_NAMES) + 1)


def _itself(strategy: Strategy) -> Strategy:
    return strategy


def pick(strategies: list[Strategy]) -> Strategy:
    """One of ``strategies``, a repeated one proportionally more often (``st.one_of``
    drops repeats, so it cannot weight)."""
    return st.sampled_from(strategies).flatmap(_itself)


def weighted(common: Strategy, rare: Strategy, ratio: int = 3) -> Strategy:
    """``common`` ``ratio`` times as often as ``rare`` (invalid input, mostly)."""
    return pick([common] * ratio + [rare])


def keys_for(home: Arg) -> Strategy[Arg]:
    """Two times in three the family's own key, else any key: collections grow and get read
    back, and every command still meets keys of every other type."""
    return weighted(st.just(home), st.sampled_from(KEY_NAMES), 2)


any_key = st.sampled_from(KEY_NAMES)
members = st.sampled_from(MEMBER_NAMES)
NUMERIC_TEXTS = (
    "0", "1", "-1", "10", "42", "-7", "9223372036854775807", "-9223372036854775808",
    "9223372036854775806", "1.5", "-0.5", "0.1", "0.2", "1e3", "3.0", "inf", "-inf", "nan",
    " 1", "01", "+1", "-0", "abc",
)  # fmt: skip
numeric_texts = st.sampled_from(NUMERIC_TEXTS)
long_texts = st.sampled_from(["x" * 70, "y" * 200 + "z"])  # over listpack's 64-byte limit
#: Hash values and set members stay within 64 bytes: a longer one turns a Redis hash into a
#: hash table, whose reply order (HGETALL, HKEYS...) is not insertion order, and a sorted set
#: made from a set (ZUNIONSTORE) into a skiplist, which prints a score of -0 as "-0" where
#: a listpack prints "0" (see test_redis_pitfalls.py, double formatting).
short_values = pick([members, members, numeric_texts, st.binary(max_size=6)])
values = pick([members, members, numeric_texts, numeric_texts, st.binary(max_size=6), long_texts])
#: List elements and set members: mostly from the member space, so that LREM, LPOS, SREM,
#: SISMEMBER... find what was added.
elements = pick([members, members, members, values])
set_members = pick([members, members, members, short_values])

small_ints = st.integers(-6, 8).map(str)
ints = weighted(
    small_ints,
    st.sampled_from(
        ["abc", "1.5", "", "9223372036854775807", "-9223372036854775808", "99999999999999999999"]
    ),
)
#: Counts for commands that return that many elements: never huge negative ones (a reply of
#: 2**63 random elements would exhaust Redis's memory).
counts = weighted(st.integers(-2, 8).map(str), st.sampled_from(["abc", "1.5", "-9223372036854775808"]))
pop_counts = weighted(st.integers(-1, 8).map(str), st.sampled_from(["abc", "9223372036854775807"]))
common_floats = st.sampled_from(["0.1", "0.2", "1.5", "-2", "3", "1e3", "-0.5", "5.0e-1", "10", "-0.0"])
floats = weighted(
    common_floats, st.sampled_from(["inf", "-inf", "+inf", "nan", "abc", "1e308", "0x10", " 1", ""])
)
#: No 1e308 for HINCRBYFLOAT: it prints as 309 digits, over 64 bytes (see short_values).
hash_floats = weighted(common_floats, st.sampled_from(["inf", "-inf", "nan", "abc", "0x10", " 1", ""]))
scores = weighted(
    st.sampled_from(["1", "2", "0", "-1", "2.5", "0.1", "-0.0", "1e20", "3", "inf", "-inf", "+inf"]),
    st.sampled_from(["nan", "abc", "", "1e400", "(1"]),
    ratio=6,
)
score_bounds = weighted(
    st.sampled_from(["-inf", "+inf", "0", "1", "(1", "2.5", "(2.5", "-1", "(-inf", "inf", "3", "(0"]),
    st.sampled_from(["abc", "(abc", "", "(", "nan"]),
    ratio=6,
)
lex_bounds = weighted(
    st.sampled_from(["-", "+", "[a", "(a", "[b", "(c", "[", "(", "[1", "[-2", "[", "(b"]),
    st.sampled_from(["a", "", "--", "+a"]),
    ratio=6,
)
range_ends = st.one_of(ints, score_bounds, lex_bounds)
patterns = st.sampled_from(
    ["*", "*", "k*", "k?", "k[1-3]", "k[^1]", "k[!1]", "k\\*", "[a-z]*", "?", "", "k[", "k[1-", "*5",
     "k\\1", b"k\x00*", "a*", "[^a]", "*[b-c]", "[ab]*", "-*", "?*"]
)  # fmt: skip


@dataclass(frozen=True)
class Ttl:
    """A relative TTL, resolved when the step runs (see the module docstring)."""

    bucket: int
    ms: bool = False

    def resolve(self, step: int) -> str:
        seconds = self.bucket * 1000 + step
        return str(seconds * 1000 if self.ms else seconds)


ttl_s = st.builds(Ttl, st.sampled_from([1, 2, 3, 50]))
ttl_ms = st.builds(Ttl, st.sampled_from([1, 2, 3, 50]), st.just(True))
secs = weighted(
    ttl_s,
    st.sampled_from(
        [
            "-5",
            "0",
            "abc",
            "1.5",
            "9223372036854775807",
            "9223372036854776",
            "9223370000000000",
            "-9223372036854775808",
        ]
    ),
)
msecs = weighted(
    ttl_ms,
    st.sampled_from(["-1", "0", "abc", "9223372036854775807", "9223370000000000000", "-9223372036854775808"]),
)
unix_s = st.sampled_from(
    ["4102444800", "4102448400", "1", "1000000000", "-1", "0", "abc", "9223372036854775807"]
)
unix_ms = st.sampled_from(["4102444800000", "4102444800500", "1", "-1", "abc", "9223372036854775807"])


# --- building commands ----------------------------------------------------------------------


def _flatten(parts: Iterable[Any]) -> Command:
    out: Command = []
    for part in parts:
        if isinstance(part, list | tuple):
            out.extend(_flatten(part))
        else:
            out.append(part)
    return out


def cmd(*parts: Strategy | Arg) -> Strategy[Command]:
    """A command from literal words and strategies; a strategy may yield a list of words."""
    return st.tuples(*(p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts)).map(_flatten)


def some(strategy: Strategy, low: int = 1, high: int = 3) -> Strategy[list[Any]]:
    return st.lists(strategy, min_size=low, max_size=high)


def options(*alternatives: Strategy | Arg | tuple[Strategy | Arg, ...], high: int = 3) -> Strategy[Command]:
    """Up to ``high`` options in any order, repeats and conflicting ones included."""
    choices = [cmd(*a) if isinstance(a, tuple) else cmd(a) for a in alternatives]
    return st.lists(st.one_of(choices), max_size=high).map(_flatten)


def pairs(first: Strategy, second: Strategy) -> Strategy[Command]:
    """One to three pairs, sometimes with a dangling first half (a syntax/arity error)."""
    dangling = weighted(st.just([]), st.lists(first, min_size=1, max_size=1), ratio=4)
    return st.tuples(some(st.tuples(first, second)), dangling).map(_flatten)


@st.composite
def numkeys_and_keys(draw: st.DrawFn, keys: Strategy[Arg], high: int = 3) -> Command:
    """``numkeys key...``: mostly consistent, sometimes a wrong or invalid number."""
    names = draw(some(keys, 1, high))
    right = str(len(names))
    numkeys = draw(weighted(st.just(right), st.sampled_from(["0", "-1", "abc", str(len(names) + 1)]), 5))
    return [numkeys, *names]


weights = weighted(st.sampled_from(["1", "2", "-1", "0.5", "0", "inf"]), st.sampled_from(["abc", "nan"]), 6)


@st.composite
def weighted_keys(draw: st.DrawFn, keys: Strategy[Arg]) -> Command:
    """``numkeys key... [WEIGHTS w...]``: weights mostly one per key."""
    head = draw(numkeys_and_keys(keys))
    if not draw(st.booleans()):
        return head
    n = len(head) - 1 + draw(weighted(st.just(0), st.sampled_from([1, -1]), 5))
    return [*head, "WEIGHTS", *draw(st.lists(weights, min_size=n, max_size=n))]


def family(*entries: tuple[str, Strategy[Command]]) -> dict[str, Strategy[Command]]:
    return dict(entries)


# strings -----------------------------------------------------------------------------------

skeys = keys_for("k1")
set_options = options(
    "NX",
    "XX",
    "GET",
    "KEEPTTL",
    ("EX", secs),
    ("PX", msecs),
    ("EXAT", unix_s),
    ("PXAT", unix_ms),
    "EX",
    "FOO",
    "nx",
)
getex_options = options(
    ("EX", secs), ("PX", msecs), ("EXAT", unix_s), ("PXAT", unix_ms), "PERSIST", "EX", "KEEPTTL", high=2
)
setrange_offsets = weighted(st.integers(0, 12).map(str), st.sampled_from(["-1", "abc", "536870912"]))

STRINGS = family(
    ("set", cmd("SET", skeys, values, st.one_of(st.just([]), options("NX", "XX", "GET", "KEEPTTL", ("EX", secs), high=1), set_options))),
    ("get", cmd("GET", skeys)),
    ("getex", cmd("GETEX", skeys, getex_options)),
    ("getdel", cmd("GETDEL", skeys)),
    ("getset", cmd("GETSET", skeys, values)),
    ("mget", cmd("MGET", some(skeys, 1, 4))),
    ("mset", cmd("MSET", pairs(skeys, values))),
    ("msetnx", cmd("MSETNX", pairs(skeys, values))),
    ("setnx", cmd("SETNX", skeys, values)),
    ("setex", cmd("SETEX", skeys, secs, values)),
    ("psetex", cmd("PSETEX", skeys, msecs, values)),
    ("append", cmd("APPEND", skeys, values)),
    ("strlen", cmd("STRLEN", skeys)),
    ("getrange", cmd("GETRANGE", skeys, ints, ints)),
    ("substr", cmd("SUBSTR", skeys, ints, ints)),
    ("setrange", cmd("SETRANGE", skeys, setrange_offsets, values)),
    ("incr", cmd("INCR", skeys)),
    ("decr", cmd("DECR", skeys)),
    ("incrby", cmd("INCRBY", skeys, ints)),
    ("decrby", cmd("DECRBY", skeys, ints)),
    ("incrbyfloat", cmd("INCRBYFLOAT", skeys, floats)),
    ("lcs", cmd("LCS", skeys, skeys, options("LEN", "IDX", ("MINMATCHLEN", ints), "WITHMATCHLEN", "FOO", high=3))),
)  # fmt: skip

# keys and server ---------------------------------------------------------------------------

expire_flags = weighted(st.just([]), options("NX", "XX", "GT", "LT", "nx", "FOO", high=2), 1)
scan_counts = weighted(st.sampled_from(["1", "2", "3", "10"]), st.sampled_from(["0", "abc", "-1"]), 5)
scan_types = st.sampled_from(["string", "list", "set", "zset", "hash", "foo", "STRING"])
scan_options = options(("MATCH", patterns), ("COUNT", scan_counts), ("TYPE", scan_types), ("MATCH", patterns), ("COUNT", scan_counts), "FOO", high=3)  # fmt: skip
member_scan_options = options(("MATCH", patterns), ("COUNT", scan_counts), ("MATCH", patterns), ("COUNT", scan_counts), "FOO", high=2)  # fmt: skip
bad_cursors = st.sampled_from(["abc", " 1", "1.5", "-", "0x1"])
#: Cursors that start a scan ("" reads as 0 to Redis's strtoul).  SCAN and SSCAN only start
#: at 0: elsewhere their pages depend on Redis's hash tables.
start_cursors = st.sampled_from(["0", "0", ""])
cursors = weighted(start_cursors, bad_cursors, 4)
#: HSCAN and ZSCAN on a small (listpack) collection ignore the cursor and return everything,
#: and the hashes and sorted sets here stay small: any cursor.
listpack_cursors = weighted(st.sampled_from(["0", "", "5", "18446744073709551615", "-1"]), bad_cursors, 4)

KEYS = family(
    ("del", cmd("DEL", some(any_key))),
    ("unlink", cmd("UNLINK", some(any_key))),
    ("exists", cmd("EXISTS", some(any_key, 1, 4))),
    ("type", cmd("TYPE", any_key)),
    ("expire", cmd("EXPIRE", any_key, secs, expire_flags)),
    ("pexpire", cmd("PEXPIRE", any_key, msecs, expire_flags)),
    ("expireat", cmd("EXPIREAT", any_key, unix_s, expire_flags)),
    ("pexpireat", cmd("PEXPIREAT", any_key, unix_ms, expire_flags)),
    ("ttl", cmd("TTL", any_key)),
    ("pttl", cmd("PTTL", any_key)),
    ("expiretime", cmd("EXPIRETIME", any_key)),
    ("pexpiretime", cmd("PEXPIRETIME", any_key)),
    ("persist", cmd("PERSIST", any_key)),
    ("rename", cmd("RENAME", any_key, any_key)),
    ("renamenx", cmd("RENAMENX", any_key, any_key)),
    ("copy", cmd("COPY", any_key, any_key, options("REPLACE", "REPLACE", "FOO", high=1))),
    ("touch", cmd("TOUCH", some(any_key))),
    ("keys", cmd("KEYS", patterns)),
    ("scan", weighted(cmd("SCAN", start_cursors, scan_options), cmd("SCAN", bad_cursors), 4)),
    ("randomkey", cmd("RANDOMKEY")),
    ("dbsize", cmd("DBSIZE")),
    ("ping", cmd("PING", options(values, high=1))),
    ("echo", cmd("ECHO", values)),
    ("flushdb", cmd("FLUSHDB")),  # rare: one of ~25 commands of one family of six
)

# hashes ------------------------------------------------------------------------------------

hkeys = keys_for("k2")
HASHES = family(
    ("hset", cmd("HSET", hkeys, pairs(members, short_values))),
    ("hmset", cmd("HMSET", hkeys, pairs(members, short_values))),
    ("hsetnx", cmd("HSETNX", hkeys, members, short_values)),
    ("hget", cmd("HGET", hkeys, members)),
    ("hmget", cmd("HMGET", hkeys, some(members))),
    ("hdel", cmd("HDEL", hkeys, some(members))),
    ("hexists", cmd("HEXISTS", hkeys, members)),
    ("hlen", cmd("HLEN", hkeys)),
    ("hstrlen", cmd("HSTRLEN", hkeys, members)),
    ("hkeys", cmd("HKEYS", hkeys)),
    ("hvals", cmd("HVALS", hkeys)),
    ("hgetall", cmd("HGETALL", hkeys)),
    ("hincrby", cmd("HINCRBY", hkeys, members, ints)),
    ("hincrbyfloat", cmd("HINCRBYFLOAT", hkeys, members, hash_floats)),
    ("hrandfield", cmd("HRANDFIELD", hkeys, options((counts, options("WITHVALUES", "WITHVALUES", "FOO", high=1)), high=1))),
    ("hscan", cmd("HSCAN", hkeys, listpack_cursors, member_scan_options)),
)  # fmt: skip

# lists -------------------------------------------------------------------------------------

lkeys = keys_for("k3")
side = weighted(st.sampled_from(["LEFT", "RIGHT", "left"]), st.just("UP"), 6)
LISTS = family(
    ("lpush", cmd("LPUSH", lkeys, some(elements))),
    ("rpush", cmd("RPUSH", lkeys, some(elements))),
    ("lpushx", cmd("LPUSHX", lkeys, some(elements))),
    ("rpushx", cmd("RPUSHX", lkeys, some(elements))),
    ("lpop", cmd("LPOP", lkeys, options(pop_counts, high=1))),
    ("rpop", cmd("RPOP", lkeys, options(pop_counts, high=1))),
    ("llen", cmd("LLEN", lkeys)),
    ("lindex", cmd("LINDEX", lkeys, ints)),
    ("lset", cmd("LSET", lkeys, ints, elements)),
    ("lrange", cmd("LRANGE", lkeys, ints, ints)),
    ("ltrim", cmd("LTRIM", lkeys, ints, ints)),
    ("lrem", cmd("LREM", lkeys, ints, elements)),
    ("linsert", cmd("LINSERT", lkeys, weighted(st.sampled_from(["BEFORE", "AFTER", "after"]), st.just("MIDDLE"), 6), elements, elements)),
    ("lpos", cmd("LPOS", lkeys, elements, options(("RANK", ints), ("COUNT", ints), ("MAXLEN", ints), "FOO"))),
    ("lmove", cmd("LMOVE", lkeys, lkeys, side, side)),
    ("rpoplpush", cmd("RPOPLPUSH", lkeys, lkeys)),
    ("lmpop", cmd("LMPOP", numkeys_and_keys(lkeys), side, options(("COUNT", pop_counts), ("COUNT", pop_counts), "FOO", high=1))),
)  # fmt: skip

# sets --------------------------------------------------------------------------------------

setkeys = keys_for("k4")
SETS = family(
    ("sadd", cmd("SADD", setkeys, some(set_members))),
    ("srem", cmd("SREM", setkeys, some(set_members, 1, 5))),
    ("smembers", cmd("SMEMBERS", setkeys)),
    ("sismember", cmd("SISMEMBER", setkeys, set_members)),
    ("smismember", cmd("SMISMEMBER", setkeys, some(members))),
    ("scard", cmd("SCARD", setkeys)),
    ("smove", cmd("SMOVE", setkeys, setkeys, members)),
    ("spop", cmd("SPOP", setkeys, st.sampled_from([WHOLE, "10", "0", "-1", "abc"]))),
    ("srandmember", cmd("SRANDMEMBER", setkeys, options(counts, high=1))),
    ("sinter", cmd("SINTER", some(setkeys))),
    ("sunion", cmd("SUNION", some(setkeys))),
    ("sdiff", cmd("SDIFF", some(setkeys))),
    ("sinterstore", cmd("SINTERSTORE", any_key, some(setkeys))),
    ("sunionstore", cmd("SUNIONSTORE", any_key, some(setkeys))),
    ("sdiffstore", cmd("SDIFFSTORE", any_key, some(setkeys))),
    ("sintercard", cmd("SINTERCARD", numkeys_and_keys(setkeys), options(("LIMIT", ints), high=1))),
    ("sscan", cmd("SSCAN", setkeys, cursors, member_scan_options)),
)

# sorted sets -------------------------------------------------------------------------------

zkeys = keys_for("k5")
zadd_flags = weighted(st.just([]), options("NX", "XX", "GT", "LT", "CH", "INCR", high=2), 2)
withscores = options("WITHSCORES", high=1)
limit = options(("LIMIT", ints, ints), high=1)
#: ZRANGE and ZRANGESTORE: mostly one of the coherent forms, sometimes anything.
zrange_args = st.one_of(
    cmd(ints, ints, options("REV", "WITHSCORES", high=2)),
    cmd(score_bounds, score_bounds, "BYSCORE", options("REV", ("LIMIT", ints, ints), "WITHSCORES", high=2)),
    cmd(lex_bounds, lex_bounds, "BYLEX", options("REV", ("LIMIT", ints, ints), high=2)),
    cmd(
        range_ends,
        range_ends,
        options("BYSCORE", "BYLEX", "REV", ("LIMIT", ints, ints), "WITHSCORES", "FOO", "LIMIT"),
    ),
)
aggregate = options(
    ("AGGREGATE", weighted(st.sampled_from(["SUM", "MIN", "MAX", "max"]), st.just("AVG"), 6)), high=1
)
by_score_options = options("WITHSCORES", ("LIMIT", ints, ints), high=2)
ZSETS = family(
    ("zadd", cmd("ZADD", zkeys, zadd_flags, pairs(scores, members))),
    ("zincrby", cmd("ZINCRBY", zkeys, floats, members)),
    ("zscore", cmd("ZSCORE", zkeys, members)),
    ("zmscore", cmd("ZMSCORE", zkeys, some(members))),
    ("zcard", cmd("ZCARD", zkeys)),
    ("zrank", cmd("ZRANK", zkeys, members)),
    ("zrevrank", cmd("ZREVRANK", zkeys, members)),
    ("zrem", cmd("ZREM", zkeys, some(members))),
    ("zremrangebyrank", cmd("ZREMRANGEBYRANK", zkeys, ints, ints)),
    ("zremrangebyscore", cmd("ZREMRANGEBYSCORE", zkeys, score_bounds, score_bounds)),
    ("zremrangebylex", cmd("ZREMRANGEBYLEX", zkeys, lex_bounds, lex_bounds)),
    ("zcount", cmd("ZCOUNT", zkeys, score_bounds, score_bounds)),
    ("zlexcount", cmd("ZLEXCOUNT", zkeys, lex_bounds, lex_bounds)),
    ("zrange", cmd("ZRANGE", zkeys, zrange_args)),
    ("zrangestore", cmd("ZRANGESTORE", any_key, zkeys, zrange_args)),
    ("zrevrange", cmd("ZREVRANGE", zkeys, ints, ints, withscores)),
    ("zrangebyscore", cmd("ZRANGEBYSCORE", zkeys, score_bounds, score_bounds, by_score_options)),
    ("zrevrangebyscore", cmd("ZREVRANGEBYSCORE", zkeys, score_bounds, score_bounds, by_score_options)),
    ("zrangebylex", cmd("ZRANGEBYLEX", zkeys, lex_bounds, lex_bounds, limit)),
    ("zrevrangebylex", cmd("ZREVRANGEBYLEX", zkeys, lex_bounds, lex_bounds, limit)),
    ("zpopmin", cmd("ZPOPMIN", zkeys, options(pop_counts, high=1))),
    ("zpopmax", cmd("ZPOPMAX", zkeys, options(pop_counts, high=1))),
    ("zmpop", cmd("ZMPOP", numkeys_and_keys(zkeys), weighted(st.sampled_from(["MIN", "MAX", "min"]), st.just("MID"), 6), options(("COUNT", pop_counts), ("COUNT", pop_counts), "FOO", high=1))),
    ("zrandmember", cmd("ZRANDMEMBER", zkeys, options((counts, withscores), high=1))),
    ("zscan", cmd("ZSCAN", zkeys, listpack_cursors, member_scan_options)),
    ("zunion", cmd("ZUNION", weighted_keys(zkeys), aggregate, withscores)),
    ("zinter", cmd("ZINTER", weighted_keys(zkeys), aggregate, withscores)),
    ("zdiff", cmd("ZDIFF", numkeys_and_keys(zkeys), withscores)),
    ("zunionstore", cmd("ZUNIONSTORE", any_key, weighted_keys(zkeys), aggregate)),
    ("zinterstore", cmd("ZINTERSTORE", any_key, weighted_keys(zkeys), aggregate)),
    ("zdiffstore", cmd("ZDIFFSTORE", any_key, numkeys_and_keys(zkeys))),
    ("zintercard", cmd("ZINTERCARD", numkeys_and_keys(zkeys), options(("LIMIT", ints), high=1))),
)  # fmt: skip

# geo (sorted sets whose scores are geohashes: the sorted-set family's home key) -----------------

valid_longitudes = st.sampled_from(["13.361389", "15.087269", "0", "-180", "180", "179.99", "-179.99", "14"])
valid_latitudes = st.sampled_from(
    ["38.115556", "37.502669", "0", "85.05112878", "-85.05112878", "84.9", "-70", "38"]
)
longitudes = weighted(valid_longitudes, st.sampled_from(["181", "abc", "nan", "-180.5"]), ratio=12)
latitudes = weighted(valid_latitudes, st.sampled_from(["86", "abc", "-90"]), ratio=12)
units = weighted(st.sampled_from(["m", "km", "mi", "ft", "KM"]), st.just("yd"), 8)
geo_sizes = weighted(
    st.sampled_from(["0", "1", "100", "200", "1000", "5000", "20000", "0.5"]),
    st.sampled_from(["-1", "abc"]),
    8,
)
geo_center = st.one_of(cmd("FROMMEMBER", members), cmd("FROMLONLAT", longitudes, latitudes))
geo_shape = st.one_of(cmd("BYRADIUS", geo_sizes, units), cmd("BYBOX", geo_sizes, geo_sizes, units))
geo_options = options(
    "WITHCOORD",
    "WITHDIST",
    "WITHHASH",
    "ASC",
    "DESC",
    ("COUNT", weighted(st.sampled_from(["1", "2", "3"]), ints)),
    "ANY",
)
geo_radius_options = options(
    "WITHDIST",
    "ASC",
    "DESC",
    ("COUNT", st.sampled_from(["1", "2", "3"])),
    "ANY",
    ("STORE", any_key),
    ("STOREDIST", any_key),
)
GEO = family(
    ("geoadd", cmd("GEOADD", zkeys, options("NX", "XX", "CH", high=2), some(st.tuples(longitudes, latitudes, members)))),
    ("geodist", cmd("GEODIST", zkeys, members, members, options(units, high=1))),
    ("geopos", cmd("GEOPOS", zkeys, some(members))),
    ("geohash", cmd("GEOHASH", zkeys, some(members))),
    ("geosearch", cmd("GEOSEARCH", zkeys, geo_center, geo_shape, geo_options)),
    ("geosearchstore", cmd("GEOSEARCHSTORE", any_key, zkeys, geo_center, geo_shape, options("ASC", "DESC", ("COUNT", st.sampled_from(["1", "2"])), "STOREDIST", high=2))),
    ("georadius", cmd("GEORADIUS", zkeys, longitudes, latitudes, geo_sizes, units, geo_radius_options)),
    ("georadius_ro", cmd("GEORADIUS_RO", zkeys, longitudes, latitudes, geo_sizes, units, geo_options)),
    ("georadiusbymember", cmd("GEORADIUSBYMEMBER", zkeys, members, geo_sizes, units, geo_radius_options)),
    ("georadiusbymember_ro", cmd("GEORADIUSBYMEMBER_RO", zkeys, members, geo_sizes, units, geo_options)),
)  # fmt: skip

# HyperLogLog and bitmaps (strings in formats of their own: a home key each) ---------------

hll_keys = keys_for("k4")
HYPERLOGLOG = family(
    ("pfadd", cmd("PFADD", hll_keys, some(values, 0, 6))),
    ("pfcount", cmd("PFCOUNT", some(hll_keys, 1, 3))),
    ("pfmerge", cmd("PFMERGE", hll_keys, some(hll_keys, 0, 3))),
)  # fmt: skip

bit_keys = keys_for("k5")
bit_offsets = weighted(st.integers(0, 40).map(str), st.sampled_from(["-1", "abc", "4294967296", "01"]), 8)
bit_values = weighted(st.sampled_from(["0", "1"]), st.sampled_from(["2", "-1", "x"]), 8)
bit_units = options("BIT", "BYTE", "bits", high=1)
field_types = weighted(
    st.sampled_from(["u1", "u4", "i5", "u8", "i8", "i16", "u63", "i64"]),
    st.sampled_from(["u64", "i0", "I8", "x"]),
    8,
)
field_offsets = weighted(st.integers(0, 40).map(str), st.sampled_from(["#1", "#3", "-1", "#x"]), 3)
field_ops = pick(
    [
        cmd("GET", field_types, field_offsets),
        cmd("SET", field_types, field_offsets, ints),
        cmd("INCRBY", field_types, field_offsets, ints),
        cmd("OVERFLOW", weighted(st.sampled_from(["WRAP", "SAT", "FAIL"]), st.just("MAYBE"), 8)),
    ]
)
BITMAPS = family(
    ("setbit", cmd("SETBIT", bit_keys, bit_offsets, bit_values)),
    ("getbit", cmd("GETBIT", bit_keys, bit_offsets)),
    ("bitcount", cmd("BITCOUNT", bit_keys, st.one_of(st.just([]), cmd(ints, ints, bit_units)))),
    ("bitpos", cmd("BITPOS", bit_keys, st.sampled_from(["0", "1", "2"]), st.one_of(st.just([]), cmd(ints), cmd(ints, ints, bit_units)))),
    ("bitop", cmd("BITOP", weighted(st.sampled_from(["AND", "OR", "XOR", "NOT"]), st.just("NAND"), 8), bit_keys, some(bit_keys, 1, 3))),
    ("bitfield", cmd("BITFIELD", bit_keys, some(field_ops, 0, 3))),
    ("bitfield_ro", cmd("BITFIELD_RO", bit_keys, some(field_ops, 0, 2))),
)  # fmt: skip

#: Valid writes that fill the key space at the start of an example (the machine's
#: ``initialize`` step), so that the random commands after them meet full collections.
valid_scores = st.sampled_from(["1", "2", "0", "-1", "2.5", "0.1", "1e20", "3", "inf", "-inf", "-0.5"])
SEED = pick(
    [
        cmd("SET", any_key, values),
        cmd("HSET", any_key, some(st.tuples(members, short_values), 1, 6)),
        cmd("RPUSH", any_key, some(elements, 1, 6)),
        cmd("SADD", any_key, some(set_members, 1, 6)),
        cmd("ZADD", any_key, some(st.tuples(valid_scores, members), 1, 6)),
        cmd("GEOADD", zkeys, some(st.tuples(valid_longitudes, valid_latitudes, members), 1, 6)),
    ]
)

SOON = pick(
    [
        cmd("PEXPIRE", any_key, "1", options("NX", "XX", "GT", "LT", high=1)),
        cmd("SET", any_key, values, "PX", "1"),
        cmd("PSETEX", any_key, "1", values),
        cmd("GETEX", any_key, "PX", "1"),
    ]
)

FAMILIES = {"strings": STRINGS, "keys": KEYS, "hashes": HASHES, "lists": LISTS, "sets": SETS, "zsets": ZSETS, "geo": GEO, "hyperloglog": HYPERLOGLOG, "bitmaps": BITMAPS}  # fmt: skip
#: Commands that add elements are drawn this many times as often as the others: without the
#: bias the many commands that remove (ZREMRANGEBY*, *STORE of empty results...) keep the
#: collections empty.
GROWERS = {"set": 4, "mset": 2, "append": 2, "hset": 4, "lpush": 4, "rpush": 4, "linsert": 2, "sadd": 4, "zadd": 6, "zincrby": 2, "geoadd": 3, "pfadd": 2, "setbit": 2}  # fmt: skip


def implemented(entries: dict[str, Strategy[Command]]) -> list[Strategy[Command]]:
    """Only commands the engine has: the machine stays useful while families land (the
    coverage test below lists what is missing)."""
    return [s for name, s in entries.items() if Engine.supports(name) for _ in range(GROWERS.get(name, 1))]


def family_strategy(entries: dict[str, Strategy[Command]]) -> Strategy[Command]:
    available = implemented(entries)
    return pick(available) if available else st.nothing()


# --- observing replies ----------------------------------------------------------------------

System = Callable[..., Reply]

UNORDERED = frozenset({"SMEMBERS", "SUNION", "SINTER", "SDIFF", "KEYS", "SPOP"})
FULL_SCANS = {"SCAN": 1, "SSCAN": 2}  # command -> position of the cursor
#: Random replies and the command that reads the population they are drawn from.
POPULATION: dict[str, Callable[[Command], Command]] = {
    "SRANDMEMBER": lambda c: ["SMEMBERS", c[1]],
    "HRANDFIELD": lambda c: ["HGETALL", c[1]],
    "ZRANDMEMBER": lambda c: ["ZRANGE", c[1], "0", "-1", "WITHSCORES"],
    "RANDOMKEY": lambda c: ["KEYS", "*"],
}
TIMES = {"TTL": 1, "EXPIRETIME": 1, "PTTL": 1000, "PEXPIRETIME": 1000}  # tolerance


def full_scan(system: System, command: Command) -> object:
    """Follow the cursor back to 0 and return the set of names seen (a name may come twice
    in a SCAN).  Errors and malformed replies are returned as they are."""
    position = FULL_SCANS[command[0]]
    seen: set[bytes] = set()
    current = list(command)
    for _ in range(1000):
        reply = comparable(system(*current))
        if not (isinstance(reply, list) and len(reply) == 2 and isinstance(reply[1], list)):
            return reply
        seen.update(reply[1])
        if reply[0] == b"0":
            return ("scanned", sorted(seen))
        current[position] = reply[0]
    return ("scan did not end after 1000 calls", sorted(seen))


def _pairs(flat: list[Any]) -> list[tuple[Any, Any]]:
    return list(zip(flat[::2], flat[1::2], strict=False))


def random_shape(system: System, command: Command, reply: object) -> object:
    """What a random reply must satisfy, as a comparable value: its shape and membership in
    the population read back from the same system."""
    if not isinstance(reply, list | bytes):
        return reply  # nil, an error, an integer
    population = comparable(system(*POPULATION[command[0]](command)))
    if command[0] in ("HRANDFIELD", "ZRANDMEMBER") and isinstance(population, list):
        population = _pairs(population)
        if len(command) < 4:  # no WITHVALUES/WITHSCORES: names only
            population = [p[0] for p in population]
    if not isinstance(population, list):
        return ("population unreadable", population)
    if isinstance(reply, bytes):
        return ("one", reply in population, sorted(population, key=repr))
    items: list[Any] = _pairs(reply) if len(command) >= 4 else reply
    within = all(item in population for item in items)
    shape: tuple[Any, ...] = ("some", len(reply), within, sorted(population, key=repr))
    if int(command[2]) >= 0:
        shape += (len(set(items)) == len(items),)
    return shape


def observe(system: System, command: Command) -> object:
    name = command[0]
    if name in FULL_SCANS and command[FULL_SCANS[name]] in ("0", ""):
        return full_scan(system, command)
    if name == "DBSIZE":
        # Redis counts an expired key until something touches it or its active expiry cycle
        # happens to sample it (SET ... EXAT 1 leaves one behind): touch every key first.
        system("EXISTS", *KEY_NAMES)
    reply = comparable(system(*command))
    if name in POPULATION:
        return random_shape(system, command, reply)
    if name in UNORDERED and isinstance(reply, list):
        return sorted(reply, key=repr)
    return reply


def kind_of(observed: object) -> str:
    if isinstance(observed, tuple) and observed[:1] == ("error",):
        return "error"
    if observed is None or observed == []:
        return "nil or empty"
    return "integer" if isinstance(observed, int) else "value"


def agree(command: Command, expected: object, actual: object) -> bool:
    tolerance = TIMES.get(command[0])
    if tolerance is not None and isinstance(expected, int) and isinstance(actual, int):
        if expected < 0 or actual < 0:
            return expected == actual
        return abs(expected - actual) <= tolerance
    return expected == actual


#: How each type's contents are read for the final comparison (unordered ones sorted).
CONTENTS: dict[bytes, Callable[[Arg], Command]] = {
    b"string": lambda k: ["GET", k],
    b"hash": lambda k: ["HGETALL", k],
    b"list": lambda k: ["LRANGE", k, "0", "-1"],
    b"set": lambda k: ["SMEMBERS", k],
    b"zset": lambda k: ["ZRANGE", k, "0", "-1", "WITHSCORES"],
}


def dump(system: System) -> list[object]:
    """Every key's type, whether it has a TTL, and contents."""
    out: list[object] = []
    for key in KEY_NAMES:
        kind = comparable(system("TYPE", key))
        ttl = comparable(system("PTTL", key))
        contents = (
            comparable(system(*CONTENTS[kind](key))) if isinstance(kind, bytes) and kind in CONTENTS else None
        )
        if kind == b"set" and isinstance(contents, list):
            contents = sorted(contents)
        out.append((key, kind, ttl if not isinstance(ttl, int) or ttl < 0 else "ttl", contents))
    return out


# --- the oracle over one connection ---------------------------------------------------------


class RedisConnection:
    """One persistent connection to the oracle (a connection per command would leave tens of
    thousands of sockets in TIME_WAIT over a long run)."""

    def __init__(self, server: RedisServer) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        self.reader = hiredis.Reader()

    def __call__(self, *args: Arg) -> Reply:
        parts = encode(args)
        self.sock.sendall(b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts))
        while (reply := self.reader.gets()) is False:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.reader.feed(chunk)
        return normalize(reply)

    def close(self) -> None:
        self.sock.close()


# --- the systems under comparison -----------------------------------------------------------


@dataclass(frozen=True)
class Step:
    command: Command  # resolved: no Ttl placeholders left
    pause: float = 0.0  # seconds to wait after it


@dataclass(frozen=True)
class Difference:
    store: str
    where: str
    expected: object
    actual: object


#: The engine on DynamoDB Local, through the backend, for the test's whole run (a new
#: client per example would cost more than the example): its table is emptied per example.
DYNAMODB: list[tuple[DynamoEngineClient, DynamoDBLocal]] = []


class Systems:
    """The oracle, flushed, and the engine on a new memory store, a new SQLite file and an
    emptied DynamoDB table."""

    def __init__(self, redis: RedisConnection) -> None:
        self.redis = redis
        assert redis("FLUSHALL") == b"OK"
        self.dir = tempfile.mkdtemp(prefix="kvgate-hyp-")
        self.sqlite = SqliteStore(str(Path(self.dir) / "engine.db"))
        self.engines = [make_client("memory", Path(self.dir)), EngineClient(self.sqlite.unit, "sqlite")]
        for client, local in DYNAMODB:
            local.clean_table()
            self.engines.append(client)

    def run(self, step: Step) -> tuple[object, Difference | None]:
        """Redis's observed reply, and the first store whose reply differs."""
        expected = observe(self.redis, step.command)
        actual = [(engine.name, observe(engine, step.command)) for engine in self.engines]
        time.sleep(step.pause)
        for name, reply in actual:
            if not agree(step.command, expected, reply):
                return expected, Difference(name, "the last command", expected, reply)
        return expected, None

    def compare_key_spaces(self) -> Difference | None:
        expected = dump(self.redis)
        for engine in self.engines:
            actual = dump(engine)
            if actual != expected:
                return Difference(engine.name, "the key space at the end", expected, actual)
        return None

    def close(self) -> None:
        self.sqlite.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def replay(redis: RedisConnection, steps: list[Step]) -> Difference | None:
    systems = Systems(redis)
    try:
        for step in steps:
            _, difference = systems.run(step)
            if difference is not None:
                return difference
        return systems.compare_key_spaces()
    finally:
        systems.close()


def shortest(redis: RedisConnection, steps: list[Step]) -> list[Step]:
    """Drop every step the difference does not need, one at a time (Hypothesis's shrinker
    cannot always delete steps: the rules it enables per example are drawn in them)."""
    i = 0
    while i < len(steps):
        candidate = steps[:i] + steps[i + 1 :]
        if replay(redis, candidate) is not None:
            steps = candidate
        else:
            i += 1
    return steps


def describe(difference: Difference, steps: list[Step]) -> str:
    sequence = "\n".join(f"  {step.command!r},{'  # then a pause' if step.pause else ''}" for step in steps)
    return (
        f"the engine on {difference.store} differs from Redis at {difference.where} of:\n[\n{sequence}\n]\n"
        f"  redis:  {difference.expected!r}\n  {difference.store}: {difference.actual!r}"
    )


# --- the machine ----------------------------------------------------------------------------


@dataclass
class Stats:
    examples: int = 0
    steps: int = 0
    kinds: Counter[str] = field(default_factory=Counter)


class EngineMatchesRedis(RuleBasedStateMachine):
    """One example: empty systems; every step one command to all three."""

    def __init__(self, redis: RedisConnection, stats: Stats) -> None:
        super().__init__()
        self.redis = redis
        self.stats = stats
        self.systems = Systems(redis)
        self.history: list[Step] = []
        self.failed = False
        stats.examples += 1

    def teardown(self) -> None:
        """Compare the whole key space at the end (a state that diverged without any reply
        showing it, such as an empty set left behind, fails here), then clean up."""
        try:
            difference = None if self.failed else self.systems.compare_key_spaces()
        finally:
            self.systems.close()
        if difference is not None:
            self.fail(difference)

    def fail(self, difference: Difference) -> None:
        self.failed = True
        message = describe(difference, self.history)
        if current_build_context().is_final:  # the shrunk example, run once more to report it
            steps = shortest(self.redis, self.history)
            found = replay(self.redis, steps)
            if found is not None and len(steps) < len(self.history):
                message += "\n\nshortest sequence still showing a difference:\n" + describe(found, steps)
        raise AssertionError(message)

    def check(self, command: Command, pause: float = 0.0) -> None:
        step = Step([a.resolve(len(self.history)) if isinstance(a, Ttl) else a for a in command], pause)
        self.history.append(step)
        self.stats.steps += 1
        expected, difference = self.systems.run(step)
        self.stats.kinds[kind_of(expected)] += 1
        if difference is not None:
            self.fail(difference)

    @initialize(commands=st.lists(SEED, max_size=8))
    def seed(self, commands: list[Command]) -> None:
        for command in commands:
            self.check(command)

    @precondition(lambda self: bool(implemented(STRINGS)))
    @rule(command=family_strategy(STRINGS))
    def strings(self, command: Command) -> None:
        self.check(command)

    @precondition(lambda self: bool(implemented(KEYS)))
    @rule(command=family_strategy(KEYS))
    def keys(self, command: Command) -> None:
        self.check(command)

    @precondition(lambda self: all(map(Engine.supports, ("pexpire", "psetex", "getex"))))
    @rule(command=SOON)
    def expire_soon(self, command: Command) -> None:
        """A TTL of 1 ms, then a pause: the key is expired on both sides but may still be in
        the store, so the commands after it take the lazy-expiry paths."""
        self.check(command, pause=0.005)

    @precondition(lambda self: bool(implemented(HASHES)))
    @rule(command=family_strategy(HASHES))
    def hashes(self, command: Command) -> None:
        self.check(command)

    @precondition(lambda self: bool(implemented(LISTS)))
    @rule(command=family_strategy(LISTS))
    def lists(self, command: Command) -> None:
        self.check(command)

    @precondition(lambda self: bool(implemented(SETS)))
    @rule(command=family_strategy(SETS))
    def sets(self, command: Command) -> None:
        self.check(command)

    @precondition(lambda self: bool(implemented(ZSETS)))
    @rule(command=family_strategy(ZSETS))
    def zsets(self, command: Command) -> None:
        self.check(command)

    @precondition(lambda self: bool(implemented(GEO)))
    @rule(command=family_strategy(GEO))
    def geo(self, command: Command) -> None:
        self.check(command)

    @precondition(lambda self: bool(implemented(HYPERLOGLOG)))
    @rule(command=family_strategy(HYPERLOGLOG))
    def hyperloglog(self, command: Command) -> None:
        self.check(command)

    @precondition(lambda self: bool(implemented(BITMAPS)))
    @rule(command=family_strategy(BITMAPS))
    def bitmaps(self, command: Command) -> None:
        self.check(command)


SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=False,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def test_engine_matches_redis(redis_server: RedisServer, dynamodb_local: DynamoDBLocal) -> None:
    if not any(implemented(entries) for entries in FAMILIES.values()):
        pytest.skip("no command family of the engine is implemented yet")
    redis = RedisConnection(redis_server)
    stats = Stats()
    DYNAMODB.append((DynamoEngineClient(dynamodb_local.clean_table()), dynamodb_local))
    try:
        run_state_machine_as_test(lambda: EngineMatchesRedis(redis, stats), settings=SETTINGS)
    finally:
        redis.close()
        client, _ = DYNAMODB.pop()
        client.close()
        kinds = ", ".join(f"{n} {kind}" for kind, n in stats.kinds.most_common())
        print(f"\nhypothesis: {stats.steps} commands in {stats.examples} examples; Redis replied {kinds}")


def test_every_generated_command_is_implemented() -> None:
    """The machine only draws implemented commands; this lists the ones it cannot draw yet."""
    missing = sorted(name for entries in FAMILIES.values() for name in entries if not Engine.supports(name))
    assert not missing, f"not implemented by the engine, so not tested by the machine: {missing}"
