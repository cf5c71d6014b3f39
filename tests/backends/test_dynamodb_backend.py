"""The DynamoDB backend against DynamoDB Local (AWS's emulator), never a mock: several
kvgate processes on one table lose no update, DynamoDB's limits are clear errors that
write nothing, expiry is filtered on read, SCAN cursors work across processes, start-up
and ``kvgate dynamodb create-table`` errors are one line, and DynamoDB going away is a
503 while kvgate keeps serving."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import botocore.session
import pytest

from kvgate.adapters import dynamodb as dynamodb_backend
from kvgate.adapters import dynamodb_items as items
from kvgate.adapters.dynamodb import DynamoBackend, create_table, parse_url
from kvgate.adapters.dynamodb_items import (
    MAX_ITEM_BYTES,
    MAX_KEY_NAME_BYTES,
    MAX_TRANSACTION_BYTES,
    MAX_TRANSACTION_ITEMS,
    Entry,
)
from kvgate.engine.storage import Key, KeyType, Member
from tests.support.api import GATEWAYS, RW, Api, GatewayClient, make_config
from tests.support.servers import DynamoDBLocal, KvgateServer, serve_fails


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {RW}"}) as resp:
        return resp.status, await resp.json()


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as resp:
        return resp.status, await resp.json()


def table_of(url: str) -> str:
    return parse_url(url).table


def raw_client(ddb: DynamoDBLocal) -> Any:
    """A plain botocore client, to look at the table behind kvgate's back."""
    return botocore.session.get_session().create_client(
        "dynamodb", region_name="us-east-1", endpoint_url=ddb.endpoint
    )


# Tables are made in synchronous fixtures: DynamoDBLocal's helpers run their own event loop.


@pytest.fixture
def table_url(dynamodb_local: DynamoDBLocal) -> str:
    """A fresh table, for tests that look at it from outside or from several processes."""
    return dynamodb_local.new_table()


@pytest.fixture
def clean_url(dynamodb_local: DynamoDBLocal) -> str:
    return dynamodb_local.clean_table()


@pytest.fixture
async def ddb_api(gateway_client: GatewayClient, clean_url: str) -> Api:
    return Api(await gateway_client(make_config(clean_url)))


@pytest.fixture
def private_dynamodb() -> Iterator[tuple[DynamoDBLocal, str]]:
    """DynamoDB Local of this test's own, to stop, and a table on it."""
    ddb = DynamoDBLocal().start()
    try:
        yield ddb, ddb.new_table()
    finally:
        ddb.close()


def backend_of(api: Api) -> DynamoBackend:
    backend = GATEWAYS[api.client].databases[0][1].backend
    assert isinstance(backend, DynamoBackend)
    return backend


# --- several processes on one table ----------------------------------------------------


async def test_two_processes_on_one_table_lose_no_increment(table_url: str) -> None:
    """A lone INCR takes the UpdateItem ADD path; in a pipeline beside HINCRBY, and inside
    /multi-exec, both are one optimistic unit.  Every acknowledged increment is counted
    once: the replies are exactly 1..N and the final values are N."""
    url = table_url
    servers = [KvgateServer("--backend", url, "--token", RW).start() for _ in range(2)]
    tasks, per_task = 16, 40
    n_seen: list[int] = []  # what each acknowledged INCR n answered
    f_seen: list[int] = []  # what each acknowledged HINCRBY h f 1 answered
    overloaded: Counter[str] = Counter()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

            async def worker(t: int) -> None:
                base = servers[t % 2].url
                for i in range(per_task):
                    if (t + i) % 3 == 0:
                        kind = "multi-exec"
                        status, body = await post(
                            session, base + "/multi-exec", [["INCR", "n"], ["HINCRBY", "h", "f", "1"]]
                        )
                    elif (t + i) % 3 == 1:
                        kind = "pipeline"  # one unit: a 503 means nothing of it was applied
                        status, body = await post(
                            session, base + "/pipeline", [["HINCRBY", "h", "f", "1"], ["INCR", "n"]]
                        )
                        body = body[::-1] if status == 200 else body
                    else:
                        kind = "single"  # INCR alone: UpdateItem ADD
                        status, body = await post(session, base, ["INCR", "n"])
                        if status == 200:  # then HINCRBY alone, until it is applied
                            body = [body]
                            for _ in range(50):
                                hstatus, hincr = await post(session, base, ["HINCRBY", "h", "f", "1"])
                                if hstatus == 200:
                                    body.append(hincr)
                                    break
                                assert "too many concurrent writers" in hincr["error"], hincr
                                overloaded["single HINCRBY retried"] += 1
                            else:
                                raise AssertionError("HINCRBY lost 50 races in a row")
                    if status == 503 and "too many concurrent writers" in body.get("error", ""):
                        overloaded[kind] += 1  # documented as not applied
                        continue
                    assert status == 200, (kind, status, body)
                    assert all(set(r) == {"result"} for r in body), body
                    n_seen.append(int(body[0]["result"]))
                    f_seen.append(body[1]["result"])

            await asyncio.gather(*(worker(t) for t in range(tasks)))
            acked = len(n_seen)
            gave_up = sum(n for kind, n in overloaded.items() if kind != "single HINCRBY retried")
            assert acked == tasks * per_task - gave_up
            assert sorted(n_seen) == list(range(1, acked + 1)), "two increments saw the same value"
            assert sorted(f_seen) == list(range(1, acked + 1)), "two increments saw the same value"
            for server in servers:
                assert await post(session, server.url, ["GET", "n"]) == (200, {"result": str(acked)})
                assert await post(session, server.url, ["HGET", "h", "f"]) == (200, {"result": str(acked)})
    finally:
        for s in servers:
            s.close()
    # A 503 "too many concurrent writers" is allowed (and counted above as not applied):
    # a /multi-exec reading the counter that the lone INCRs' ADDs keep changing can lose
    # every race.  Measured: 1 to 5 of 640 requests; say how many, and bound it.
    if gave_up:
        warnings.warn(f"{gave_up} requests gave up on conflicts (503): {dict(overloaded)}", stacklevel=1)
    assert gave_up <= tasks * per_task // 10, dict(overloaded)


async def test_concurrent_hincrby_in_one_process(ddb_api: Api) -> None:
    replies = await asyncio.gather(*(ddb_api.cmd("HINCRBY", "h", "f", "1") for _ in range(50)))
    assert all(status == 200 for status, _ in replies), replies
    assert sorted(body["result"] for _, body in replies) == list(range(1, 51))
    assert await ddb_api.result("HGET", "h", "f") == "50"
    assert backend_of(ddb_api).conflicts > 0  # the optimistic path did lose races, and retried


async def test_a_pipeline_answered_503_did_not_apply_what_it_says_it_did_not(
    ddb_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A /pipeline whose parts are separate units (a script is always a unit of its own):
    when a later one gives up on conflicts ("503 ... the command was not applied, retry
    later"), the earlier ones must not have been applied, or the answer must not say so:
    a client retrying the pipeline would apply them twice."""
    monkeypatch.setattr(dynamodb_backend, "MAX_CONFLICT_RETRIES", 0)  # a lost race gives up at once
    hincrby = ["EVAL", "return redis.call('HINCRBY', KEYS[1], 'f', 1)", "1", "h"]
    replies = await asyncio.gather(*(ddb_api.pipeline(["INCR", "a"], hincrby) for _ in range(20)))
    assert backend_of(ddb_api).conflicts > 0  # some HINCRBY did lose its race
    acked = sum(1 for status, body in replies if status == 200 and "result" in body[0])
    disowned = sum(
        1
        for status, body in replies
        if status != 200 and ("not applied" in body["error"] or "nothing was changed" in body["error"])
    )
    lost = [body[1] for status, body in replies if status == 200 and "error" in body[1]]
    assert lost, "no HINCRBY lost its race: the test did not test anything"
    assert all("not applied" in e["error"] for e in lost), lost  # said in its own slot
    applied = int(await ddb_api.result("GET", "a"))
    assert int(await ddb_api.result("HGET", "h", "f")) == 20 - len(lost)
    assert acked <= applied <= len(replies) - disowned, (
        f"INCR a applied {applied} times; {acked} pipelines acknowledged it, "
        f"{disowned} answered that nothing was applied: {replies[:3]}"
    )


# --- pipelines in few calls -------------------------------------------------------------


@pytest.fixture
def calls(ddb_api: Api, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The DynamoDB calls the backend makes, by operation (still made, to DynamoDB Local)."""
    backend = backend_of(ddb_api)
    made: Counter[str] = Counter()
    send = backend._send

    async def counted(method: Any, kwargs: dict[str, Any], write: bool) -> Any:
        made[method.__name__] += 1
        return await send(method, kwargs, write)

    monkeypatch.setattr(backend, "_send", counted)
    return made


async def test_a_pipeline_of_writes_is_a_few_transactions(ddb_api: Api, calls: Counter[str]) -> None:
    n = 250
    status, body = await ddb_api.pipeline(*(["SET", f"k{i}", f"v{i}"] for i in range(n)))
    assert (status, body) == (200, [{"result": "OK"}] * n)
    assert calls == {"transact_write_items": 3}, calls  # 100 keys per TransactWriteItems

    calls.clear()
    status, body = await ddb_api.pipeline(*(["GET", f"k{i}"] for i in range(n)))
    assert (status, body) == (200, [{"result": f"v{i}"} for i in range(n)])
    assert calls == {"batch_get_item": 3}, calls  # sent together, not one after another

    # one-key reads are not atomic together (in Redis either); one command's keys are
    calls.clear()
    status, body = await ddb_api.pipeline(*(["GET", f"k{i}"] for i in range(100)))
    assert body == [{"result": f"v{i}"} for i in range(100)]
    assert calls == {"batch_get_item": 1}, calls
    calls.clear()
    status, body = await ddb_api.pipeline(["GET", "k0"], ["MGET", "k1", "k2"])
    assert body == [{"result": "v0"}, {"result": ["v1", "v2"]}]
    assert calls == {"transact_get_items": 1}, calls

    # writes that read, with reads between them: one read of their keys, one write
    calls.clear()
    commands = [c for i in range(50) for c in (["INCR", f"n{i}"], ["GET", f"k{i}"], ["APPEND", f"k{i}", "+"])]
    status, body = await ddb_api.pipeline(*commands)
    assert status == 200
    assert body == [
        r for i in range(50) for r in ({"result": 1}, {"result": f"v{i}"}, {"result": len(f"v{i}+")})
    ]
    assert calls == {"batch_get_item": 1, "transact_write_items": 1}, calls
    assert await ddb_api.result("MGET", "n0", "n49", "k0", "k49", "k50") == ["1", "1", "v0+", "v49+", "v50"]


async def test_a_batch_too_big_for_one_transaction_is_split_not_copied(
    ddb_api: Api, dynamodb_local: DynamoDBLocal, calls: Counter[str]
) -> None:
    """150 new fields of one spilled hash: 150 element items and the head do not fit one
    TransactWriteItems.  A single command that big is written through a new generation
    (a copy of the collection); a pipeline's part is run in smaller parts instead."""
    assert await ddb_api.result("HSET", "h", *(x for i in range(200) for x in (f"f{i}", "v"))) == 200
    table, head = backend_of(ddb_api).table, items.head_key(b"h")
    generation = raw_client(dynamodb_local).get_item(TableName=table, Key=head, ConsistentRead=True)["Item"][
        "g"
    ]
    calls.clear()
    status, body = await ddb_api.pipeline(*(["HSET", "h", f"new{i}", "w"] for i in range(150)))
    assert (status, body) == (200, [{"result": 1}] * 150)
    after = raw_client(dynamodb_local).get_item(TableName=table, Key=head, ConsistentRead=True)["Item"]
    assert after["g"] == generation, "the collection was copied to a new generation"
    assert after["n"] == {"N": "350"}
    assert 2 <= calls["transact_write_items"] <= 4, calls
    assert "batch_write_item" not in calls, calls
    assert await ddb_api.result("HLEN", "h") == 350
    assert await ddb_api.result("HMGET", "h", "f0", "new0", "new149") == ["v", "w", "w"]


async def test_a_refusal_inside_a_batch_is_its_own_commands_answer(ddb_api: Api) -> None:
    """The batch a too-large value is in wrote nothing; it runs again in smaller parts,
    so every other command of it is applied and only that one answers the refusal."""
    commands: list[list[Any]] = [["SET", f"k{i}", "v"] for i in range(40)]
    commands[17] = ["SET", "big", "x" * MAX_ITEM_BYTES]
    commands.append(["MGET", "k0", "k16", "k18", "k39", "big"])
    status, body = await ddb_api.pipeline(*commands)
    assert status == 200
    assert "value is too large" in body[17]["error"]
    assert body[:17] + body[18:40] == [{"result": "OK"}] * 39
    assert body[40] == {"result": ["v", "v", "v", "v", None]}
    assert await ddb_api.result("DBSIZE") == 39


# --- DynamoDB's limits -----------------------------------------------------------------


def largest_value(key_type: KeyType, name: bytes) -> int:
    """The longest value kvgate's own size estimate (an upper bound of DynamoDB's count)
    lets one key hold: a string's value, or the value of a hash's one field ``f``."""

    def size(length: int) -> int:
        value = b"v" * length
        if key_type is KeyType.STRING:
            entry = Entry(Key(name, key_type, None, value))
        else:
            entry = Entry(Key(name, key_type, None, None), {b"f": Member(b"f", value, 0.0)})
        return items.item_size(items.encode(entry, items.new_token()))

    low, high = 0, MAX_ITEM_BYTES
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if size(mid) <= MAX_ITEM_BYTES else (low, mid - 1)
    return low


async def test_a_value_past_the_item_limit_is_refused_and_writes_nothing(ddb_api: Api) -> None:
    assert await ddb_api.result("SET", "big", "before") == "OK"
    status, body = await ddb_api.cmd("SET", "big", "x" * MAX_ITEM_BYTES)
    assert status == 400, body
    assert body["error"].startswith("ERR value is too large for the dynamodb backend")
    assert f"({MAX_ITEM_BYTES} bytes)" in body["error"]
    assert await ddb_api.result("GET", "big") == "before"

    # the boundary: one byte more than the estimate allows is refused, the largest is
    # stored (so DynamoDB's own count is indeed no larger than kvgate's estimate)
    most = largest_value(KeyType.STRING, b"big")
    assert most > 400 * 1024 - 200
    status, body = await ddb_api.cmd("SET", "big", "y" * (most + 1))
    assert status == 400, body
    assert "value is too large" in body["error"]
    assert await ddb_api.result("GET", "big") == "before"
    assert await ddb_api.result("SET", "big", "z" * most) == "OK"
    assert await ddb_api.result("STRLEN", "big") == most
    assert await ddb_api.result("SET", "big2", "w" * (400 * 1024 - 200)) == "OK"
    assert await ddb_api.result("STRLEN", "big2") == 400 * 1024 - 200

    # APPEND past the limit: refused, the value stays whole
    status, body = await ddb_api.cmd("APPEND", "big", "more")
    assert status == 400, body
    assert "value is too large" in body["error"]
    assert await ddb_api.result("STRLEN", "big") == most


async def test_collections_past_the_item_limit_hold_their_elements_as_items(ddb_api: Api) -> None:
    """A collection is no longer one item: past 400 KB it works; one element still has to
    fit in one item, and one that does not is refused with nothing written."""
    chunk = 120 * 1024
    for i in range(5):
        assert await ddb_api.result("RPUSH", "list", f"{i}" * chunk) == i + 1
        assert await ddb_api.result("HSET", "hash", f"f{i}", f"{i}" * chunk) == 1
    assert await ddb_api.result("LLEN", "list") == 5
    assert [len(v) for v in await ddb_api.result("LRANGE", "list", "0", "-1")] == [chunk] * 5
    assert await ddb_api.result("LINDEX", "list", "-1") == "4" * chunk
    assert await ddb_api.result("HLEN", "hash") == 5
    assert await ddb_api.result("HSTRLEN", "hash", "f4") == chunk
    for args in (("RPUSH", "list", "a", "b" * MAX_ITEM_BYTES), ("HSET", "hash", "f9", "9" * MAX_ITEM_BYTES)):
        status, body = await ddb_api.cmd(*args)
        assert status == 400, body
        assert body["error"].startswith("ERR value is too large for the dynamodb backend")
        assert "one element must fit in one DynamoDB item" in body["error"]
    assert await ddb_api.result("LLEN", "list") == 5
    assert await ddb_api.result("HEXISTS", "hash", "f9") == 0
    # in a pipeline the refusal is that command's error; the others still run
    status, body = await ddb_api.pipeline(
        ["SADD", "set", "m" * (MAX_ITEM_BYTES + 1)], ["SADD", "set", "small"], ["SCARD", "set"]
    )
    assert status == 200
    assert "value is too large" in body[0]["error"]
    assert body[1:] == [{"result": 1}, {"result": 1}]


async def test_key_names_past_dynamodbs_key_limit(ddb_api: Api) -> None:
    longest = "a" * MAX_KEY_NAME_BYTES  # 2047: with kvgate's one-byte prefix, DynamoDB's 2048
    assert await ddb_api.result("SET", longest, "ok") == "OK"
    assert await ddb_api.result("GET", longest) == "ok"
    too_long = "b" * (MAX_KEY_NAME_BYTES + 1)
    for args in (("SET", too_long, "v"), ("INCR", too_long), ("HSET", too_long, "f", "v")):
        status, body = await ddb_api.cmd(*args)
        assert status == 400, (args[0], body)
        assert body["error"] == (
            f"ERR key is too long for the dynamodb backend: {MAX_KEY_NAME_BYTES + 1} bytes, "
            f"at most {MAX_KEY_NAME_BYTES} (DynamoDB's key limit)"
        )
    status, body = await ddb_api.multi(["SET", "short", "1"], ["SET", too_long, "v"])
    assert status == 400, body
    assert body["error"].startswith("ERR key is too long for the dynamodb backend")
    assert body["error"].endswith("; the transaction was not applied")
    assert await ddb_api.result("MGET", "short", too_long, longest) == [None, None, "ok"]
    assert await ddb_api.result("GET", too_long) is None
    assert await ddb_api.result("EXISTS", too_long) == 0
    assert await ddb_api.result("DEL", too_long) == 0
    assert await ddb_api.result("DBSIZE") == 1


async def test_more_keys_than_one_atomic_write_are_refused_whole(ddb_api: Api) -> None:
    over = MAX_TRANSACTION_ITEMS + 1
    names = [f"t{i}" for i in range(over)]
    status, body = await ddb_api.multi(*(["SET", n, "v"] for n in names))
    assert status == 400, body
    assert body["error"] == (
        f"ERR the dynamodb backend changes at most {MAX_TRANSACTION_ITEMS} keys atomically; "
        f"this would change {over} and depend on 0 more; the transaction was not applied"
    )
    status, body = await ddb_api.cmd("MSET", *(x for n in names for x in (n, "v")))
    assert status == 400, body
    assert f"changes at most {MAX_TRANSACTION_ITEMS} keys atomically" in body["error"]
    # reads count too: a transaction's writes are checked against all it read
    assert await ddb_api.result("SET", "base", "1") == "OK"
    status, body = await ddb_api.multi(*(["GET", n] for n in names[:100]), ["INCR", "base"])
    assert status == 400, body
    assert "this would change 1 and depend on 100 more" in body["error"]
    assert await ddb_api.result("GET", "base") == "1"
    assert await ddb_api.result("DBSIZE") == 1

    # exactly at the limit: applied, all of it
    status, body = await ddb_api.multi(*(["SET", n, "m"] for n in names[:MAX_TRANSACTION_ITEMS]))
    assert (status, body) == (200, [{"result": "OK"}] * MAX_TRANSACTION_ITEMS)
    assert await ddb_api.result("MSET", *(x for n in names[:MAX_TRANSACTION_ITEMS] for x in (n, "s"))) == "OK"
    assert await ddb_api.result("MGET", *names) == ["s"] * MAX_TRANSACTION_ITEMS + [None]
    assert await ddb_api.result("DBSIZE") == MAX_TRANSACTION_ITEMS + 1


async def test_more_bytes_than_one_atomic_write_are_refused_whole(ddb_api: Api) -> None:
    value = "v" * (MAX_ITEM_BYTES - 1024)
    count = MAX_TRANSACTION_BYTES // len(value) + 1  # each fits alone, together they do not
    status, body = await ddb_api.cmd("MSET", *(x for i in range(count) for x in (f"m{i}", value)))
    assert status == 400, body
    assert body["error"].startswith(f"ERR the dynamodb backend writes at most {MAX_TRANSACTION_BYTES} bytes")
    assert await ddb_api.result("DBSIZE") == 0


# --- expiry ------------------------------------------------------------------------------


async def test_expired_keys_are_filtered_on_read(
    gateway_client: GatewayClient, dynamodb_local: DynamoDBLocal, table_url: str
) -> None:
    url = table_url
    api = Api(await gateway_client(make_config(url)))
    assert await api.result("SET", "live", "1") == "OK"
    # (half a second: a loaded machine takes more than 100 ms for the three writes)
    assert await api.result("SET", "k", "v", "PX", "500") == "OK"
    assert await api.result("SET", "n", "41", "PX", "500") == "OK"
    assert await api.result("SET", "kept", "1", "EX", "100") == "OK"
    assert await api.result("GET", "k") == "v"
    # An expired item DynamoDB has not deleted yet.  Its TTL deletion is lazy on AWS, but
    # DynamoDB Local may delete 'k' within a second, so this one's 'ttl' lies an hour
    # ahead while kvgate's own expiry, 'x', is already past: only kvgate's filter hides it.
    raw = raw_client(dynamodb_local)
    stale = {"pk": {"B": b"kstale"}, "sk": {"B": b"h"}, "ver": {"B": b"12345678"}, "t": {"N": "0"}}
    stale["v"] = {"B": b"old"}
    stale |= {"x": {"N": str(int(time.time() * 1000) - 1000)}, "ttl": {"N": str(int(time.time()) + 3600)}}
    raw.put_item(TableName=table_of(url), Item=stale)
    await asyncio.sleep(0.6)
    # INCR's UpdateItem ADD path must not add to an expired number, nor drop a live TTL
    assert await api.result("INCR", "n") == 1
    assert await api.result("TTL", "n") == -1
    assert await api.result("INCRBY", "kept", "5") == 6
    assert 0 < await api.result("TTL", "kept") <= 100
    assert await api.result("DEL", "n", "kept") == 2
    for name in ("k", "stale"):
        assert await api.result("GET", name) is None
        assert await api.result("EXISTS", name) == 0
        assert await api.result("TTL", name) == -2
    assert await api.result("DBSIZE") == 1
    assert await api.result("KEYS", "*") == ["live"]
    assert await api.result("SCAN", "0") == ["0", ["live"]]
    assert await api.result("SCAN", "0", "MATCH", "*k*", "COUNT", "1000") == ["0", []]
    assert await api.result("RANDOMKEY") == "live"

    # still physically there: reads filter on 'x', whatever DynamoDB's TTL has done
    item = raw.get_item(
        TableName=table_of(url), Key={"pk": {"B": b"kstale"}, "sk": {"B": b"h"}}, ConsistentRead=True
    )["Item"]
    assert item["v"] == {"B": b"old"}
    assert "x" in item and "ttl" in item
    # what kvgate writes: DynamoDB's 'ttl' (s) never before kvgate's own expiry 'x' (ms)
    written = raw.get_item(
        TableName=table_of(url), Key={"pk": {"B": b"klive"}, "sk": {"B": b"h"}}, ConsistentRead=True
    )["Item"]
    assert "x" not in written
    assert await api.result("PEXPIRE", "live", "100000") == 1
    written = raw.get_item(
        TableName=table_of(url), Key={"pk": {"B": b"klive"}, "sk": {"B": b"h"}}, ConsistentRead=True
    )["Item"]
    assert int(written["ttl"]["N"]) * 1000 >= int(written["x"]["N"])
    assert await api.result("PERSIST", "live") == 1

    # and a write over it starts from nothing, as in Redis
    assert await api.result("APPEND", "k", "new") == 3
    assert await api.result("GET", "k") == "new"
    assert await api.result("TTL", "k") == -1


# --- SCAN across processes -----------------------------------------------------------------


async def test_a_scan_cursor_continues_on_another_process(table_url: str) -> None:
    url = table_url
    servers = [KvgateServer("--backend", url, "--token", RW).start() for _ in range(2)]
    seeded = {f"key:{i}" for i in range(23)}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            status, body = await post(
                session, servers[0].url, ["MSET", *(x for k in seeded for x in (k, "v"))]
            )
            assert (status, body) == (200, {"result": "OK"})
            found: list[str] = []
            cursor, calls = "0", 0
            while True:
                # the first page on process A, each next one on the other process
                status, body = await post(session, servers[calls % 2].url, ["SCAN", cursor, "COUNT", "2"])
                assert status == 200, body
                cursor, keys = body["result"]
                found += keys
                calls += 1
                if cursor == "0":
                    break
                assert calls < 500, "the scan does not end"
            assert calls > 2  # it did go through several cursors, on both processes
            assert set(found) == seeded
    finally:
        for s in servers:
            s.close()


# --- start-up and the CLI ------------------------------------------------------------------


def run_kvgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kvgate", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_missing_table_stops_kvgate_with_one_line(dynamodb_local: DynamoDBLocal, workers: str) -> None:
    url = dynamodb_local.url("no-such-table")
    proc = run_kvgate("serve", "--backend", url, "--token", "t", "--workers", workers)
    assert proc.returncode != 0, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0] == (
        f"kvgate: database 'default': dynamodb: table 'no-such-table' does not exist at "
        f"{dynamodb_local.endpoint}; create it with: kvgate dynamodb create-table '{url}'"
    )


def test_create_table_from_the_cli(dynamodb_local: DynamoDBLocal) -> None:
    table = f"kvgate-cli-{uuid.uuid4().hex[:12]}"
    url = dynamodb_local.url(table)
    first = run_kvgate("dynamodb", "create-table", url)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == (
        f"table {table} created at {dynamodb_local.endpoint} (on-demand billing, TTL on attribute 'ttl')"
    )
    again = run_kvgate("dynamodb", "create-table", url)
    assert again.returncode == 0, again.stderr
    assert f"table {table} already exists" in again.stdout

    client = raw_client(dynamodb_local)
    ttl = client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    description = client.describe_table(TableName=table)["Table"]
    assert description["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert sorted(description["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": "pk", "AttributeType": "B"},
        {"AttributeName": "sk", "AttributeType": "B"},
    ]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("dynamodb://a?region=us-east-1", "a DynamoDB URL names its table"),
        ("dynamodb://kvtable?region=us-east-1&colour=blue", "unknown dynamodb URL option(s): colour"),
        ("dynamodb://kvtable/sub?region=us-east-1", "a DynamoDB URL has no path"),
        ("dynamodb://kvtable?endpoint_url=ftp://x", "endpoint_url must be an http:// or https:// URL"),
    ],
)
def test_bad_dynamodb_urls_are_one_line_errors(url: str, message: str) -> None:
    created = run_kvgate("dynamodb", "create-table", url)
    assert created.returncode == 2, (created.stdout, created.stderr)
    assert message in created.stderr
    assert "Traceback" not in created.stderr
    err = serve_fails("--backend", url, "--token", "t")
    assert message in err


def test_a_table_with_another_key_schema_is_refused(dynamodb_local: DynamoDBLocal) -> None:
    table = f"not-kvgate-{uuid.uuid4().hex[:12]}"
    raw_client(dynamodb_local).create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    proc = run_kvgate("serve", "--backend", dynamodb_local.url(table), "--token", "t")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"table {table!r} is not a kvgate table" in lines[0]
    assert "kvgate dynamodb create-table" in lines[0]


# --- DynamoDB going away -------------------------------------------------------------------


async def test_dynamodb_going_away_answers_503_and_kvgate_keeps_serving(
    private_dynamodb: tuple[DynamoDBLocal, str],
) -> None:
    ddb, url = private_dynamodb
    server: KvgateServer | None = None
    try:
        server = KvgateServer("--backend", url, "--token", RW, "--timeout", "1").start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            assert await post(session, server.url, ["SET", "k", "before"]) == (200, {"result": "OK"})
            assert (await get(session, server.url + "/_kvgate/health"))[0] == 200

            # DynamoDB frozen: the write left and no answer came; kvgate cannot know
            assert ddb.proc is not None
            os.kill(ddb.proc.pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                status, body = await post(session, server.url, ["SET", "k", "frozen"])
                assert time.monotonic() - started < 5
            finally:
                os.kill(ddb.proc.pid, signal.SIGCONT)
            assert status in (503, 504), body
            assert body["error"].endswith("the command may or may not have been applied"), body
            assert await post(session, server.url, ["GET", "k"]) in (
                (200, {"result": "before"}),
                (200, {"result": "frozen"}),
            )

            # DynamoDB gone: the connection is refused, so nothing was sent
            ddb.close()
            status, body = await post(session, server.url, ["GET", "k"])
            assert status == 503, body
            assert body["error"].startswith("ERR dynamodb is unreachable (")
            assert body["error"].endswith("; nothing was changed")
            status, body = await post(session, server.url, ["SET", "k", "during"])
            assert status == 503, body
            assert body["error"].startswith("ERR dynamodb is unreachable (")
            assert body["error"].endswith(
                ("; the command may or may not have been applied", "; nothing was changed")
            )
            status, body = await post(session, server.url + "/multi-exec", [["INCR", "a"], ["INCR", "b"]])
            assert status == 503, body
            assert "dynamodb is unreachable" in body["error"]
            status, body = await get(session, server.url + "/_kvgate/health")
            assert status == 503, body
            assert body["status"] == "degraded"
            assert body["databases"]["default"]["ok"] is False
            assert body["databases"]["default"]["backend"] == "dynamodb"

            # kvgate itself is fine: it keeps answering, commands that need no backend too
            assert server.proc is not None and server.proc.poll() is None
            assert await post(session, server.url, ["PING"]) == (200, {"result": "PONG"})
            assert (await post(session, server.url, ["GET", "k"]))[0] == 503

            # DynamoDB back on the same port (in memory: the table again, empty)
            ddb.start()
            await create_table(url)
            assert await post(session, server.url, ["SET", "k", "after"]) == (200, {"result": "OK"})
            assert await post(session, server.url, ["GET", "k"]) == (200, {"result": "after"})
            assert (await get(session, server.url + "/_kvgate/health"))[0] == 200
            assert server.proc.poll() is None
    finally:
        if server is not None:
            server.close()
