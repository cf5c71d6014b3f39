"""No request holds the event loop on SQLite (issue 15, defect 1): scripts and reads heavier
than a point read run on reader threads, so a concurrent PING or GET is answered at once.

Each test runs a slow request and, while it runs, times requests from another client on
the same gateway.  Before reads left the loop these waited for the whole slow request
(EVAL_RO's loop: its full time limit; a 7.5 MB EXISTS: 3 s; 10,000 MGETs: 1.2 s).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from kvgate.adapters.sqlite import LOOP_ARGS, LOOP_READS, SqliteBackend
from kvgate.engine import command_table
from tests.support.api import GATEWAYS, RO, RW, Api, GatewayClient, make_config


def sqlite_config(tmp_path: Path, **options: Any) -> Any:
    return make_config(f"sqlite:///{tmp_path / 'loop.db'}", **options)


def backend_of(api: Api) -> SqliteBackend:
    backend = GATEWAYS[api.client].databases[0][1].backend
    assert isinstance(backend, SqliteBackend)
    return backend


async def delays_while(api: Api, slow: Awaitable[Any], probe: list[Any]) -> tuple[float, int, Any, float]:
    """Run ``slow``; while it runs, send ``probe`` again and again.  Returns the longest
    wait for a probe's answer (from the previous answer, so that a stall anywhere in the
    loop counts), how many were answered, the slow request's outcome and its duration.

    The objects the test session has made so far are frozen meanwhile: deep into a run,
    a full garbage collection over them paused the loop for 200 ms, which a kvgate
    process, with its small heap, does not see."""
    gc.collect()
    gc.freeze()
    try:
        return await _delays_while(api, slow, probe)
    finally:
        gc.unfreeze()


async def _delays_while(api: Api, slow: Awaitable[Any], probe: list[Any]) -> tuple[float, int, Any, float]:
    started = last = time.perf_counter()
    task = asyncio.ensure_future(slow)
    worst, answered = 0.0, 0
    while True:
        done = task.done()  # one more probe after it: it may have held the loop to its end
        status, _ = await api.cmd(*probe)
        assert status == 200
        answered += 1
        now = time.perf_counter()
        worst, last = max(worst, now - last), now
        if done:
            break
        await asyncio.sleep(0.005)
        now = time.perf_counter()
        worst, last = max(worst, now - last), now
    outcome = await task
    return worst, answered, outcome, time.perf_counter() - started


async def post_raw(api: Api, path: str, body: bytes) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {RW}", "Content-Type": "application/json"}
    async with api.client.post(path, data=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_a_read_only_tokens_looping_script_does_not_delay_a_concurrent_get(
    gateway_client: GatewayClient, tmp_path: Path
) -> None:
    api = Api(await gateway_client(sqlite_config(tmp_path)))
    backend_of(api).scripting.limits.time_limit_ms = 1500
    assert await api.result("SET", "k", "v") == "OK"
    reader = Api(api.client, token=RO)
    worst, answered, (status, body), _ = await delays_while(
        api, reader.cmd("EVAL_RO", "while true do end", "0"), ["GET", "k"]
    )
    assert (status, body["error"]) == (
        400,
        "ERR script timed out after 1500 ms and was aborted (kvgate's script time limit)",
    )
    assert worst < 0.5, f"a GET waited {worst * 1000:.0f} ms behind a script"
    assert answered > 10


async def test_a_huge_exists_does_not_stall_a_concurrent_ping(
    gateway_client: GatewayClient, tmp_path: Path
) -> None:
    api = Api(await gateway_client(sqlite_config(tmp_path)))
    body = json.dumps(["EXISTS", *(f"key:{i:08d}" for i in range(480_000))]).encode()
    assert len(body) > 7_500_000
    worst, answered, (status, reply), took = await delays_while(api, post_raw(api, "/", body), ["PING"])
    assert (status, reply) == (200, {"result": 0})
    # Parsing the body's JSON still happens on the loop (a third of a second); running the
    # command (three times that, or more) does not.
    assert worst < took / 3, f"a PING waited {worst * 1000:.0f} ms of the EXISTS's {took * 1000:.0f} ms"
    assert answered > 5


async def test_a_pipeline_of_ten_thousand_mgets_does_not_stall_a_concurrent_ping(
    gateway_client: GatewayClient, tmp_path: Path
) -> None:
    api = Api(await gateway_client(sqlite_config(tmp_path)))
    assert await api.result("MSET", *(x for i in range(2000) for x in (f"k{i}", "v"))) == "OK"
    batch = [["MGET", *(f"k{(i * 7 + j) % 2000}" for j in range(10))] for i in range(10_000)]
    worst, answered, (status, replies), took = await delays_while(
        api, post_raw(api, "/pipeline", json.dumps(batch).encode()), ["PING"]
    )
    assert status == 200 and len(replies) == 10_000 and replies[0] == {"result": ["v"] * 10}
    assert worst < took / 3, f"a PING waited {worst * 1000:.0f} ms of the pipeline's {took * 1000:.0f} ms"
    assert answered > 3


@pytest.mark.parametrize(
    ("commands", "on_loop"),
    [
        ([["GET", "k"]], True),
        ([["MGET", *(f"k{i}" for i in range(LOOP_ARGS - 1))]], True),
        ([["MGET", *(f"k{i}" for i in range(LOOP_ARGS))]], False),
        ([["GET", f"k{i}"] for i in range(LOOP_ARGS // 2)], True),
        ([["GET", f"k{i}"] for i in range(LOOP_ARGS // 2 + 1)], False),
        ([["PING"], ["HGET", "h", "f"], ["ZSCORE", "z", "m"]], True),
        ([["EVAL_RO", "return 1", "0"]], False),
        ([["EVALSHA_RO", "e0e1f9fabfc9d4800c877a703b823ac0578ff831", "0"]], False),
        ([["GET", "k"], ["SCARD", "s"]], False),
        ([["DBSIZE"]], False),
        ([["SCAN", "0"]], False),
        ([["KEYS", "*"]], False),
        ([["ZRANGE", "z", "0", "-1"]], False),
        ([["SMEMBERS", "s"]], False),
    ],
)
def test_only_point_reads_with_few_arguments_stay_on_the_loop(
    commands: list[list[str]], on_loop: bool
) -> None:
    encoded = [[a.encode() for a in command] for command in commands]
    assert SqliteBackend.on_loop(encoded) is on_loop


def test_the_loop_reads_are_reads_of_the_engine() -> None:
    """A write named among the loop's reads would bypass the writer thread."""
    for name in LOOP_READS:
        command = command_table().get(name.decode())
        assert command is not None and command.supported, name
        assert command.readonly_token and "write" not in command.flags, name


async def test_reads_on_reader_threads_answer_504_past_the_timeout(
    gateway_client: GatewayClient, tmp_path: Path
) -> None:
    api = Api(await gateway_client(sqlite_config(tmp_path, timeout=0.3)))
    backend_of(api).scripting.limits.time_limit_ms = 1000
    status, body = await api.cmd("EVAL_RO", "while true do end", "0")
    assert (status, body) == (
        504,
        {"error": "ERR the sqlite readers did not answer within 0.3s; nothing was changed"},
    )
    assert await api.result("DBSIZE") == 0  # the next read waits for a free reader, no more


async def test_reads_on_reader_threads_count_in_max_inflight(
    gateway_client: GatewayClient, tmp_path: Path
) -> None:
    api = Api(await gateway_client(sqlite_config(tmp_path, max_inflight=1)))
    backend = backend_of(api)
    backend.scripting.limits.time_limit_ms = 300
    # a fixed 50 ms wait for the script to be queued was too short on a loaded CI machine
    queued = asyncio.Event()
    submit_read = backend._submit_read

    async def noted(commands: list[Any], budget: Any) -> Any:
        queued.set()
        return await submit_read(commands, budget)

    backend._submit_read = noted  # type: ignore[method-assign]
    first = asyncio.ensure_future(api.cmd("EVAL_RO", "while true do end", "0"))
    await asyncio.wait_for(queued.wait(), 5)
    assert await api.cmd("SCAN", "0") == (
        503,
        {"error": "ERR too many commands waiting for the sqlite readers; retry later"},
    )
    assert (await first)[0] == 400
    assert await api.result("SCAN", "0") == ["0", []]


async def test_a_read_on_a_reader_thread_sees_one_snapshot(
    gateway_client: GatewayClient, tmp_path: Path
) -> None:
    """A script reading a key twice sees it unchanged, though a write commits in between."""
    api = Api(await gateway_client(sqlite_config(tmp_path)))
    assert await api.result("SET", "k", "before") == "OK"
    script = """
    local first = redis.call('GET', KEYS[1])
    for i = 1, tonumber(ARGV[1]) do end
    return {first, redis.call('GET', KEYS[1])}
    """
    read = asyncio.ensure_future(api.cmd("EVAL_RO", script, "1", "k", "30000000"))
    await asyncio.sleep(0.05)
    assert await api.result("SET", "k", "after") == "OK"
    assert not read.done(), "the script ended before the write: make it spin longer"
    assert await read == (200, {"result": ["before", "before"]})
    assert await api.result("GET", "k") == "after"


BACKTRACKING = "return string.find(string.rep('a', 120), string.rep('a*', 4) .. 'b')"


async def test_a_backtracking_pattern_is_stopped_at_the_time_limit_and_stalls_no_one(
    gateway_client: GatewayClient, tmp_path: Path
) -> None:
    """One C call of the pattern matcher took 2.2 s past a 300 ms limit, on the event loop."""
    api = Api(await gateway_client(sqlite_config(tmp_path)))
    backend_of(api).scripting.limits.time_limit_ms = 300
    reader = Api(api.client, token=RO)
    worst, _, (status, body), took = await delays_while(
        api, reader.cmd("EVAL_RO", BACKTRACKING, "0"), ["GET", "k"]
    )
    assert took < 0.7, f"the script ran {took * 1000:.0f} ms"
    assert worst < 0.2, f"a GET waited {worst * 1000:.0f} ms"
    assert (status, body["error"]) == (
        400,
        "ERR script timed out after 300 ms and was aborted (kvgate's script time limit)",
    )


async def test_a_backtracking_write_script_holds_the_writer_no_longer_than_its_time_limit(
    gateway_client: GatewayClient, tmp_path: Path
) -> None:
    """A writing script runs on the one writer thread: every write waits for it."""
    api = Api(await gateway_client(sqlite_config(tmp_path)))
    backend_of(api).scripting.limits.time_limit_ms = 300
    script = "redis.call('SET', 'before', '1') " + BACKTRACKING
    worst, _, (status, body), took = await delays_while(api, api.cmd("EVAL", script, "0"), ["SET", "k", "v"])
    assert took < 0.7, f"the script ran {took * 1000:.0f} ms"
    assert worst < 0.7, f"a SET waited {worst * 1000:.0f} ms for the writer"
    assert status == 400 and "script timed out" in body["error"]
    assert await api.result("GET", "before") == "1"  # what it wrote before the limit stays


async def test_a_large_batch_is_checked_and_encoded_a_slice_at_a_time(
    gateway_client: GatewayClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's own work on a 10,000-command pipeline (checking each command, encoding
    each reply: about 20 ms) is done LOOP_SLICE commands at a time, other callbacks
    running in between: counted in loop turns, not timed."""
    from kvgate import app as app_module
    from kvgate.database import LOOP_SLICE, Database

    api = Api(await gateway_client(sqlite_config(tmp_path)))
    turns = 0
    seen: dict[str, list[int]] = {"prepare": [], "envelope": []}

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    prepare, envelope = Database.prepare, app_module.envelope

    def counted_prepare(self: Database, *args: Any) -> Any:
        seen["prepare"].append(turns)
        return prepare(self, *args)

    def counted_envelope(*args: Any) -> Any:
        seen["envelope"].append(turns)
        return envelope(*args)

    monkeypatch.setattr(Database, "prepare", counted_prepare)
    monkeypatch.setattr(app_module, "envelope", counted_envelope)
    n = 10_000
    counter = asyncio.create_task(count_turns())
    try:
        status, replies = await api.pipeline(*(["GET", f"k{i}"] for i in range(n)))
    finally:
        counter.cancel()
    assert status == 200 and replies == [{"result": None}] * n
    for phase, marks in seen.items():
        assert len(marks) == n
        slices = [marks[i : i + LOOP_SLICE] for i in range(0, n, LOOP_SLICE)]
        assert all(len(set(s)) == 1 for s in slices), f"{phase}: the loop ran inside a slice"
        assert all(a[0] < b[0] for a, b in itertools.pairwise(slices)), f"{phase}: no turn between slices"
