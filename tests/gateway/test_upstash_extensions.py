"""Upstash's own extensions, on every backend: ``SCAN ... WITHTYPE`` and the
``Upstash-Response-Format`` header (``json``, ``resp2``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.api import RW, Api

TYPED = [
    ["SET", "s", "v"],
    ["HSET", "h", "f", "v"],
    ["RPUSH", "l", "a"],
    ["SADD", "st", "m"],
    ["ZADD", "z", "1", "m"],
]
EXPECTED = {"s": "string", "h": "hash", "l": "list", "st": "set", "z": "zset"}


def pairs(flat: list[str]) -> dict[str, str]:
    assert len(flat) % 2 == 0, flat
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def scan_all(api: Api, *options: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    cursor = "0"
    while True:
        cursor, flat = await api.result("SCAN", cursor, *options)
        found.update(pairs(flat))
        if cursor == "0":
            return found


async def test_scan_withtype(api: Api) -> None:
    status, _ = await api.pipeline(*TYPED)
    assert status == 200
    assert await scan_all(api, "COUNT", 1000, "WITHTYPE") == EXPECTED
    assert await scan_all(api, "WITHTYPE", "MATCH", "s*") == {"s": "string", "st": "set"}
    assert await scan_all(api, "WITHTYPE", "TYPE", "hash") == {"h": "hash"}
    # without it: names only, as before
    names: list[str] = []
    cursor = "0"
    while True:
        cursor, page = await api.result("SCAN", cursor, "COUNT", 1000)
        names += page
        if cursor == "0":
            break
    assert sorted(names) == sorted(EXPECTED)
    # MATCH withtype is a pattern, not the flag
    assert await scan_all(api, "MATCH", "withtype") == {}
    # an option that is neither is still Redis's syntax error
    status, body = await api.cmd("SCAN", 0, "WITHTYPE", "nonsense")
    assert status == 400 and body["error"].startswith("ERR "), body  # fakeredis words it its own way


async def test_scan_withtype_in_batches_and_base64(api: Api, backend_url: str) -> None:
    await api.pipeline(*TYPED)
    # a page's names each with their type (a cluster's first page holds one node's keys)
    status, body = await api.pipeline(["SCAN", "0", "COUNT", "1000", "WITHTYPE"], ["PING"])
    assert status == 200
    assert pairs(body[0]["result"][1]).items() <= EXPECTED.items() and body[1] == {"result": "PONG"}
    if "cluster" not in backend_url:  # a cluster's transactions hold keys of one slot
        status, body = await api.multi(["SCAN", "0", "COUNT", "1000", "MATCH", "s", "WITHTYPE"], ["GET", "s"])
        assert status == 200
        assert pairs(body[0]["result"][1]).items() <= {"s": "string"}.items() and body[1] == {"result": "v"}
    status, body = await api.cmd("SCAN", 0, "COUNT", 1000, "WITHTYPE", headers={"Upstash-Encoding": "base64"})
    assert status == 200
    assert (
        pairs(body["result"][1]).items()
        <= {
            "cw==": "c3RyaW5n",
            "aA==": "aGFzaA==",
            "bA==": "bGlzdA==",
            "c3Q=": "c2V0",
            "eg==": "enNldA==",
        }.items()
    )


async def raw(api: Api, path: str, body: Any, **headers: str) -> tuple[int, str, bytes]:
    async with api.client.post(path, json=body, headers={"Authorization": f"Bearer {RW}", **headers}) as resp:
        return resp.status, resp.headers["Content-Type"], await resp.read()


RESP2 = {"Upstash-Response-Format": "resp2"}


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["SET", "k", "bar"], b"+OK\r\n"),
        (["GET", "k"], b"$3\r\nbar\r\n"),
        (["GET", "missing"], b"$-1\r\n"),
        (["INCR", "n"], b":1\r\n"),
        (["PING"], b"+PONG\r\n"),
        (["ECHO", "PONG"], b"$4\r\nPONG\r\n"),
        (["TYPE", "k"], b"+string\r\n"),
        (["LRANGE", "l", "0", "-1"], b"*2\r\n$1\r\na\r\n$0\r\n\r\n"),
        (["LRANGE", "missing", "0", "-1"], b"*0\r\n"),
    ],
)
async def test_resp2_replies(api: Api, command: list[str], expected: bytes) -> None:
    await api.pipeline(["SET", "k", "bar"], ["RPUSH", "l", "a", ""])
    status, kind, body = await raw(api, "/", command, **RESP2)
    assert (status, kind) == (200, "application/octet-stream")
    assert body == expected


async def test_resp2_errors_pipeline_and_transaction(api: Api) -> None:
    status, kind, body = await raw(api, "/", ["GET"], **RESP2)
    assert (status, kind) == (400, "application/octet-stream")
    assert body == b"-ERR wrong number of arguments for 'get' command\r\n"
    # a pipeline: one RESP2 reply per command, back to back
    status, kind, body = await raw(
        api, "/pipeline", [["SET", "a", "x"], ["INCR", "a"], ["GET", "a"]], **RESP2
    )
    assert (status, kind) == (200, "application/octet-stream")
    assert body == b"+OK\r\n-ERR value is not an integer or out of range\r\n$1\r\nx\r\n"
    # /multi-exec answers JSON whatever the header says (as Upstash documents)
    status, kind, body = await raw(api, "/multi-exec", [["GET", "a"]], **RESP2)
    assert (status, kind, body) == (200, "application/json", b'[{"result":"x"}]')


async def test_response_format_values(api: Api) -> None:
    for value in ("json", "JSON", " json "):
        status, body = await api.cmd("PING", headers={"Upstash-Response-Format": value})
        assert (status, body) == (200, {"result": "PONG"})
    status, body = await api.cmd("PING", headers={"Upstash-Response-Format": "xml"})
    assert status == 400 and body["error"].startswith("ERR unknown Upstash-Response-Format 'xml'")
    status, body = await api.cmd("PING", headers={**RESP2, "Upstash-Encoding": "base64"})
    assert status == 400 and "cannot be combined with Upstash-Encoding: base64" in body["error"]
    status, body = await api.pipeline(["PING"], headers={"Upstash-Response-Format": "yaml"})
    assert status == 400
    # the token is checked first
    status, body = await Api(api.client, token="wrong").cmd(
        "PING", headers={"Upstash-Response-Format": "xml"}
    )
    assert status == 401
