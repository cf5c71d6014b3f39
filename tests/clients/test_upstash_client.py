"""End to end with the official clients: ``upstash-redis`` (Python, sync and async) and
``@upstash/redis`` (JavaScript, through ``tests/clients/js/e2e.mjs``) against a live ``kvgate serve``
subprocess, on a real Redis and on fakeredis.

The clients are used the way applications use them (default ``Upstash-Encoding: base64``,
read-your-writes on); every assertion is on the value the client hands back, after its own
decoding and formatting.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from upstash_redis import Redis
from upstash_redis.asyncio import Redis as AsyncRedis
from upstash_redis.errors import UpstashError

from tests.support.cluster import cluster_for
from tests.support.servers import KvgateServer, RedisServer

RW = "e2e-rw-token"
RO = "e2e-ro-token"
BACKENDS = ("redis", "rediscluster", "fakeredis", "sqlite", "dynamodb")
JS_DIR = Path(__file__).parent / "js"

# The first line @upstash/ratelimit 2.2+ puts on its scripts; stock Redis rejects the flag.
LOCKING = "#!lua flags=allow-key-locking\n"

UNICODE = "héllo ✓ — ünïcødé 🚀"
AWKWARD = [
    UNICODE,
    "with spaces and\nnewlines\r\nand\ttabs",
    "slashes/and\\backslashes/../%2F?x=1&y=2#frag",
    '{"json": ["looking", 1, null]}',
    "",
    "OK",
    "PONG",
    "abcd",  # valid base64 on its own: would decode to garbage if kvgate forgot to encode it
    "=?!*[]",
]


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


@pytest.fixture(scope="module", params=BACKENDS)
def gate(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KvgateServer]:
    """One kvgate process per backend for the whole module."""
    if request.param == "redis":
        redis_server: RedisServer = request.getfixturevalue("redis_server")
        backend = redis_server.url
    elif request.param == "rediscluster":
        cluster = cluster_for(request.config)
        cluster.flush()
        backend = cluster.url()
    elif request.param == "dynamodb":
        backend = request.getfixturevalue("dynamodb_local").new_table()
    elif request.param == "sqlite":
        backend = f"sqlite:///{tmp_path_factory.mktemp('upstash')}/kvgate.db"
    else:
        backend = "fakeredis://"
    server = KvgateServer("--backend", backend, "--token", RW, "--read-only-token", RO).start()
    yield server
    server.close()


#: Tests whose commands or transactions name keys in several hash slots: a Redis Cluster
#: answers them CROSSSLOT, as it should (tests/backends/test_redis_cluster.py checks that);
#: the rest of this module runs on the cluster unchanged.
CROSSSLOT_ON_A_CLUSTER = {
    "test_non_string_arguments_keep_their_text": "MSET/MGET of keys in several slots",
    "test_mget_mset": "MSET/MGET of keys in several slots",
    "test_lists": "LMOVE/RPOPLPUSH between keys in different slots",
    "test_sets": "SINTER/SUNION/SMOVE over keys in different slots",
    "test_sorted_sets": "ZUNIONSTORE/ZINTER over keys in different slots",
    "test_keys_commands": "RENAME/COPY/DEL/EXISTS of keys in different slots",
    "test_scan_with_match_and_type": "MSET of keys in several slots",
    "test_unicode_and_awkward_keys_and_values": "MSET/MGET of keys in several slots",
    "test_multi_exec": "a transaction over keys in different slots",
    "test_multi_exec_runtime_error_does_not_roll_back": "a transaction over keys in different slots",
    "test_async_client_concurrent_requests": "MGET of keys in several slots",
    "test_js_client_end_to_end": "the script's MSET/MGET, set and list commands span slots",
}


@pytest.fixture(autouse=True)
def _not_across_slots(request: pytest.FixtureRequest) -> None:
    if "gate" in request.fixturenames and request.node.callspec.params.get("gate") == "rediscluster":
        why = CROSSSLOT_ON_A_CLUSTER.get(request.node.originalname)
        if why:
            pytest.skip(f"on a Redis Cluster: {why}")


def on_fakeredis(gate: KvgateServer) -> bool:
    return "fakeredis://" in gate.args


def client(gate: KvgateServer, token: str = RW, **options: object) -> Redis:
    # No retries: the client retries on *any* exception (a non-JSON body included), which
    # would hide a bad reply behind a 3 s sleep and a second attempt.
    return Redis(gate.url, token, rest_retries=0, **options)  # type: ignore[arg-type]


@pytest.fixture
def redis(gate: KvgateServer) -> Iterator[Redis]:
    with client(gate) as r:
        assert r.flushdb() is True
        yield r


@pytest.fixture
async def aredis(gate: KvgateServer) -> AsyncIterator[AsyncRedis]:
    async with AsyncRedis(gate.url, RW, rest_retries=0) as r:
        assert await r.flushdb() is True
        yield r


# --- connection -------------------------------------------------------------------------


def test_ping_echo_and_sync_token(redis: Redis) -> None:
    assert redis.ping() == "PONG"
    assert redis.ping("hi there") == "hi there"
    assert redis.echo(UNICODE) == UNICODE
    first = redis._sync_token
    assert first
    redis.get("nothing")
    assert redis._sync_token
    assert redis._sync_token != first


# --- strings ----------------------------------------------------------------------------


def test_set_options_and_get(redis: Redis) -> None:
    assert redis.get("s") is None
    assert redis.set("s", "v1") is True
    assert redis.get("s") == "v1"
    assert redis.set("s", "v2", nx=True) is False
    assert redis.get("s") == "v1"
    assert redis.set("fresh", "f", nx=True) is True
    assert redis.set("nope", "x", xx=True) is False
    assert redis.exists("nope") == 0
    assert redis.set("s", "v3", get=True) == "v1"
    assert redis.set("missing", "m", get=True) is None
    assert redis.get("missing") == "m"
    assert redis.set("e", "x", ex=100) is True
    assert 95 <= redis.ttl("e") <= 100
    assert redis.set("p", "x", px=100_000) is True
    assert 95_000 <= redis.pttl("p") <= 100_000
    assert redis.set("e", "y", keepttl=True) is True
    assert 95 <= redis.ttl("e") <= 100
    assert redis.set("e", "z") is True
    assert redis.ttl("e") == -1


def test_non_string_arguments_keep_their_text(redis: Redis) -> None:
    # The client sends ints and floats as JSON numbers; kvgate must keep their literal text.
    redis.set("int", 42)
    redis.set("float", 1.5)
    redis.set("tricky-float", 0.1 + 0.2)
    redis.set("big", 2**64 + 1)
    redis.set("neg", -7)
    assert redis.mget("int", "float", "tricky-float", "big", "neg") == [
        "42",
        "1.5",
        "0.30000000000000004",
        "18446744073709551617",
        "-7",
    ]


def test_mget_mset(redis: Redis) -> None:
    assert redis.mset({"a": "1", "b": "two", "c": UNICODE}) is True
    assert redis.mget("a", "nope", "b", "c") == ["1", None, "two", UNICODE]
    assert redis.msetnx({"a": "x", "new": "y"}) is False
    assert redis.get("new") is None


def test_counters(gate: KvgateServer, redis: Redis) -> None:
    assert redis.incr("n") == 1
    assert redis.incrby("n", 41) == 42
    assert redis.decr("n") == 41
    assert redis.decrby("n", 1) == 40
    assert redis.incrby("n", -50) == -10
    # beyond 2**53: the JSON number must not go through a double on the way in or out
    assert redis.incrby("big", 2**53 + 1) == 2**53 + 1
    assert redis.incrby("big", 2**53 + 1) == 2**54 + 2
    assert redis.get("big") == str(2**54 + 2)
    assert redis.incrbyfloat("f", 10.5) == 10.5
    assert redis.incrbyfloat("f", 0.1) == pytest.approx(10.6)
    if on_fakeredis(gate):
        # documented divergence (README): fakeredis adds in double precision, Redis in long
        # double, so the stored text is 10.59999999999999964 instead of 10.6
        assert float(redis.get("f")) == pytest.approx(10.6)
    else:
        assert redis.get("f") == "10.6"
    assert redis.incrbyfloat("f", -0.6) == 10.0
    assert redis.get("f") == "10"
    redis.set("word", "abc")
    with pytest.raises(UpstashError, match=r"^ERR value is not an integer or out of range"):
        redis.incr("word")


def test_append_strlen_ranges_getdel(redis: Redis) -> None:
    assert redis.append("s", "Hello") == 5
    assert redis.append("s", " World") == 11
    assert redis.strlen("s") == 11
    assert redis.strlen("missing") == 0
    assert redis.getrange("s", 0, 4) == "Hello"
    assert redis.getrange("s", -5, -1) == "World"
    assert redis.getrange("s", 100, 200) == ""
    assert redis.setrange("s", 6, "Redis") == 11
    assert redis.get("s") == "Hello Redis"
    assert redis.setrange("pad", 3, "x") == 4
    assert redis.get("pad") == "\x00\x00\x00x"
    assert redis.getdel("s") == "Hello Redis"
    assert redis.getdel("s") is None
    assert redis.exists("s") == 0
    u = "ü✓"
    redis.set("u", u)
    assert redis.strlen("u") == len(u.encode())


def test_expire_ttl_persist(redis: Redis) -> None:
    assert redis.ttl("missing") == -2
    redis.set("k", "v")
    assert redis.ttl("k") == -1
    assert redis.expire("k", 100) is True
    assert 95 <= redis.ttl("k") <= 100
    assert redis.expire("k", 50, gt=True) is False
    assert redis.expire("k", 50, lt=True) is True
    assert 45 <= redis.ttl("k") <= 50
    assert redis.persist("k") is True
    assert redis.persist("k") is False
    assert redis.ttl("k") == -1
    assert redis.expire("missing", 10) is False
    assert redis.pexpire("k", 1) is True
    time.sleep(0.01)
    assert redis.get("k") is None
    assert redis.ttl("k") == -2


# --- hashes -----------------------------------------------------------------------------


def test_hashes(gate: KvgateServer, redis: Redis) -> None:
    fields = {"name": "Ada", "lang": UNICODE, "n": 5, "empty": ""}
    assert redis.hset("h", values=fields) == 4
    assert redis.hset("h", "name", "Grace") == 0
    assert redis.hget("h", "name") == "Grace"
    assert redis.hget("h", "nope") is None
    assert redis.hget("nope", "nope") is None
    assert redis.hgetall("h") == {"name": "Grace", "lang": UNICODE, "n": "5", "empty": ""}
    assert redis.hgetall("missing") == {}
    assert redis.hmget("h", "lang", "nope", "n") == [UNICODE, None, "5"]
    assert redis.hincrby("h", "n", 10) == 15
    assert redis.hincrby("h", "n", -20) == -5
    assert redis.hincrbyfloat("h", "fl", 1.25) == 1.25
    assert redis.hincrbyfloat("h", "fl", 0.1) == pytest.approx(1.35)
    if on_fakeredis(gate):
        # same double-precision divergence as INCRBYFLOAT: 1.35000000000000009
        assert float(redis.hget("h", "fl")) == pytest.approx(1.35)
        redis.hset("h", "fl", "1.35")
    else:
        assert redis.hget("h", "fl") == "1.35"
    assert redis.hexists("h", "name") is True
    assert redis.hexists("h", "nope") is False
    assert sorted(redis.hkeys("h")) == ["empty", "fl", "lang", "n", "name"]
    assert sorted(redis.hvals("h")) == sorted(["Grace", UNICODE, "-5", "", "1.35"])
    assert redis.hlen("h") == 5
    assert redis.hdel("h", "empty", "fl", "nope") == 2
    assert redis.hlen("h") == 3
    assert redis.hsetnx("h", "name", "x") is False
    assert redis.hsetnx("h", "new", "x") is True
    assert redis.hstrlen("h", "lang") == len(UNICODE.encode())
    with pytest.raises(UpstashError, match=r"^ERR hash value is not an integer"):
        redis.hincrby("h", "name", 1)


def test_hscan(redis: Redis) -> None:
    # more fields than hash-max-listpack-entries (512 on Debian): a listpack hash would come
    # back in a single page whatever COUNT says
    redis.hset("big", values={f"f{i}": f"v{i}" for i in range(700)})
    redis.hset("big", values={"other": "o"})
    seen: dict[str, str] = {}
    cursor = 0
    rounds = 0
    while True:
        cursor, page = redis.hscan("big", cursor, match="f*", count=50)
        assert isinstance(cursor, int)
        seen.update(page)
        rounds += 1
        if cursor == 0:
            break
    assert seen == {f"f{i}": f"v{i}" for i in range(700)}
    assert rounds > 1
    assert redis.hscan("small-missing", 0) == (0, {})


# --- lists ------------------------------------------------------------------------------


def test_lists(redis: Redis) -> None:
    assert redis.rpush("l", "a", "b", "c") == 3
    assert redis.lpush("l", "z", "y") == 5
    assert redis.lrange("l", 0, -1) == ["y", "z", "a", "b", "c"]
    assert redis.llen("l") == 5
    assert redis.lindex("l", 0) == "y"
    assert redis.lindex("l", -1) == "c"
    assert redis.lindex("l", 99) is None
    assert redis.lset("l", 1, UNICODE) is True
    with pytest.raises(UpstashError, match=r"^ERR index out of range"):
        redis.lset("l", 99, "x")
    assert redis.lpop("l") == "y"
    assert redis.rpop("l") == "c"
    assert redis.lrange("l", 0, -1) == [UNICODE, "a", "b"]
    assert redis.lpop("l", 2) == [UNICODE, "a"]
    assert redis.rpop("l", 5) == ["b"]
    assert redis.lpop("l") is None
    assert redis.lpop("l", 2) is None
    assert redis.llen("l") == 0

    redis.rpush("r", "x", "a", "x", "b", "x", "c")
    assert redis.lrem("r", 2, "x") == 2
    assert redis.lrange("r", 0, -1) == ["a", "b", "x", "c"]
    assert redis.linsert("r", "BEFORE", "b", "before-b") == 5
    assert redis.linsert("r", "AFTER", "c", "after-c") == 6
    assert redis.linsert("r", "AFTER", "nope", "x") == -1
    assert redis.lrange("r", 0, -1) == ["a", "before-b", "b", "x", "c", "after-c"]
    assert redis.ltrim("r", 1, -2) == "OK"  # the client has no formatter for LTRIM
    assert redis.lrange("r", 0, -1) == ["before-b", "b", "x", "c"]

    redis.rpush("p", "a", "b", "c", "b", "b")
    assert redis.lpos("p", "b") == 1
    assert redis.lpos("p", "b", rank=2) == 3
    assert redis.lpos("p", "b", rank=-1) == 4
    assert redis.lpos("p", "b", count=0) == [1, 3, 4]
    assert redis.lpos("p", "b", count=2) == [1, 3]
    assert redis.lpos("p", "nope") is None

    redis.rpush("src", "one", "two", "three")
    redis.rpush("dst", "four")
    assert redis.lmove("src", "dst", "RIGHT", "LEFT") == "three"
    assert redis.lmove("src", "dst") == "one"
    assert redis.lrange("src", 0, -1) == ["two"]
    assert redis.lrange("dst", 0, -1) == ["three", "four", "one"]
    assert redis.lmove("empty", "dst") is None


# --- sets -------------------------------------------------------------------------------


def test_sets(redis: Redis) -> None:
    assert redis.sadd("s1", "a", "b", "c", UNICODE) == 4
    assert redis.sadd("s1", "a") == 0
    assert sorted(redis.smembers("s1")) == sorted(["a", "b", "c", UNICODE])
    assert redis.smembers("missing") == []
    assert redis.sismember("s1", UNICODE) is True
    assert redis.sismember("s1", "zzz") is False
    assert redis.smismember("s1", "a", "zzz", "c") == [True, False, True]
    assert redis.srem("s1", UNICODE, "zzz") == 1
    assert redis.scard("s1") == 3
    redis.sadd("s2", "b", "c", "d")
    redis.sadd("s3", "c", "e")
    assert redis.sinter("s1", "s2", "s3") == ["c"]
    assert sorted(redis.sunion("s1", "s2", "s3")) == ["a", "b", "c", "d", "e"]
    assert sorted(redis.sdiff("s1", "s2")) == ["a"]
    assert redis.sinterstore("dest", "s1", "s2") == 2
    assert sorted(redis.smembers("dest")) == ["b", "c"]
    assert redis.sunionstore("u", "s2", "s3") == 4
    assert redis.sdiffstore("d", "s2", "s3") == 2

    one = redis.srandmember("s1")
    assert one in {"a", "b", "c"}
    assert sorted(redis.srandmember("s1", 3)) == ["a", "b", "c"]
    assert len(redis.srandmember("s1", -5)) == 5  # negative count: repeats allowed
    assert redis.srandmember("missing") is None
    assert redis.scard("s1") == 3

    popped = redis.spop("s1")
    assert popped in {"a", "b", "c"}
    rest = redis.spop("s1", 5)
    assert sorted([popped, *rest]) == ["a", "b", "c"]
    assert redis.spop("s1") is None
    assert redis.exists("s1") == 0
    assert redis.smove("s2", "s3", "d") is True
    assert redis.smove("s2", "s3", "d") is False


# --- sorted sets ------------------------------------------------------------------------


def test_sorted_sets(redis: Redis) -> None:
    assert redis.zadd("z", {"a": 1, "b": 2.5, "c": 3, UNICODE: -1.25}) == 4
    assert redis.zadd("z", {"a": 10, "d": 4}, nx=True) == 1
    assert redis.zscore("z", "a") == 1.0
    assert redis.zadd("z", {"a": 0.5, "b": 5}, gt=True, ch=True) == 1
    assert redis.zscore("z", "a") == 1.0
    assert redis.zscore("z", "b") == 5.0
    assert redis.zadd("z", {"new": 1, "c": 3.5}, xx=True) == 0
    assert redis.zscore("z", "new") is None
    assert redis.zscore("z", "c") == 3.5
    assert redis.zadd("z", {"a": 2}, incr=True) == 3.0
    assert redis.zadd("z", {"a": 1}, xx=True, incr=True) == 4.0

    assert redis.zrange("z", 0, -1) == [UNICODE, "c", "a", "d", "b"]
    assert redis.zrange("z", 0, 1, withscores=True) == [(UNICODE, -1.25), ("c", 3.5)]
    assert redis.zrange("z", 0, 1, rev=True) == ["b", "d"]
    assert redis.zrange("z", 0, 1, rev=True, withscores=True) == [("b", 5.0), ("d", 4.0)]
    assert redis.zrange("z", 3, 4.5, sortby="BYSCORE") == ["c", "a", "d"]
    assert redis.zrange("z", "(3.5", "+inf", sortby="BYSCORE", withscores=True) == [
        ("a", 4.0),
        ("d", 4.0),
        ("b", 5.0),
    ]
    assert redis.zrange("z", "+inf", "-inf", sortby="BYSCORE", rev=True, offset=1, count=2) == ["d", "a"]
    assert redis.zrangebyscore("z", "-inf", 3.5) == [UNICODE, "c"]
    assert redis.zrangebyscore("z", 4, 4, withscores=True) == [("a", 4.0), ("d", 4.0)]
    assert redis.zrangebyscore("z", "-inf", "+inf", offset=1, count=1) == ["c"]

    assert redis.zincrby("z", 0.25, "c") == 3.75
    assert redis.zincrby("z", -10, "brand-new") == -10.0
    assert redis.zrank("z", "brand-new") == 0
    assert redis.zrank("z", "b") == 5
    assert redis.zrevrank("z", "b") == 0
    assert redis.zrank("z", "nope") is None
    assert redis.zcard("z") == 6
    assert redis.zcount("z", "-inf", "+inf") == 6
    assert redis.zcount("z", 0, 4) == 3
    assert redis.zcount("z", "(3.75", 4) == 2
    assert redis.zmscore("z", ["a", "nope"]) == [4.0, None]

    assert redis.zrem("z", "brand-new", "nope") == 1
    assert redis.zpopmin("z") == [(UNICODE, -1.25)]
    assert redis.zpopmin("z", 2) == [("c", 3.75), ("a", 4.0)]
    assert redis.zpopmax("z") == [("b", 5.0)]
    assert redis.zpopmin("missing") == []

    redis.zadd("k1", {"x": 1, "y": 2})
    redis.zadd("k2", {"y": 10, "w": 3})
    assert redis.zunionstore("u", ["k1", "k2"]) == 3
    assert redis.zrange("u", 0, -1, withscores=True) == [("x", 1.0), ("w", 3.0), ("y", 12.0)]
    assert redis.zunionstore("u", ["k1", "k2"], weights=[2, 0.5], aggregate="MAX") == 3
    assert redis.zrange("u", 0, -1, withscores=True) == [("w", 1.5), ("x", 2.0), ("y", 5.0)]
    assert redis.zinterstore("i", ["k1", "k2"]) == 1
    assert redis.zscore("i", "y") == 12.0


def test_sorted_set_score_edge_values(redis: Redis) -> None:
    # the client cannot put float("inf") in JSON; Redis spells infinities +inf / -inf
    redis.zadd("z", {"inf": "+inf", "ninf": "-inf", "tiny": 1e-20, "big": 1.5e300})  # type: ignore[dict-item]
    assert redis.zrange("z", 0, -1, withscores=True) == [
        ("ninf", float("-inf")),
        ("tiny", 1e-20),
        ("big", 1.5e300),
        ("inf", float("inf")),
    ]
    assert redis.zscore("z", "tiny") == 1e-20


# --- keys -------------------------------------------------------------------------------


def test_keys_commands(gate: KvgateServer, redis: Redis) -> None:
    redis.mset({"user:1": "a", "user:2": "b", "order:1": "c"})
    redis.rpush("user:list", "x")
    redis.hset("user:hash", "f", "v")
    redis.sadd("a set", "m")
    redis.zadd("z", {"m": 1})
    assert redis.exists("user:1", "user:2", "nope", "user:1") == 3
    assert redis.type("user:1") == "string"
    assert redis.type("user:list") == "list"
    assert redis.type("user:hash") == "hash"
    assert redis.type("a set") == "set"
    assert redis.type("z") == "zset"
    assert redis.type("nope") == "none"
    assert sorted(redis.keys("user:*")) == ["user:1", "user:2", "user:hash", "user:list"]
    assert sorted(redis.keys("user:?")) == ["user:1", "user:2"]
    assert redis.keys("nothing*") == []
    assert redis.dbsize() == 7

    assert redis.rename("order:1", "order:one") is True
    assert redis.get("order:one") == "c"
    with pytest.raises(UpstashError, match=r"^ERR no such key"):
        redis.rename("nope", "x")
    assert redis.renamenx("order:one", "user:1") is False

    assert redis.delete("user:1", "user:2", "nope") == 2
    assert redis.exists("user:1") == 0
    assert redis.unlink("user:list") == 1
    if not on_fakeredis(gate):  # documented: fakeredis has no TOUCH
        assert redis.touch("user:hash", "nope") == 1
    assert redis.copy("user:hash", "copy") is True
    assert redis.hgetall("copy") == {"f": "v"}


def test_scan_with_match_and_type(redis: Redis) -> None:
    for part in (range(60), range(60, 120)):  # DynamoDB changes at most 100 keys at once
        redis.mset({f"scan:{i}": str(i) for i in part})
    redis.mset({f"other:{i}": str(i) for i in range(30)})
    redis.rpush("scan:list", "x")

    def scan_all(**kwargs: object) -> list[str]:
        found: list[str] = []
        cursor = 0
        while True:
            cursor, keys = redis.scan(cursor, **kwargs)  # type: ignore[arg-type]
            assert isinstance(cursor, int)
            found.extend(keys)
            if cursor == 0:
                return found

    assert sorted(scan_all(match="scan:*", count=25)) == sorted(
        [f"scan:{i}" for i in range(120)] + ["scan:list"]
    )
    assert scan_all(match="scan:*", type="list") == ["scan:list"]
    assert len(set(scan_all())) == 151


def test_unicode_and_awkward_keys_and_values(redis: Redis) -> None:
    for i, value in enumerate(AWKWARD):
        key = f"k/{i} {value}"
        assert redis.set(key, value) is True
        assert redis.get(key) == value, (key, value)
    keys = [f"k/{i} {v}" for i, v in enumerate(AWKWARD)]
    assert redis.mget(*keys) == AWKWARD
    assert sorted(redis.keys("k/*")) == sorted(keys)
    redis.hset("h", values={v or "(empty)": v for v in AWKWARD})
    assert redis.hgetall("h") == {v or "(empty)": v for v in AWKWARD}
    redis.rpush("l", *AWKWARD)
    assert redis.lrange("l", 0, -1) == AWKWARD
    assert redis.eval("return ARGV", args=AWKWARD) == AWKWARD


def test_without_base64_encoding(gate: KvgateServer) -> None:
    with client(gate, rest_encoding=None) as r:
        assert r._headers.get("Upstash-Encoding") is None
        r.flushdb()
        for value in (UNICODE, "with spaces\nand newline", "a/b\\c", "", "OK"):
            assert r.set("k", value) is True
            assert r.get("k") == value
        assert r.type("k") == "string"
        assert r.ping() == "PONG"
        assert r.incr("n") == 1
        r.rpush("l", UNICODE, "x")
        assert r.lrange("l", 0, -1) == [UNICODE, "x"]
        r.zadd("z", {"m": 1.5})
        assert r.zrange("z", 0, -1, withscores=True) == [("m", 1.5)]
        p = r.pipeline()
        p.set("a", UNICODE)
        p.get("a")
        p.hset("h", values={"f": "v"})
        p.hgetall("h")
        assert p.exec() == [True, UNICODE, 1, {"f": "v"}]
        assert r.eval("return {1, 'two', {3}}") == [1, "two", [3]]


# --- scripting --------------------------------------------------------------------------


def test_eval_and_evalsha(redis: Redis) -> None:
    assert redis.eval("return 1 + 1") == 2
    assert redis.eval("return KEYS[1]", keys=["mykey"]) == "mykey"
    assert redis.eval("return ARGV[1]", args=[UNICODE]) == UNICODE
    assert redis.eval("return {KEYS[1], ARGV[1], 3, {4, 'five'}}", keys=["k"], args=["a"]) == [
        "k",
        "a",
        3,
        [4, "five"],
    ]
    assert redis.eval("return nil") is None
    assert redis.eval("return 3.99") == 3  # Lua numbers become integers (truncated)
    assert redis.eval("return redis.status_reply('FINE')") == "FINE"
    assert redis.eval("return redis.call('SET', KEYS[1], ARGV[1])", keys=["k"], args=["v"]) == "OK"
    assert redis.get("k") == "v"
    with pytest.raises(UpstashError, match="boom"):
        redis.eval("return redis.error_reply('ERR boom')")

    script = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
    sha = redis.script_load(script)
    assert sha == sha1(script)
    assert redis.script_exists(sha, "0" * 40) == [True, False]
    assert redis.evalsha(sha, keys=["counter"], args=["5"]) == 5
    assert redis.evalsha(sha, keys=["counter"], args=["5"]) == 10
    with pytest.raises(UpstashError, match=r"^NOSCRIPT"):
        redis.evalsha("f" * 40)


def test_eval_with_upstash_shebang_flags_then_evalsha_of_original_sha(redis: Redis) -> None:
    script = LOCKING + "local v = redis.call('INCRBY', KEYS[1], ARGV[1])\nreturn {v, ARGV[2]}"
    original_sha = sha1(script)
    # What @upstash/ratelimit does: EVALSHA first, EVAL on NOSCRIPT, then EVALSHA for good.
    with pytest.raises(UpstashError, match="NOSCRIPT"):
        redis.evalsha(original_sha, keys=["rl"], args=["1", "x"])
    assert redis.eval(script, keys=["rl"], args=["1", UNICODE]) == [1, UNICODE]
    assert redis.evalsha(original_sha, keys=["rl"], args=["2", "y"]) == [3, "y"]
    assert redis.script_exists(original_sha) == [True]
    assert redis.get("rl") == "3"


def test_script_load_with_upstash_shebang_flags(gate: KvgateServer, redis: Redis) -> None:
    script = "#!lua flags=no-writes,allow-key-locking\nreturn redis.call('GET', KEYS[1])"
    assert redis.script_load(script) == sha1(script)
    redis.set("k", UNICODE)
    assert redis.evalsha(sha1(script), keys=["k"]) == UNICODE
    assert redis.script_exists(sha1(script)) == [True]
    no_writes = "#!lua flags=no-writes,allow-key-locking\nreturn redis.call('SET', 'x', 'y')"
    if on_fakeredis(gate):
        # documented: fakeredis knows no shebangs, kvgate comments the line out, so the
        # no-writes flag is not enforced there
        assert redis.eval(no_writes) == "OK"
    else:
        # no-writes is a flag Redis knows and kvgate keeps: writing must still be refused
        with pytest.raises(UpstashError, match=r"[Ww]rite commands are not allowed"):
            redis.eval(no_writes)


def test_ratelimit_style_fixed_window_script(redis: Redis) -> None:
    """The body of @upstash/ratelimit's fixed-window script, run as the library runs it."""
    script = (
        LOCKING
        + """  local key           = KEYS[1]
  local tokens        = tonumber(ARGV[1])
  local window        = ARGV[2]
  local incrementBy   = ARGV[3]
  local r = redis.call("INCRBY", key, incrementBy)
  if r == tonumber(incrementBy) then
    redis.call("PEXPIRE", key, window)
  end
  return {r, tokens}
"""
    )

    def limit() -> list[int]:
        try:
            return redis.evalsha(sha1(script), keys=["rl:id:1"], args=[3, 60000, 1])
        except UpstashError as err:
            assert "NOSCRIPT" in str(err)
            return redis.eval(script, keys=["rl:id:1"], args=[3, 60000, 1])

    assert [limit() for _ in range(4)] == [[1, 3], [2, 3], [3, 3], [4, 3]]
    assert 0 < redis.pttl("rl:id:1") <= 60000


def test_original_sha_of_a_flagged_script_is_per_process(redis_server: RedisServer) -> None:
    """Documented limit: the original-sha -> normalized-sha map of scripts whose shebang
    kvgate rewrote lives in the kvgate process.  Another worker, or the same one after a
    restart, answers NOSCRIPT for the original sha, exactly as Redis does after its script
    cache is flushed, and the EVAL fallback every client must have restores it."""
    script = LOCKING + f"return 'loaded {os.getpid()} {os.urandom(4).hex()}'"
    sha = sha1(script)
    expected = script.split("'")[1]
    server = KvgateServer("--backend", redis_server.url, "--token", RW).start()
    try:
        with client(server) as r:
            assert r.script_load(script) == sha
            assert r.evalsha(sha) == expected
        server.stop()
        server.start()
        with client(server) as r:
            with pytest.raises(UpstashError, match="NOSCRIPT"):
                r.evalsha(sha)
            assert r.eval(script) == expected
            assert r.evalsha(sha) == expected
    finally:
        server.close()


# --- pipeline and transaction -----------------------------------------------------------


def test_pipeline(redis: Redis) -> None:
    p = redis.pipeline()
    p.set("a", "1")
    p.incr("a")
    p.incrbyfloat("a", 0.5)
    p.get("a")
    p.hset("h", values={"f": UNICODE, "g": "2"})
    p.hgetall("h")
    p.rpush("l", "x", "y")
    p.lrange("l", 0, -1)
    p.zadd("z", {"m": 2.5})
    p.zrange("z", 0, -1, withscores=True)
    p.sismember("nope", "x")
    p.get("missing")
    p.type("l")
    assert p.exec() == [
        True,
        2,
        2.5,
        "2.5",
        2,
        {"f": UNICODE, "g": "2"},
        2,
        ["x", "y"],
        1,
        [("m", 2.5)],
        False,
        None,
        "list",
    ]
    # the pipeline object is reusable after exec
    p.get("a")
    assert p.exec() == ["2.5"]


def test_pipeline_is_not_atomic_and_reports_errors(redis: Redis) -> None:
    p = redis.pipeline()
    p.set("s", "str")
    p.lpush("s", "x")  # WRONGTYPE
    p.set("after", "yes")
    with pytest.raises(UpstashError, match=r"^WRONGTYPE"):
        p.exec()
    # the commands around the failed one did run
    assert redis.get("s") == "str"
    assert redis.get("after") == "yes"


def test_multi_exec(redis: Redis) -> None:
    tx = redis.multi()
    tx.set("k", "v")
    tx.incr("n")
    tx.incrby("n", 9)
    tx.get("k")
    tx.lpush("l", UNICODE)
    tx.lpop("l")
    tx.zadd("z", {"a": 1})
    tx.zscore("z", "a")
    assert tx.exec() == [True, 1, 10, "v", 1, UNICODE, 1, 1.0]
    assert redis.get("n") == "10"


def test_multi_exec_runtime_error_does_not_roll_back(redis: Redis) -> None:
    redis.set("s", "str")
    tx = redis.multi()
    tx.incr("n")
    tx.lpush("s", "x")  # fails at EXEC time: the others still apply (Redis semantics)
    tx.incr("n")
    with pytest.raises(UpstashError, match=r"^WRONGTYPE"):
        tx.exec()
    assert redis.get("n") == "2"


def test_streams(gate: KvgateServer, redis: Redis) -> None:
    """Streams through the client: entries, trimming, a consumer group's round trip, a
    transaction and a script; a read-only token reads but neither adds nor reads as a
    group (XREADGROUP writes).  Redis 8.2's XDELEX where kvgate's engine serves."""
    key = "{st}events"
    assert redis.xadd(key, "1-1", {"kind": "signup", "user": UNICODE}) == "1-1"
    assert redis.xadd(key, "2-*", {"kind": "login"}) == "2-0"
    assert redis.xadd("{st}none", "*", {"a": "1"}, nomkstream=True) is None
    assert redis.xlen(key) == 2
    assert redis.xrange(key, "-", "+") == [
        ["1-1", ["kind", "signup", "user", UNICODE]],
        ["2-0", ["kind", "login"]],
    ]
    assert redis.xrevrange(key, "+", "(1-1") == [["2-0", ["kind", "login"]]]
    assert redis.xread({key: "1-1"}) == [[key, [["2-0", ["kind", "login"]]]]]
    assert redis.xgroup_create(key, "workers", "0") == "OK"
    got = redis.xreadgroup("workers", "w1", {key: ">"}, count=1)
    assert got == [[key, [["1-1", ["kind", "signup", "user", UNICODE]]]]]
    count = 1 if on_fakeredis(gate) else "1"  # Redis answers a consumer's count as a string
    assert redis.xpending(key, "workers") == [1, "1-1", "1-1", [["w1", count]]]
    assert redis.xclaim(key, "workers", "w2", 0, "1-1", justid=True) == ["1-1"]
    assert redis.xack(key, "workers", "1-1") == 1
    assert redis.xautoclaim(key, "workers", "w2", 0, "0") == ["0-0", [], []]
    assert [g["name"] if isinstance(g, dict) else g[1] for g in redis.xinfo_groups(key)] == ["workers"]
    for i in range(3, 8):
        redis.xadd(key, f"{i}-0", {"n": str(i)}, maxlen=4, approximate_trim=False)
    assert redis.xlen(key) == 4
    assert redis.xtrim(key, minid="6", approximate=False) == 2
    assert redis.xdel(key, "6-0", "9-9") == 1
    tx = redis.multi()
    tx.xadd(key, "8-0", {"n": "8"})
    tx.xlen(key)
    assert tx.exec() == ["8-0", 2]
    assert redis.eval("return redis.call('XADD', KEYS[1], '9-0', 'n', '9')", [key]) == "9-0"
    assert redis.eval("return redis.call('XLEN', KEYS[1])", [key]) == 3
    assert redis.type(key) == "stream"
    with client(gate, RO) as ro:
        assert ro.xlen(key) == 3
        assert ro.xrange(key, "9-0", "+") == [["9-0", ["n", "9"]]]
        assert ro.xread({key: "8-0"}) == [[key, [["9-0", ["n", "9"]]]]]
        with pytest.raises(UpstashError, match="NOPERM"):
            ro.xadd(key, "*", {"n": "x"})
        with pytest.raises(UpstashError, match="NOPERM"):
            ro.xreadgroup("workers", "w1", {key: ">"})
    if "--backend" in gate.args and gate.args[gate.args.index("--backend") + 1].startswith(
        ("sqlite", "dynamodb")
    ):
        assert redis.xdelex(key, "9-0", "7-7") == [1, -1]
        assert redis.xlen(key) == 2


# --- read-only token --------------------------------------------------------------------


def test_read_only_token(gate: KvgateServer, redis: Redis) -> None:
    redis.set("k", UNICODE)
    redis.hset("h", "f", "v")
    with client(gate, RO) as ro:
        assert ro.get("k") == UNICODE
        assert ro.hgetall("h") == {"f": "v"}
        assert ro.exists("k") == 1
        with pytest.raises(UpstashError, match="NOPERM") as err:
            ro.set("k", "other")
        assert "'set'" in str(err.value)
        with pytest.raises(UpstashError, match="NOPERM"):
            ro.incr("n")
        with pytest.raises(UpstashError, match="NOPERM"):
            ro.flushdb()
        p = ro.pipeline()
        p.get("k")
        p.delete("k")
        with pytest.raises(UpstashError, match="NOPERM"):
            p.exec()
    assert redis.get("k") == UNICODE
    assert redis.exists("n") == 0


def test_wrong_token_is_rejected(gate: KvgateServer) -> None:
    with client(gate, "not-the-token") as bad, pytest.raises(UpstashError, match="WRONGPASS"):
        bad.get("k")


# --- async client -----------------------------------------------------------------------


async def test_async_client(aredis: AsyncRedis) -> None:
    assert await aredis.set("k", UNICODE, ex=100) is True
    assert await aredis.get("k") == UNICODE
    assert 95 <= await aredis.ttl("k") <= 100
    assert await aredis.hset("h", values={"a": "1", "b": "2"}) == 2
    assert await aredis.hgetall("h") == {"a": "1", "b": "2"}
    assert await aredis.rpush("l", "x", "y", "z") == 3
    assert await aredis.lpop("l", 2) == ["x", "y"]
    assert await aredis.sadd("s", "m1", "m2") == 2
    assert await aredis.smismember("s", "m1", "no") == [True, False]
    assert await aredis.zadd("z", {"a": 1, "b": 2}) == 2
    assert await aredis.zrange("z", 0, -1, rev=True, withscores=True) == [("b", 2.0), ("a", 1.0)]
    assert await aredis.incrbyfloat("f", 2.5) == 2.5

    script = LOCKING + "return {redis.call('INCR', KEYS[1]), ARGV[1]}"
    assert await aredis.eval(script, keys=["c"], args=["a"]) == [1, "a"]
    assert await aredis.evalsha(sha1(script), keys=["c"], args=["b"]) == [2, "b"]

    p = aredis.pipeline()
    p.set("p", "1")
    p.incr("p")
    p.get("p")
    assert await p.exec() == [True, 2, "2"]
    tx = aredis.multi()
    tx.incr("p")
    tx.getdel("p")
    assert await tx.exec() == [3, "3"]
    assert await aredis.exists("p") == 0


async def test_async_client_concurrent_requests(aredis: AsyncRedis) -> None:
    results = await asyncio.gather(*(aredis.incr("hits") for _ in range(50)))
    assert sorted(results) == list(range(1, 51))
    values = await asyncio.gather(*(aredis.set(f"k{i}", f"v{i} ✓") for i in range(20)))
    assert values == [True] * 20
    assert await aredis.mget(*(f"k{i}" for i in range(20))) == [f"v{i} ✓" for i in range(20)]


# --- documents (JSON.*) ---------------------------------------------------------------


def on_plain_redis(gate: KvgateServer) -> bool:
    return any(a.startswith(("redis://", "redis+cluster://")) for a in gate.args)


def test_json_documents(gate: KvgateServer, redis: Redis) -> None:
    """The client's ``redis.json`` commands, a document given as a dict included (the client
    sends it as a JSON object inside the command array)."""
    if on_plain_redis(gate):  # the suite's Redis has no JSON module: refused, with where documents are
        with pytest.raises(
            UpstashError, match=r"^ERR command 'json.set' is not available over REST: this Redis"
        ):
            redis.json.set("doc", "$", 1)
        return
    doc = {"name": "kvgate", "tags": ["gateway"], "stars": 3, "nested": {"on": True}}
    assert redis.json.set("doc", "$", doc) is True  # the client formats OK as True
    assert redis.json.get("doc") == [
        {"name": "kvgate", "tags": ["gateway"], "stars": 3, "nested": {"on": True}}
    ]
    assert redis.json.get("doc", "$.name") == ["kvgate"]
    assert redis.json.type("doc", "$.tags") == ["array"]
    assert redis.json.set("doc", "$.name", "kv gate ✓") is True
    # lengths in bytes, as RedisJSON counts (fakeredis counts characters)
    size = len if on_fakeredis(gate) else (lambda text: len(text.encode()))
    assert redis.json.strlen("doc", "$.name") == [size("kv gate ✓")]
    assert redis.json.strappend("doc", "$.name", "!") == [size("kv gate ✓!")]
    if on_fakeredis(gate):  # fakeredis answers NUMINCRBY with a list of doubles, not JSON text
        redis.execute(["JSON.SET", "doc", "$.stars", "10"])
    else:
        assert redis.json.numincrby("doc", "$.stars", 2) == [5]
        assert redis.json.nummultby("doc", "$.stars", 2) == [10]
    assert redis.json.arrappend("doc", "$.tags", "redis", "json") == [3]
    assert redis.json.arrinsert("doc", "$.tags", 0, "first") == [4]
    assert redis.json.arrindex("doc", "$.tags", "redis") == [2]
    assert redis.json.arrlen("doc", "$.tags") == [4]
    assert redis.json.arrpop("doc", "$.tags") == ["json"]
    assert redis.json.arrtrim("doc", "$.tags", 0, 1) == [2]
    assert redis.json.objkeys("doc", "$.nested") == [["on"]]
    assert redis.json.objlen("doc", "$.nested") == [1]
    assert redis.json.toggle("doc", "$.nested.on") == [False]
    assert redis.json.set("doc", "$.added", 7, nx=True) is True
    assert redis.json.set("doc", "$.added", 8, nx=True) is False
    assert redis.json.merge("doc", "$.nested", "x") is True
    assert redis.json.mset([("doc", "$.stars", 1), ("doc2", "$", "two")]) is True
    # fakeredis answers a JSONPath's first match, not the list of matches
    mget = [1, None, None] if on_fakeredis(gate) else [[1], [], None]
    assert redis.json.mget(["doc", "doc2", "nope"], "$.stars") == mget
    assert redis.json.clear("doc", "$.tags") == 1
    assert redis.json.delete("doc", "$.added") == 1
    assert redis.json.forget("doc", "$.nope") == 0
    assert redis.type("doc") == "ReJSON-RL"
    assert redis.json.get("doc", "$.tags", "$.stars") == {"$.tags": [[]], "$.stars": [1]}
    if not on_fakeredis(gate):  # fakeredis creates the key
        with pytest.raises(UpstashError, match=r"^ERR new objects must be created at the root"):
            redis.json.set("nope", "$.a", 1)
    with client(gate, RO) as ro:
        assert ro.json.get("doc", "$.stars") == [1]
        with pytest.raises(UpstashError, match=r"^NOPERM"):
            ro.json.set("doc", "$.stars", 2)
    pipe = redis.pipeline()
    pipe.json.arrappend("doc", "$.tags", 1)
    pipe.json.arrlen("doc", "$.tags")
    assert pipe.exec() == [[1], [1]]
    assert redis.json.delete("doc") == 1
    assert redis.exists("doc") == 0


# --- the JavaScript client --------------------------------------------------------------


def test_js_client_end_to_end(gate: KvgateServer, redis: Redis) -> None:
    if not (JS_DIR / "node_modules").is_dir():
        pytest.skip(
            "tests/clients/js/node_modules is absent: run `npm ci --prefix tests/clients/js` to install @upstash/redis"
        )
    node = shutil.which("node")
    assert node is not None, "tests/clients/js/node_modules is installed but `node` is not on PATH"
    documents = "none" if on_plain_redis(gate) else "fakeredis" if on_fakeredis(gate) else "full"
    env = {
        **os.environ,
        "KVGATE_URL": gate.url,
        "KVGATE_TOKEN": RW,
        "KVGATE_RO_TOKEN": RO,
        "KVGATE_DOCUMENTS": documents,
        "KVGATE_ENGINE": "1" if documents == "full" else "0",
    }
    proc = subprocess.run(
        [node, str(JS_DIR / "e2e.mjs")], capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    last = proc.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"js e2e: \d+ checks passed", last), proc.stdout


# --- geo --------------------------------------------------------------------------------


def test_geo(gate: KvgateServer, redis: Redis) -> None:
    """The client's geo commands, with Redis's documented Sicily examples (one hash tag:
    GEOSEARCHSTORE's two keys share a slot on a cluster)."""
    if on_fakeredis(gate):
        pytest.skip(
            "fakeredis computes geo its own way (GEODIST Palermo-Catania 166274.4340 m, not 166274.1516)"
        )
    key, dest = "{geo}Sicily", "{geo}near"
    assert redis.geoadd(key, (13.361389, 38.115556, "Palermo"), (15.087269, 37.502669, "Catania")) == 2
    assert redis.geoadd(key, (13.361389, 38.115556, "Palermo"), nx=True) == 0
    assert redis.zscore(key, "Palermo") == 3479099956230698
    assert redis.geodist(key, "Palermo", "Catania") == 166274.1516
    assert redis.geodist(key, "Palermo", "Catania", "KM") == 166.2742
    assert redis.geohash(key, "Palermo", "Catania", "nope") == ["sqc8b49rny0", "sqdtr74hyu0", None]
    assert redis.geopos(key, "Palermo", "nope") == [(13.36138933897018433, 38.11555639549629859), None]
    found = redis.geosearch(
        key, longitude=15, latitude=37, radius=200, unit="KM", order="ASC", withdist=True, withcoord=True
    )
    assert [(f.member, f.distance) for f in found] == [("Catania", 56.4413), ("Palermo", 190.4424)]
    assert found[0].longitude == 15.08726745843887329
    assert redis.geosearch(key, member="Palermo", width=400, height=400, unit="KM", count=1) == ["Palermo"]
    assert (
        redis.geosearchstore(dest, key, longitude=15, latitude=37, radius=100, unit="KM", storedist=True) == 1
    )
    assert round(redis.zscore(dest, "Catania"), 4) == 56.4413
    assert redis.georadius(key, 15, 37, 200, "KM", order="DESC") == ["Palermo", "Catania"]
    assert redis.georadiusbymember(key, "Palermo", 100, "KM") == ["Palermo"]
    with pytest.raises(UpstashError, match=r"^ERR invalid longitude,latitude pair 200.000000,10.000000"):
        redis.geoadd(key, (200, 10, "far"))


def test_hyperloglog_and_bitmaps(gate: KvgateServer, redis: Redis) -> None:
    """HyperLogLog and bitmap commands through the client (one hash tag: PFMERGE and
    BITOP's keys share a slot on a cluster); BITOP's Redis 8.2 operations on kvgate's
    engine, which has them."""
    hll, other, merged = "{b}visits", "{b}visits2", "{b}all"
    assert redis.pfadd(hll, "a", "b", "c") == 1
    assert redis.pfadd(hll, "a") == 0
    assert redis.pfadd(other, "c", "d") == 1
    assert redis.pfcount(hll) == 3
    assert redis.pfcount(hll, other) == 4
    assert redis.pfmerge(merged, hll, other) is True
    assert redis.pfcount(merged) == 4
    with client(gate, RO) as ro:
        assert ro.pfcount(merged) == 4  # a read-only token may count (Redis flags it readonly)
    bits, mask, dest = "{b}bits", "{b}mask", "{b}dest"
    assert redis.setbit(bits, 7, 1) == 0
    assert redis.setbit(bits, 7, 1) == 1
    assert redis.getbit(bits, 7) == 1
    assert redis.set(mask, "\x0f") is True
    assert redis.bitcount(bits) == 1
    assert redis.bitcount(mask, 0, -1) == 4
    assert redis.bitpos(mask, 1) == 4
    assert redis.bitpos(bits, 0, 0, 0) == 0
    assert redis.bitop("OR", dest, bits, mask) == 1
    assert redis.get(dest) == "\x0f"
    counters = redis.bitfield("{b}counters").set("u8", 0, 255).incrby("u8", 0, 10).overflow("FAIL")
    assert counters.incrby("u8", "#1", 300).get("i8", 0).execute() == [0, 9, None, 9]
    if not on_fakeredis(gate):  # fakeredis has no BITFIELD_RO
        assert redis.bitfield_ro("{b}counters").get("u8", 0).execute() == [9]
    if any(arg.startswith(("sqlite://", "dynamodb://")) for arg in gate.args):  # the engine
        assert redis.bitop("DIFF", dest, mask, bits) == 1
        assert redis.get(dest) == "\x0e"
        assert redis.bitop("ONE", dest, mask, bits, "{b}missing") == 1
        assert redis.get(dest) == "\x0e"


def test_hash_field_expiration(gate: KvgateServer, redis: Redis) -> None:
    """The client's hash field expiration (Redis 7.4) and HGETDEL, HGETEX, HSETEX (Redis 8) on
    kvgate's engine; on Redis 7.0 they answer Redis's own unknown-command error."""
    if not any(arg.startswith(("sqlite://", "dynamodb://")) for arg in gate.args):
        if any(arg.startswith("redis://") for arg in gate.args):
            with pytest.raises(
                UpstashError, match=r"^ERR unknown command 'HEXPIRE', with args beginning with: "
            ):
                redis.hexpire("h", "f", 10)
        pytest.skip("Redis 7.0 (and the fakeredis here) have no hash field expiration")
    far = 4102444800  # 2100-01-01
    assert redis.hset("h", values={"f1": "v1", "f2": "v2", "f3": "v3"}) == 3
    assert redis.hexpire("h", ["f2", "f3", "nope"], 100) == [1, 1, -2]
    assert redis.httl("h", ["f1", "f2"]) == [-1, 100]
    assert redis.hexpireat("h", "f3", far, gt=True) == [1]
    assert redis.hexpiretime("h", ["f3"]) == [far]
    assert redis.hpexpiretime("h", "f3") == [far * 1000]
    assert redis.hpersist("h", ["f1", "f2"]) == [-1, 1]
    assert redis.hpexpire("h", "f1", 0) == [2]  # a time not in the future deletes the field
    assert redis.hgetall("h") == {"f2": "v2", "f3": "v3"}
    pttl = redis.hpttl("h", "f3")
    assert isinstance(pttl, list) and pttl[0] > 1000 * 3600
    assert redis.hgetex("h", "f2", "nope", exat=far) == ["v2", None]
    assert redis.hexpiretime("h", "f2") == [far]
    assert redis.hgetex("h", "f2", persist=True) == ["v2"]
    assert redis.httl("h", "f2") == [-1]
    assert redis.hsetex("h", values={"a": "1", "b": "2"}, fnx=True, pxat=far * 1000) == 1
    assert redis.hsetex("h", "a", "again", fnx=True) == 0
    assert redis.hsetex("h", "a", "kept", fxx=True, keepttl=True) == 1
    assert redis.hexpiretime("h", ["a", "b"]) == [far, far]
    assert redis.hgetdel("h", "a", "nope") == ["kept", None]
    assert redis.hpexpireat("h", ["f2", "f3", "b"], 1) == [2, 2, 2]
    assert redis.exists("h") == 0  # the last field took the hash
    with pytest.raises(UpstashError, match=r"^WRONGTYPE"):
        redis.set("s", "v")
        redis.httl("s", "f")
