"""CORS at the HTTP level (the browser itself: tests/browser/test_cors_browser.py).

A preflight carries no token: the database is the one its path routes to, so each
database of a config file answers for its own ``cors_origins``."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvgate.config import ConfigError, from_options, load_file
from kvgate.cors import ALLOWED_HEADERS
from tests.support.api import RW, GatewayClient, make_config

APP = "https://app.example.com"
PREFLIGHT = {
    "Origin": APP,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization",
}


async def test_preflight_and_replies(gateway_client: GatewayClient) -> None:
    client = await gateway_client(make_config("fakeredis://", cors_origins=(APP,)))
    async with client.options("/pipeline", headers=PREFLIGHT) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == APP
        assert resp.headers["Access-Control-Allow-Methods"] == "POST, PUT"
        allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
        for header in (
            "Authorization",
            "Content-Type",
            "Upstash-Encoding",
            "Upstash-Sync-Token",
            "Upstash-Response-Format",
            "Upstash-Telemetry-Sdk",
            "Upstash-Telemetry-Runtime",
            "Upstash-Telemetry-Platform",
            "Upstash-Telemetry-Retry",
        ):
            assert header.lower() in allowed, header
        assert int(resp.headers["Access-Control-Max-Age"]) > 0
        assert resp.headers["Vary"] == "Origin"
    async with client.options("/get/k", headers=PREFLIGHT) as resp:
        assert resp.headers["Access-Control-Allow-Methods"] == "GET, HEAD, POST, PUT"
    # a reply, and an error reply, to an allowed origin
    for token, status in ((RW, 200), ("wrong", 401)):
        headers = {"Origin": APP, "Authorization": f"Bearer {token}"}
        async with client.post("/", json=["PING"], headers=headers) as resp:
            assert resp.status == status
            assert resp.headers["Access-Control-Allow-Origin"] == APP
            assert resp.headers["Access-Control-Expose-Headers"] == "Upstash-Sync-Token"
            assert resp.headers["Vary"] == "Origin"


async def test_other_origins_and_plain_options(gateway_client: GatewayClient) -> None:
    client = await gateway_client(make_config("fakeredis://", cors_origins=(APP,)))
    other = {**PREFLIGHT, "Origin": "https://evil.example"}
    async with client.options("/", headers=other) as resp:
        assert resp.status == 403
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert (await resp.json())["error"].startswith("ERR origin 'https://evil.example' may not call")
    async with client.post(
        "/", json=["PING"], headers={"Origin": "https://evil.example", "Authorization": f"Bearer {RW}"}
    ) as resp:
        assert resp.status == 200  # the server answers; the browser withholds it from the page
        assert "Access-Control-Allow-Origin" not in resp.headers
    async with client.options("/") as resp:  # no Origin: no preflight, as before
        assert resp.status == 405
    # by default no origin is allowed
    plain = await gateway_client(make_config("fakeredis://"))
    async with plain.options("/", headers=PREFLIGHT) as resp:
        assert resp.status == 403
    async with plain.post(
        "/", json=["PING"], headers={"Origin": APP, "Authorization": f"Bearer {RW}"}
    ) as resp:
        assert "Access-Control-Allow-Origin" not in resp.headers


async def test_any_origin_and_per_database(gateway_client: GatewayClient, tmp_path: Path) -> None:
    file = tmp_path / "kvgate.toml"
    file.write_text(
        """
[databases.public]
backend = "fakeredis:///0"
tokens = ["t1"]
cors_origins = "*"

[databases.private]
backend = "fakeredis:///1"
tokens = ["t2"]
cors_origins = ["https://admin.example.com"]
"""
    )
    client = await gateway_client(load_file(file))
    anywhere = {**PREFLIGHT, "Origin": "http://localhost:5173"}
    async with client.options("/db/public/pipeline", headers=anywhere) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"  # echoed
    async with client.options("/db/private/pipeline", headers=anywhere) as resp:
        assert resp.status == 403
    admin = {**PREFLIGHT, "Origin": "https://admin.example.com"}
    async with client.options("/db/private", headers=admin) as resp:
        assert resp.status == 204
    async with client.options("/db/nowhere", headers=admin) as resp:
        assert resp.status == 404


@pytest.mark.parametrize(
    "origin", ["https://app.example.com/", "app.example.com", "https://a.example/path", ""]
)
def test_origins_are_checked(origin: str) -> None:
    with pytest.raises(ConfigError, match="cors_origins"):
        from_options(
            {"backend": "fakeredis://", "cors_origins": (origin,)} if origin else {"cors_origins": ("x y",)}
        )


def test_allowed_headers_cover_the_clients() -> None:
    assert "Upstash-Telemetry-Retry" in ALLOWED_HEADERS
