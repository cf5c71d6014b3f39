"""Randomized differential test of streams: random sequences of stream commands go to the
session's Redis 7.0 and to the engine on each store, every reply compared exactly.

A small world (two stream keys and a string, IDs with milliseconds 0-40 and sequences 0-1,
two groups, three consumers) keeps the commands colliding: trimming meets deletions, groups
meet trimmed and deleted entries, reads meet moved group IDs.  Only what does not hang on
the clock is drawn: explicit IDs (``*`` would differ), min-idle 0, no IDLE/TIME, and none
of the replies that show idle or delivery times (XPENDING's extended form, XINFO
CONSUMERS, XINFO STREAM FULL).  Each example ends by comparing every key's entries, XINFO
STREAM (lengths, IDs, radix-tree counts) and XINFO GROUPS (lag, entries-read).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from tests.support.engine import Arg, EngineClient, Oracle, comparable

#: Examples per store (each of 30 commands); a long hunt: KVGATE_STREAMS_EXAMPLES=1000.
EXAMPLES = int(os.environ.get("KVGATE_STREAMS_EXAMPLES", "20"))
KEYS = ["s1", "s2"]
keys = st.sampled_from(["s1", "s1", "s1", "s2", "x"])
stream_keys = st.sampled_from(KEYS)
ms = st.integers(0, 40)
ids = st.builds(lambda m, s: f"{m}-{s}", ms, st.integers(0, 1))
#: XADD's ID: mostly the next one (``NEXT`` becomes the step's number, so IDs grow), in
#: its three forms; sometimes any (most then fail as too small).
add_ids = st.one_of(
    st.sampled_from(["NEXT-0", "NEXT-1", "NEXT", "NEXT-*"]),
    st.sampled_from(["NEXT-0", "NEXT-*"]),
    st.one_of(ids, ms.map(str), ms.map(lambda m: f"{m}-*")),
)
bounds = st.one_of(st.sampled_from(["-", "+"]), ids, ms.map(str), ids.map(lambda i: f"({i}"))
groups = st.sampled_from(["g1", "g2"])
consumers = st.sampled_from(["alice", "bob", "carol"])
counts = st.sampled_from(["1", "2", "3", "0"])
fields = st.lists(st.sampled_from(["a", "b", "1", "-5", "xyz"]), min_size=2, max_size=4).map(
    lambda f: f if len(f) % 2 == 0 else f[:-1]
)


trims = st.one_of(
    st.builds(
        lambda h, n: ["MAXLEN", *h, n], st.sampled_from([[], ["="], ["~"]]), st.sampled_from(["0", "1", "3"])
    ),
    st.builds(lambda h, i: ["MINID", *h, i], st.sampled_from([[], ["="], ["~"]]), ids),
)


def command(*parts: object) -> st.SearchStrategy[list[str]]:
    """A command from fixed words, strategies of one word and strategies of word lists."""
    drawn = [p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts]

    def flat(values: tuple[object, ...]) -> list[str]:
        out: list[str] = []
        for v in values:
            out += v if isinstance(v, list) else [str(v)]
        return out

    return st.tuples(*drawn).map(flat)


optional = st.sampled_from  # a choice of word lists, one of them empty
COMMANDS = st.one_of(
    command("XADD", keys, optional([[], ["NOMKSTREAM"]]), st.one_of(st.just([]), trims), add_ids, fields),
    command("XADD", stream_keys, add_ids, fields),
    command("XRANGE", keys, bounds, bounds, optional([[], ["COUNT", "2"]])),
    command("XREVRANGE", keys, bounds, bounds, optional([[], ["COUNT", "1"]])),
    command("XLEN", keys),
    command("XDEL", keys, st.lists(ids, min_size=1, max_size=3)),
    command("XTRIM", keys, trims),
    command("XREAD", "COUNT", counts, "STREAMS", stream_keys, st.one_of(ids, st.just("$"))),
    command("XGROUP", "CREATE", keys, groups, st.one_of(ids, st.just("$"), st.just("0")), optional([[], ["MKSTREAM"]])),
    command("XGROUP", "SETID", keys, groups, st.one_of(ids, st.just("$"))),
    command("XGROUP", "DESTROY", keys, groups),
    command("XGROUP", "CREATECONSUMER", keys, groups, consumers),
    command("XGROUP", "DELCONSUMER", keys, groups, consumers),
    command(
        "XREADGROUP",
        "GROUP",
        groups,
        consumers,
        optional([[], ["COUNT", "1"], ["COUNT", "2"]]),
        optional([[], ["NOACK"]]),
        "STREAMS",
        keys,
        st.one_of(st.just(">"), st.just(">"), st.just("0"), ids),
    ),
    command("XACK", keys, groups, st.lists(ids, min_size=1, max_size=3)),
    command("XPENDING", keys, groups),
    command("XCLAIM", keys, groups, consumers, "0", st.lists(ids, min_size=1, max_size=3), optional([[], ["JUSTID"], ["FORCE"]])),
    command("XAUTOCLAIM", keys, groups, consumers, "0", bounds, optional([[], ["COUNT", "1"], ["JUSTID"]])),
    command("XINFO", "STREAM", keys),
    command("XINFO", "GROUPS", keys),
    command("XSETID", keys, ids, optional([[], ["ENTRIESADDED", "3"], ["MAXDELETEDID", "2-0"]])),
)  # fmt: skip


class StreamsMatchRedis(RuleBasedStateMachine):
    def __init__(self, oracle: Oracle, engine: EngineClient) -> None:
        super().__init__()
        self.oracle, self.engine = oracle, engine
        self.history: list[list[str]] = []

    def check(self, cmd: list[Arg]) -> None:
        step = str(len(self.history) + 10)
        cmd = [a.replace("NEXT", step) if isinstance(a, str) else a for a in cmd]
        self.history.append([str(a) for a in cmd])
        expected, actual = comparable(self.oracle(*cmd)), comparable(self.engine(*cmd))
        assert expected == actual, (
            f"{cmd} differs on {self.engine.name}:\n  redis  {expected!r}\n  engine {actual!r}\n"
            + "after:\n"
            + "\n".join(" ".join(c) for c in self.history)
        )

    @initialize()
    def start(self) -> None:
        self.oracle("FLUSHALL")
        self.engine("FLUSHALL")
        self.check(["SET", "x", "string"])
        for i in range(1, 8):
            self.check(["XADD", "s1", f"{i}-0", "a", str(i)])
        self.check(["XGROUP", "CREATE", "s1", "g1", "0"])
        self.check(["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "3", "STREAMS", "s1", ">"])
        self.check(["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "1", "STREAMS", "s1", ">"])

    @rule(cmd=COMMANDS)
    def step(self, cmd: list[str]) -> None:
        self.check(cmd)

    def teardown(self) -> None:
        for key in KEYS:
            for cmd in (["XRANGE", key, "-", "+"], ["XINFO", "STREAM", key], ["XINFO", "GROUPS", key]):
                self.check(cmd)


SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def test_streams_match_redis(oracle: Oracle, engine: EngineClient) -> None:
    run_state_machine_as_test(lambda: StreamsMatchRedis(oracle, engine), settings=SETTINGS)
