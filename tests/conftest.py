"""Fixtures for every test folder; the helpers they use live in ``tests.support``."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import RawTestServer, TestClient

from kvgate.app import SERVER_OPTIONS, Gateway
from kvgate.config import Config
from tests.support.api import BACKENDS, GATEWAYS, Api, GatewayClient, make_config
from tests.support.backends import BACKEND_URLS
from tests.support.engine import (
    ENGINE_BACKENDS,
    STORES,
    DynamoEngineClient,
    EngineClient,
    Oracle,
    make_client,
)
from tests.support.openapi import Contract, load_spec
from tests.support.servers import DynamoDBLocal, RedisServer

# DynamoDB Local takes any credentials; never reach for an instance role.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "kvgatetest")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "kvgatetest")
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


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
    """Every protocol test runs on each backend of the registry: a real Redis (flushed),
    fakeredis, SQLite (a new file), DynamoDB Local (an emptied table)."""
    return BACKEND_URLS[request.param](request, tmp_path)


@pytest.fixture(params=ENGINE_BACKENDS)
def engine_backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A backend that runs kvgate's own engine: SQLite (a new file), DynamoDB Local."""
    return BACKEND_URLS[request.param](request, tmp_path)


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


@pytest.fixture(scope="module")
def contract() -> Contract:
    """openapi.yaml, to check replies against (tests.support.openapi)."""
    return Contract(load_spec())
