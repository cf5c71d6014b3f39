"""A primary of the cluster dies (SIGKILL) under a bounded load of INCRs; its replica is
promoted (cluster-node-timeout 1 s).  kvgate must follow without a restart: meanwhile
requests answer 503 (or 504 past ``timeout``), never a wrong reply, never hang; no
acknowledged INCR is lost; and the recovery time is measured and printed."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import pytest

from kvgate.adapters.redis_cluster import RedisClusterBackend
from kvgate.adapters.redis_cluster_slots import key_slot
from tests.support.api import GATEWAYS, Api, GatewayClient, make_config
from tests.support.cluster import RedisCluster, cluster_for

TIMEOUT = 3.0  # kvgate's backend timeout here: a request waits at most this long
WORKERS = 12
KILL_AFTER = 1.0  # seconds of load before the kill
AFTER_RECOVERY = 1.5  # seconds of load once every key answers again
LIMIT = 25.0  # the load stops by then whatever happens


@dataclass
class Counter:
    key: str
    on_victim: bool
    acked: list[int] = field(default_factory=list)
    unknown: int = 0  # 503/504: may or may not have run
    last_failure: float = 0.0
    first_success_after_kill: float | None = None


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> RedisCluster:
    cluster = cluster_for(request.config)
    if not cluster.healthy():
        cluster.restore()
    cluster.flush()
    return cluster


async def test_a_primary_dies_under_load_and_kvgate_follows_the_failover(
    gateway_client: GatewayClient, cluster: RedisCluster
) -> None:
    client = await gateway_client(make_config(cluster.url(), timeout=TIMEOUT))
    api = Api(client)
    backend = GATEWAYS[client].databases[0][1].backend
    assert isinstance(backend, RedisClusterBackend)
    per_node: dict[str, list[str]] = {}
    i = 0
    while sum(map(len, per_node.values())) < 6:  # two counters per primary
        key = f"c{i}"
        keys = per_node.setdefault(cluster.primary_of_slot(key_slot(key.encode())).address, [])
        if len(keys) < 2:
            keys.append(key)
        i += 1
    victim = cluster.node_at(next(iter(per_node)))
    counters = [Counter(k, address == victim.address) for address, ks in per_node.items() for k in ks]
    statuses: dict[int, int] = {}
    slowest = 0.0
    killed_at: float | None = None
    stop = False

    async def worker(counter: Counter) -> None:
        nonlocal slowest
        previous = 0
        while not stop:
            started = time.monotonic()
            status, body = await api.cmd("INCR", counter.key)
            now = time.monotonic()
            slowest = max(slowest, now - started)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                value = body["result"]
                assert isinstance(value, int) and value > previous, (counter.key, value, previous)
                previous = value
                counter.acked.append(value)
                if killed_at is not None and counter.first_success_after_kill is None and started > killed_at:
                    counter.first_success_after_kill = now
            else:
                assert status in (503, 504), (status, body)
                assert body["error"].startswith("ERR backend"), body
                counter.unknown += 1
                counter.last_failure = now
                await asyncio.sleep(0.02)  # as a client told Retry-After would, briefly

    tasks = [asyncio.create_task(worker(counters[w % len(counters)])) for w in range(WORKERS)]
    began = time.monotonic()
    try:
        await asyncio.sleep(KILL_AFTER)
        killed_at = time.monotonic()
        victim.kill()
        while time.monotonic() - began < LIMIT:
            await asyncio.sleep(0.1)
            done = [c.first_success_after_kill for c in counters]
            if all(done) and time.monotonic() - max(d for d in done if d) > AFTER_RECOVERY:
                break
    finally:
        stop = True
        await asyncio.gather(*tasks, return_exceptions=False)
    try:
        assert killed_at is not None
        on_victim = [c for c in counters if c.on_victim]
        recovered = [c.first_success_after_kill for c in on_victim]
        assert all(recovered), "the victim's keys never answered again"
        recovery = max(r for r in recovered if r) - killed_at
        others_failed = sum(c.unknown for c in counters if not c.on_victim)
        failures = sum(c.unknown for c in counters)
        acked = sum(len(c.acked) for c in counters)
        print(
            f"\nfailover: kvgate served the killed primary's keys again {recovery:.2f} s after the kill; "
            f"{acked} INCRs acknowledged, {failures} answered 503/504 ({others_failed} of them on the "
            f"other primaries' keys: CLUSTERDOWN while a slot has no primary), statuses {statuses}, "
            f"slowest request {slowest:.2f} s, topology read {backend.refreshes} times"
        )
        assert recovery < 15.0
        assert slowest < TIMEOUT + 2.0  # never a hang
        # every acknowledged INCR is there; nothing beyond what was asked
        for counter in counters:
            final = int(await api.result("GET", counter.key))
            assert len(set(counter.acked)) == len(counter.acked), counter.key  # never a value twice
            assert counter.acked == sorted(counter.acked) or len(counters) < WORKERS
            assert max(counter.acked) <= final, (counter.key, max(counter.acked), final)
            assert len(counter.acked) <= final <= len(counter.acked) + counter.unknown, (
                counter.key,
                len(counter.acked),
                counter.unknown,
                final,
            )
        health = backend.health()
        assert health.ok, health.detail
    finally:
        cluster.restore()  # the killed node comes back, as a replica
