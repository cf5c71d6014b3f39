"""Documents through the gateway on every backend that has them, RedisJSON 2.8 the oracle:
the engine's (SQLite, DynamoDB Local), fakeredis (``fakeredis[json]``, its divergences
listed), and a Redis with RedisJSON (passed through); a Redis without a JSON module
refuses JSON.* with a word on where documents are."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kvgate import error_texts
from kvgate.errors import ReplyError
from kvgate.protocol import envelope, result_encoder
from tests.support.api import RO, RW, Api, GatewayClient, make_config
from tests.support.backends import BACKEND_URLS
from tests.support.redisjson import rejson_module
from tests.support.servers import RedisServer

DOC = '{"name":"kvgate","tags":["gateway"],"stars":3,"price":1.5,"nested":{"a":{"x":1}},"on":true}'

SEQUENCE: list[list[str]] = [
    ["JSON.SET", "doc", "$", DOC],
    ["JSON.GET", "doc"],
    ["JSON.GET", "doc", "$.name"],
    ["JSON.GET", "doc", ".name"],
    ["JSON.GET", "doc", "$..x"],
    ["JSON.GET", "doc", "$.nope"],
    ["JSON.GET", "doc", ".nope"],
    ["JSON.GET", "doc", "$["],
    ["JSON.GET", "nokey"],
    ["JSON.TYPE", "doc"],
    ["JSON.TYPE", "doc", "$.*"],
    ["TYPE", "doc"],
    ["JSON.SET", "doc", "$.stars", "4", "XX"],
    ["JSON.SET", "doc", "$.added", '"x"', "NX"],
    ["JSON.SET", "doc", "$.added", '"y"', "NX"],
    ["JSON.SET", "doc", "$.a.b.c", "1"],
    ["JSON.SET", "other", "$.a", "1"],
    ["JSON.SET", "bad", "$", "{"],
    ["JSON.NUMINCRBY", "doc", "$.stars", "2"],
    ["JSON.NUMINCRBY", "doc", ".stars", "1.5"],
    ["JSON.NUMMULTBY", "doc", "$.price", "2"],
    ["JSON.NUMINCRBY", "doc", "$.name", "1"],
    ["JSON.STRAPPEND", "doc", "$.name", '"-gw"'],
    ["JSON.STRLEN", "doc", "$.name"],
    ["JSON.STRLEN", "doc", ".name"],
    ["JSON.TOGGLE", "doc", "$.on"],
    ["JSON.ARRAPPEND", "doc", "$.tags", '"redis"', '"json"'],
    ["JSON.ARRINSERT", "doc", "$.tags", "0", '"first"'],
    ["JSON.ARRINDEX", "doc", "$.tags", '"redis"'],
    ["JSON.ARRLEN", "doc", "$.tags"],
    ["JSON.ARRLEN", "doc", ".tags"],
    ["JSON.ARRPOP", "doc", "$.tags"],
    ["JSON.ARRPOP", "doc", ".tags", "0"],
    ["JSON.ARRTRIM", "doc", "$.tags", "0", "0"],
    ["JSON.OBJKEYS", "doc", "$.nested"],
    ["JSON.OBJLEN", "doc", "$.nested"],
    ["JSON.OBJLEN", "doc"],
    ["JSON.MERGE", "doc", "$.nested", '{"a":null,"b":2}'],
    ["JSON.MSET", "doc", "$.stars", "10", "doc2", "$", "[1,2,3]"],
    ["JSON.MGET", "doc", "doc2", "nokey", "$.stars"],
    ["JSON.GET", "doc"],
    ["JSON.CLEAR", "doc", "$.nested"],
    ["JSON.DEL", "doc", "$.added"],
    ["JSON.FORGET", "doc", "$.nope"],
    ["JSON.RESP", "doc", "$.tags"],
    ["JSON.GET", "doc"],
    ["SET", "plain", "v"],
    ["JSON.GET", "plain"],
    ["GET", "doc"],
    ["SCAN", "0", "TYPE", "ReJSON-RL"],
    ["EVAL", "return redis.call('JSON.GET', KEYS[1], '$.stars')", "1", "doc"],
    ["JSON.DEL", "doc"],
    ["EXISTS", "doc"],
]

# Where fakeredis 2.41 (jsonpath-ng 1.8) differs from RedisJSON 2.8; kvgate passes its
# answers through as they are.  Found by this test; listed so a new divergence still fails.
FAKEREDIS_KNOWN: dict[tuple[str, ...], str] = {
    ("JSON.GET", "doc"): "without a path answers {} (RedisJSON: the whole document)",
    ("JSON.GET", "doc", ".nope"): "a legacy path that matches nothing answers [] (RedisJSON: an error)",
    ("JSON.GET", "doc", "$["): "a path it cannot parse is answered as Path '$[' does not exist",
    ("JSON.SET", "doc", "$.a.b.c", "1"): "answers an error where RedisJSON answers nil",
    ("JSON.SET", "other", "$.a", "1"): "creates a new key at a path other than the root",
    ("JSON.SET", "bad", "$", "{"): "Python's json error text, not serde_json's",
    ("JSON.NUMINCRBY", "doc", "$.stars", "2"): "answers an array of doubles, not RedisJSON's JSON text",
    ("JSON.NUMINCRBY", "doc", ".stars", "1.5"): "a legacy path's result printed by Python",
    ("JSON.NUMMULTBY", "doc", "$.price", "2"): "answers an array of doubles, not RedisJSON's JSON text",
    ("JSON.NUMINCRBY", "doc", "$.name", "1"): "answers an array, not RedisJSON's JSON text",
    ("JSON.OBJLEN", "doc"): "counts the key JSON.SET added at a non-root path of a missing parent",
    ("JSON.ARRPOP", "doc", ".tags", "0"): "pops with its own index rules",
    ("JSON.MGET", "doc", "doc2", "nokey", "$.stars"): "a JSONPath answers the first match, not a list",
    ("JSON.RESP", "doc", "$.tags"): "JSON.RESP is not implemented",
    ("JSON.GET", "plain"): "answers WRONGTYPE where RedisJSON says 'Existing key has wrong Redis type'",
    ("JSON.DEL", "doc"): "JSON.DEL without a path fails inside fakeredis (a TypeError)",
    ("EXISTS", "doc"): "follows from JSON.DEL without a path failing",
    ("SCAN", "0", "TYPE", "ReJSON-RL"): "SCAN's order",
}
#: Commands whose whole-document replies follow from the divergences above.
FAKEREDIS_WHOLE_DOCUMENT = "JSON.GET without a path answers {}"


@pytest.fixture(scope="module")
def redisjson_server() -> Iterator[RedisServer]:
    server = RedisServer(modules=[str(rejson_module())]).start()
    yield server
    server.close()


def oracle_replies(server: RedisServer, commands: list[list[str]]) -> list[dict[str, Any]]:
    server.command("FLUSHALL")
    encode = result_encoder(False)
    out = []
    for cmd in commands:
        reply = server.command(*cmd)
        if type(reply).__name__ == "ReplyError":
            reply = ReplyError(str(reply))
        out.append(envelope(reply, encode))  # type: ignore[arg-type]
    return out


def _same(cmd: list[str], expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    if expected == actual:
        return True
    if cmd[0] == "SCAN" and "result" in expected and "result" in actual:
        return sorted(expected["result"][1]) == sorted(actual["result"][1])
    return False


@pytest.fixture(params=["sqlite", "dynamodb", "fakeredis", "redisjson"])
def documents_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A backend with documents: kvgate's engine, fakeredis[json], or a Redis with
    RedisJSON behind the gateway (passed through)."""
    if request.param == "redisjson":
        server: RedisServer = request.getfixturevalue("redisjson_server")
        server.command("FLUSHALL")
        return server.url
    return BACKEND_URLS[request.param](request, tmp_path)


async def test_documents_match_redisjson(
    gateway_client: GatewayClient, documents_url: str, redisjson_server: RedisServer
) -> None:
    expected = oracle_replies(redisjson_server, SEQUENCE)
    if documents_url == redisjson_server.url:
        redisjson_server.command("FLUSHALL")
    api = Api(await gateway_client(make_config(documents_url)))
    mismatches = []
    for i, cmd in enumerate(SEQUENCE):
        status, body = await api.cmd(*cmd)
        assert (status == 200) == ("result" in body), (cmd, status, body)
        if _same(cmd, expected[i], body):
            continue
        if documents_url.startswith("fakeredis") and (
            tuple(cmd) in FAKEREDIS_KNOWN or cmd == ["JSON.GET", "doc"]
        ):
            continue  # FAKEREDIS_KNOWN; JSON.GET doc: FAKEREDIS_WHOLE_DOCUMENT
        mismatches.append((i, cmd, expected[i], body))
    assert not mismatches, "\n".join(f"{i} {c}: redisjson {e} / kvgate {a}" for i, c, e, a in mismatches)


async def test_documents_in_pipelines_transactions_and_read_only_tokens(
    gateway_client: GatewayClient, documents_url: str
) -> None:
    client = await gateway_client(make_config(documents_url))
    rw, ro = Api(client, RW), Api(client, RO)
    assert await rw.cmd("JSON.SET", "doc", "$", DOC) == (200, {"result": "OK"})

    status, body = await ro.cmd("JSON.GET", "doc", "$.stars")
    assert (status, json.loads(body["result"])) == (200, [3])
    assert await ro.cmd("JSON.SET", "doc", "$.stars", "4") == (
        403,
        {"error": "NOPERM this user has no permissions to run the 'json.set' command"},
    )
    status, body = await rw.pipeline(["JSON.SET", "doc", "$.stars", "5"], ["JSON.TYPE", "doc", "$.tags"])
    assert (status, body) == (200, [{"result": "OK"}, {"result": ["array"]}])
    status, body = await ro.pipeline(["JSON.GET", "doc", "$.stars"], ["JSON.DEL", "doc", "$.tags"])
    assert status == 200
    assert body == [
        {"result": "[5]"},
        {"error": "NOPERM this user has no permissions to run the 'json.del' command"},
    ]
    status, body = await rw.multi(
        ["JSON.ARRAPPEND", "doc", "$.tags", '"redis"'], ["JSON.ARRLEN", "doc", "$.tags"]
    )
    assert (status, body) == (200, [{"result": [2]}, {"result": [2]}])
    assert (await ro.multi(["JSON.SET", "doc", "$.x", "1"]))[0] == 403
    status, body = await rw.cmd("JSON.GET", "doc", "$.stars")
    assert json.loads(body["result"]) == [5]


async def test_a_redis_without_json_says_where_documents_are(
    gateway_client: GatewayClient, redis_server: RedisServer
) -> None:
    api = Api(await gateway_client(make_config(redis_server.url)))
    status, body = await api.cmd("JSON.SET", "doc", "$", "{}")
    assert status == 400
    assert body == {"error": error_texts.not_available("json.set", error_texts.JSON_UNAVAILABLE)}
    assert "sqlite" in body["error"] and "RedisJSON" in body["error"]
    status, body = await api.pipeline(["JSON.GET", "doc"], ["PING"])
    assert body[0] == {"error": error_texts.not_available("json.get", error_texts.JSON_UNAVAILABLE)}
    assert body[1] == {"result": "PONG"}


async def test_documents_past_the_dynamodb_item_limit_are_refused_whole(
    gateway_client: GatewayClient, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A document is one DynamoDB item: one past 400 KB is refused with the limit named, and
    nothing of the command (nor of a JSON.MSET beside it) is written."""
    api = Api(await gateway_client(make_config(BACKEND_URLS["dynamodb"](request, tmp_path))))
    big = json.dumps({"a": "x" * 500_000})
    status, body = await api.cmd("JSON.SET", "big", "$", big)
    assert status == 400 and body["error"].startswith("ERR value is too large for the dynamodb backend")
    assert await api.cmd("EXISTS", "big") == (200, {"result": 0})
    assert await api.cmd("JSON.SET", "small", "$", '{"a":1}') == (200, {"result": "OK"})
    status, body = await api.cmd("JSON.MSET", "small", "$.a", "2", "big", "$", big)
    assert status == 400 and "too large" in body["error"]
    assert await api.cmd("JSON.GET", "small") == (200, {"result": '{"a":1}'})
    assert await api.cmd("JSON.SET", "grow", "$", json.dumps({"a": "x" * 300_000})) == (200, {"result": "OK"})
    status, body = await api.cmd("JSON.STRAPPEND", "grow", "$.a", json.dumps("y" * 200_000))
    assert status == 400 and "too large" in body["error"]
    assert await api.cmd("JSON.STRLEN", "grow", "$.a") == (200, {"result": [300_000]})
