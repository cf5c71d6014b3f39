"""The gateway as the tests talk to it: tokens, configs, a JSON client, backend checks."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from kvgate.adapters import REGISTRY, entry_for
from kvgate.app import Gateway
from kvgate.config import Config, from_options

RW = "rw-token"
RO = "ro-token"
#: The backends every protocol test runs on (the ``backend_url`` fixture): the registry's.
BACKENDS = tuple(entry.name for entry in REGISTRY)


def require_commands(backend_url: str, *names: str) -> None:
    """Skip on a backend that does not run one of these commands (kvgate's own engine runs
    a documented subset: README, "Commands per backend")."""
    entry = entry_for(backend_url)
    if entry.engine:
        from kvgate.engine import Engine

        missing = [n for n in names if not Engine.supports(n)]
        if missing:
            pytest.skip(f"not supported by the {entry.name} backend: {', '.join(missing)}")


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


async def read_event(resp: ClientResponse, timeout: float = 5) -> str:
    """The next ``data:`` event of a ``/subscribe`` stream (joined lines), skipping comments."""
    lines: list[str] = []
    while True:
        raw = await asyncio.wait_for(resp.content.readline(), timeout)
        assert raw, "stream ended"
        line = raw.decode().rstrip("\n")
        if line.startswith(":"):
            continue
        if not line:
            if lines:
                return "\n".join(lines)
            continue
        assert line.startswith("data: "), line
        lines.append(line[len("data: ") :])


#: What the ``gateway_client`` fixture returns: serve a config, get a test client for it.
GatewayClient = Callable[[Config], Awaitable[TestClient]]
#: The gateway behind each test client, for tests that look inside it.
GATEWAYS: dict[TestClient, Gateway] = {}
