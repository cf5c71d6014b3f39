from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import RawTestServer, TestClient

from kvgate.app import SERVER_OPTIONS, Gateway
from kvgate.config import Config, from_options
from tests.engine_support import (
    ENGINE_BACKENDS,
    STORES,
    DynamoEngineClient,
    EngineClient,
    Oracle,
    make_client,
)
from tests.servers import DynamoDBLocal, RedisServer

# DynamoDB Local takes any credentials; never reach for an instance role.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "kvgatetest")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "kvgatetest")
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

RW = "rw-token"
RO = "ro-token"
BACKENDS = ("redis", "fakeredis", "sqlite", "dynamodb")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    """DynamoDB Local (AWS's emulator), installed on first use, one per session."""
    server = DynamoDBLocal().start()
    yield server
    server.close()


@pytest.fixture(params=BACKENDS)
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every protocol test runs on a real Redis, on fakeredis, on SQLite (a new file) and
    on DynamoDB Local (an emptied table)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/kvgate.db"
    if request.param == "dynamodb":
        return request.getfixturevalue("dynamodb_local").clean_table()
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        server.commands([["FLUSHALL"], ["SCRIPT", "FLUSH"]])
        return server.url
    return "fakeredis://"


@pytest.fixture(params=ENGINE_BACKENDS)
def engine_backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A backend that runs kvgate's own engine: SQLite (a new file), DynamoDB Local."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/kvgate.db"
    return request.getfixturevalue("dynamodb_local").clean_table()


def require_commands(backend_url: str, *names: str) -> None:
    """Skip on a backend that does not run one of these commands (kvgate's own engine runs
    a documented subset: README, "Commands per backend")."""
    kind = backend_url.split(":", 1)[0]
    if kind in ENGINE_BACKENDS:
        from kvgate.engine import Engine

        missing = [n for n in names if not Engine.supports(n)]
        if missing:
            pytest.skip(f"not supported by the {kind} backend: {', '.join(missing)}")


def make_config(backend_url: str, **options: Any) -> Config:
    return from_options({"backend": backend_url, "tokens": (RW,), "read_only_tokens": (RO,), **options})


class Api:
    """A thin client for tests: JSON in, (status, JSON) out, with a token by default."""

    def __init__(self, client: TestClient, token: str | None = RW, prefix: str = "") -> None:
        self.client = client
        self.token = token
        self.prefix = prefix

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        h.update(extra or {})
        return h

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        async with self.client.request(
            method, self.prefix + path, headers=self.headers(headers), **kwargs
        ) as resp:
            assert resp.headers["Content-Type"].startswith("application/json"), await resp.text()
            return resp.status, await resp.json()

    async def cmd(self, *args: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return await self.request("POST", "/", json=list(args), headers=headers)

    async def result(self, *args: Any) -> Any:
        status, body = await self.cmd(*args)
        assert status == 200, body
        return body["result"]

    async def pipeline(self, *commands: list[Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return await self.request("POST", "/pipeline", json=list(commands), headers=headers)

    async def multi(self, *commands: list[Any], headers: dict[str, str] | None = None) -> tuple[int, Any]:
        return await self.request("POST", "/multi-exec", json=list(commands), headers=headers)


GatewayClient = Callable[[Config], Awaitable[TestClient]]
#: The gateway behind each test client, for tests that look inside it.
GATEWAYS: dict[TestClient, Gateway] = {}


@pytest.fixture
async def gateway_client() -> AsyncIterator[GatewayClient]:
    """Serve a config the way ``kvgate serve`` does (aiohttp's low-level server around
    ``Gateway.handle``) and return a test client for it."""
    running: list[tuple[TestClient, Gateway]] = []

    async def make(config: Config) -> TestClient:
        gateway = Gateway(config)
        await gateway.start()
        server = RawTestServer(gateway.handle)
        await server.start_server(**SERVER_OPTIONS)  # as create_server() configures it
        client = TestClient(server)
        await client.start_server()
        GATEWAYS[client] = gateway
        running.append((client, gateway))
        return client

    yield make
    for client, gateway in running:
        gateway.begin_shutdown()
        await client.close()
        await gateway.close()
        GATEWAYS.pop(client, None)


@pytest.fixture
async def api(gateway_client: GatewayClient, backend_url: str) -> Api:
    return Api(await gateway_client(make_config(backend_url)))


@pytest.fixture(params=STORES)
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EngineClient]:
    """kvgate's engine on each store (in memory, a real SQLite file, a DynamoDB Local
    table through the backend), one command per unit."""
    if request.param == "dynamodb":
        client = DynamoEngineClient(request.getfixturevalue("dynamodb_local").clean_table())
        yield client
        client.close()
        return
    yield make_client(request.param, tmp_path)


@pytest.fixture
def oracle(redis_server: RedisServer) -> Oracle:
    """The real Redis of the session, flushed."""
    return Oracle(redis_server)
