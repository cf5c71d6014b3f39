"""Collections of any size on DynamoDB (issue 17), against DynamoDB Local: a hash and a
sorted set of 30,000 elements through HTTP, one-element commands within 4 read and 4 write
capacity units (read from /metrics), a large write that readers see whole or not at all
(and that leaves nothing behind when it dies midway), DEL and expiry of a large
collection, and a table of the old layout refused at start-up."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import uuid
from typing import Any

import botocore.session
import msgpack
import pytest

from kvgate.adapters.dynamodb import DynamoBackend, parse_url
from tests.support.api import GATEWAYS, Api, GatewayClient, make_config
from tests.support.servers import DynamoDBLocal

from .test_dynamodb_backend import run_kvgate

_CAPACITY = re.compile(r"^kvgate_dynamodb_capacity_units_total\{([^}]*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def raw_client(ddb: DynamoDBLocal) -> Any:
    return botocore.session.get_session().create_client(
        "dynamodb", region_name="us-east-1", endpoint_url=ddb.endpoint
    )


def backend_of(api: Api) -> DynamoBackend:
    backend = GATEWAYS[api.client].databases[0][1].backend
    assert isinstance(backend, DynamoBackend)
    return backend


@pytest.fixture
def clean_url(dynamodb_local: DynamoDBLocal) -> str:
    return dynamodb_local.clean_table()  # synchronous: it may run its own event loop


@pytest.fixture
async def big_api(gateway_client: GatewayClient, clean_url: str) -> Api:
    """The gateway on an emptied table, with time for bulk loads (timeout 600 s)."""
    return Api(await gateway_client(make_config(clean_url, timeout=600)))


async def capacity(api: Api) -> dict[tuple[str, str], float]:
    """(kind, command) -> units so far, from /metrics."""
    async with api.client.get("/_kvgate/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    table = backend_of(api).table
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        found = _CAPACITY.match(line)
        if found:
            labels = dict(_LABEL.findall(found.group(1)))
            if labels.get("table") == table:
                key = (labels["kind"], labels["command"])
                out[key] = out.get(key, 0.0) + float(found.group(2))
    return out


async def cost(api: Api, *args: str) -> tuple[Any, float, float]:
    """A command's result and the read and write units it consumed (from /metrics)."""
    before = await capacity(api)
    result = await api.result(*args)
    after = await capacity(api)
    name = args[0].lower()
    read = after.get(("read", name), 0.0) - before.get(("read", name), 0.0)
    write = after.get(("write", name), 0.0) - before.get(("write", name), 0.0)
    return result, read, write


def items_of(ddb: DynamoDBLocal, api: Api, name: str) -> list[dict[str, Any]]:
    """Every item of key ``name`` in the table (head and elements), behind kvgate's back."""
    table = backend_of(api).table
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {}
    while True:
        page = raw_client(ddb).query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"B": b"k" + name.encode()}},
            ConsistentRead=True,
            **kwargs,
        )
        out += page["Items"]
        if "LastEvaluatedKey" not in page:
            return out
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


async def eventually(check: Any, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.2)


def quick_cleanup(api: Api) -> DynamoBackend:
    backend = backend_of(api)
    backend.gc_interval = 0.2
    backend.gc_grace_ms = 300
    return backend


# --- 30,000 elements ---------------------------------------------------------------------------


async def check_big_collections(api: Api, n: int) -> None:
    fields = [x for i in range(n) for x in (f"field:{i}", f"value:{i}")]
    assert await api.result("HSET", "hash", *fields) == n
    assert await api.result("ZADD", "zset", *(x for i in range(n) for x in (str(i), f"m:{i}"))) == n
    assert await api.result("SADD", "set", *(f"s:{i}" for i in range(1000))) == 1000
    assert await api.result("RPUSH", "list", *(f"e:{i}" for i in range(1000))) == 1000

    assert await api.result("HLEN", "hash") == n
    assert await api.result("ZCARD", "zset") == n
    assert await api.result("HGET", "hash", f"field:{n - 1}") == f"value:{n - 1}"
    assert await api.result("HMGET", "hash", "field:0", "nope", "field:7") == ["value:0", None, "value:7"]
    assert await api.result("ZSCORE", "zset", "m:12345") == "12345"
    assert await api.result("ZRANGE", "zset", "0", "2", "WITHSCORES") == ["m:0", "0", "m:1", "1", "m:2", "2"]
    assert await api.result("ZREVRANGE", "zset", "0", "1") == [f"m:{n - 1}", f"m:{n - 2}"]
    assert await api.result("ZRANGEBYSCORE", "zset", "(100", "103") == ["m:101", "m:102", "m:103"]
    assert await api.result("ZREVRANGEBYSCORE", "zset", "+inf", "-inf", "LIMIT", "0", "2") == [
        f"m:{n - 1}",
        f"m:{n - 2}",
    ]
    assert await api.result("ZCOUNT", "zset", "10", "19") == 10
    assert await api.result("LINDEX", "list", "0") == "e:0"
    assert await api.result("LRANGE", "list", "-2", "-1") == ["e:998", "e:999"]
    everything = await api.result("HGETALL", "hash")
    assert len(everything) == 2 * n
    assert dict(zip(everything[::2], everything[1::2], strict=True)) == dict(
        zip(fields[::2], fields[1::2], strict=True)
    )

    # one element read or written: about one element's cost, whatever the size
    for args, expected in [
        (("HSET", "hash", "field:5", "changed"), 0),
        (("HSET", "hash", "new-field", "v"), 1),
        (("ZINCRBY", "zset", "0.5", "m:77"), "77.5"),
        (("ZADD", "zset", "-1", "new-member"), 1),
        (("SADD", "set", "new"), 1),
        (("LPUSH", "list", "head"), 1001),
    ]:
        result, read, write = await cost(api, *args)
        assert result == expected, args
        assert 0 < write <= 4, (args, read, write)
        assert read <= 4, (args, read, write)
    for args, expected in [
        (("HGET", "hash", "field:5"), "changed"),
        (("HGET", "hash", "missing"), None),
        (("ZSCORE", "zset", "m:77"), "77.5"),
        (("SISMEMBER", "set", "s:500"), 1),
        (("HLEN", "hash"), n + 1),
        (("ZCARD", "zset"), n + 1),
        (("ZRANGE", "zset", "0", "0"), ["new-member"]),
    ]:
        result, read, write = await cost(api, *args)
        assert result == expected, args
        assert 0 < read <= 4 and write == 0, (args, read, write)
    assert await api.result("ZRANK", "zset", "m:0") == 1
    assert await api.result("HDEL", "hash", "field:0", "field:1") == 2
    assert await api.result("HLEN", "hash") == n - 1


async def test_a_hash_and_a_sorted_set_of_30000_elements(big_api: Api) -> None:
    await check_big_collections(big_api, 30_000)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("KVGATE_SLOW_TESTS"), reason="slow: set KVGATE_SLOW_TESTS=1")
async def test_a_hash_and_a_sorted_set_of_100000_elements(big_api: Api) -> None:
    await check_big_collections(big_api, 100_000)


async def test_a_script_walking_a_spilled_collection(big_api: Api) -> None:
    """A script asks for elements the command table cannot name: after a few single
    reads the unit reads the collection whole instead of one element per run."""
    api = big_api
    assert await api.result("HSET", "h", *(x for i in range(1000) for x in (f"f{i}", str(i)))) == 1000
    script = (
        "local s = 0 for i = 0, 999 do s = s + tonumber(redis.call('HGET', KEYS[1], 'f' .. i)) end return s"
    )
    assert await api.result("EVAL", script, "1", "h") == sum(range(1000))
    assert await api.result("EVAL", "return redis.call('HSET', KEYS[1], 'f1', 'x')", "1", "h") == 0
    assert await api.result("HGET", "h", "f1") == "x"


# --- large writes: whole or not at all -----------------------------------------------------------


async def test_a_reader_never_sees_half_of_a_1000_field_hset(big_api: Api) -> None:
    api = big_api
    fields = [f"f{i}" for i in range(1000)]
    probe = [*fields[::111], fields[-1]]
    seen: set[tuple[str, ...]] = set()
    lengths: set[int] = set()
    done = asyncio.Event()

    async def reader() -> None:
        while not done.is_set():
            status, body = await api.pipeline(["HMGET", "h", *probe], ["HLEN", "h"])
            assert status == 200, body
            seen.add(tuple(str(v) for v in body[0]["result"]))
            lengths.add(body[1]["result"])
            await asyncio.sleep(0)

    async def writer() -> None:
        for round in range(3):  # new (past the inline limits at once), then all changed twice
            status, body = await api.cmd("HSET", "h", *(x for f in fields for x in (f, f"v{round}")))
            assert status == 200, body
            await asyncio.sleep(0.05)
        done.set()

    await asyncio.gather(reader(), writer())
    for values in seen:
        assert len(set(values)) == 1, values  # one round's values, never a mix
    assert lengths <= {0, 1000}, lengths
    assert {values[0] for values in seen} >= {"v2"}
    everything = await api.result("HGETALL", "h")
    assert set(everything[1::2]) == {"v2"}
    assert len(everything) == 2000


async def test_a_large_write_that_dies_midway_leaves_no_half_state(
    big_api: Api, dynamodb_local: DynamoDBLocal
) -> None:
    api = big_api
    backend = quick_cleanup(api)
    assert await api.result("HSET", "h", *(x for i in range(300) for x in (f"f{i}", "old"))) == 300
    before = len(items_of(dynamodb_local, api, "h"))
    assert before == 301  # the head and 300 elements
    backend.lease_ms = 1000
    backend.fail_after_batches = 3
    status, body = await api.cmd("HSET", "h", *(x for i in range(500) for x in (f"f{i}", "new")))
    assert status >= 500, body
    backend.fail_after_batches = None
    # nothing of it is visible, though part of it is in the table
    assert len(items_of(dynamodb_local, api, "h")) > before
    assert await api.result("HLEN", "h") == 300
    assert set((await api.result("HGETALL", "h"))[1::2]) == {"old"}
    assert await api.result("HGET", "h", "f450") is None
    # the next writer is not in its way, and the sweeper takes what it left
    assert await api.result("HSET", "h", "f1", "next") == 0
    await eventually(lambda: len(items_of(dynamodb_local, api, "h")) == before)
    assert await api.result("HMGET", "h", "f0", "f1", "f299") == ["old", "next", "old"]
    # and the same write, whole this time
    assert await api.result("HSET", "h", *(x for i in range(500) for x in (f"f{i}", "new"))) == 200
    assert set((await api.result("HGETALL", "h"))[1::2]) == {"new"}
    await eventually(lambda: len(items_of(dynamodb_local, api, "h")) == 501)


# --- DEL and expiry ---------------------------------------------------------------------------------


async def test_del_and_expiry_of_a_large_collection_leave_nothing(
    big_api: Api, dynamodb_local: DynamoDBLocal
) -> None:
    api = big_api
    quick_cleanup(api)
    members = [x for i in range(400) for x in (str(i), f"m{i}")]
    assert await api.result("ZADD", "z", *members) == 400
    assert len(items_of(dynamodb_local, api, "z")) == 801  # head, elements, order items
    assert await api.result("DEL", "z") == 1
    assert await api.result("EXISTS", "z") == 0
    assert await api.result("ZCARD", "z") == 0
    assert await api.result("ZADD", "z", "1", "only") == 1  # a new key: the old elements are not its
    assert await api.result("ZRANGE", "z", "0", "-1") == ["only"]
    assert await api.result("ZSCORE", "z", "m5") is None
    await eventually(lambda: len(items_of(dynamodb_local, api, "z")) == 1)

    # an overwrite: the same
    assert await api.result("SADD", "s", *(f"m{i}" for i in range(300))) == 300
    assert await api.result("SET", "s", "a string now") == "OK"
    assert await api.result("GET", "s") == "a string now"
    await eventually(lambda: len(items_of(dynamodb_local, api, "s")) == 1)

    # expiry: invisible at once, and gone from the table (head included) soon after
    assert await api.result("HSET", "h", *(x for i in range(300) for x in (f"f{i}", "v"))) == 300
    assert await api.result("PEXPIRE", "h", "400") == 1
    assert await api.result("HLEN", "h") == 300
    await asyncio.sleep(0.5)
    assert await api.result("HLEN", "h") == 0
    assert await api.result("HGET", "h", "f1") is None
    assert await api.result("EXISTS", "h") == 0
    assert await api.result("HGETALL", "h") == []
    await eventually(lambda: items_of(dynamodb_local, api, "h") == [])
    assert await api.result("HSET", "h", "f1", "fresh") == 1
    assert await api.result("HGETALL", "h") == ["f1", "fresh"]


# --- the table --------------------------------------------------------------------------------------


async def test_a_table_of_the_old_layout_is_refused_with_how_to_upgrade(
    dynamodb_local: DynamoDBLocal, gateway_client: GatewayClient
) -> None:
    table = f"kvgate-old-{uuid.uuid4().hex[:12]}"
    raw = raw_client(dynamodb_local)
    raw.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "B"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    # items as the old release wrote them: a number, and a hash of 200 fields in one item
    old_hash = msgpack.packb([x for i in range(200) for x in (b"f%d" % i, b"v%d" % i)], use_bin_type=True)
    for item in (
        {"pk": {"B": b"kn"}, "ver": {"B": b"12345678"}, "t": {"N": "0"}, "v": {"N": "41"}},
        {"pk": {"B": b"kh"}, "ver": {"B": b"12345678"}, "t": {"N": "4"}, "m": {"B": old_hash}},
    ):
        raw.put_item(TableName=table, Item=item)
    url = dynamodb_local.url(table)
    proc = run_kvgate("serve", "--backend", url, "--token", "t")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"table {table!r} has kvgate's old layout" in lines[0]
    assert "kvgate dynamodb create-table" in lines[0]
    assert "python -m kvgate.adapters.dynamodb_upgrade" in lines[0]
    assert parse_url(url).table == table

    # the upgrade the line names: a new table, the keys copied
    new_url = dynamodb_local.url(table + "-new")
    assert run_kvgate("dynamodb", "create-table", new_url).returncode == 0
    copied = subprocess.run(
        [sys.executable, "-m", "kvgate.adapters.dynamodb_upgrade", url, new_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert copied.returncode == 0, copied.stderr
    assert copied.stdout.strip() == "copied 2 items"
    api = Api(await gateway_client(make_config(new_url)))
    assert await api.result("INCR", "n") == 42
    assert await api.result("HLEN", "h") == 200
    assert await api.result("HGET", "h", "f7") == "v7"
    assert await api.result("HSET", "h", "f200", "v200") == 1  # spilled now: an item per element
    assert await api.result("HLEN", "h") == 201
    assert await api.result("HGET", "h", "f199") == "v199"
