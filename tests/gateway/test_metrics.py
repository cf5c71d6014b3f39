"""``/_kvgate/metrics``: every family typed for Prometheus's parser, the counts a request
makes, and one scrape that sums every worker (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry, Histogram

from kvgate.app import GAUGE_REFRESH_SECONDS
from kvgate.metrics import BUCKETS, add_observations
from tests.support.api import Api, GatewayClient, make_config
from tests.support.metrics import families, samples, value
from tests.support.servers import KvgateServer, RedisServer


async def scrape(api: Api) -> str:
    async with api.client.get("/_kvgate/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        return await resp.text()


async def test_every_family_parses_with_a_type(gateway_client: GatewayClient, tmp_path: Path) -> None:
    api = Api(await gateway_client(make_config(f"sqlite:///{tmp_path / 'm.db'}")))
    await api.cmd("SET", "k", "v")
    await api.pipeline(["GET", "k"], ["HSET", "h", "f", "v"])
    text = await scrape(api)
    found = families(text)
    untyped = sorted(name for name, family in found.items() if family.type == "unknown")
    assert not untyped, untyped
    for name in (
        "kvgate_requests",
        "kvgate_commands",
        "kvgate_request_seconds",
        "kvgate_command_seconds",
        "kvgate_in_flight_requests",
        "kvgate_backend_up",
        "kvgate_backend",
        "kvgate_start_time_seconds",
    ):
        assert name in found, sorted(found)
    assert found["kvgate_request_seconds"].type == "histogram"
    assert found["kvgate_commands"].type == "counter"


async def test_requests_commands_errors_and_latency_are_counted(
    gateway_client: GatewayClient, tmp_path: Path
) -> None:
    api = Api(await gateway_client(make_config(f"sqlite:///{tmp_path / 'm.db'}")))
    await api.cmd("SET", "k", "v")
    await api.cmd("GET", "k")
    await api.cmd("HSET", "h", "f", "v")
    assert (await api.cmd("INCR", "k"))[0] == 400  # a command's own error
    await api.pipeline(["GET", "k"], ["INCR", "k"], ["NOSUCHCOMMAND"])
    assert (await Api(api.client, token="wrong").cmd("GET", "k"))[0] == 401
    text = await scrape(api)

    assert value(text, "kvgate_requests_total", database="default", endpoint="command", status="200") == 3
    assert value(text, "kvgate_requests_total", endpoint="command", status="400") == 1
    assert value(text, "kvgate_requests_total", endpoint="pipeline", status="200") == 1
    assert value(text, "kvgate_requests_total", status="401") == 1
    # commands by name (as parsed: the refused request never was); a name the table
    # lacks is "other", never a label of its own
    assert value(text, "kvgate_commands_total", command="get") == 2
    assert value(text, "kvgate_commands_total", command="incr") == 2
    assert value(text, "kvgate_commands_total", command="set") == 1
    assert value(text, "kvgate_commands_total", command="other") == 1
    assert not any(("command", "nosuchcommand") in key for key in samples(text, "kvgate_commands_total"))
    # errors by kind: the bad token, and three command errors (INCR of "v" twice, the
    # unknown command), which are not counted as bad requests
    assert value(text, "kvgate_errors_total", kind="unauthorized") == 1
    assert value(text, "kvgate_errors_total", kind="command") == 3
    assert value(text, "kvgate_errors_total", kind="bad_request") == 0
    # latency per endpoint, and per command family for requests of one command
    assert value(text, "kvgate_request_seconds_count", endpoint="command") == 5
    assert value(text, "kvgate_request_seconds_count", endpoint="pipeline") == 1
    assert value(text, "kvgate_command_seconds_count", family="string") == 3
    assert value(text, "kvgate_command_seconds_count", family="hash") == 1
    assert value(text, "kvgate_backend_up", database="default") == 1


def call(url: str, body: object, token: str) -> tuple[int, object, str]:
    """One request on a connection of its own (so that either worker may take it)."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Connection", "close")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read()), resp.headers["Upstash-Sync-Token"]
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), err.headers.get("Upstash-Sync-Token", "")


def test_one_scrape_sums_both_workers(redis_server: RedisServer) -> None:
    """Before: each scrape showed one worker's counts (13 or 7 of 20 commands).  The sync
    token starts with the answering worker's pid, which shows both workers answered."""
    server = KvgateServer("--backend", redis_server.url + "/3", "--token", "t", "--workers", "2").start()
    try:
        workers: set[str] = set()
        sent = 0
        deadline = time.monotonic() + 20
        while (len(workers) < 2 or sent < 40) and time.monotonic() < deadline:
            status, reply, token = call(server.url, ["INCR", "metrics:two-workers"], "t")
            assert status == 200, reply
            sent += 1
            workers.add(token.partition("-")[0])
        assert len(workers) == 2, f"one worker answered all {sent} requests"
        time.sleep(GAUGE_REFRESH_SECONDS * 1.5)  # each worker adds its counts every second
        for _ in range(6):  # scrapes land on either worker: each sees the whole
            with urllib.request.urlopen(server.url + "/_kvgate/metrics", timeout=5) as resp:
                text = resp.read().decode()
            assert value(text, "kvgate_commands_total", command="incr") == sent
            assert value(text, "kvgate_requests_total", endpoint="command", status="200") == sent
            assert not [f for f in families(text).values() if f.type == "unknown"]
    finally:
        assert server.stop() == 0, server.output()
        server.close()


async def test_subscribers_are_counted_while_they_stream(
    gateway_client: GatewayClient, redis_server: RedisServer
) -> None:
    api = Api(await gateway_client(make_config(redis_server.url + "/4")))  # pub/sub: a Redis
    async with api.client.post("/subscribe/chat", headers=api.headers()) as resp:
        assert resp.status == 200
        assert (await resp.content.readline()).startswith(b"data: subscribe,chat,1")
        assert value(await scrape(api), "kvgate_subscribers", database="default") == 1
    deadline = time.monotonic() + 5  # the stream notices its client left at its next poll
    while value(await scrape(api), "kvgate_subscribers", database="default") and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert value(await scrape(api), "kvgate_subscribers", database="default") == 0


def test_observations_added_at_once_equal_observe_one_by_one() -> None:
    """The flush adds many observations through prometheus_client's private fields: this
    fails if a new prometheus_client stores them otherwise."""
    seconds = [0.0001, 0.0005, 0.003, 0.003, 0.2, 7.0]
    one, many = (Histogram("h", "h", ("x",), buckets=BUCKETS, registry=CollectorRegistry()) for _ in range(2))
    for s in seconds:
        one.labels("a").observe(s)
    counts = [0.0] * (len(BUCKETS) + 2)
    for s in seconds:
        counts[next((i for i, bound in enumerate(BUCKETS) if s <= bound), len(BUCKETS))] += 1
    counts[-1] = sum(seconds)
    add_observations(many.labels("a"), counts)
    assert [(x.name, x.labels, x.value) for x in one.collect()[0].samples] == [
        (x.name, x.labels, x.value) for x in many.collect()[0].samples
    ]
