"""openapi.yaml is the contract: a valid OpenAPI 3.1 document that the code keeps.

* the document validates, and every example in it matches the schema next to it;
* real replies (real Redis and fakeredis) match the response the spec declares for their
  path, method and status: the status is documented, required headers are there and the
  body validates against the schema (JSON floats are parsed as ``Decimal``, so a float
  where the spec says integer fails);
* every route the code serves is in the spec, and every method either has an operation
  there or is refused with 405, so the two cannot drift apart silently.

The error statuses (413, 404, 503, 504, 500), each sent to every endpoint and checked against
the spec, are in test_error_shape.py; the helpers that check a reply are tests.support.openapi.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from openapi_spec_validator import validate as validate_spec

import kvgate.app
from kvgate.app import COMMAND_METHODS, ENDPOINT_METHODS, OPS_PREFIX, Gateway
from tests.support.api import RO, RW, Api, make_config, require_commands
from tests.support.engine import ENGINE_BACKENDS
from tests.support.openapi import (
    HEALTH,
    HTTP_METHODS,
    METRICS,
    MONITOR,
    MULTI,
    PATH_FORM,
    PIPELINE,
    PSUBSCRIBE,
    ROOT,
    SUBSCRIBE,
    Call,
    Contract,
    escape,
    load_spec,
    run_calls,
    send,
)

B64 = {"Upstash-Encoding": "base64"}
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"

COMMAND_CALLS = [
    # 200, one command as a JSON body
    Call("POST", "/", ROOT, 200, ["SET", "k", "v"], expect={"result": "OK"}),
    Call("PUT", "/", ROOT, 200, ["GET", "k"], expect={"result": "v"}),
    Call("POST", "/", ROOT, 200, ["INCR", "n"], expect={"result": 1}),
    Call("POST", "/", ROOT, 200, ["GET", "missing"], expect={"result": None}),
    Call("POST", "/", ROOT, 200, ["ECHO", True], expect={"result": "true"}),
    Call("POST", "/", ROOT, 200, data=b'["SET","big",12345678901234567890123]'),
    Call("POST", "/", ROOT, 200, ["GET", "big"], expect={"result": "12345678901234567890123"}),
    Call("POST", "/", ROOT, 200, ["ZADD", "z", 1.5, "m"], expect={"result": 1}),
    Call("POST", "/", ROOT, 200, ["ZSCORE", "z", "m"], expect={"result": "1.5"}),
    Call("POST", "/", ROOT, 200, ["ZRANGE", "z", 0, -1, "WITHSCORES"], expect={"result": ["m", "1.5"]}),
    Call("POST", "/", ROOT, 200, ["INCRBYFLOAT", "f", "0.5"], expect={"result": "0.5"}),
    Call("POST", "/", ROOT, 200, ["GEOADD", "g", 13.361389, 38.115556, "Palermo"]),
    Call("POST", "/", ROOT, 200, ["GEOPOS", "g", "Palermo", "nowhere"]),
    Call("POST", "/", ROOT, 200, ["GEODIST", "g", "Palermo", "Palermo", "km"]),
    Call("POST", "/", ROOT, 200, ["XADD", "s", "*", "field", "value"]),
    Call("POST", "/", ROOT, 200, ["XRANGE", "s", "-", "+"]),
    Call("POST", "/", ROOT, 200, ["HSET", "h", "a", "1", "b", "2"], expect={"result": 2}),
    Call("POST", "/", ROOT, 200, ["HGETALL", "h"]),
    Call("POST", "/", ROOT, 200, ["SCAN", 0]),
    Call("POST", "/", ROOT, 200, ["EVAL", "return {1, 'a', {2.5, true, false}}", 0]),
    Call("POST", "/", ROOT, 200, ["TIME"]),
    # 200, Upstash-Encoding: base64
    Call("POST", "/", ROOT, 200, ["SET", "k", "v"], headers=B64, expect={"result": "OK"}),
    Call("POST", "/", ROOT, 200, ["GET", "k"], headers=B64, expect={"result": "dg=="}),
    Call("POST", "/", ROOT, 200, ["PING"], headers=B64, expect={"result": "UE9ORw=="}),
    Call("POST", "/", ROOT, 200, ["INCR", "n"], headers=B64, expect={"result": 2}),
    Call("POST", "/", ROOT, 200, ["HGETALL", "h"], headers=B64),
    Call("POST", "/", ROOT, 200, ["GEOPOS", "g", "Palermo", "nowhere"], headers=B64),
    # 200, path form
    Call("GET", "/set/pk/pv", PATH_FORM, 200, expect={"result": "OK"}),
    Call("GET", "/get/pk", PATH_FORM, 200, expect={"result": "pv"}),
    Call("GET", "/get/pk", PATH_FORM, 200, headers=B64, expect={"result": "cHY="}),
    Call("GET", "/get/pk", PATH_FORM, 200, headers={"Upstash-Encoding": "BASE64"}, expect={"result": "cHY="}),
    Call("GET", "/get/pk", PATH_FORM, 200, headers={"Upstash-Encoding": "utf-8"}, expect={"result": "pv"}),
    Call("HEAD", "/get/pk", PATH_FORM, 200),
    Call("GET", "/ping", PATH_FORM, 200, expect={"result": "PONG"}),
    Call("GET", f"/ping?_token={RW}", PATH_FORM, 200, token=None, expect={"result": "PONG"}),
    Call("POST", "/set/a%2Fb?EX=100", PATH_FORM, 200, data=b"raw body", expect={"result": "OK"}),
    Call("PUT", "/append/a%2Fb", PATH_FORM, 200, data=b"!", expect={"result": 9}),
    Call("GET", "/get/a%2Fb", PATH_FORM, 200, expect={"result": "raw body!"}),
    Call("GET", "/ttl/a%2Fb", PATH_FORM, 200, expect={"result": 100}),
    Call("GET", "/set/q/v?NX", PATH_FORM, 200, expect={"result": "OK"}),
    Call("GET", "/set/q/w?NX", PATH_FORM, 200, expect={"result": None}),
    # 200, read-only token reading
    Call("POST", "/", ROOT, 200, ["GET", "k"], token=RO, expect={"result": "v"}),
    Call("GET", "/get/k", PATH_FORM, 200, token=RO, expect={"result": "v"}),
    # 200, pipeline and multi-exec
    Call(
        "POST",
        "/pipeline",
        PIPELINE,
        200,
        [["SET", "a", "1"], ["INCR", "a"], ["LPUSH", "a", "x"], ["GET"]],
        expect=[
            {"result": "OK"},
            {"result": 2},
            {"error": WRONGTYPE},
            {"error": "ERR wrong number of arguments for 'get' command"},
        ],
    ),
    Call("PUT", "/pipeline", PIPELINE, 200, [["PING"]], expect=[{"result": "PONG"}]),
    Call(
        "POST",
        "/pipeline",
        PIPELINE,
        200,
        [["SET", "a", "x"], ["GET", "a"], ["MGET", "a", "{a}none"]],  # {a}: a's slot (a cluster)
        headers=B64,
        expect=[{"result": "OK"}, {"result": "eA=="}, {"result": ["eA==", None]}],
    ),
    Call(
        "POST",
        "/pipeline",
        PIPELINE,
        200,
        [["SET", "k", "w"], ["GET", "k"]],
        token=RO,
        expect=[{"error": "NOPERM this user has no permissions to run the 'set' command"}, {"result": "v"}],
    ),
    Call(
        "POST",
        "/multi-exec",
        MULTI,
        200,
        [["SET", "t", "1"], ["INCR", "t"], ["LPUSH", "t", "x"]],
        expect=[{"result": "OK"}, {"result": 2}, {"error": WRONGTYPE}],
    ),
    Call("PUT", "/multi-exec", MULTI, 200, [["GET", "t"]], headers=B64, expect=[{"result": "Mg=="}]),
    # 400
    Call("POST", "/", ROOT, 400, ["GET"]),
    Call("POST", "/", ROOT, 400, ["NOPE", "a"]),
    Call("POST", "/", ROOT, 400, ["SELECT", 1]),
    Call("POST", "/", ROOT, 400, ["LPUSH", "k", "x"], expect={"error": WRONGTYPE}),
    Call("POST", "/", ROOT, 400, ["EVALSHA", "0" * 40, 0]),
    Call("POST", "/", ROOT, 400, ["GET", None]),
    Call("POST", "/", ROOT, 400, data=b""),
    Call("POST", "/", ROOT, 400, data=b'{"cmd":"GET"}'),
    Call("GET", "/", ROOT, 400),
    Call("HEAD", "/", ROOT, 400),
    Call("GET", "/get", PATH_FORM, 400),
    Call("HEAD", "/get", PATH_FORM, 400),
    Call("POST", "/pipeline", PIPELINE, 400, ["GET", "k"]),
    Call("POST", "/pipeline", PIPELINE, 400, []),
    Call("POST", "/multi-exec", MULTI, 400, data=b"not json"),
    Call(
        "POST",
        "/multi-exec",
        MULTI,
        400,
        [["SET", "a", "1"], ["GET"]],
        expect={"error": "EXECABORT Transaction discarded because of previous errors."},
    ),
    Call("POST", "/subscribe/", SUBSCRIBE, 400),
    Call("POST", "/psubscribe/", PSUBSCRIBE, 400),
    Call("POST", "/monitor", MONITOR, 400),
    Call("GET", "/monitor", MONITOR, 400),
    # 401
    Call("POST", "/", ROOT, 401, ["PING"], token=None),
    Call("POST", "/", ROOT, 401, ["PING"], token="wrong"),
    Call("GET", "/ping?_token=wrong", PATH_FORM, 401, token=None),
    # an Authorization header decides alone, whatever its scheme: ?_token= is not looked at
    Call("GET", f"/ping?_token={RW}", PATH_FORM, 401, token=None, headers={"Authorization": "Basic dTpw"}),
    Call("GET", f"/ping?_token={RW}", PATH_FORM, 401, token=None, headers={"Authorization": "Bearer"}),
    Call("POST", f"/?_token={RW}", ROOT, 401, ["PING"], token=None, headers={"Authorization": "Token x"}),
    Call("GET", f"/set/auth/v?_token={RO}", PATH_FORM, 200, token=RW, expect={"result": "OK"}),
    Call("POST", f"/?_token={RW}", ROOT, 403, ["SET", "k", "w"], token=RO),
    Call("HEAD", "/ping", PATH_FORM, 401, token=None),
    Call("POST", "/pipeline", PIPELINE, 401, [["PING"]], token=None),
    Call("POST", "/multi-exec", MULTI, 401, [["PING"]], token="wrong"),
    Call("POST", "/subscribe/chat", SUBSCRIBE, 401, token=None),
    Call("POST", "/monitor", MONITOR, 401, token=None),
    # 403
    Call("POST", "/", ROOT, 403, ["SET", "k", "w"], token=RO),
    Call("GET", "/set/k/w", PATH_FORM, 403, token=RO),
    Call("HEAD", "/del/k", PATH_FORM, 403, token=RO),
    Call("POST", "/multi-exec", MULTI, 403, [["GET", "a"], ["SET", "a", "1"]], token=RO),
    # 405
    Call("DELETE", "/get/k", PATH_FORM, 405),
    Call("PATCH", "/", ROOT, 405, ["PING"]),
    Call("OPTIONS", "/", ROOT, 405),
    Call("GET", "/pipeline", PIPELINE, 405),
    Call("HEAD", "/multi-exec", MULTI, 405),
    Call("DELETE", "/subscribe/chat", SUBSCRIBE, 405),
    Call("HEAD", "/subscribe/chat", SUBSCRIBE, 405),
    Call("PUT", "/psubscribe/chat", PSUBSCRIBE, 405),
    Call("PUT", "/monitor", MONITOR, 405),
    Call("HEAD", "/monitor", MONITOR, 405),
    Call("POST", "/_kvgate/health", HEALTH, 405, token=None),
    Call("DELETE", "/_kvgate/metrics", METRICS, 405, token=None),
    # operations
    Call("GET", "/_kvgate/health", HEALTH, 200, token=None),
    Call("HEAD", "/_kvgate/health", HEALTH, 200, token=None),
    Call("GET", "/_kvgate/metrics", METRICS, 200, token=None),
    Call("HEAD", "/_kvgate/metrics", METRICS, 200, token=None),
]


def runs_on(backend_url: str, body: Any) -> bool:
    """Whether every command of a JSON body (one command, or a batch) runs on the backend:
    kvgate's own engine (SQLite) runs a documented subset, and the rest of a test still
    checks the spec there."""
    if backend_url.split(":", 1)[0] not in ENGINE_BACKENDS or not isinstance(body, list) or not body:
        return True
    from kvgate.commands import default_table
    from kvgate.engine import Engine

    def runs(command: Any) -> bool:
        if not command or not isinstance(command[0], str):
            return True
        known = default_table().get(command[0])
        # unknown or refused commands are answered the same on every backend
        return known is None or not known.rest or Engine.supports(known.name)

    return all(runs(c) for c in (body if isinstance(body[0], list) else [body]))


async def test_replies_match_the_spec(api: Api, contract: Contract, backend_url: str) -> None:
    calls = [c for c in COMMAND_CALLS if runs_on(backend_url, c.json)]
    left_out = {c.json[0] for c in COMMAND_CALLS if c not in calls}
    assert left_out <= {"GEOADD", "GEOPOS", "GEODIST", "XADD", "XRANGE"}  # not on SQLite (README)
    await run_calls(contract, api.client, calls)


async def test_request_examples_of_the_spec_run(api: Api, contract: Contract, backend_url: str) -> None:
    """Every JSON request body example in the spec, sent to its operation, gets a reply the
    spec declares (and a 200: the examples are meant to work)."""
    sent = 0
    for template, item in contract.spec["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS or "requestBody" not in op:
                continue
            body, _ = contract.resolve(op["requestBody"], "")
            media = body["content"].get("application/json")
            if media is None:
                continue
            examples = [contract.resolve(e, "")[0]["value"] for e in media.get("examples", {}).values()]
            for value in examples:
                if not runs_on(backend_url, value):
                    continue
                call = Call(method.upper(), template, template, 200, value)
                await run_calls(contract, api.client, [call])
                sent += 1
    assert sent >= 5


def example_request(contract: Contract, template: str, method: str) -> tuple[str, bytes | None]:
    """The request a client generated from the spec sends for an operation with every
    parameter and body at its example: path parameters as one escaped segment each, query
    parameters as form pairs, the first example body."""
    item = contract.spec["paths"][template]
    op = item[method]
    params: dict[tuple[str, str], Any] = {}
    for ref in [*item.get("parameters", []), *op.get("parameters", [])]:
        param, _ = contract.resolve(ref, "")
        params[(param["name"], param["in"])] = param  # the operation's own win
    path, query = template, []
    for (name, where), param in params.items():
        if "example" not in param:
            continue
        if where == "path":
            path = path.replace(f"{{{name}}}", quote(str(param["example"]), safe=""))
        elif where == "query":
            query += list(param["example"].items())
    body = None
    if "requestBody" in op:
        content = contract.resolve(op["requestBody"], "")[0]["content"]
        body = next(m["example"] for m in content.values() if "example" in m).encode()
    return path + (f"?{urlencode(query)}" if query else ""), body


async def test_path_form_examples_of_the_spec_run(api: Api, contract: Contract) -> None:
    """The path form's parameter examples, put together as a generated client would send
    them, make commands that work (each method has examples that add up)."""
    for method in contract.operations(PATH_FORM):
        path, body = example_request(contract, PATH_FORM, method)
        call = Call(method.upper(), path, PATH_FORM, 200, data=body)
        await run_calls(contract, api.client, [call])


async def test_subscribe_streams_events(api: Api, contract: Contract, backend_url: str) -> None:
    require_commands(backend_url, "publish")
    cases = [
        (
            "POST",
            "/subscribe/chat/news",
            SUBSCRIBE,
            b"data: subscribe,chat,1\n\ndata: subscribe,news,2\n\n",
            "news",
            b"data: message,news,hello\n\n",
        ),
        (
            "GET",
            "/psubscribe/news.*",
            PSUBSCRIBE,
            b"data: psubscribe,news.*,1\n\n",
            "news.tech",
            b"data: pmessage,news.*,news.tech,hello\n\n",
        ),
    ]
    for method, path, template, confirmation, channel, event in cases:
        headers = {"Authorization": f"Bearer {RW}", "Accept": "text/event-stream"}
        async with api.client.request(method, path, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            raw = await asyncio.wait_for(resp.content.readexactly(len(confirmation)), 5)
            assert raw == confirmation
            assert await api.result("PUBLISH", channel, "hello") == 1
            raw += await asyncio.wait_for(resp.content.readexactly(len(event)), 5)
            assert raw.endswith(event)
            contract.check(template, method, resp.status, resp.headers, raw)


# --- the document itself -------------------------------------------------------------


def test_the_document_is_valid_openapi_3_1() -> None:
    spec = load_spec()
    assert spec["openapi"] == "3.1.0"
    validate_spec(spec)


def examples(node: Any, pointer: str = "") -> Iterator[tuple[Any, str]]:
    """Every (example value, pointer of the schema it illustrates) in the document."""
    if isinstance(node, dict):
        if "schema" in node and isinstance(node["schema"], dict):
            schema = f"{pointer}/schema"
            if "example" in node:
                yield node["example"], schema
            for example in node.get("examples", {}).values():
                if isinstance(example, dict) and "value" in example:
                    yield example["value"], schema
        if pointer.startswith("/components/schemas/") and pointer.count("/") == 3:
            for value in node.get("examples", []):
                yield value, pointer
        for key, value in node.items():
            yield from examples(value, f"{pointer}/{escape(str(key))}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from examples(value, f"{pointer}/{i}")


def test_every_example_matches_its_schema(contract: Contract) -> None:
    found = list(examples(contract.spec))
    assert len(found) > 30
    for value, pointer in found:
        try:
            contract.validate(value, pointer)
        except Exception as exc:
            raise AssertionError(f"example at {pointer}: {exc}") from None


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        (
            "Value",
            [None, 0, -(2**63), "s", [], [1, ["a", None, [[]]]]],
            [1.5, True, {}, [1.5], [{"a": 1}], 2**64],
        ),
        ("Result", [{"result": None}, {"result": ["a", 1]}], [{}, {"result": 1.5}, {"result": 1, "x": 1}]),
        ("Error", [{"error": "ERR x"}], [{}, {"error": 1}, {"error": "x", "result": 1}]),
        ("Envelope", [{"result": "OK"}, {"error": "ERR x"}], [{}, {"result": 1, "error": "x"}, "OK"]),
        (
            "Command",
            [["PING"], ["SET", "k", 1.5, True], ["SET", "k", {"a": [1]}]],
            [[], "PING", [None], ["SET", "k", None]],
        ),
        ("Commands", [[["PING"]], [["SET", "a", 1], ["GET", "a"]]], [[], [[]], ["PING"], [["GET"], []]]),
    ],
)
def test_schemas_say_what_the_protocol_says(contract: Contract, schema: str, good: list, bad: list) -> None:
    pointer = f"/components/schemas/{schema}"
    for value in good:
        contract.validate(value, pointer)
    for value in bad:
        assert not contract.validator(pointer).is_valid(value), (schema, value)


def test_every_reply_but_metrics_declares_the_sync_token(contract: Contract) -> None:
    for template in contract.spec["paths"]:
        for method, op in contract.operations(template).items():
            for status, response in op["responses"].items():
                response, _ = contract.resolve(response, "")
                declared = "Upstash-Sync-Token" in response.get("headers", {})
                assert declared == (template != METRICS or status == "405"), (template, method, status)


# --- code and spec cannot drift --------------------------------------------------------


def served_names() -> tuple[set[str], set[str]]:
    """The path segments the handler treats specially, and the /_kvgate/ endpoints, as the
    code declares them."""
    return set(kvgate.app.RESERVED_SEGMENTS), set(kvgate.app.OPS_ENDPOINTS)


def test_every_served_route_is_in_the_spec(contract: Contract) -> None:
    reserved, ops = served_names()
    assert {"pipeline", "multi-exec", "subscribe", "psubscribe"} <= reserved  # the reader works
    assert {"health", "metrics"} <= ops
    paths = set(contract.spec["paths"])
    expected = {ROOT, PATH_FORM}
    for name in reserved:
        matches = {p for p in paths if p == f"/{name}" or p.startswith(f"/{name}/")}
        assert matches, f"the code serves /{name}, the spec does not"
        expected |= matches
    for name in ops:
        assert f"{OPS_PREFIX}{name}" in paths, f"the code serves {OPS_PREFIX}{name}, the spec does not"
        expected.add(f"{OPS_PREFIX}{name}")
    assert paths == expected, f"in the spec, not served: {sorted(paths - expected)}"


# Concrete requests for each spec path that never open a stream.
PROBES = {
    ROOT: ("/", b'["PING"]'),
    PATH_FORM: ("/echo/x", b""),
    PIPELINE: ("/pipeline", b'[["PING"]]'),
    MULTI: ("/multi-exec", b'[["PING"]]'),
    SUBSCRIBE: ("/subscribe/", b""),
    PSUBSCRIBE: ("/psubscribe/", b""),
    MONITOR: ("/monitor", b""),
    HEALTH: ("/_kvgate/health", b""),
    METRICS: ("/_kvgate/metrics", b""),
}


async def test_every_method_is_documented_or_refused(gateway_client: Any, contract: Contract) -> None:
    """The methods the code takes on each path (``ENDPOINT_METHODS``) are exactly the spec's
    operations there; each gets a documented non-405 reply, every other method gets 405 with
    ``Allow`` listing exactly them."""
    client = await gateway_client(make_config("fakeredis://"))
    assert set(PROBES) == set(contract.spec["paths"])
    for template, (path, body) in PROBES.items():
        documented = {m.upper() for m in contract.operations(template)}
        if path.startswith(OPS_PREFIX):
            accepted = {"GET", "HEAD"}
        else:
            accepted = set(ENDPOINT_METHODS[Gateway.endpoint_of(path[1:])])
        assert documented == accepted, template
        for method in (*COMMAND_METHODS, "DELETE", "PATCH", "OPTIONS"):
            call = Call(method, path, template, 0, data=body or None)
            status, headers, raw = await send(client, call)
            contract.check(template, method, status, headers, raw)
            if method in accepted:
                assert status != 405, (method, path, raw)
            else:
                assert status == 405, (method, path, status)
                allow = {m.strip() for m in headers["Allow"].split(",")}
                assert allow == accepted, (method, path, allow)
