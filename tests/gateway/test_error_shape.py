"""Which HTTP status and error shape a bad request gets.

One test walks every error path and checks the one error shape: every error is JSON
``{"error": "<text>"}`` and nothing else, with a Redis-style prefix, a meaningful status and
an ``Upstash-Sync-Token`` header.  A backend that never answers (a TCP server that accepts
and stays silent) gives the timeout and overload paths.

The status tests at the end (413, 404 outside a database's base path, 503, 504, 500) send
the same failure to each endpoint and check every reply against openapi.yaml too: the status
is one the spec documents for that path and method, and the body and headers match it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kvgate.config import load_file
from tests.support.api import RO, RW, make_config
from tests.support.openapi import (
    HEALTH,
    METRICS,
    MONITOR,
    MULTI,
    PATH_FORM,
    PIPELINE,
    ROOT,
    SUBSCRIBE,
    Call,
    Contract,
    run_calls,
)
from tests.support.servers import RedisServer, free_port

PREFIX = re.compile(r"^(ERR|WRONGTYPE|WRONGPASS|NOPERM|EXECABORT|NOSCRIPT) ")


@dataclass
class Case:
    name: str
    method: str
    path: str
    status: int
    text: str  # a substring the error must contain
    body: bytes | None = None
    token: str | None = RW
    headers: dict[str, str] | None = None
    client: str = "main"


LONG = b'["SET","k","' + b"x" * 5000 + b'"]'

CASES = [
    Case("malformed JSON", "POST", "/", 400, "not valid JSON", b'["SET","k"'),
    Case("empty body", "POST", "/", 400, "empty body", b""),
    Case("body is an object", "POST", "/", 400, "non-empty JSON array", b'{"cmd":"GET"}'),
    Case("empty command", "POST", "/", 400, "non-empty JSON array", b"[]"),
    Case("null argument", "POST", "/", 400, "argument 2 is null", b'["GET",null]'),
    Case("null argument", "POST", "/", 400, "argument 3 is null", b'["SET","k",null]'),
    Case("NaN literal", "POST", "/", 400, "not valid JSON", b'["SET","k",NaN]'),
    Case("invalid UTF-8 JSON", "POST", "/", 400, "not valid JSON", b'["SET","k","\xff"]'),
    Case("pipeline not nested", "POST", "/pipeline", 400, "non-empty JSON array", b'["GET","k"]'),
    Case("pipeline empty", "POST", "/pipeline", 400, "non-empty array of commands", b"[]"),
    Case("multi-exec not an array", "POST", "/multi-exec", 400, "non-empty array", b'"GET"'),
    Case(
        "unknown command",
        "POST",
        "/",
        400,
        "ERR unknown command 'FOO', with args beginning with: 'a' ",
        b'["FOO","a"]',
    ),
    Case("wrong arity", "POST", "/", 400, "ERR wrong number of arguments for 'get' command", b'["GET"]'),
    Case("wrong arity, path form", "GET", "/get", 400, "wrong number of arguments for 'get'"),
    Case(
        "unknown subcommand",
        "POST",
        "/",
        400,
        "ERR unknown subcommand 'NOPE'. Try SCRIPT HELP.",
        b'["SCRIPT","NOPE"]',
    ),
    Case("runtime error", "POST", "/", 400, "WRONGTYPE", b'["LPUSH","str","x"]'),
    Case("syntax error", "POST", "/", 400, "ERR syntax error", b'["SET","k","v","NX","XX"]'),
    Case("refused command", "POST", "/", 400, "not available over REST", b'["SELECT","2"]'),
    Case("transaction discarded", "POST", "/multi-exec", 400, "EXECABORT", b'[["SET","a","1"],["GET"]]'),
    Case("no command", "GET", "/", 400, "no command"),
    Case("subscribe without channel", "POST", "/subscribe", 400, "at least one name"),
    Case("monitor", "POST", "/monitor", 400, "monitor is not available"),
    Case(
        "missing token", "POST", "/", 401, "WRONGPASS invalid or missing auth token", b'["PING"]', token=None
    ),
    Case("wrong token", "POST", "/", 401, "WRONGPASS", b'["PING"]', token="nope"),
    Case("wrong _token", "GET", "/ping?_token=nope", 401, "WRONGPASS", token=None),
    Case(
        "read-only token writes",
        "POST",
        "/",
        403,
        "NOPERM this user has no permissions to run the 'set' command",
        b'["SET","k","v"]',
        token=RO,
    ),
    Case("method DELETE", "DELETE", "/get/k", 405, "method DELETE is not allowed"),
    Case("method PATCH", "PATCH", "/", 405, "not allowed", b'["PING"]'),
    Case("GET /pipeline", "GET", "/pipeline", 405, "method GET is not allowed here"),
    Case("DELETE /multi-exec, no token", "DELETE", "/multi-exec", 405, "not allowed", token=None),
    Case(
        "read-only token in a transaction",
        "POST",
        "/multi-exec",
        403,
        "NOPERM",
        b'[["GET","k"],["DEL","k"]]',
        token=RO,
    ),
    Case("body too large", "POST", "/", 413, "ERR max request size exceeded", LONG),
    Case("body too large, path form", "POST", "/set/k", 413, "max request size", b"x" * 5000),
    Case("ops unknown", "GET", "/_kvgate/nope", 404, "unknown endpoint", token=None),
    Case("ops wrong method", "POST", "/_kvgate/health", 405, "not allowed", token=None),
    Case(
        "unknown database path",
        "POST",
        "/db/nope",
        404,
        "no database at this path",
        b'["PING"]',
        client="multi",
    ),
    Case("backend down", "POST", "/", 503, "backend unavailable", b'["PING"]', client="down"),
    Case("backend timeout", "POST", "/", 504, "did not answer within", b'["PING"]', client="silent"),
]


class SilentServer:
    """Accepts connections and never answers: a hung backend."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while await reader.read(65536):
                pass
            writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()


@pytest.fixture
async def clients(
    gateway_client: Any, redis_server: Any, tmp_path: Any
) -> AsyncIterator[dict[str, TestClient]]:
    redis_server.command("FLUSHALL")
    redis_server.command("SET", "str", "v")
    silent = SilentServer()
    await silent.start()
    conf = tmp_path / "kvgate.toml"
    conf.write_text('[databases.a]\nbackend = "fakeredis://"\ntokens = ["t"]\n')
    yield {
        "main": await gateway_client(make_config(redis_server.url, max_body_bytes=4096)),
        "multi": await gateway_client(load_file(conf)),
        "down": await gateway_client(make_config(f"redis://127.0.0.1:{free_port()}/0", pool_size=1)),
        "silent": await gateway_client(
            make_config(f"redis://127.0.0.1:{silent.port}/0", timeout=0.3, pool_size=1)
        ),
    }
    await silent.stop()


def check_shape(case: Case, status: int, headers: Any, body: Any) -> None:
    assert status == case.status, (case.name, status, body)
    assert headers["Content-Type"].startswith("application/json"), case.name
    assert headers.get("Upstash-Sync-Token"), case.name
    assert isinstance(body, dict) and list(body) == ["error"], (case.name, body)
    assert isinstance(body["error"], str) and PREFIX.match(body["error"]), (case.name, body)
    assert case.text in body["error"], (case.name, body)


async def test_every_error_path_has_the_one_shape(clients: dict[str, TestClient]) -> None:
    for case in CASES:
        headers = {"Authorization": f"Bearer {case.token}"} if case.token else {}
        headers.update(case.headers or {})
        client = clients[case.client]
        async with client.request(case.method, case.path, data=case.body, headers=headers) as resp:
            check_shape(case, resp.status, resp.headers, await resp.json())
            if case.status == 405:
                allowed = resp.headers["Allow"].split(", ")
                assert case.method not in allowed and ("POST" in allowed or "GET" in allowed)
            if case.status == 503:
                assert resp.headers["Retry-After"] == "1"


async def test_chunked_body_over_the_limit(clients: dict[str, TestClient]) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'["SET","k","'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"]'

    headers = {"Authorization": f"Bearer {RW}"}
    async with clients["main"].post("/", data=chunks(), headers=headers) as resp:
        case = Case("chunked too large", "POST", "/", 413, "max request size exceeded")
        check_shape(case, resp.status, resp.headers, await resp.json())


async def test_overload_answers_503_instead_of_queueing(gateway_client: Any) -> None:
    silent = SilentServer()
    await silent.start()
    try:
        client = await gateway_client(
            make_config(f"redis://127.0.0.1:{silent.port}/0", timeout=1, max_inflight=2, pool_size=1)
        )
        headers = {"Authorization": f"Bearer {RW}"}
        pending = [asyncio.ensure_future(client.post("/", json=["PING"], headers=headers)) for _ in range(2)]
        await asyncio.sleep(0.2)
        async with client.post("/", json=["PING"], headers=headers) as resp:
            case = Case("overloaded", "POST", "/", 503, "backend overloaded")
            check_shape(case, resp.status, resp.headers, await resp.json())
            assert resp.headers["Retry-After"] == "1"
        for fut in pending:
            (await fut).close()
    finally:
        await silent.stop()


async def test_an_internal_bug_answers_json_500_and_the_server_keeps_serving(
    gateway_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvgate.database import Database

    client = await gateway_client(make_config("fakeredis://"))
    original = Database.run_one

    async def broken(self: Database, args: list[bytes], access: Any) -> Any:
        if args[0] == b"ECHO":
            raise RuntimeError("boom")
        return await original(self, args, access)

    monkeypatch.setattr(Database, "run_one", broken)
    headers = {"Authorization": f"Bearer {RW}"}
    async with client.post("/", json=["ECHO", "x"], headers=headers) as resp:
        case = Case("internal", "POST", "/", 500, "internal error")
        check_shape(case, resp.status, resp.headers, await resp.json())
    async with client.post("/", json=["PING"], headers=headers) as resp:
        assert (resp.status, await resp.json()) == (200, {"result": "PONG"})


# --- each status on every endpoint, checked against the spec ------------------------


async def test_body_limit_answers_413(backend_url: str, gateway_client: Any, contract: Contract) -> None:
    client = await gateway_client(make_config(backend_url, max_body_bytes=2048))
    big = "x" * 3000
    calls = [
        Call("POST", "/", ROOT, 413, ["SET", "k", big]),
        Call("PUT", "/", ROOT, 413, ["SET", "k", big]),
        Call("POST", "/set/k", PATH_FORM, 413, data=big.encode()),
        Call("PUT", "/set/k", PATH_FORM, 413, data=big.encode()),
        Call("POST", "/pipeline", PIPELINE, 413, [["SET", "k", big]]),
        Call("POST", "/multi-exec", MULTI, 413, [["SET", "k", big]]),
        Call("POST", "/", ROOT, 200, ["SET", "k", "x" * 1000]),
    ]
    await run_calls(contract, client, calls)


@pytest.fixture
async def multi_db(gateway_client: Any, tmp_path: Path) -> TestClient:
    conf = tmp_path / "kvgate.toml"
    conf.write_text('[databases.x]\nbackend = "fakeredis://"\ntokens = ["t"]\n')
    return await gateway_client(load_file(conf))


async def test_database_base_paths_and_404(multi_db: TestClient, contract: Contract) -> None:
    served = [
        Call("POST", "", ROOT, 200, ["SET", "k", "v"], token="t", expect={"result": "OK"}),
        Call("POST", "/", ROOT, 200, ["GET", "k"], token="t", expect={"result": "v"}),
        Call("GET", "/get/k", PATH_FORM, 200, token="t", expect={"result": "v"}),
        Call("POST", "/pipeline", PIPELINE, 200, [["GET", "k"]], token="t", expect=[{"result": "v"}]),
        Call("POST", "/multi-exec", MULTI, 200, [["GET", "k"]], token="t", expect=[{"result": "v"}]),
        Call("POST", "/", ROOT, 401, ["GET", "k"], token=RW),
        Call("GET", "/_kvgate/health", HEALTH, 200, token=None),
    ]
    await run_calls(contract, multi_db, served, base="/db/x")
    nowhere = [
        Call("POST", "/", ROOT, 404, ["PING"], token="t"),
        Call("GET", "/", ROOT, 404, token="t"),
        Call("GET", "/get/k", PATH_FORM, 404, token="t"),
        Call("HEAD", "/get/k", PATH_FORM, 404, token="t"),
        Call("POST", "/set/k", PATH_FORM, 404, data=b"v", token="t"),
        Call("POST", "/pipeline", PIPELINE, 404, [["PING"]], token="t"),
        Call("POST", "/multi-exec", MULTI, 404, [["PING"]], token="t"),
        Call("POST", "/subscribe/chat", SUBSCRIBE, 404, token="t"),
        Call("POST", "/monitor", MONITOR, 404, token="t"),
    ]
    for base in ("", "/db/nope", "/db/xy"):
        await run_calls(contract, multi_db, nowhere, base=base)


async def test_backend_down_answers_503(gateway_client: Any, contract: Contract) -> None:
    client = await gateway_client(make_config(f"redis://127.0.0.1:{free_port()}/0", pool_size=1))
    calls = [
        Call("POST", "/", ROOT, 503, ["PING"]),
        Call("GET", "/ping", PATH_FORM, 503),
        Call("POST", "/pipeline", PIPELINE, 503, [["PING"]]),
        Call("POST", "/multi-exec", MULTI, 503, [["PING"]]),
        Call("POST", "/subscribe/chat", SUBSCRIBE, 503),
        Call("GET", "/_kvgate/health", HEALTH, 503, token=None),
        Call("HEAD", "/_kvgate/health", HEALTH, 503, token=None),
        Call("GET", "/_kvgate/metrics", METRICS, 200, token=None),
    ]
    await run_calls(contract, client, calls)


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A TCP server that accepts and never answers: a hung backend."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()


async def test_backend_timeout_answers_504(gateway_client: Any, silent_port: int, contract: Contract) -> None:
    config = make_config(f"redis://127.0.0.1:{silent_port}/0", timeout=0.2, pool_size=1)
    client = await gateway_client(config)
    await run_calls(contract, client, [Call("POST", "/", ROOT, 504, ["PING"])])


async def test_internal_error_answers_500(
    gateway_client: Any, contract: Contract, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvgate.database import Database

    async def broken(self: Database, args: list[bytes], access: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(Database, "run_one", broken)
    client = await gateway_client(make_config("fakeredis://"))
    await run_calls(contract, client, [Call("POST", "/", ROOT, 500, ["PING"])])


async def test_a_full_batch_is_never_refused_for_its_size_while_others_are_in_flight(
    gateway_client: Any, redis_server: RedisServer
) -> None:
    """``max_batch_commands`` and ``max_inflight`` must not contradict: a batch at the batch
    limit is admitted whenever fewer than ``max_inflight`` commands are in flight, even
    when it alone is as large as the bound (the bound may overshoot by one batch)."""
    limit = 50
    client = await gateway_client(
        make_config(redis_server.url, max_inflight=limit, max_batch_commands=limit, pool_size=1)
    )
    headers = {"Authorization": f"Bearer {RW}"}
    # One slow command in flight (a script that spins for ~0.3 s), then a full batch.
    spin = "local t = redis.call('TIME') repeat local n = redis.call('TIME') until (n[1]-t[1])*1e6+(n[2]-t[2]) > 300000"
    slow = asyncio.ensure_future(client.post("/", json=["EVAL", spin, "0"], headers=headers))
    await asyncio.sleep(0.05)
    async with client.post("/pipeline", json=[["PING"]] * limit, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert await resp.json() == [{"result": "PONG"}] * limit
    async with await slow as resp:
        assert resp.status == 200, await resp.text()
