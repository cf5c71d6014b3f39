"""The Redis Cluster backend against a real cluster (3 primaries, 3 replicas: the session's,
tests/support/cluster.py): slots, topology, routing, redirections, fan-out, scripts,
pub/sub, replica reads.  The protocol suites run on it too (the ``backend_url`` fixture);
the failover is in test_redis_cluster_failover.py."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import AsyncIterator

import pytest

from kvgate import error_texts
from kvgate.adapters import BackendURLError, check_url, open_backend
from kvgate.adapters.redis_cluster import RedisClusterBackend
from kvgate.adapters.redis_cluster_slots import key_slot
from kvgate.adapters.redis_cluster_topology import from_shards, from_slots, parse_cluster_url
from kvgate.errors import BackendUnavailable
from tests.support.api import Api, GatewayClient, make_config
from tests.support.cluster import RedisCluster, cluster_for

CROSSSLOT = error_texts.CROSSSLOT


@pytest.fixture
def cluster(request: pytest.FixtureRequest) -> RedisCluster:
    cluster = cluster_for(request.config)
    if not cluster.healthy():
        cluster.restore()
    cluster.flush()
    return cluster


@pytest.fixture
async def backend(cluster: RedisCluster) -> AsyncIterator[RedisClusterBackend]:
    b = open_backend(cluster.url())
    assert isinstance(b, RedisClusterBackend)
    await b.start()
    yield b
    await b.close()


@pytest.fixture
async def api(gateway_client: GatewayClient, cluster: RedisCluster) -> Api:
    return Api(await gateway_client(make_config(cluster.url())))


def keys_on_each_primary(cluster: RedisCluster, prefix: str = "k") -> dict[str, str]:
    """One key per primary: address -> key."""
    found: dict[str, str] = {}
    i = 0
    while len(found) < len(cluster.live_primaries()):
        key = f"{prefix}{i}"
        found.setdefault(cluster.primary_of_slot(key_slot(key.encode())).address, key)
        i += 1
    return found


# --- slots, URLs, topology ---------------------------------------------------------------


def test_key_slot_is_the_servers_own(cluster: RedisCluster) -> None:
    rng = random.Random(13)
    keys = [b"", b"a", b"foo", b"{user:1}:name", b"{user:1}:mail", b"{}x", b"x{}", b"{{a}}", b"a{b}c{d}"]
    keys += [b"{" + bytes([rng.randrange(256)]) + b"}"]
    keys += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) for _ in range(300)]
    node = cluster.live_primaries()[0]
    replies = node.commands([["CLUSTER", "KEYSLOT", k] for k in keys])
    assert [key_slot(k) for k in keys] == replies
    assert key_slot(b"{user:1}:name") == key_slot(b"{user:1}:mail") == key_slot(b"user:1")


def test_cluster_urls() -> None:
    options: dict[str, str | None] = {"replica_reads": "NO", "ssl_cert_reqs": "REQUIRED"}
    url = parse_cluster_url("redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002", options)
    assert url.seeds == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (url.username, url.password, url.tls) == ("u", "p@ss", False)
    assert parse_cluster_url("rediss+cluster://:secret@h:1/0", options).tls
    assert check_url("redis+cluster://127.0.0.1:7000?replica_reads=yes").name == "rediscluster"
    for bad, message in [
        ("redis+cluster://h:1/3", "a Redis Cluster has only database 0"),
        ("redis+cluster://h:notaport", "invalid port"),
        ("redis+cluster://", "names at least one node"),
        ("redis+cluster://h:1?replica_reads=maybe", "replica_reads must be NO or YES"),
        ("redis+cluster://h:1?db=2", "unknown rediscluster URL option(s): db"),
    ]:
        with pytest.raises(BackendURLError) as caught:
            check_url(bad)
        assert message in str(caught.value), (bad, caught.value)
    with pytest.raises(BackendURLError) as caught:
        check_url("redis+cluster://user:hunter2@h:notaport")
    assert "hunter2" not in str(caught.value)


def replicas_announced(cluster: RedisCluster) -> None:
    """Until a replica has a replication offset, CLUSTER SHARDS calls it loading and CLUSTER
    SLOTS leaves it out: write, then wait for the offsets to be gossiped."""
    for node in cluster.live_primaries():
        node.command("SET", "{announce}", "1")
        node.command("DEL", "{announce}")
    node = cluster.live_primaries()[0]
    asked = ("127.0.0.1", node.port)
    for _ in range(100):
        topology = from_slots(node.command("CLUSTER", "SLOTS"), asked)  # type: ignore[arg-type]
        if all(topology.replicas_of(p) for p in topology.primaries):
            return
        time.sleep(0.1)
    raise AssertionError("the replicas were not announced")


def test_shards_and_slots_read_the_same_topology(cluster: RedisCluster) -> None:
    replicas_announced(cluster)
    node = cluster.live_primaries()[0]
    asked = ("127.0.0.1", node.port)
    shards = from_shards(node.command("CLUSTER", "SHARDS"), asked)  # type: ignore[arg-type]
    slots = from_slots(node.command("CLUSTER", "SLOTS"), asked)  # type: ignore[arg-type]
    assert shards.slot_table() == slots.slot_table()
    assert shards.covered == 16384
    assert sorted(shards.primaries) == sorted(("127.0.0.1", n.port) for n in cluster.live_primaries())
    for primary in shards.primaries:
        assert shards.replicas_of(primary) == slots.replicas_of(primary)
        assert len(shards.replicas_of(primary)) == 1


async def test_start_holds_pool_size_connections_per_primary(backend: RedisClusterBackend) -> None:
    health = backend.health()
    assert health.ok, health.detail
    assert health.gauges["cluster_primaries"] == 3
    assert health.gauges["cluster_slots_served"] == 16384
    assert backend.connections_per_node() == dict.fromkeys(backend.connections_per_node(), 2)
    assert "from the cluster" in backend.commands.generated_from  # the server's COMMAND was read


async def test_a_cluster_that_is_not_there_answers_503_fast() -> None:
    from kvgate.adapters.redis_mux import CONNECT_TIMEOUT
    from tests.support.servers import free_port

    b = RedisClusterBackend(f"redis+cluster://127.0.0.1:{free_port()}", connect_timeout=0.5)
    await b.start()
    try:
        assert not b.health().ok
        with pytest.raises(BackendUnavailable):
            await asyncio.wait_for(b.execute([[b"GET", b"k"]]), CONNECT_TIMEOUT)
    finally:
        await b.close()


# --- routing -----------------------------------------------------------------------------


async def test_single_key_commands_land_on_their_slots_primary(api: Api, cluster: RedisCluster) -> None:
    for address, key in keys_on_each_primary(cluster).items():
        assert await api.result("SET", key, address) == "OK"
        assert cluster.node_at(address).command("GET", key) == address.encode()
        assert await api.result("GET", key) == address


async def test_keys_in_several_slots_answer_crossslot(api: Api, cluster: RedisCluster) -> None:
    a, b = "a", "b"
    assert key_slot(b"a") != key_slot(b"b")
    assert await api.cmd("MSET", a, "1", b, "2") == (400, {"error": CROSSSLOT})
    assert await api.cmd("MGET", a, b) == (400, {"error": CROSSSLOT})
    assert await api.cmd("RENAME", a, b) == (400, {"error": CROSSSLOT})
    assert await api.cmd("EVAL", "return 1", 2, a, b) == (400, {"error": CROSSSLOT})
    # nothing ran
    assert await api.result("EXISTS", a) == 0 and await api.result("EXISTS", b) == 0
    # hash tags put keys in one slot
    assert await api.result("MSET", "{u}a", "1", "{u}b", "2") == "OK"
    assert await api.result("MGET", "{u}a", "{u}b") == ["1", "2"]
    # in a pipeline, the error is in the command's slot and the others run
    status, body = await api.pipeline(["SET", "x", "1"], ["MGET", a, b], ["GET", "x"])
    assert (status, body) == (200, [{"result": "OK"}, {"error": CROSSSLOT}, {"result": "1"}])
    # a transaction's keys must share a slot: refused as a whole, nothing ran
    status, body = await api.multi(["SET", a, "1"], ["SET", b, "2"])
    assert (status, body) == (400, {"error": CROSSSLOT})
    assert await api.result("EXISTS", a) == 0
    status, body = await api.multi(["SET", "{t}a", "1"], ["INCR", "{t}b"], ["PING"])
    assert (status, body) == (200, [{"result": "OK"}, {"result": 1}, {"result": "PONG"}])


async def test_a_pipeline_is_split_by_node_and_answered_in_order(api: Api, cluster: RedisCluster) -> None:
    keys = [f"p{i}" for i in range(300)]
    assert len({cluster.primary_of_slot(key_slot(k.encode())).address for k in keys}) == 3
    commands = []
    for i, key in enumerate(keys):
        commands += [["SET", key, str(i)], ["INCR", key], ["GET", key]]
    status, body = await api.pipeline(*commands)
    assert status == 200
    expected = []
    for i in range(len(keys)):
        expected += [{"result": "OK"}, {"result": i + 1}, {"result": str(i + 1)}]
    assert body == expected
    # every primary holds its own keys
    sizes = [n.command("DBSIZE") for n in cluster.live_primaries()]
    assert sum(sizes) == 300 and all(sizes)  # type: ignore[arg-type]


async def test_keyless_commands_fan_out_over_the_primaries(api: Api, cluster: RedisCluster) -> None:
    keys = [f"f{i}" for i in range(100)]
    assert await api.pipeline(*(["SET", k, "v"] for k in keys)) == (200, [{"result": "OK"}] * 100)
    assert await api.result("DBSIZE") == 100
    assert sorted(await api.result("KEYS", "*")) == sorted(keys)
    assert sorted(await api.result("KEYS", "f1*")) == sorted(k for k in keys if k.startswith("f1"))
    assert await api.result("RANDOMKEY") in keys
    # SCAN visits every node: every key once
    seen: list[str] = []
    cursor = "0"
    for _ in range(1000):
        cursor, page = await api.result("SCAN", cursor, "COUNT", "7")
        seen += page
        if cursor == "0":
            break
    assert sorted(seen) == sorted(keys)
    assert await api.cmd("SCAN", "x") == (400, {"error": "ERR invalid cursor"})
    assert await api.result("PING") == "PONG"
    assert await api.result("ECHO", "hi") == "hi"
    assert len(await api.result("TIME")) == 2
    assert await api.result("FLUSHDB") == "OK"
    assert await api.result("DBSIZE") == 0
    assert await api.result("RANDOMKEY") is None
    assert all(n.command("DBSIZE") == 0 for n in cluster.live_primaries())
    # in a transaction (one node) they would see a third of the data: refused
    status, body = await api.multi(["SET", "k", "1"], ["DBSIZE"])
    assert (status, body) == (400, {"error": error_texts.cluster_not_in_transaction("dbsize")})


async def test_scripts_run_by_their_keys_and_evalsha_finds_them(api: Api, cluster: RedisCluster) -> None:
    script = "return redis.call('INCR', KEYS[1])"
    per_node = keys_on_each_primary(cluster, "s")
    sha = await api.result("SCRIPT", "LOAD", script)
    for key in per_node.values():  # SCRIPT LOAD reached every primary
        assert await api.result("EVALSHA", sha, 1, key) == 1
    assert await api.result("SCRIPT", "EXISTS", sha) == [1]
    # a primary that lost its cache: NOSCRIPT, then EVAL works, as clients fall back
    address, key = next(iter(per_node.items()))
    cluster.node_at(address).command("SCRIPT", "FLUSH")
    assert await api.result("SCRIPT", "EXISTS", sha) == [0]  # not on every primary
    status, body = await api.cmd("EVALSHA", sha, 1, key)
    assert status == 400 and body["error"].startswith("NOSCRIPT")
    assert await api.result("EVAL", script, 1, key) == 2
    assert await api.result("EVALSHA", sha, 1, key) == 3
    # a script with no keys, and the first EVAL of a script loads it everywhere
    other = "return ARGV[1]"
    assert await api.result("EVAL", other, 0, "x") == "x"
    assert await api.result("SCRIPT", "EXISTS", hashlib.sha1(other.encode()).hexdigest()) == [1]
    # a script touching a key of another slot than those declared: Redis's own error
    status, body = await api.cmd("EVAL", "return redis.call('GET', 'zz'..ARGV[1])", 1, "a", "1")
    assert status == 400
    assert "non local key" in body["error"] or "do not hash to the same slot" in body["error"], body


async def test_publish_reaches_subscribers_across_the_cluster(api: Api, cluster: RedisCluster) -> None:
    async with api.client.post("/subscribe/news", headers=api.headers()) as resp:
        assert resp.status == 200
        first = await resp.content.readuntil(b"\n\n")
        assert first == b"data: subscribe,news,1\n\n"
        assert await api.result("PUBLISH", "news", "one") == 1  # counted where kvgate listens
        assert await resp.content.readuntil(b"\n\n") == b"data: message,news,one\n\n"
        for node in cluster.live_primaries():  # a PUBLISH on any node reaches it
            node.command("PUBLISH", "news", node.address)
            assert await resp.content.readuntil(b"\n\n") == f"data: message,news,{node.address}\n\n".encode()
        assert await api.result("PUBSUB", "NUMSUB", "news") == ["news", 1]
        assert "news" in await api.result("PUBSUB", "CHANNELS")
    # sharded pub/sub: SPUBLISH goes to the channel's slot
    assert await api.result("SPUBLISH", "shard-news", "x") == 0


# --- redirections --------------------------------------------------------------------------


async def test_ask_during_a_slot_migration(api: Api, cluster: RedisCluster) -> None:
    key, other = "{mig}moved", "{mig}stays"
    slot = key_slot(key.encode())
    source = cluster.primary_of_slot(slot)
    target = next(n for n in cluster.live_primaries() if n is not source)
    assert await api.result("SET", key, "here") == "OK"
    assert await api.result("SET", other, "there") == "OK"
    cluster.begin_migration(slot, source, target)
    try:
        cluster.migrate_keys(source, target, [key])
        # a client that does not follow: ASK from the source, MOVED from the target
        assert str(source.command("GET", key)).startswith(f"ASK {slot} ")
        assert str(target.command("GET", key)).startswith(f"MOVED {slot} ")
        # the source answers ASK for the moved key: kvgate asks the target
        assert await api.result("GET", key) == "here"
        assert await api.result("GET", other) == "there"
        assert await api.result("APPEND", key, "!") == 5
        # a new key of the slot lands on the target (ASK), then is found there
        assert await api.result("SET", "{mig}new", "n") == "OK"
        assert await api.result("GET", "{mig}new") == "n"
        status, body = await api.pipeline(["GET", key], ["GET", other], ["GET", "{mig}new"])
        assert body == [{"result": "here!"}, {"result": "there"}, {"result": "n"}]
        # a transaction on the moved key: ASKING before MULTI
        status, body = await api.multi(["APPEND", key, "?"], ["GET", key])
        assert (status, body) == (200, [{"result": 6}, {"result": "here!?"}])
        # with a key that is on neither side: TRYAGAIN from EXEC, retried, then 503
        status, body = await api.multi(["INCR", "{mig}n"], ["GET", key])
        assert status == 503 and "TRYAGAIN" in body["error"], body
        # keys on both sides of the migration: TRYAGAIN, retried a few times, then 503
        status, body = await api.cmd("MGET", key, other)
        assert status == 503 and "TRYAGAIN" in body["error"]
        cluster.migrate_keys(source, target, [other])
    finally:
        cluster.finish_migration(slot, target)
    assert await api.result("MGET", key, other) == ["here!?", "there"]
    cluster.move_slot(slot, source)  # back where it was


async def test_moved_after_a_resharding_is_followed_and_learned(
    gateway_client: GatewayClient, cluster: RedisCluster
) -> None:
    client = await gateway_client(make_config(cluster.url()))
    api = Api(client)
    from tests.support.api import GATEWAYS

    backend = GATEWAYS[client].databases[0][1].backend
    assert isinstance(backend, RedisClusterBackend)
    key = "{reshard}k"
    slot = key_slot(key.encode())
    assert await api.result("SET", key, "v") == "OK"
    source = cluster.primary_of_slot(slot)
    target = next(n for n in cluster.live_primaries() if n is not source)
    refreshes = backend.refreshes
    cluster.move_slot(slot, target)
    try:
        assert backend._slots[slot] == ("127.0.0.1", source.port)  # kvgate does not know yet
        assert await api.result("GET", key) == "v"  # MOVED, followed
        assert backend._slots[slot] == ("127.0.0.1", target.port)  # learned from MOVED
        for _ in range(50):
            if backend.refreshes > refreshes:
                break
            await asyncio.sleep(0.05)
        assert backend.refreshes > refreshes  # and the topology read again
        assert await api.result("INCR", "{reshard}n") == 1
        assert target.command("GET", "{reshard}n") == b"1"
        status, body = await api.multi(["INCR", "{reshard}n"], ["GET", key])
        assert (status, body) == (200, [{"result": 2}, {"result": "v"}])
    finally:
        cluster.move_slot(slot, source)
    # moved back: a transaction meets MOVED on its queued commands and is sent again
    status, body = await api.multi(["INCR", "{reshard}n"], ["GET", key])
    assert (status, body) == (200, [{"result": 3}, {"result": "v"}])


# --- read scaling ------------------------------------------------------------------------


async def test_replica_reads_send_reads_to_replicas(cluster: RedisCluster) -> None:
    replicas_announced(cluster)
    b = open_backend(cluster.url(query="replica_reads=yes"))
    assert isinstance(b, RedisClusterBackend)
    await b.start()
    try:
        assert len(b.connections_per_node()) == 6  # primaries and replicas
        key = "rr"
        primary = cluster.primary_of_slot(key_slot(key.encode()))
        replica = cluster.replica_of(primary)
        assert await b.execute([[b"SET", key.encode(), b"v"]]) == [b"OK"]
        assert primary.command("WAIT", "1", "2000") == 1  # the replica has it
        before = _calls(replica, "get")
        assert await b.execute([[b"GET", key.encode()]] * 5) == [b"v"] * 5
        assert _calls(replica, "get") == before + 5
        # writes and transactions stay on the primary
        assert await b.execute([[b"INCR", b"rr2"]]) == [1]
        assert await b.transaction([[b"GET", key.encode()]]) == [b"v"]
    finally:
        await b.close()


def _calls(node: object, command: str) -> int:
    info = node.command("INFO", "commandstats")  # type: ignore[attr-defined]
    for line in info.decode().splitlines():
        if line.startswith(f"cmdstat_{command}:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


async def test_errors_pass_through_unchanged(api: Api) -> None:
    await api.result("SET", "s", "x")
    assert await api.cmd("INCR", "s") == (400, {"error": "ERR value is not an integer or out of range"})
    assert await api.cmd("LPUSH", "s", "x") == (400, {"error": error_texts.WRONGTYPE})


async def test_a_pipelines_replies_on_several_nodes_count_together(
    gateway_client: GatewayClient, cluster: RedisCluster
) -> None:
    limited = Api(await gateway_client(make_config(cluster.url(), max_reply_bytes=100_000)))
    first, second, third = keys_on_each_primary(cluster, "m").values()
    for key in (first, second):
        assert await limited.result("SET", key, "m" * 60_000) == "OK"  # fits alone, not twice
    status, body = await limited.pipeline(["GET", first], ["GET", second], ["SET", third, "s"])
    too_large = {"error": error_texts.reply_past_limit(100_000)}
    assert (status, body) == (200, [{"result": "m" * 60_000}, too_large, {"result": "OK"}])
