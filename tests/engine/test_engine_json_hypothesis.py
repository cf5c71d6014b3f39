"""Randomized differential test of documents: random JSON values, random paths (that exist
and that do not, JSONPath and legacy, malformed now and then) and every JSON.* command go to
RedisJSON 2.8 (the oracle) and to kvgate's engine on the memory store and a SQLite file
(DynamoDB Local too with ``KVGATE_JSON_HYPOTHESIS_DYNAMODB=1``); every reply must be the same,
error texts included, and at the end of each example every document must read back the
same.

A ``RuleBasedStateMachine`` as in ``test_engine_hypothesis.py`` (Redis is the model; steps
shrink by deletion).  Compared exactly, but: JSON.GET with several paths is compared as
parsed JSON (RedisJSON orders that object by a Rust ``HashMap``).  Not generated, because
the two differ by design (README, "Documents"): JSON.DEBUG MEMORY after changes (RedisJSON
reports capacities its arrays keep after shrinking), regular expressions other than plain
letters (Rust's regex crate and Python's ``re`` differ in syntax).

Default: ``KVGATE_JSON_HYPOTHESIS_EXAMPLES`` (60) examples of 30 steps, a few seconds.  Long
run::

    KVGATE_JSON_HYPOTHESIS_EXAMPLES=2000 python -m pytest -q tests/engine/test_engine_json_hypothesis.py
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from kvgate.engine import command_table
from tests.support.engine import EngineClient, Oracle, comparable, memory_client, sqlite_client
from tests.support.redisjson import rejson_module
from tests.support.servers import RedisServer

EXAMPLES = int(os.environ.get("KVGATE_JSON_HYPOTHESIS_EXAMPLES", "60"))
STEPS = 30
WITH_DYNAMODB = os.environ.get("KVGATE_JSON_HYPOTHESIS_DYNAMODB") == "1"

KEYS = ("d1", "d2")
FIELDS = ("a", "b", "x", "0", "k'q", 'k"q')

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-300, 300),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([2**64 - 1, 2**64, -(2**63) - 1]),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.sampled_from([0.1, 1.5, -0.0, 1e30, 1e-7, 12345678901234567.0]),
    st.text(alphabet='abxé✓"\\\n', max_size=6),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4),
    ),
    max_leaves=12,
)


def text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


json_args = st.one_of(values.map(text), st.sampled_from(["{", "[1,", "tru", "1 x", '"a" x', "", "01"]))
numbers = st.one_of(
    st.integers(-5, 5).map(str),
    st.sampled_from(["1.5", "-0.5", "1e308", "0", "-1", "9223372036854775807", "2.0", "x", '"1"', "1 2"]),
)

_field = st.sampled_from(FIELDS)
_index = st.integers(-4, 4)
_segment = st.one_of(
    _field.filter(lambda f: f.isalnum()).map(lambda f: f".{f}"),
    _field.map(lambda f: "['" + f.replace("\\", "\\\\").replace("'", "\\'") + "']"),
    _field.map(lambda f: '["' + f.replace("\\", "\\\\").replace('"', '\\"') + '"]'),
    _index.map(lambda i: f"[{i}]"),
    st.just("[*]"),
    st.just(".*"),
    _field.filter(lambda f: f.isalnum()).map(lambda f: f"..{f}"),
    st.just("..*"),
    st.tuples(
        st.one_of(st.none(), _index), st.one_of(st.none(), _index), st.one_of(st.none(), st.integers(1, 3))
    ).map(
        lambda t: (
            f"[{'' if t[0] is None else t[0]}:{'' if t[1] is None else t[1]}{'' if t[2] is None else f':{t[2]}'}]"
        )
    ),
    st.tuples(_index, _index).map(lambda t: f"[{t[0]},{t[1]}]"),
    st.tuples(_field.filter(str.isalnum), st.sampled_from(["<", "<=", "==", "!=", ">", ">="]), scalars).map(
        lambda t: f"[?(@.{t[0]}{t[1]}{text(t[2]) if not isinstance(t[2], str) else json.dumps(t[2])})]"
    ),
    st.sampled_from(
        ["[?(@)]", "[?(@.a)]", '[?(@ == "a")]', "[?(@ > 1 && @ < 100)]", "[?(@.a || @.b)]", '[?(@ =~ "a")]']
    ),
)
_jsonpath = st.lists(_segment, max_size=3).map(lambda segments: "$" + "".join(segments))
_legacy = st.one_of(
    st.just("."),
    st.lists(
        st.one_of(_field.filter(str.isalnum).map(lambda f: f".{f}"), _index.map(lambda i: f"[{i}]")),
        min_size=1,
        max_size=3,
    ).map("".join),
    _field.filter(str.isalnum),
)
paths = st.one_of(
    _jsonpath, _jsonpath, _legacy, st.sampled_from(["$[", "$..", "$.a[?(@.x ==)]", "$a", ".a["])
)

key = st.sampled_from((*KEYS, "s", "missing"))
doc = st.sampled_from(KEYS)


def cmd(*parts: Any) -> st.SearchStrategy[list[str]]:
    return st.tuples(*(p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts)).map(list)


small = st.integers(-5, 5).map(str)
COMMANDS = st.one_of(
    cmd("JSON.SET", doc, st.just("$"), values.map(text)),
    cmd("JSON.SET", key, paths, json_args),
    cmd("JSON.SET", key, paths, values.map(text), st.sampled_from(["NX", "XX"])),
    cmd("JSON.GET", key),
    cmd("JSON.GET", key, paths),
    cmd("JSON.GET", key, paths, paths),
    cmd("JSON.GET", key, st.just("INDENT"), st.just("\t"), st.just("NEWLINE"), st.just("\n"), paths),
    cmd("JSON.MGET", doc, key, paths),
    cmd("JSON.MSET", doc, paths, values.map(text), doc, paths, json_args),
    cmd("JSON.MERGE", key, paths, json_args),
    cmd("JSON.DEL", key, paths),
    cmd("JSON.FORGET", key, paths),
    cmd("JSON.CLEAR", key, paths),
    cmd("JSON.TYPE", key, paths),
    cmd("JSON.STRLEN", key, paths),
    cmd("JSON.STRAPPEND", key, paths, st.sampled_from(['"z"', '"é"', "1", "x"])),
    cmd("JSON.NUMINCRBY", key, paths, numbers),
    cmd("JSON.NUMMULTBY", key, paths, numbers),
    cmd("JSON.TOGGLE", key, paths),
    cmd("JSON.OBJKEYS", key, paths),
    cmd("JSON.OBJLEN", key, paths),
    cmd("JSON.ARRAPPEND", key, paths, json_args),
    cmd("JSON.ARRINDEX", key, paths, json_args),
    cmd("JSON.ARRINDEX", key, paths, values.map(text), small, small),
    cmd("JSON.ARRINSERT", key, paths, small, values.map(text)),
    cmd("JSON.ARRLEN", key, paths),
    cmd("JSON.ARRPOP", key, paths),
    cmd("JSON.ARRPOP", key, paths, small),
    cmd("JSON.ARRTRIM", key, paths, small, small),
    cmd("JSON.RESP", key, paths),
)


def multi_path_get(command: list[str]) -> bool:
    return (
        command[0] == "JSON.GET"
        and len([a for a in command[2:] if a not in ("INDENT", "NEWLINE", "\t", "\n")]) > 1
    )


class DocumentsMatchRedisJSON(RuleBasedStateMachine):
    def __init__(self, oracle: Oracle, engines: list[EngineClient], stats: Counter[str]) -> None:
        super().__init__()
        self.stats = stats
        self.oracle = oracle
        oracle.server.command("FLUSHALL")
        self.engines = engines
        for engine in engines:
            engine("FLUSHALL")
        self.history: list[list[str]] = []

    def run(self, command: list[str]) -> None:
        self.history.append(command)
        expected = comparable(self.oracle(*command))
        self.stats["error" if isinstance(expected, tuple) else "nil" if expected is None else "reply"] += 1
        for engine in self.engines:
            actual = comparable(engine(*command))
            if multi_path_get(command) and isinstance(expected, bytes) and isinstance(actual, bytes):
                same = json.loads(expected) == json.loads(actual)
            else:
                same = expected == actual
            assert same, (
                f"{command!r}\n  redisjson {expected!r}\n  {engine.name:9} {actual!r}\n"
                f"after:\n" + "\n".join(repr(c) for c in self.history[:-1])
            )

    @initialize(first=values, second=values)
    def documents(self, first: Any, second: Any) -> None:
        self.run(["JSON.SET", "d1", "$", text(first)])
        self.run(["JSON.SET", "d2", "$", text(second)])
        self.run(["SET", "s", "a string"])

    @rule(command=COMMANDS)
    def step(self, command: list[str]) -> None:
        self.run(command)

    def teardown(self) -> None:
        for name in (*KEYS, "s", "missing"):
            self.run(["TYPE", name])
            self.run(["JSON.GET", name, "$"])


SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    database=None,  # no replay of examples saved by an older version of the strategies
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module")
def redisjson_server() -> Iterator[RedisServer]:
    server = RedisServer(modules=[str(rejson_module())]).start()
    yield server
    server.close()


def test_documents_match_redisjson(
    redisjson_server: RedisServer, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    engines = [memory_client(), sqlite_client(tmp_path / "json.db")]
    if WITH_DYNAMODB:
        from tests.support.engine import DynamoEngineClient

        engines.append(DynamoEngineClient(request.getfixturevalue("dynamodb_local").clean_table()))
    for engine in engines:
        engine.table = command_table()
    oracle = Oracle(redisjson_server)
    stats: Counter[str] = Counter()
    try:
        run_state_machine_as_test(lambda: DocumentsMatchRedisJSON(oracle, engines, stats), settings=SETTINGS)
    finally:
        print(f"\njson hypothesis: RedisJSON answered {dict(stats)}")
        for engine in engines:
            close = getattr(engine, "close", None)
            if close is not None:
                close()
