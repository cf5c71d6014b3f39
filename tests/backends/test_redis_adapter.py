"""The multiplexed Redis adapter against a real redis-server: ordering, cancellation,
timeouts, outages and reconnection, authentication and database selection."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest

from kvgate.adapters import default_settings
from kvgate.adapters.redis_mux import CONNECT_TIMEOUT, RedisBackend
from kvgate.errors import BackendTimeout, BackendUnavailable, ReplyError
from tests.support.servers import SLOW, RedisServer


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server this test may stop and restart."""
    server = RedisServer().start()
    yield server
    server.close()


@contextlib.asynccontextmanager
async def backend(
    url: str, connections: int | None = None, connect_timeout: float = CONNECT_TIMEOUT, **settings: float
) -> AsyncIterator[RedisBackend]:
    b = RedisBackend(
        url,
        replace(default_settings(), pool_size=connections, **settings),  # type: ignore[arg-type]
        connect_timeout=connect_timeout,
    )
    await b.start()
    try:
        yield b
    finally:
        await b.close()


async def one(b: RedisBackend, *args: str) -> object:
    (reply,) = await b.execute([[a.encode() for a in args]])
    return reply


async def test_replies_match_requests_under_concurrency(redis_server: RedisServer) -> None:
    async with backend(redis_server.url, connections=3) as b:

        async def worker(i: int) -> None:
            for j in range(20):
                key, value = f"mux:{i}:{j}", f"value-{i}-{j}"
                assert await one(b, "SET", key, value) == b"OK"
                assert await one(b, "GET", key) == value.encode()

        await asyncio.gather(*(worker(i) for i in range(50)))
        replies = await b.execute([[b"INCR", b"mux:n"] for _ in range(500)])
        assert replies == list(range(1, 501))


async def test_large_values_round_trip(redis_server: RedisServer) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB, every byte value
    async with backend(redis_server.url, connections=1) as b:
        small = asyncio.gather(*(one(b, "PING") for _ in range(100)))
        assert await b.execute([[b"SET", b"big", big], [b"GET", b"big"]]) == [b"OK", big]
        assert await small == [b"PONG"] * 100


async def test_cancelled_request_never_hands_its_reply_to_the_next(redis_server: RedisServer) -> None:
    async with backend(redis_server.url, connections=1) as b:
        slow = asyncio.create_task(one(b, "EVAL", SLOW, "0", "300", "slow-reply"))
        await asyncio.sleep(0.05)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        await one(b, "SET", "after", "mine")
        assert await one(b, "GET", "after") == b"mine"


async def test_timeout_answers_504_and_connection_stays_in_sync(redis_server: RedisServer) -> None:
    async with backend(redis_server.url, connections=1, timeout=0.2) as b:
        started = time.monotonic()
        with pytest.raises(BackendTimeout, match=r"did not answer within 0\.2s"):
            await one(b, "EVAL", SLOW, "0", "350", "late")
        assert time.monotonic() - started < 0.34  # answered before Redis finished
        # the late reply is consumed, not handed to the next request
        assert await one(b, "ECHO", "next") == b"next"


async def test_errors_are_values_with_their_prefix(redis_server: RedisServer) -> None:
    async with backend(redis_server.url) as b:
        replies = await b.execute([[b"SET", b"e", b"x"], [b"LPUSH", b"e", b"y"], [b"GET", b"e"]])
        assert replies[0] == b"OK" and replies[2] == b"x"
        assert isinstance(replies[1], ReplyError)
        assert str(replies[1]) == "WRONGTYPE Operation against a key holding the wrong kind of value"


async def test_transaction_block_and_execabort(redis_server: RedisServer) -> None:
    async with backend(redis_server.url, connections=1) as b:
        concurrent = asyncio.gather(*(one(b, "PING") for _ in range(50)))
        result = await b.transaction([[b"SET", b"t", b"1"], [b"INCR", b"t"], [b"LPUSH", b"t", b"x"]])
        assert result[:2] == [b"OK", 2] and isinstance(result[2], ReplyError)
        with pytest.raises(ReplyError, match="EXECABORT"):
            await b.transaction([[b"SET", b"t", b"9"], [b"GET"]])
        assert await one(b, "GET", "t") == b"2"
        assert await concurrent == [b"PONG"] * 50


async def test_outage_answers_unavailable_then_recovers(own_redis: RedisServer) -> None:
    async with backend(own_redis.url, connections=2, timeout=2) as b:
        assert await one(b, "SET", "k", "before") == b"OK"
        own_redis.stop()
        with pytest.raises(BackendUnavailable):
            for _ in range(50):  # the first request may still meet the closing connection
                await one(b, "PING")
                await asyncio.sleep(0.02)
        health = b.health()
        assert not health.ok and health.gauges["connections_open"] == 0
        own_redis.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                assert await one(b, "PING") == b"PONG"
                break
            except BackendUnavailable:
                assert time.monotonic() < deadline, "did not reconnect within 10 s"
                await asyncio.sleep(0.05)
        assert b.health().ok


async def test_in_flight_request_fails_cleanly_when_redis_dies(own_redis: RedisServer) -> None:
    async with backend(own_redis.url, connections=1, timeout=5) as b:
        slow = asyncio.create_task(one(b, "EVAL", SLOW, "0", "2000", "never"))
        await asyncio.sleep(0.1)
        assert own_redis.proc is not None
        own_redis.proc.kill()
        with pytest.raises(BackendUnavailable, match="may or may not have been applied"):
            await slow
        own_redis.proc.wait()
        own_redis.proc = None


async def test_password_and_database_number_from_the_url() -> None:
    server = RedisServer(password="s3cret/pw").start()
    try:
        url = f"redis://:{'s3cret%2Fpw'}@127.0.0.1:{server.port}/3"
        async with backend(url) as b:
            assert await one(b, "SET", "where", "db3") == b"OK"
        assert server.commands([["SELECT", "3"], ["GET", "where"]]) == [b"OK", b"db3"]
        assert server.command("GET", "where") is None  # not in db 0

        wrong = f"redis://:nope@127.0.0.1:{server.port}/0"
        async with backend(wrong, connect_timeout=1) as b:
            with pytest.raises(BackendUnavailable, match=r"WRONGPASS|invalid"):
                await one(b, "PING")
            assert not b.health().ok
    finally:
        server.close()
