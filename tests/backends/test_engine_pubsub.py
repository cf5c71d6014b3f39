"""Pub/sub on kvgate's engine: PUBLISH and PUBSUB against Redis 7.0, delivery only of
what commits, databases kept apart, and on SQLite, across kvgate processes sharing the
file (kvgate/adapters/sqlite_pubsub.py).  The SSE stream itself is tests/gateway/test_sse.py."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import redis

from kvgate.adapters import Message, engine_pubsub, sqlite_pubsub
from kvgate.adapters.sqlite_store import SqliteStore
from kvgate.config import Config, DatabaseConfig
from kvgate.engine.pubsub import Deliver, LocalHub
from kvgate.errors import BackendOverloaded
from tests.support.api import RW, Api, GatewayClient, make_config, read_event
from tests.support.engine import EngineClient, Oracle, assert_same
from tests.support.servers import DynamoDBLocal, KvgateServer, RedisServer

# --- the commands, no subscriber anywhere: Redis's replies and errors ----------------------


def test_publish_and_pubsub_without_subscribers_answer_as_redis(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["PUBLISH", "chat", "hello"],
            ["SPUBLISH", "chat", "hello"],
            ["PUBSUB", "CHANNELS"],
            ["PUBSUB", "CHANNELS", "c*"],
            ["PUBSUB", "CHANNELS", "a", "b"],
            ["PUBSUB", "channels", "a", "b"],
            ["PUBSUB", "NUMSUB"],
            ["PUBSUB", "NUMSUB", "chat", "news", "chat"],
            ["PUBSUB", "NUMPAT"],
            ["PUBSUB", "NUMPAT", "x"],
            ["PUBSUB", "SHARDCHANNELS"],
            ["PUBSUB", "SHARDCHANNELS", "a", "b"],
            ["PUBSUB", "SHARDNUMSUB", "chat"],
            ["PUBSUB", "HELP"],
            ["PUBSUB", "NOPE"],
            ["PUBLISH", "chat"],
            ["EVAL", "return redis.call('PUBLISH', 'chat', 'x')", "0"],
            ["EVAL_RO", "return redis.call('PUBLISH', 'chat', 'x')", "0"],
        ],
    )


# --- with subscribers, through the gateway, against Redis with the same subscribers --------

CHANNELS = {"s1": ["chat", "news"], "s2": ["chat"]}
PATTERNS = {"p1": ["user:*", "*"], "p2": ["user:*"]}
COMMANDS = [
    ["PUBLISH", "chat", "x"],
    ["PUBLISH", "user:1", "x"],
    ["PUBLISH", "news", "x"],
    ["PUBLISH", "nobody", "x"],
    ["PUBSUB", "NUMSUB", "chat", "news", "user:1", "nobody"],
    ["PUBSUB", "NUMPAT"],
    ["SPUBLISH", "chat", "x"],
]


@asynccontextmanager
async def streams(api: Api, kind: str, groups: dict[str, list[str]]) -> AsyncIterator[None]:
    """Open one ``/<kind>/...`` stream per group and read its confirmations."""
    async with AsyncExitStack() as stack:
        for names in groups.values():
            resp = await stack.enter_async_context(
                api.client.post(f"/{kind}/" + "/".join(names), headers=api.headers())
            )
            for i, name in enumerate(names, 1):
                assert await read_event(resp) == f"{kind},{name},{i}"
        yield


def as_json(reply: object) -> object:
    """A Redis reply as kvgate's JSON carries it (bulk strings as text)."""
    if isinstance(reply, bytes):
        return reply.decode()
    if isinstance(reply, list):
        return [as_json(r) for r in reply]
    return reply


@pytest.fixture
def redis_subscribers(redis_server: RedisServer) -> Iterator[None]:
    """The same subscriptions on the real Redis, one connection per group."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    opened = []
    for groups, pattern in ((CHANNELS, False), (PATTERNS, True)):
        for names in groups.values():
            pubsub = client.pubsub()
            (pubsub.psubscribe if pattern else pubsub.subscribe)(*names)
            for _ in names:  # every confirmation read: the subscriptions are in place
                assert pubsub.get_message(timeout=5) is not None
            opened.append(pubsub)
    yield
    for pubsub in opened:
        pubsub.close()
    client.close()


async def test_counts_and_introspection_with_subscribers_match_redis(
    gateway_client: GatewayClient, engine_backend_url: str, redis_server: RedisServer, redis_subscribers: None
) -> None:
    api = Api(await gateway_client(make_config(engine_backend_url)))
    async with streams(api, "subscribe", CHANNELS), streams(api, "psubscribe", PATTERNS):
        # the session's Redis as it is (not flushed: the subscribers are its state)
        expected = [as_json(redis_server.command(*c)) for c in COMMANDS]
        assert [await api.result(*c) for c in COMMANDS] == expected
        channels = sorted(await api.result("PUBSUB", "CHANNELS"))
        assert channels == sorted(as_json(redis_server.command("PUBSUB", "CHANNELS")))  # type: ignore[arg-type]
        assert await api.result("PUBSUB", "CHANNELS", "c*") == ["chat"]


# --- delivery: only what commits, in order, per database ------------------------------------


async def subscribed(api: Api, path: str) -> aiohttp.ClientResponse:
    resp = await api.client.post(path, headers=api.headers())
    assert resp.status == 200
    return resp


async def test_publish_in_multi_exec_and_scripts_is_delivered_once_committed(
    gateway_client: GatewayClient, engine_backend_url: str
) -> None:
    api = Api(await gateway_client(make_config(engine_backend_url)))
    async with await subscribed(api, "/subscribe/c") as resp:
        assert await read_event(resp) == "subscribe,c,1"
        assert await api.multi(["SET", "k", "v"], ["PUBLISH", "c", "in-multi"]) == (
            200,
            [{"result": "OK"}, {"result": 1}],
        )
        assert await read_event(resp) == "message,c,in-multi"
        # discarded as a whole (a queue-time error): nothing is published
        status, _ = await api.multi(["PUBLISH", "c", "discarded"], ["GET"])
        assert status != 200
        # a script's PUBLISH before its error stays sent, as on Redis (no rollback)
        status, body = await api.cmd("EVAL", "redis.call('PUBLISH', 'c', 'scripted'); error('late')", "0")
        assert status == 400 and "late" in body["error"]
        assert await read_event(resp) == "message,c,scripted"
        assert await api.result("EVAL", "return redis.call('PUBLISH', KEYS[1], ARGV[1])", "1", "c", "s2") == 1
        assert await read_event(resp) == "message,c,s2"


async def test_messages_arrive_in_publish_order(
    gateway_client: GatewayClient, engine_backend_url: str
) -> None:
    api = Api(await gateway_client(make_config(engine_backend_url)))
    async with await subscribed(api, "/psubscribe/o*") as resp:
        assert await read_event(resp) == "psubscribe,o*,1"
        status, replies = await api.pipeline(*[["PUBLISH", f"o{i % 3}", str(i)] for i in range(200)])
        assert status == 200 and replies == [{"result": 1}] * 200
        for i in range(200):
            assert await read_event(resp) == f"pmessage,o*,o{i % 3},{i}"


@pytest.fixture
def other_url(request: pytest.FixtureRequest, engine_backend_url: str, tmp_path: Path) -> str:
    """A second database of the same backend: another file, another table."""
    if engine_backend_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path}/other.db"
    return str(request.getfixturevalue("dynamodb_local").new_table())


async def test_a_subscriber_of_one_database_hears_nothing_of_another(
    gateway_client: GatewayClient, engine_backend_url: str, other_url: str
) -> None:
    client = await gateway_client(
        Config(
            databases=(
                DatabaseConfig(name="a", path="/a", backend=engine_backend_url, tokens=(RW,)),
                DatabaseConfig(name="b", path="/b", backend=other_url, tokens=(RW,)),
            )
        )
    )
    a, b = Api(client, prefix="/a"), Api(client, prefix="/b")
    async with await subscribed(a, "/a/subscribe/c") as resp:
        assert await read_event(resp) == "subscribe,c,1"
        assert await b.result("PUBLISH", "c", "from-b") == 0
        assert await b.result("PUBSUB", "NUMSUB", "c") == ["c", 0]
        assert await a.result("PUBLISH", "c", "from-a") == 1
        assert await read_event(resp) == "message,c,from-a"  # the first and only message


async def test_a_closed_stream_stops_counting(gateway_client: GatewayClient, engine_backend_url: str) -> None:
    api = Api(await gateway_client(make_config(engine_backend_url)))
    async with await subscribed(api, "/subscribe/c") as resp:
        assert await read_event(resp) == "subscribe,c,1"
        assert await api.result("PUBSUB", "NUMSUB", "c") == ["c", 1]
    for _ in range(100):  # the gateway notices the client left within its poll (1 s)
        if await api.result("PUBSUB", "NUMSUB", "c") == ["c", 0]:
            break
        await asyncio.sleep(0.05)
    assert await api.result("PUBSUB", "NUMSUB", "c") == ["c", 0]
    assert await api.result("PUBLISH", "c", "x") == 0


# --- SQLite: several kvgate processes on one file --------------------------------------------


def serve(db: Path) -> KvgateServer:
    return KvgateServer("--backend", f"sqlite:///{db}", "--token", RW).start()


async def call(session: aiohttp.ClientSession, server: KvgateServer, *args: str) -> object:
    async with session.post(server.url, json=list(args), headers={"Authorization": f"Bearer {RW}"}) as r:
        body = json.loads(await r.read())
        assert r.status == 200, body
        return body["result"]


async def test_two_processes_on_one_sqlite_file_share_their_subscribers(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    first, second = serve(db), serve(db)
    try:
        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {RW}"}
            async with (
                session.post(first.url + "/subscribe/chat", headers=headers) as chat,
                session.post(first.url + "/psubscribe/ch*", headers=headers) as pattern,
            ):
                assert await read_event(chat) == "subscribe,chat,1"
                assert await read_event(pattern) == "psubscribe,ch*,1"
                # published on the other process: both subscriptions receive it, and count
                assert await call(session, second, "PUBLISH", "chat", "across") == 2
                assert await read_event(chat) == "message,chat,across"
                assert await read_event(pattern) == "pmessage,ch*,chat,across"
                assert await call(session, second, "PUBSUB", "NUMSUB", "chat") == ["chat", 1]
                assert await call(session, second, "PUBSUB", "NUMPAT") == 1
                assert await call(session, second, "PUBSUB", "CHANNELS") == ["chat"]
                assert await call(session, first, "PUBLISH", "chat", "local") == 2
                assert await read_event(chat) == "message,chat,local"
                # the subscribers' process dies without a word: its subscriptions stop counting
                assert first.proc is not None
                os.killpg(first.proc.pid, signal.SIGKILL)
                first.proc.wait()
                assert await call(session, second, "PUBLISH", "chat", "to-nobody") == 0
                assert await call(session, second, "PUBSUB", "NUMSUB", "chat") == ["chat", 0]
                assert await call(session, second, "PUBSUB", "NUMPAT") == 0
    finally:
        first.close()
        second.close()
    with sqlite3.connect(db) as conn:  # the dead listener's rows went with that PUBLISH
        assert conn.execute("SELECT count(*) FROM pubsub_subs").fetchone() == (0,)


def test_messages_past_the_retention_are_trimmed(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "trim.db"))
    now = 1_000_000_000
    with store.unit(True) as t:
        for at in (now - sqlite_pubsub.RETAIN_MS - 5, now - sqlite_pubsub.RETAIN_MS + 5, now):
            t.conn.execute(
                "INSERT INTO pubsub_messages (channel, payload, at) VALUES (?, ?, ?)", (b"c", b"m", at)
            )
        sqlite_pubsub.trim(t.conn, now)
        assert [r[0] for r in t.conn.execute("SELECT id FROM pubsub_messages")] == [2, 3]
        sqlite_pubsub.trim(t.conn, now + sqlite_pubsub.RETAIN_MS + 1)
        assert t.conn.execute("SELECT count(*) FROM pubsub_messages").fetchone() == (0,)
    store.close()


async def test_a_subscriber_too_far_behind_is_disconnected(monkeypatch: pytest.MonkeyPatch) -> None:
    """As Redis closes a client past its pub/sub output buffer limit: the backlog of one
    stalled stream never grows without bound."""
    monkeypatch.setattr(engine_pubsub, "MAX_QUEUED", 3)
    hub = LocalHub()

    async def join(deliver: Deliver, names: list[bytes], pattern: bool) -> None:
        hub.add(deliver, names, pattern)

    async def leave(deliver: Deliver) -> None:
        hub.discard(deliver)

    subscription = engine_pubsub.EngineSubscription(join, leave)
    await subscription.subscribe(b"c")
    assert await subscription.next_message(1) == Message(b"subscribe", b"c", 1)
    for n in range(3):
        assert hub.deliver(b"c", b"%d" % n) == 1
    assert await subscription.next_message(1) == Message(b"message", b"c", b"0")
    hub.deliver(b"c", b"3")  # 3 waiting: the limit
    hub.deliver(b"c", b"4")
    with pytest.raises(BackendOverloaded, match="fell too far behind"):
        await subscription.next_message(1)
    await subscription.close()
    assert hub.subscriptions().channels == {}


def test_sqlite_delivers_nothing_from_a_unit_that_rolls_back(tmp_path: Path) -> None:
    """PUBLISH's message is a row of the unit: a unit that fails leaves none, and wakes no one."""
    store = SqliteStore(str(tmp_path / "rollback.db"))
    directory = sqlite_pubsub.lock_dir(str(tmp_path / "rollback.db"))
    os.makedirs(directory)
    lock = os.open(os.path.join(directory, "listener.lock"), os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)  # a live listener (this process), subscribed to c
    with store.unit(True) as t:
        t.conn.execute("INSERT INTO pubsub_listeners (token, address) VALUES ('listener', NULL)")
        t.conn.execute(
            "INSERT INTO pubsub_subs (pattern, name, listener, n) VALUES (0, x'63', 'listener', 1)"
        )
    with pytest.raises(RuntimeError), store.unit(True) as t:
        assert t.publish(b"c", b"lost") == 1
        raise RuntimeError("the unit fails after its PUBLISH")
    with store.unit(True) as t:
        assert t.publish(b"c", b"kept") == 1
    with store.unit(False) as t:
        assert t.conn.execute("SELECT payload FROM pubsub_messages").fetchall() == [(b"kept",)]
    os.close(lock)
    store.close()


@pytest.fixture
def dynamodb_url(dynamodb_local: DynamoDBLocal) -> str:
    return dynamodb_local.clean_table()


async def test_dynamodb_delivers_nothing_from_a_refused_transaction(
    gateway_client: GatewayClient, dynamodb_url: str
) -> None:
    """A unit DynamoDB refuses (past its 400 KB item limit) publishes nothing."""
    api = Api(await gateway_client(make_config(dynamodb_url)))
    async with await subscribed(api, "/subscribe/c") as resp:
        assert await read_event(resp) == "subscribe,c,1"
        status, body = await api.multi(["PUBLISH", "c", "refused"], ["SET", "big", "x" * 500_000])
        assert status == 400 and "not applied" in body["error"], body
        assert await api.multi(["PUBLISH", "c", "applied"]) == (200, [{"result": 1}])
        assert await read_event(resp) == "message,c,applied"  # and never "refused"
