"""Documents (JSON.*) on kvgate's engine against RedisJSON 2.8, reply for reply.

The oracle is Debian's Redis 7.0 with RedisJSON 2.8's ``rejson.so`` loaded
(``tests/support/redisjson.py``); the engine runs on each store (memory, SQLite, DynamoDB
Local).  Replies and error texts are compared exactly, but for two things RedisJSON leaves
to chance: JSON.GET with several paths answers an object whose key order is a Rust
``HashMap``'s (compared as parsed JSON), and SCAN's order (compared sorted).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from kvgate.engine import command_table
from kvgate.engine.documents import values as values_module
from kvgate.engine.documents.paths import PathError, compile_path, values
from kvgate.engine.documents.values import dumps, format_double, parse
from tests.support.engine import Arg, EngineClient, Oracle, comparable
from tests.support.redisjson import rejson_module
from tests.support.servers import RedisServer

DOC = json.dumps(
    {
        "a": {"x": 1, "b": {"x": 2}},
        "items": [{"price": 5, "tag": "x", "x": 3}, {"price": 15, "tag": "y"}, {"price": 8, "tag": "x"}],
        "arr": [1, 2, 3, 4, 5],
        "s": "str",
        "n": None,
        "t": True,
        "f": 1.5,
    }
)


@pytest.fixture(scope="module")
def redisjson_server() -> Iterator[RedisServer]:
    server = RedisServer(modules=[str(rejson_module())]).start()
    yield server
    server.close()


@pytest.fixture
def oracle(redisjson_server: RedisServer) -> Oracle:  # overrides conftest's: RedisJSON here
    return Oracle(redisjson_server)


@pytest.fixture
def docs(engine: EngineClient) -> EngineClient:
    """The engine client, validating against the engine's own table (JSON.* included)."""
    engine.table = command_table()
    return engine


def _multi_path_get(cmd: Sequence[Arg]) -> bool:
    if str(cmd[0]).upper() != "JSON.GET":
        return False
    words = {"INDENT", "NEWLINE", "SPACE", "NOESCAPE", "FORMAT"}
    args = [str(a) for a in cmd[2:]]
    paths, i = 0, 0
    while i < len(args):
        if args[i].upper() in words and len(args[i]) <= 8:
            i += 1 if args[i].upper() == "NOESCAPE" else 2
            continue
        paths += 1
        i += 1
    return paths > 1


def same(oracle: Oracle, engine: EngineClient, commands: Sequence[Sequence[Arg]]) -> None:
    bad = []
    for cmd in commands:
        expected, actual = comparable(oracle(*cmd)), comparable(engine(*cmd))
        if _multi_path_get(cmd) and isinstance(expected, bytes) and isinstance(actual, bytes):
            expected, actual = json.loads(expected), json.loads(actual)
        if str(cmd[0]).upper() == "SCAN" and isinstance(expected, list) and isinstance(actual, list):
            expected, actual = sorted(expected[1]), sorted(actual[1])
        if expected != actual:
            bad.append(f"{list(cmd)}:\n    redisjson {expected!r}\n    {engine.name:9} {actual!r}")
    assert not bad, f"{len(bad)} of {len(commands)} differ on {engine.name}:\n" + "\n".join(bad)


def test_get_paths_and_formats(oracle: Oracle, docs: EngineClient) -> None:
    same(
        oracle,
        docs,
        [
            ["JSON.SET", "d", "$", DOC],
            ["JSON.GET", "d"],
            ["JSON.GET", "d", "$"],
            ["JSON.GET", "d", "."],
            ["JSON.GET", "d", "$..x"],
            ["JSON.GET", "d", ".a", ".s"],
            ["JSON.GET", "d", "$.a", "$.s"],
            ["JSON.GET", "d", ".a", "$.s"],
            ["JSON.GET", "d", ".a", ".zz"],
            ["JSON.GET", "d", "$.a", "$.zz", "$["],
            ["JSON.GET", "d", ".zz"],
            ["JSON.GET", "d", "$.zz"],
            ["JSON.GET", "d", "INDENT", "\t", "NEWLINE", "\n", "SPACE", " "],
            ["JSON.GET", "d", "INDENT", "  ", "NEWLINE", "\r\n", "SPACE", " ", "$.a", "$.items"],
            ["JSON.GET", "d", "indent", "--", "$.items"],
            ["JSON.GET", "d", "SPACE", "_", "NOESCAPE", ".a"],
            ["JSON.GET", "d", "$.a", "INDENT"],
            ["JSON.GET", "d", "FORMAT", "EXPAND"],
            ["JSON.GET", "d", "$", "FORMAT", "EXPAND"],
            ["JSON.GET", "d", "$", "FORMAT", "STRINGS"],
            ["JSON.GET", "d", "$", "FORMAT", "nope"],
            ["JSON.GET", "missing"],
            ["JSON.GET", "missing", "$[", "nonsense"],
            ["JSON.GET"],
            ["JSON.MGET", "d", "missing", "$.s"],
            ["JSON.MGET", "d", "missing", ".s"],
            ["JSON.MGET", "d", "missing", ".zz"],
            ["JSON.MGET", "d", "$["],
            ["JSON.MGET", "d"],
            ["SET", "str", "x"],
            ["JSON.MGET", "str", "d", "$.t"],
            ["JSON.GET", "str"],
        ],
    )


PATHS = [
    "$..x", "$.items[?(@.price < 10 && @.tag == \"x\")]", "$.items[?(@.price<10 & @.tag==\"x\")]",
    "$.arr[-1]", "$.arr[1:3]", "$.arr[-2:]", "$.arr[0,2]", "$.arr[::2]", '$["a"]["x"]', "$.a.*",
    "$..*", '$.items[?(@.tag =~ "x")]', "$.arr[?(@>2)]", "$.arr[?(@>2 || @==1)]",
    "$.arr[?(@>2 && @<5 || @==1)]", "$.arr[?((@>2))]", "$.arr[:-1]", "$.arr[-10:10]", "$.arr[1:0]",
    "$.arr[:2:2]", "$.arr[::0]", "$.arr[10]", "$.arr[-10]", "$.arr[01]", "$[", "$.", "$..", "$...a",
    "$.a.", "$a", "$.a[?(@.x)]", "$.a[?(@.x==1)]", "$.items[?(@.price)].tag",
    "$.items[?(@.price > $.arr[1])]", "$.items[?(@.price > $.arr[*])]", "$['a','s']", "$[\"a\",'s']",
    "$[*]", "$.*", ".", ".a", "a.x", 'a["x"]', ".arr[-1]", ".arr[*]", ".zz", "arr[1:3]", "$ .a",
    "$.a .x", "$.a[ 0 ]", "$.arr[ 0 , 1 ]", "$.items[?(@.price == 5.0)]", '$.items[?(@.tag != "x")]',
    '$.items[?(@.tag > "x")]', "$.t[?(@ == true)]", '$[?(@ == "str")]', "$.arr[?(@ == 1)][0]",
    '$.items[?(@.tag =~ "^x$")]', '$.items[?(@.tag =~ "(")]', "$.*[?(@.x > 1)]", "$..[0]",
    "$..[?(@.x)]", "$..arr[1]", "$.a[?(@.x == @.x)]", "$[?(@.x==1)]", "$.arr[1,-1]", "$.arr[1:2,3]",
    "$.a..x", "$[?($.t == true)].x", "$['a']", "$..*[?(@ > 3)]", "$.n", "$.a[?]", "$.a[?()]",
    "$.a[?(@.x ==)]", "$.a[?(@.x = 1)]", "$.a[?(@.x == 1]", "$.a['x", '$.a["x]', "$.arr[1:2:3:4]",
    "$.arr[-0]", "$.arr[:-0]", "$.f[?(@ > 1)]", "$.s[?(@ == null)]", "$.n[?(@ == null)]",
    "$.items[?(@.tag == 'x' || @.price >= 15)].price", "$.items[?(!@.x)]", "$.items[?(@.x != 3)]",
]  # fmt: skip


def test_path_forms(oracle: Oracle, docs: EngineClient) -> None:
    """Each path form, JSONPath and legacy, through JSON.GET (a match list for JSONPath, the
    first match for a legacy path) and JSON.TYPE; parse errors with RedisJSON's texts."""
    same(oracle, docs, [["JSON.SET", "d", "$", DOC]])
    same(oracle, docs, [["JSON.GET", "d", p] for p in PATHS] + [["JSON.TYPE", "d", p] for p in PATHS])


def test_numbers_as_redisjson_prints_them(oracle: Oracle, docs: EngineClient) -> None:
    numbers = (
        "[1e30, 1.0, 1.5, 100000000000000000000, -0.0, -0, 0.1, 123456789012345678901234567890, 1e-7, "
        "3.0e2, 12345678901234567.0, 1e15, 1e16, 1e17, 1.5e300, 5e-324, 9223372036854775807, "
        "18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809, 0.000001]"
    )
    same(
        oracle,
        docs,
        [
            ["JSON.SET", "n", "$", numbers],
            ["JSON.GET", "n"],
            ["JSON.TYPE", "n", "$[*]"],
            ["JSON.RESP", "n"],
            ["JSON.NUMINCRBY", "n", "$[1]", "1"],
            ["JSON.NUMINCRBY", "n", "$[1]", "1.5"],
            ["JSON.NUMMULTBY", "n", "$[0]", "10"],
            ["JSON.NUMINCRBY", "n", "[2]", "1"],
            ["JSON.NUMINCRBY", "n", "$[16]", "1"],
            ["JSON.NUMMULTBY", "n", "$[16]", "2"],
            ["JSON.NUMINCRBY", "n", "[14]", "1e308"],
            ["JSON.NUMMULTBY", "n", "[14]", "1e308"],
            ["JSON.NUMINCRBY", "n", "[5]", "abc"],
            ["JSON.NUMINCRBY", "n", "[5]", '"a"'],
            ["JSON.NUMINCRBY", "n", "[5]", "1 x"],
            ["JSON.NUMINCRBY", "n", "[5]", "-0"],
            ["JSON.NUMMULTBY", "n", "$[*]", "-1"],
            ["JSON.GET", "n"],
            ["JSON.SET", "big", "$", "1e400"],
            ["JSON.SET", "big", "$", "-1e400"],
            ["JSON.SET", "big", "$", "[1, 2e999]"],
        ],
    )


def test_invalid_json_answers_serde_json_texts(oracle: Oracle, docs: EngineClient) -> None:
    bad = [
        '{"a":1,}', "[1,2", "", "  ", "tru", "nul x", '"\\q"', '"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"',
        "01", "1.", "1.x", "-", "-a", "1e", "1e+", '{"a" 1}', "{1:1}", "[1 2]", '{"a":1 "b"}', "[,1]",
        '{"a"', '{"a":', '"abc', '"\\u12"', '"\\u12x4"', "\n\n  x", "[1,\n 2,\n }", '"a\x01"', "{,}", "[]]",
        '{"a":1} x', "[" * 127 + "]" * 127, "[" * 128 + "]" * 128, '{"a":' * 128 + "1" + "}" * 128,
    ]  # fmt: skip
    same(oracle, docs, [["JSON.SET", "e", "$", raw] for raw in bad] + [["JSON.GET", "e"]])
    same(oracle, docs, [["JSON.ARRINDEX", "e", "$", raw] for raw in ("x", "1 2", "[1,")])


def test_set_nx_xx_and_where_keys_may_be_added(oracle: Oracle, docs: EngineClient) -> None:
    same(
        oracle,
        docs,
        [
            ["JSON.SET", "d", "$", '{"a":{"b":1},"l":[1,2]}'],
            ["JSON.SET", "d", "$.a.c", "[1]"],
            ["JSON.SET", "d", "$.a.c[5]", "1"],
            ["JSON.SET", "d", "$.a.c[0]", "2"],
            ["JSON.SET", "d", "$.a.c[-1]", "3"],
            ["JSON.SET", "d", "$.q.r", "1"],
            ["JSON.SET", "d", "$..b", "7"],
            ["JSON.SET", "d", "$.a.*", "3", "XX"],
            ["JSON.SET", "d", "$.new", "3", "XX"],
            ["JSON.SET", "d", "$.new", "3", "NX"],
            ["JSON.SET", "d", "$.new", "4", "NX"],
            ["JSON.SET", "d", "$", "3", "NX"],
            ["JSON.SET", "d", "$", "3", "NX", "XX"],
            ["JSON.SET", "d", "$", "3", "nx", "nx"],
            ["JSON.SET", "d", "$", "3", "FOO"],
            ["JSON.SET", "d", "$", "3", "FORMAT", "XML"],
            ["JSON.SET", "d", "$", "3", "FORMAT"],
            ["JSON.SET", "d2", "$", "3", "XX"],
            ["JSON.SET", "d2", "$.a", "3"],
            ["JSON.SET", "d2", ".", "3"],
            ["JSON.SET", "d", ".x", "1"],
            ["JSON.SET", "d", 'y["z"]', "1"],
            ["JSON.SET", "d", '$["y"]', "1"],
            ["JSON.SET", "d", "$['k\\'q']", "1"],
            ["JSON.SET", "d", '$.a["z","w"]', "1"],
            ["JSON.SET", "d", "$.a[?(@.b==1)]", "1"],
            ["JSON.SET", "d", "$.l[*]", '{"o":1}'],
            ["JSON.SET", "d", "$.l[0].o", "2"],
            ["JSON.SET", "d", "$[", "1"],
            ["JSON.SET", "d", "$", "1 x"],
            ["JSON.SET", "d"],
            ["JSON.GET", "d"],
            ["JSON.SET", "d", "$.*", "1"],
            ["JSON.GET", "d"],
            ["JSON.SET", "d", "$", '{"a":1,"a":2,"b":[]}'],
            ["JSON.GET", "d"],
        ],
    )


def test_del_forget_clear_and_key_order(oracle: Oracle, docs: EngineClient) -> None:
    same(
        oracle,
        docs,
        [
            ["JSON.SET", "d", "$", DOC],
            ["JSON.DEL", "d", "$.items[0]"],
            ["JSON.DEL", "d", "$..x"],
            ["JSON.DEL", "d", ".zz"],
            ["JSON.DEL", "d", "$["],
            ["JSON.FORGET", "d", "$.arr[1,3,-1]"],
            ["JSON.GET", "d"],
            ["JSON.DEL", "d", "$.arr[*]"],
            ["JSON.CLEAR", "d", "$.a"],
            ["JSON.GET", "d"],
            ["JSON.CLEAR", "d", "$..*"],
            ["JSON.CLEAR", "d"],
            ["JSON.GET", "d"],
            ["JSON.CLEAR", "missing"],
            ["JSON.DEL", "d"],
            ["JSON.DEL", "d"],
            ["EXISTS", "d"],
            # ijson removes an object's key by moving the last key into its place
            ["JSON.SET", "o", "$", '{"a":1,"b":2,"c":3,"d":4,"e":5}'],
            ["JSON.DEL", "o", "$.b"],
            ["JSON.DEL", "o", "$.c"],
            ["JSON.GET", "o"],
            ["JSON.DEL", "o", "$[?(@>3)]"],
            ["JSON.DEL", "o", "$.*"],
            ["JSON.GET", "o"],
            ["JSON.SET", "o", "$", '{"a":{"a":1},"ab":2,"b":[1,[2,3]]}'],
            ["JSON.DEL", "o", "$..a"],
            ["JSON.DEL", "o", "$..[1]"],
            ["JSON.GET", "o"],
            ["JSON.SET", "o", "$", '{"a":{"a":1},"ab":2}'],
            ["JSON.DEL", "o", "$['a','ab']"],
            ["JSON.GET", "o"],
        ],
    )


def test_strings_booleans_numbers_objects(oracle: Oracle, docs: EngineClient) -> None:
    same(
        oracle,
        docs,
        [
            ["JSON.SET", "d", "$", DOC],
            ["JSON.STRLEN", "d", ".s"],
            ["JSON.STRLEN", "d", "$..*"],
            ["JSON.STRLEN", "d", ".a"],
            ["JSON.STRLEN", "d", ".zz"],
            ["JSON.STRLEN", "d"],
            ["JSON.STRLEN", "missing"],
            ["JSON.STRLEN", "missing", "$"],
            ["JSON.STRAPPEND", "d", ".s", '"yz"'],
            ["JSON.STRAPPEND", "d", "$..*", '"é!"'],
            ["JSON.STRAPPEND", "d", ".a", '"!"'],
            ["JSON.STRAPPEND", "d", '"!"'],
            ["JSON.STRAPPEND", "d", "$.s", "1"],
            ["JSON.STRAPPEND", "d", "$.s", "abc"],
            ["JSON.STRAPPEND", "d", "$.s", '"a" x'],
            ["JSON.STRAPPEND", "d", "$.a", "abc"],
            ["JSON.STRAPPEND", "missing", "$", '"!"'],
            ["JSON.NUMINCRBY", "d", "$..x", "2"],
            ["JSON.NUMINCRBY", "d", ".a.x", "2.5"],
            ["JSON.NUMMULTBY", "d", "$.arr[*]", "3"],
            ["JSON.NUMMULTBY", "d", ".arr[0]", "0.5"],
            ["JSON.NUMINCRBY", "d", ".s", "1"],
            ["JSON.NUMINCRBY", "d", "$.s", "1"],
            ["JSON.NUMINCRBY", "missing", "$", "1"],
            ["JSON.NUMINCRBY", "d", "$.f", "1e308"],
            ["JSON.NUMMULTBY", "d", "$.f", "1e308"],
            ["JSON.TOGGLE", "d", "$.t"],
            ["JSON.TOGGLE", "d", ".t"],
            ["JSON.TOGGLE", "d", ".s"],
            ["JSON.TOGGLE", "d", "$..*"],
            ["JSON.TOGGLE", "missing", "$"],
            ["JSON.OBJKEYS", "d"],
            ["JSON.OBJKEYS", "d", "$..*"],
            ["JSON.OBJKEYS", "d", ".s"],
            ["JSON.OBJKEYS", "d", ".zz"],
            ["JSON.OBJKEYS", "missing"],
            ["JSON.OBJKEYS", "missing", "$"],
            ["JSON.OBJLEN", "d"],
            ["JSON.OBJLEN", "d", "$..*"],
            ["JSON.OBJLEN", "d", ".s"],
            ["JSON.OBJLEN", "d", ".zz"],
            ["JSON.OBJLEN", "missing"],
            ["JSON.OBJLEN", "missing", "$"],
            ["JSON.GET", "d"],
        ],
    )


def test_arrays(oracle: Oracle, docs: EngineClient) -> None:
    same(
        oracle,
        docs,
        [
            ["JSON.SET", "d", "$", DOC],
            ["JSON.ARRAPPEND", "d", "$.arr", "6", '"x"'],
            ["JSON.ARRAPPEND", "d", ".arr", "7"],
            ["JSON.ARRAPPEND", "d", "$..*", "0"],
            ["JSON.ARRAPPEND", "d", ".s", "1"],
            ["JSON.ARRAPPEND", "d", ".arr"],
            ["JSON.ARRAPPEND", "d", ".arr", "x"],
            ["JSON.ARRAPPEND", "missing", "$", "1"],
            ["JSON.ARRINDEX", "d", "$.arr", "3"],
            ["JSON.ARRINDEX", "d", ".arr", '"x"'],
            ["JSON.ARRINDEX", "d", ".arr", "3", "-3"],
            ["JSON.ARRINDEX", "d", ".arr", "3", "1", "2"],
            ["JSON.ARRINDEX", "d", ".arr", "3", "1", "2", "3"],
            ["JSON.ARRINDEX", "d", ".arr", "3", "x"],
            ["JSON.ARRINDEX", "d", "$..*", "1"],
            ["JSON.ARRINDEX", "d", ".s", "1"],
            ["JSON.ARRINDEX", "missing", "$", "1"],
            ["JSON.ARRINDEX", "d", ".arr", "3.0"],
            ["JSON.ARRINDEX", "d", "$.items", '{"tag":"y","price":15}'],
            ["JSON.ARRINSERT", "d", "$.arr", "0", '"first"'],
            ["JSON.ARRINSERT", "d", ".arr", "-1", '"beforelast"', "9"],
            ["JSON.ARRINSERT", "d", ".arr", "100", "1"],
            ["JSON.ARRINSERT", "d", ".arr", "-100", "1"],
            ["JSON.ARRINSERT", "d", ".arr", "x", "1"],
            ["JSON.ARRINSERT", "d", ".s", "0", "1"],
            ["JSON.ARRLEN", "d"],
            ["JSON.ARRLEN", "d", "$.arr"],
            ["JSON.ARRLEN", "d", ".arr"],
            ["JSON.ARRLEN", "d", ".s"],
            ["JSON.ARRLEN", "d", ".zz"],
            ["JSON.ARRLEN", "d", "$..*"],
            ["JSON.ARRLEN", "missing"],
            ["JSON.ARRLEN", "missing", "$"],
            ["JSON.ARRPOP", "d"],
            ["JSON.ARRPOP", "d", ".arr"],
            ["JSON.ARRPOP", "d", "$.arr", "0"],
            ["JSON.ARRPOP", "d", ".arr", "100"],
            ["JSON.ARRPOP", "d", ".arr", "-100"],
            ["JSON.ARRPOP", "d", ".arr", "x"],
            ["JSON.ARRPOP", "d", ".s"],
            ["JSON.ARRPOP", "d", "$..*"],
            ["JSON.ARRPOP", "d", "FORMAT"],
            ["JSON.ARRPOP", "d", "FORMAT", "EXPAND"],
            ["JSON.ARRPOP", "missing"],
            ["JSON.ARRTRIM", "d", ".arr", "1", "2"],
            ["JSON.ARRTRIM", "d", "$.arr", "0", "-1"],
            ["JSON.ARRTRIM", "d", "$.items", "5", "10"],
            ["JSON.ARRTRIM", "d", "$.items", "-2", "-1"],
            ["JSON.ARRTRIM", "d", ".s", "0", "1"],
            ["JSON.ARRTRIM", "d", ".arr", "x", "1"],
            ["JSON.GET", "d"],
            ["JSON.SET", "e", "$", "[]"],
            ["JSON.ARRPOP", "e"],
            ["JSON.ARRINDEX", "e", "$", "1"],
            ["JSON.ARRTRIM", "e", "$", "0", "1"],
            ["JSON.ARRINSERT", "e", "$", "0", "1", "2"],
            ["JSON.GET", "e"],
        ],
    )


def test_merge_mset_resp_debug(oracle: Oracle, docs: EngineClient) -> None:
    same(
        oracle,
        docs,
        [
            ["JSON.SET", "d", "$", '{"a":{"b":1},"c":[1,2],"keep":true}'],
            ["JSON.MERGE", "d", "$", '{"a":null,"b":{"c":1}}'],
            ["JSON.MERGE", "d", "$.b", '{"d":2,"c":null}'],
            ["JSON.MERGE", "d", "$.c", '{"x":1}'],
            ["JSON.MERGE", "d", "$.zz", '{"d":2,"e":null}'],
            ["JSON.MERGE", "d", "$.zz.y", '{"d":2}'],
            ["JSON.MERGE", "d", "$", "[1]", "FORMAT"],
            ["JSON.MERGE", "d", "$", "[1]", "BAD"],
            ["JSON.MERGE", "new", "$.a", "1"],
            ["JSON.MERGE", "new", "$", '{"a":null}'],
            ["JSON.GET", "d"],
            ["JSON.GET", "new"],
            ["JSON.MSET", "d", "$.b", "1", "e", "$", "[1]"],
            ["JSON.MSET", "d", "$.b", "2", "e", "$.x", "[1]"],
            ["JSON.MSET", "d", "$.b", "3", "zz", "$.x", "[1]"],
            ["JSON.MSET", "d", "$.b", "4", "e", "$", "[1"],
            ["JSON.MSET", "d", "$.b"],
            ["JSON.MSET", "d", "$.b", "5", "e"],
            ["JSON.MSET", "d", "$.new", "1", "d", "$.new2", "2"],
            ["JSON.GET", "d"],
            ["JSON.GET", "e"],
            ["JSON.RESP", "d"],
            ["JSON.RESP", "d", "$"],
            ["JSON.RESP", "d", ".zz"],
            ["JSON.RESP", "missing"],
            [
                "JSON.SET",
                "r",
                "$",
                '[1.5, 0.1, 1e30, true, null, "s", {"a":[1]}, -0.0, 100000000000000000000]',
            ],
            ["JSON.RESP", "r"],
            ["JSON.DEBUG", "MEMORY", "r"],
            ["JSON.DEBUG", "MEMORY", "r", "$[*]"],
            ["JSON.DEBUG", "MEMORY", "r", "[6]"],
            ["JSON.DEBUG", "MEMORY", "r", ".zz"],
            ["JSON.DEBUG", "MEMORY", "missing"],
            ["JSON.DEBUG", "MEMORY", "missing", "$"],
            ["JSON.DEBUG", "MEMORY"],
            ["JSON.DEBUG", "HELP"],
            ["JSON.DEBUG", "FOO"],
            ["JSON.DEBUG"],
        ],
    )


def test_documents_among_other_keys(oracle: Oracle, docs: EngineClient) -> None:
    """TYPE, SCAN TYPE, COPY, RENAME, expiry, WRONGTYPE both ways, scripts."""
    same(
        oracle,
        docs,
        [
            ["JSON.SET", "d", "$", '{"a":[1,2],"s":"x"}'],
            ["TYPE", "d"],
            ["SET", "s", "x"],
            ["HSET", "h", "f", "v"],
            ["SCAN", "0", "TYPE", "ReJSON-RL"],
            ["SCAN", "0", "TYPE", "rejson-rl"],
            ["SCAN", "0", "TYPE", "string"],
            ["COPY", "d", "d2"],
            ["JSON.GET", "d2"],
            ["RENAME", "d2", "d3"],
            ["JSON.GET", "d3"],
            ["TYPE", "d3"],
            ["EXPIRE", "d3", "1000"],
            ["JSON.SET", "d3", "$.a[0]", "5"],
            ["TTL", "d3"],
            ["JSON.SET", "d3", "$", "5"],
            ["TTL", "d3"],
            ["JSON.ARRAPPEND", "d", "$.a", "3"],
            ["PERSIST", "d3"],
            ["DEL", "d3"],
            ["EXISTS", "d3"],
            ["GET", "d"],
            ["APPEND", "d", "x"],
            ["HSET", "d", "f", "v"],
            ["LPUSH", "d", "1"],
            ["INCR", "d"],
            ["JSON.GET", "s"],
            ["JSON.SET", "s", "$", "1"],
            ["JSON.STRLEN", "s"],
            ["JSON.NUMINCRBY", "s", "$", "1"],
            ["JSON.DEL", "s"],
            ["JSON.TYPE", "s"],
            ["JSON.RESP", "s"],
            ["JSON.DEBUG", "MEMORY", "s"],
            ["JSON.ARRINDEX", "s", "$", "1"],
            ["JSON.ARRINDEX", "s", "$", "x"],
            ["JSON.ARRAPPEND", "h", "$", "1"],
            ["JSON.ARRAPPEND", "h", "$", "x"],
            ["JSON.OBJLEN", "s"],
            ["JSON.MGET", "s", "d", "$.s"],
            ["EVAL", "return redis.call('JSON.GET', KEYS[1], '$.a')", "1", "d"],
            ["EVAL", "return redis.call('JSON.SET', KEYS[1], '$.a', '7')", "1", "d"],
            ["EVAL", "return redis.call('JSON.TYPE', KEYS[1], '$..*')", "1", "d"],
            ["EVAL", "return redis.pcall('JSON.GET', KEYS[1], '$[')", "1", "d"],
            ["EVAL", "return redis.call('JSON.NUMINCRBY', KEYS[1], '$.a', 1)", "1", "d"],
            ["EVAL_RO", "return redis.call('JSON.GET', KEYS[1])", "1", "d"],
            ["EVAL_RO", "return redis.call('JSON.SET', KEYS[1], '$', '1')", "1", "d"],
            ["EVAL", "return redis.call('JSON.SET', KEYS[1], '$', '1', 'NX')", "1", "d"],
            ["EVAL", "return redis.call('JSON.SET', KEYS[1], '$', '2')", "1", "d"],
            ["JSON.GET", "d"],
        ],
    )


# --- the modules alone (no oracle): what the differential tests rely on ---------------


def test_double_formatting_is_ryus() -> None:
    cases = [
        (1.0, "1.0"), (1e30, "1e30"), (1e16, "1e16"), (1e15, "1000000000000000.0"), (0.1, "0.1"),
        (1e-7, "1e-7"), (1.5e-5, "0.000015"), (1e-6, "1e-6"), (-0.0, "-0.0"), (0.0, "0.0"),
        (123.456, "123.456"), (1.2345678901234568e29, "1.2345678901234568e29"), (5e-324, "5e-324"),
    ]  # fmt: skip
    assert [(x, format_double(x)) for x, _ in cases] == cases


def test_parse_keeps_integers_and_doubles_apart() -> None:
    assert parse(b"[1, 1.0, -0, 18446744073709551615, 18446744073709551616]") == [
        1,
        1.0,
        -0.0,
        2**64 - 1,
        2.0**64,
    ]
    assert [type(x) for x in parse(b"[1, 1.0]")] == [int, float]  # type: ignore[union-attr]
    assert dumps(parse(b'{"a":[1,1.0,"\\u0001\\n"]}')) == '{"a":[1,1.0,"\\u0001\\n"]}'


def test_compiled_paths_are_cached_and_errors_raised() -> None:
    assert compile_path("$.a").elements is compile_path("$.a").elements
    assert values(compile_path("a"), {"a": 1}) == [1]
    with pytest.raises(PathError, match="Error occurred on position 2"):
        compile_path("$[")


# The fast ways (orjson, Python's C parser) must read and print exactly as the exact
# reader and writer do, which the differential tests above check against RedisJSON.
_NUMBER_TEXTS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(
        lambda sign, whole, frac, exp: f"{sign}{whole}{frac}{exp}",
        st.sampled_from(["", "-"]),
        st.sampled_from(["0", "1", "12", "9007199254740993", "123456789012345678"]),
        st.sampled_from(["", ".0", ".5", ".25", ".1234567890123", ".00000000000000000000001"]),
        st.sampled_from(["", "e5", "E-7", "e+22", "e23", "e-400", "e308"]),
    ),
)
_DOCUMENTS = st.recursive(
    st.one_of(st.sampled_from(["null", "true", "false"]), _NUMBER_TEXTS, st.text(max_size=8).map(json.dumps)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.dictionaries(st.text(max_size=4), inner, max_size=4).map(
            lambda d: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in d.items()) + "}"
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(_DOCUMENTS)
@example("-0")
@example('{"a": [1, -0]}')
@example("[1e30, 1E-7]")
@example("[3.6932343108489029, 1161528096964062128699]")  # serde_json reads both off by one ulp
@example("[18446744073709551616, -9223372036854775809]")
def test_the_fast_reader_and_writer_agree_with_the_exact_ones(text: str) -> None:
    raw = text.encode()
    try:
        exact = values_module._Reader(raw).value()
    except values_module.JsonError:
        with pytest.raises(values_module.JsonError):
            parse(raw)
        return
    fast = parse(raw)
    assert dumps(fast) == dumps(exact)
    out: list[str] = []
    values_module._compact(exact, out)
    assert dumps(exact) == "".join(out)
    assert values_module.load_stored(dumps(exact).encode()) == exact
