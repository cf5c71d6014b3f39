#!/usr/bin/env python3
"""kvgate's added latency on its DynamoDB backend: kvgate vs a direct aiobotocore call.

    python -m bench.dynamodb [--requests N] [--json PATH] [--no-concurrent] [--keep-logs]

Starts one DynamoDB Local (AWS's emulator, in memory, tests/support/servers.py's
DynamoDBLocal), creates a table with kvgate's own create_table, starts ``kvgate serve
--workers 1`` on it and the aiohttp ceiling (bench/aiohttp_ceiling.py, 1 worker: the HTTP
hop alone), all on free loopback ports, checks one real reply from each path, then
measures from one client process:

* one request at a time, the paths interleaved round by round: GET (``get_item`` with
  ``ConsistentRead``), SET (``put_item`` of the item kvgate writes) and INCR (``update_item
  ADD``, kvgate's own expression) straight to DynamoDB Local, against the same command through
  kvgate, and the same HTTP request to the ceiling;
* through kvgate only, a ``/pipeline`` of 100 SETs of distinct keys and one of 100 GETs
  against one SET, round by round (target: a pipeline's p50 within 3x one SET's);
* 16 concurrent clients for a few seconds, GET, throughput of the direct path and of kvgate,
  and the CPU time each process (this client, kvgate, DynamoDB Local) spent per request.

It prints p50/p90/p99 per path, kvgate's added latency (kvgate p50 - direct p50) and ratio
next to the target (<= 1 ms at p50), and stops everything it started, also on error or
Ctrl-C.  Nothing here is a timed assertion; the exit status is 1 only when something failed
to start or a reply was wrong.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiobotocore.session import get_session

from bench.run import (
    AIOHTTP_1W,
    HOST,
    NOISY_PCT,
    TOKEN,
    BenchError,
    Service,
    busy_before,
    first_line,
    free_ports,
    report_logs,
    services,
    start_ceiling,
    start_kvgate,
)
from kvgate.adapters import dynamodb_items as items
from kvgate.adapters.dynamodb import _client_config, create_table, increment_request
from kvgate.adapters.dynamodb_items import Entry
from kvgate.engine.storage import Key, KeyType
from tests.support.servers import DYNAMODB_LOCAL_PACKAGE, DynamoDBLocal

TABLE = "kvgate-bench"
REGION = "us-east-1"
CONCURRENCY = 16
#: kvgate's --pool-size and the direct client's pool: the same number of keep-alive
#: connections to DynamoDB on both paths, enough for every concurrent client.
POOL_SIZE = CONCURRENCY
CLIENT_TIMEOUT = 10.0  # seconds per request, both paths (kvgate's --timeout default)

DEFAULT_REQUESTS = 2000  # per path and test
WARMUP_SECONDS = 6.0  # all paths and tests, not reported: DynamoDB Local's JIT warms up
WARMUP_ROUNDS = 100  # at the start of each test, not reported
TEST_CAP_SECONDS = 15.0  # a sequential test stops there whatever --requests says
SLICE_SECONDS = 1.0  # the concurrent run alternates paths in slices of this length...
SLICES = 3  # ...this many per path (plus one warm-up slice of half that each)

TARGET_ADDED_MS = 1.0  # kvgate p50 - direct p50; printed, never asserted
PIPELINE_LENGTH = 100  # commands per /pipeline in the pipeline test
PIPELINE_REQUESTS = 200  # rounds of the pipeline test (each: one SET, two pipelines)
TARGET_PIPELINE_RATIO = 3.0  # a /pipeline of 100's p50 / one SET's p50; printed, never asserted

DIRECT = "direct"
KVGATE = "kvgate"
HOP = "http hop"  # the aiohttp ceiling: the same HTTP request, a constant reply
CLIENT = "client"  # this script's process (CPU per request)
DDB = "dynamodb local"

GET_KEY, GET_VALUE = b"foo", b"bar"
SET_KEY, SET_VALUE = b"bench:set", b"bar"
INCR_KEY = b"bench:counter"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AUTH_JSON = {**AUTH, "Content-Type": "application/json"}


def pk(name: bytes) -> dict[str, Any]:
    return items.head_key(name)  # the key's head item: partition and sort key


# --------------------------------------------------------------------------- CPU meter


class OtherCpu:
    """CPU used by processes this script did not start, as bench/run.py's CpuMeter (share of
    all cores, from /proc/stat, minus ours), except that DynamoDB Local, which
    tests/support/servers.py starts in our own session, counts as ours by its pid."""

    def __init__(self, started: list[Service], pids: set[int]):
        self.started = started
        self.pids = pids
        self.tick = os.sysconf("SC_CLK_TCK")
        self.cpus = os.cpu_count() or 1
        self.before: tuple[float, float, float] | None = None

    def seconds_of(self, sessions: set[int], pids: set[int]) -> float:
        """CPU seconds used so far by the processes of ``sessions`` and by ``pids``."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                after_name = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # exited meanwhile
            if int(after_name[3]) in sessions or int(stat.parent.name) in pids:
                ticks += int(after_name[11]) + int(after_name[12])
        return ticks / self.tick

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        except (OSError, ValueError):
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        busy = (user + nice + system + irq + softirq + steal) / self.tick
        servers = self.seconds_of({service.proc.pid for service in self.started}, self.pids)
        usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        return time.monotonic(), busy, servers + sum(u.ru_utime + u.ru_stime for u in usage)

    def start(self) -> None:
        self.before = self._sample()

    def other_pct(self) -> float | None:
        """Percent of all cores used by others since start()."""
        after = self._sample()
        if not self.before or not after or after[0] <= self.before[0]:
            return None
        elapsed = after[0] - self.before[0]
        others = (after[1] - self.before[1]) - (after[2] - self.before[2])
        return max(0.0, 100 * others / (elapsed * self.cpus))


# --------------------------------------------------------------------------- the paths

Op = Callable[[], Awaitable[int]]  # one request, checked; returns its latency in ns


class Paths:
    """The requests measured: each times the request and reading its reply, then checks it."""

    def __init__(self, client: Any, session: aiohttp.ClientSession, kvgate: str, ceiling: str):
        self.client = client
        self.session = session
        self.kvgate = kvgate
        self.ceiling = ceiling
        self.counter = 0  # INCR_KEY's value: every INCR, by either path, must answer the next one
        self.get_url = f"{kvgate}/get/{GET_KEY.decode()}"
        self.set_body = json.dumps(["SET", SET_KEY.decode(), SET_VALUE.decode()]).encode()
        self.incr_body = json.dumps(["INCR", INCR_KEY.decode()]).encode()

    # -- direct: aiobotocore, the calls kvgate's backend makes for these commands

    async def direct_get(self) -> int:
        t0 = time.perf_counter_ns()
        r = await self.client.get_item(TableName=TABLE, Key=pk(GET_KEY), ConsistentRead=True)
        elapsed = time.perf_counter_ns() - t0
        if r.get("Item", {}).get("v") != {"B": GET_VALUE}:
            raise BenchError(f"direct get_item: wrong reply {r.get('Item')!r}")
        return elapsed

    async def direct_set(self) -> int:
        # the item kvgate writes for SET, from its own encoder (built outside the timing)
        item = items.encode(Entry(Key(SET_KEY, KeyType.STRING, None, SET_VALUE)), items.new_token())
        t0 = time.perf_counter_ns()
        r = await self.client.put_item(TableName=TABLE, Item=item)
        elapsed = time.perf_counter_ns() - t0
        if r["ResponseMetadata"]["HTTPStatusCode"] != 200:
            raise BenchError(f"direct put_item: wrong reply {r!r}")
        return elapsed

    async def direct_incr(self) -> int:
        # kvgate's INCR as one UpdateItem, the very request kvgate sends
        request = increment_request(TABLE, INCR_KEY, 1, time.time_ns() // 1_000_000)
        t0 = time.perf_counter_ns()
        r = await self.client.update_item(**request)
        elapsed = time.perf_counter_ns() - t0
        self.counter += 1
        got = r.get("Attributes", {}).get("v")
        if got != {"N": str(self.counter)}:
            raise BenchError(f"direct update_item: expected {self.counter}, got {got!r}")
        return elapsed

    # -- kvgate and the ceiling: aiohttp, keep-alive

    async def _http(self, label: str, url: str, body: bytes | None, expected: Any) -> int:
        t0 = time.perf_counter_ns()
        if body is None:
            async with self.session.get(url, headers=AUTH) as resp:
                raw = await resp.read()
        else:
            async with self.session.post(url, data=body, headers=AUTH_JSON) as resp:
                raw = await resp.read()
        elapsed = time.perf_counter_ns() - t0
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        if resp.status != 200 or decoded != expected:
            method = "GET" if body is None else f"POST {body.decode()}"
            raise BenchError(
                f"{label}: wrong reply to {method} {url}: expected 200 {json.dumps(expected)}, "
                f"got {resp.status} {raw[:300]!r}"
            )
        return elapsed

    async def kvgate_get(self) -> int:
        return await self._http(KVGATE, self.get_url, None, {"result": GET_VALUE.decode()})

    async def kvgate_set(self) -> int:
        return await self._http(KVGATE, self.kvgate + "/", self.set_body, {"result": "OK"})

    async def kvgate_incr(self) -> int:
        self.counter += 1
        return await self._http(KVGATE, self.kvgate + "/", self.incr_body, {"result": self.counter})

    async def kvgate_pipeline(self, body: bytes, expected: list[Any]) -> int:
        return await self._http(KVGATE, self.kvgate + "/pipeline", body, expected)

    def pipeline_tests(self) -> list[tuple[str, Op]]:
        """Through kvgate: one SET, one GET, a /pipeline of PIPELINE_LENGTH SETs of distinct
        keys and one of as many GETs of them; directly, DynamoDB's floor for the same: one
        PutItem, one GetItem, one TransactWriteItems of as many Puts (what kvgate sends for
        such a pipeline) and one BatchGetItem of as many keys."""
        names = [f"bench:p{i}" for i in range(PIPELINE_LENGTH)]
        sets = json.dumps([["SET", n, "v"] for n in names]).encode()
        gets = json.dumps([["GET", n] for n in names]).encode()
        puts = [
            {
                "Put": {
                    "TableName": TABLE,
                    "Item": items.encode(
                        Entry(Key(n.encode(), KeyType.STRING, None, b"v")), items.new_token()
                    ),
                }
            }
            for n in names
        ]
        keys = [pk(n.encode()) for n in names]

        async def transact() -> int:
            t0 = time.perf_counter_ns()
            await self.client.transact_write_items(TransactItems=puts)
            return time.perf_counter_ns() - t0

        async def batch_get() -> int:
            t0 = time.perf_counter_ns()
            r = await self.client.batch_get_item(RequestItems={TABLE: {"Keys": keys, "ConsistentRead": True}})
            elapsed = time.perf_counter_ns() - t0
            if len(r["Responses"][TABLE]) != len(keys) or r.get("UnprocessedKeys"):
                raise BenchError(f"direct batch_get_item: {len(r['Responses'][TABLE])} of {len(keys)} items")
            return elapsed

        n = PIPELINE_LENGTH
        return [
            (f"{KVGATE} SET", self.kvgate_set),
            (f"{KVGATE} GET", self.kvgate_get),
            (f"{KVGATE} pipeline {n} SET", lambda: self.kvgate_pipeline(sets, [{"result": "OK"}] * n)),
            (f"{KVGATE} pipeline {n} GET", lambda: self.kvgate_pipeline(gets, [{"result": "v"}] * n)),
            (f"{DIRECT} PutItem", self.direct_set),
            (f"{DIRECT} GetItem", self.direct_get),
            (f"{DIRECT} TransactWriteItems {n}", transact),
            (f"{DIRECT} BatchGetItem {n}", batch_get),
        ]

    async def hop_get(self) -> int:
        return await self._http(HOP, self.ceiling + "/get/foo", None, {"result": "bar"})

    async def hop_post(self, body: bytes) -> int:
        return await self._http(HOP, self.ceiling + "/", body, {"result": "bar"})

    def tests(self) -> list[tuple[str, list[tuple[str, Op]]]]:
        return [
            ("GET", [(DIRECT, self.direct_get), (KVGATE, self.kvgate_get), (HOP, self.hop_get)]),
            (
                "SET",
                [
                    (DIRECT, self.direct_set),
                    (KVGATE, self.kvgate_set),
                    (HOP, lambda: self.hop_post(self.set_body)),
                ],
            ),
            (
                "INCR",
                [
                    (DIRECT, self.direct_incr),
                    (KVGATE, self.kvgate_incr),
                    (HOP, lambda: self.hop_post(self.incr_body)),
                ],
            ),
        ]


async def verify(paths: Paths) -> None:
    """One real reply per path, and the items each side writes readable by the other."""
    # seeded by kvgate, read both ways
    await paths._http(
        KVGATE, paths.kvgate + "/", json.dumps(["SET", "foo", "bar"]).encode(), {"result": "OK"}
    )
    await paths.kvgate_get()
    await paths.direct_get()
    # SET: the item put directly is a string kvgate reads; kvgate's own has the same attributes
    await paths.direct_set()
    await paths._http(KVGATE, f"{paths.kvgate}/get/{SET_KEY.decode()}", None, {"result": "bar"})
    ours = (await paths.client.get_item(TableName=TABLE, Key=pk(SET_KEY), ConsistentRead=True))["Item"]
    await paths.kvgate_set()
    theirs = (await paths.client.get_item(TableName=TABLE, Key=pk(SET_KEY), ConsistentRead=True))["Item"]
    if sorted(ours) != sorted(theirs) or ours["v"] != theirs["v"] or ours["t"] != theirs["t"]:
        raise BenchError(f"direct put_item writes {ours!r}, kvgate's SET writes {theirs!r}")
    # INCR: both paths add to the same counter (1 from kvgate, 2 directly, 3 from kvgate)
    await paths.kvgate_incr()
    await paths.direct_incr()
    await paths.kvgate_incr()
    await paths._http(KVGATE, f"{paths.kvgate}/get/{INCR_KEY.decode()}", None, {"result": "3"})
    await paths.hop_get()
    await paths.hop_post(paths.set_body)
    print(
        "  replies verified: kvgate GET {'result': 'bar'}, direct get_item v=bar; direct put_item "
        "writes the item kvgate writes; INCR 1, 2, 3 alternating paths; ceiling {'result': 'bar'}"
    )


# --------------------------------------------------------------------------- measuring


@dataclass
class Stats:
    test: str
    path: str
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    other_cpu_pct: float | None = None
    requests_per_s: float | None = None  # concurrent run only
    #: concurrent run only: CPU ms per request of each process taking part (client, ...)
    cpu_ms_per_request: dict[str, float] | None = None


def percentile(ordered: Sequence[int], pct: float) -> float:
    """Nearest rank, in ms."""
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)] / 1e6


def stats(test: str, path: str, samples: list[int]) -> Stats:
    ordered = sorted(samples)
    return Stats(
        test,
        path,
        len(ordered),
        percentile(ordered, 50),
        percentile(ordered, 90),
        percentile(ordered, 99),
        sum(ordered) / len(ordered) / 1e6,
        ordered[0] / 1e6,
        ordered[-1] / 1e6,
    )


async def checked(label: str, op: Op) -> int:
    """One request; a failure of any kind (timeout, refused connection...) ends the run."""
    try:
        return await op()
    except BenchError:
        raise
    except Exception as exc:
        raise BenchError(f"{label}: request failed: {exc!r}") from exc


async def rounds(ops: list[tuple[str, Op]], count: int, deadline: float) -> dict[str, list[int]]:
    """``count`` rounds of one request per path, the order rotating each round so no path is
    always first after the previous one; stops early at ``deadline``."""
    samples: dict[str, list[int]] = {label: [] for label, _ in ops}
    for i in range(count):
        shift = i % len(ops)
        for label, op in ops[shift:] + ops[:shift]:
            samples[label].append(await checked(label, op))
        if time.monotonic() > deadline:
            break
    return samples


async def warm_up(paths: Paths) -> None:
    print(f"\nWarm-up ({WARMUP_SECONDS:g}s, every test and path, not reported)")
    deadline = time.monotonic() + WARMUP_SECONDS
    done = 0
    while time.monotonic() < deadline:
        for _, ops in paths.tests():
            done += len((await rounds(ops, 20, deadline))[DIRECT])
    print(f"  {done} rounds")


async def sequential(paths: Paths, meter: OtherCpu, requests: int) -> list[Stats]:
    print(f"\nSequential ({requests} requests per path and test, one at a time, paths interleaved)")
    results = []
    for test, ops in paths.tests():
        print(f"  {test:<5} ...", end="", flush=True)
        await rounds(ops, WARMUP_ROUNDS, math.inf)
        meter.start()
        started = time.monotonic()
        samples = await rounds(ops, requests, started + TEST_CAP_SECONDS)
        elapsed = time.monotonic() - started
        other = meter.other_pct()
        rows = [stats(test, label, values) for label, values in samples.items()]
        for row in rows:
            row.other_cpu_pct = other
        results += rows
        p50 = {row.path: row.p50_ms for row in rows}
        capped = f" (stopped at the {TEST_CAP_SECONDS:g}s cap)" if rows[0].requests < requests else ""
        print(
            f" {elapsed:4.1f}s{capped}  p50 direct {p50[DIRECT]:.3f} ms, kvgate {p50[KVGATE]:.3f} ms, "
            f"hop {p50[HOP]:.3f} ms{noise_note(other)}"
        )
    return results


async def pipelines(paths: Paths, meter: OtherCpu) -> list[Stats]:
    """Batches of PIPELINE_LENGTH against single commands, kvgate and direct, interleaved."""
    print(
        f"\nBatches ({PIPELINE_REQUESTS} rounds of single commands and batches of {PIPELINE_LENGTH}, "
        "kvgate and direct)"
    )
    ops = paths.pipeline_tests()
    await rounds(ops, WARMUP_ROUNDS // 10, math.inf)
    meter.start()
    samples = await rounds(ops, PIPELINE_REQUESTS, time.monotonic() + TEST_CAP_SECONDS)
    other = meter.other_pct()
    rows = [stats("pipeline", label, values) for label, values in samples.items()]
    for row in rows:
        row.other_cpu_pct = other
    return rows


def report_pipelines(rows: list[Stats]) -> dict[str, Any]:
    """Each batch's p50 over its single command's, through kvgate and directly."""
    n = PIPELINE_LENGTH
    by = {r.path: r for r in rows}
    pairs = [
        (f"{KVGATE} pipeline {n} SET", f"{KVGATE} SET", True),
        (f"{KVGATE} pipeline {n} GET", f"{KVGATE} GET", True),
        (f"{DIRECT} TransactWriteItems {n}", f"{DIRECT} PutItem", False),
        (f"{DIRECT} BatchGetItem {n}", f"{DIRECT} GetItem", False),
    ]
    print(
        f"\nBatches of {n}, ms (target: kvgate's /pipeline of {n} <= {TARGET_PIPELINE_RATIO:g}x its single "
        "command at p50;\n  the direct rows are DynamoDB Local's own cost of the calls kvgate makes)"
    )
    table(
        ("request", "requests", "p50", "p99", "single", "single p50", "ratio", "target", "other CPU"),
        [
            (
                batch,
                str(by[batch].requests),
                f"{by[batch].p50_ms:.3f}",
                f"{by[batch].p99_ms:.3f}",
                single,
                f"{by[single].p50_ms:.3f}",
                f"{by[batch].p50_ms / by[single].p50_ms:.2f}x",
                ("meets" if by[batch].p50_ms / by[single].p50_ms <= TARGET_PIPELINE_RATIO else "MISSES")
                if targeted
                else "",
                other_cpu(by[batch].other_cpu_pct),
            )
            for batch, single, targeted in pairs
        ],
    )
    return {
        batch: {"p50_ms": by[batch].p50_ms, "ratio_to_single": by[batch].p50_ms / by[single].p50_ms}
        for batch, single, _ in pairs
    }


async def concurrent(paths: Paths, meter: OtherCpu, cpu: Callable[[], dict[str, float]]) -> list[Stats]:
    """GET from CONCURRENCY clients, the two paths alternating in slices; req/s and latency."""
    print(
        f"\nConcurrent GET ({CONCURRENCY} clients, {SLICES} x {SLICE_SECONDS:g}s per path, "
        "alternating slices)"
    )
    ops = [(DIRECT, paths.direct_get), (KVGATE, paths.kvgate_get)]
    samples: dict[str, list[int]] = {label: [] for label, _ in ops}
    busy: dict[str, float] = dict.fromkeys(samples, 0.0)
    used: dict[str, dict[str, float]] = {label: {} for label in samples}  # CPU s by process

    async def slice_(label: str, op: Op, seconds: float) -> tuple[list[int], float]:
        got: list[int] = []
        end = time.monotonic() + seconds

        async def client() -> None:
            while time.monotonic() < end:
                got.append(await checked(label, op))

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(CONCURRENCY)))
        return got, time.monotonic() - started

    for label, op in ops:
        await slice_(label, op, SLICE_SECONDS / 2)  # warm-up: connections opened, not reported
    meter.start()
    for i in range(SLICES):
        for label, op in ops if i % 2 == 0 else ops[::-1]:
            before = cpu()
            got, elapsed = await slice_(label, op, SLICE_SECONDS)
            after = cpu()
            samples[label] += got
            busy[label] += elapsed
            for who, seconds in after.items():
                used[label][who] = used[label].get(who, 0.0) + seconds - before[who]
    other = meter.other_pct()
    results = []
    for label, values in samples.items():
        row = stats(f"GET c{CONCURRENCY}", label, values)
        row.other_cpu_pct = other
        row.requests_per_s = len(values) / busy[label]
        row.cpu_ms_per_request = {
            who: 1000 * seconds / len(values)
            for who, seconds in used[label].items()
            if who != KVGATE or label == KVGATE
        }
        results.append(row)
        print(
            f"  {label:<7} {row.requests_per_s:>8,.0f} req/s  p50 {row.p50_ms:.3f} ms  p99 {row.p99_ms:.3f} ms"
        )
    return results


# --------------------------------------------------------------------------- report


def noise_note(pct: float | None) -> str:
    return f"   (others used {pct:.0f}% CPU: noisy)" if pct is not None and pct > NOISY_PCT else ""


def other_cpu(pct: float | None) -> str:
    if pct is None:
        return "-"
    return f"{pct:.0f}%" + (" noisy" if pct > NOISY_PCT else "")


def table(header: Sequence[str], rows: list[Sequence[str]], left: int = 2) -> None:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def report(seq: list[Stats], conc: list[Stats]) -> dict[str, Any]:
    print(f"\nSequential latency, ms (one request at a time; '{HOP}': the aiohttp ceiling, same request)")
    table(
        ("test", "path", "requests", "p50", "p90", "p99", "mean", "max", "other CPU"),
        [
            (
                r.test,
                r.path,
                str(r.requests),
                f"{r.p50_ms:.3f}",
                f"{r.p90_ms:.3f}",
                f"{r.p99_ms:.3f}",
                f"{r.mean_ms:.3f}",
                f"{r.max_ms:.2f}",
                other_cpu(r.other_cpu_pct),
            )
            for r in seq
        ],
    )

    by = {(r.test, r.path): r for r in seq}
    added: dict[str, dict[str, float]] = {}
    rows = []
    for test in dict.fromkeys(r.test for r in seq):
        d, k, h = by[test, DIRECT], by[test, KVGATE], by[test, HOP]
        added[test] = {
            "p50_ms": k.p50_ms - d.p50_ms,
            "p90_ms": k.p90_ms - d.p90_ms,
            "p99_ms": k.p99_ms - d.p99_ms,
            "p50_ratio": k.p50_ms / d.p50_ms,
            "http_hop_p50_ms": h.p50_ms,
            "rest_p50_ms": k.p50_ms - d.p50_ms - h.p50_ms,
        }
        a = added[test]
        status = "meets" if a["p50_ms"] <= TARGET_ADDED_MS else "MISSES"
        rows.append(
            (
                test,
                f"{a['p50_ms']:+.3f}",
                f"{a['p50_ratio']:.2f}x",
                f"<= {TARGET_ADDED_MS:g} ms: {status}",
                f"{a['p90_ms']:+.3f}",
                f"{a['p99_ms']:+.3f}",
                f"{a['http_hop_p50_ms']:.3f}",
                f"{a['rest_p50_ms']:+.3f}",
            )
        )
    print("\nkvgate's added latency, ms (kvgate - direct, same run; the target is informational)")
    table(
        ("test", "added p50", "p50 ratio", "target", "added p90", "added p99", "of p50: hop", "rest"),
        rows,
        left=1,
    )
    print(
        "  'hop' is the ceiling's p50 (aiohttp client -> aiohttp server, constant reply); 'rest' = added - hop:"
        "\n  roughly kvgate's own work (routing, auth, parsing, engine, JSON) beyond one HTTP round trip"
    )

    result: dict[str, Any] = {"added": added}
    if conc:
        d, k = conc
        ratio = (k.requests_per_s or 0) / (d.requests_per_s or 1)
        print(f"\nConcurrent GET, {CONCURRENCY} clients ({SLICES} x {SLICE_SECONDS:g}s per path)")

        def cpu_ms(r: Stats, who: str) -> str:
            value = (r.cpu_ms_per_request or {}).get(who)
            return "-" if value is None else f"{value:.3f}"

        table(
            (
                *("path", "req/s", "requests", "p50 ms", "p99 ms"),
                *("CPU ms/req: client", KVGATE, DDB, "total", "other CPU"),
            ),
            [
                (
                    r.path,
                    f"{r.requests_per_s or 0:,.0f}",
                    str(r.requests),
                    f"{r.p50_ms:.3f}",
                    f"{r.p99_ms:.3f}",
                    cpu_ms(r, CLIENT),
                    cpu_ms(r, KVGATE),
                    cpu_ms(r, DDB),
                    f"{sum((r.cpu_ms_per_request or {}).values()):.3f}",
                    other_cpu(r.other_cpu_pct),
                )
                for r in conc
            ],
            left=1,
        )
        print(
            f"  kvgate / direct throughput: {ratio:.2f}x; every process shares the machine's "
            f"{os.cpu_count()} CPUs,\n  so on a busy machine req/s follows total CPU per request"
        )
        result["concurrent_ratio"] = ratio

    print("\nTarget (informational: never asserted)")
    figures = ", ".join(f"{test} {a['p50_ms']:+.3f} ms" for test, a in added.items())
    met = all(a["p50_ms"] <= TARGET_ADDED_MS for a in added.values())
    print(f"  {'meets' if met else 'MISSES':<7}  kvgate adds <= {TARGET_ADDED_MS:g} ms at p50: {figures}")
    result["target"] = {"added_p50_ms_at_most": TARGET_ADDED_MS, "status": "meets" if met else "misses"}

    noisy = [r for r in seq + conc if r.other_cpu_pct is not None and r.other_cpu_pct > NOISY_PCT]
    if noisy:
        worst = max(noisy, key=lambda r: r.other_cpu_pct or 0.0)
        print(
            f"\nNOISY: processes this script did not start used more than {NOISY_PCT}% of the CPUs "
            f"(worst: {worst.test}, {worst.other_cpu_pct:.0f}%). Rerun on a quiet machine before "
            "drawing conclusions."
        )
    return result


# --------------------------------------------------------------------------- main


def versions() -> dict[str, str]:
    import aiobotocore
    import botocore

    return {
        "kvgate": first_line([sys.executable, "-m", "kvgate", "--version"]),
        "kvgate_commit": first_line(["git", "describe", "--always", "--dirty"]),
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
        "aiobotocore": aiobotocore.__version__,
        "botocore": botocore.__version__,
        "java": first_line(["java", "-version"]),
        "dynamodb_local": DYNAMODB_LOCAL_PACKAGE,
        "cpus": str(os.cpu_count()),
    }


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when importable, as kvgate itself runs: the same loop on both sides."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def measure(
    endpoint: str,
    kvgate_url: str,
    ceiling_url: str,
    meter: OtherCpu,
    cpu: Callable[[], dict[str, float]],
    args: argparse.Namespace,
) -> tuple[list[Stats], list[Stats], list[Stats]]:
    session = get_session()
    # the same client configuration kvgate's backend uses (one attempt, keep-alive pool)
    config = _client_config(POOL_SIZE, CLIENT_TIMEOUT)
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
    async with (
        session.create_client("dynamodb", region_name=REGION, endpoint_url=endpoint, config=config) as client,
        aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()) as http,
    ):
        paths = Paths(client, http, kvgate_url, ceiling_url)
        await verify(paths)
        await warm_up(paths)
        seq = await sequential(paths, meter, args.requests)
        piped = await pipelines(paths, meter)
        conc = [] if args.no_concurrent else await concurrent(paths, meter, cpu)
        # every INCR of the run, by either path, landed exactly once
        await paths._http(
            KVGATE, f"{kvgate_url}/get/{INCR_KEY.decode()}", None, {"result": str(paths.counter)}
        )
        print(f"  counter check: {INCR_KEY.decode()} = {paths.counter}, as many INCRs as were sent")
    return seq, piped, conc


def run(args: argparse.Namespace, tmp: Path) -> int:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")  # DynamoDB Local wants some credentials, any
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    wall = time.monotonic()
    info = versions()
    print(
        f"kvgate DynamoDB bench: kvgate vs direct aiobotocore on DynamoDB Local, {info['cpus']} CPUs shared"
    )
    print(
        f"  {info['kvgate']} ({info['kvgate_commit']}), aiohttp {info['aiohttp']}, "
        f"aiobotocore {info['aiobotocore']}, {info['dynamodb_local']}, {info['java']}"
    )
    print(f"  before starting, other processes use {busy_before():.0f}% of the CPUs (measured over 1 s)")
    ddb: DynamoDBLocal | None = None
    try:
        with services() as started:
            print(f"\nStarting servers (logs in {tmp})")
            try:
                ddb = DynamoDBLocal()
                ddb.start()
            except (RuntimeError, TimeoutError, OSError, subprocess.CalledProcessError) as exc:
                raise BenchError(f"DynamoDB Local did not start: {exc}") from None
            url = ddb.url(TABLE)
            try:
                print(f"  {asyncio.run(create_table(url))}")
            except Exception as exc:
                raise BenchError(f"create_table({url}): {exc!r}") from None
            kvgate_port, ceiling_port = free_ports(2)
            # an explicit --pool-size: the direct client's
            extra = ["--pool-size", str(POOL_SIZE), "--timeout", str(CLIENT_TIMEOUT)]
            kvgate = start_kvgate(started, tmp, KVGATE, kvgate_port, url, workers=1, extra=extra)
            ceiling = start_ceiling(started, tmp, AIOHTTP_1W, ceiling_port, workers=1)
            print(
                f"  DynamoDB Local {ddb.endpoint} (in memory), kvgate :{kvgate_port} (1 worker, "
                f"--pool-size {POOL_SIZE} as the direct client), aiohttp ceiling :{ceiling_port} (1 worker)"
            )
            ddb_pids = {ddb.proc.pid} if ddb.proc else set()
            meter = OtherCpu(started, ddb_pids)

            def cpu() -> dict[str, float]:
                """CPU seconds so far of this client, kvgate and DynamoDB Local."""
                return {
                    CLIENT: time.process_time(),
                    KVGATE: meter.seconds_of({kvgate.proc.pid}, set()),
                    DDB: meter.seconds_of(set(), ddb_pids),
                }

            with asyncio.Runner(loop_factory=loop_factory()) as runner:
                seq, piped, conc = runner.run(
                    measure(
                        ddb.endpoint,
                        f"http://{HOST}:{kvgate_port}",
                        f"http://{HOST}:{ceiling_port}",
                        meter,
                        cpu,
                        args,
                    )
                )
            for service in (kvgate, ceiling):
                if not service.alive():
                    raise service.exited_error()
            result = report(seq, conc)
            result["pipelines"] = report_pipelines(piped)
            report_logs([kvgate])
            print("\nStopping servers")
    finally:
        if ddb is not None:
            ddb.close()
    print(f"done in {time.monotonic() - wall:.0f}s")

    if args.json:
        payload = {
            "settings": {
                "requests": args.requests,
                "warmup_s": WARMUP_SECONDS,
                "concurrency": 0 if args.no_concurrent else CONCURRENCY,
                "slices": f"{SLICES} x {SLICE_SECONDS}s",
                "pool_size": POOL_SIZE,
                "kvgate_workers": 1,
            },
            "versions": info,
            "sequential": [asdict(r) for r in seq],
            "concurrent": [asdict(r) for r in conc],
            "pipeline_rounds": [asdict(r) for r in piped],
            **result,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=DEFAULT_REQUESTS,
        help=f"requests per path and test, sequential (default {DEFAULT_REQUESTS}; "
        f"each test stops at {TEST_CAP_SECONDS:g}s anyway)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--no-concurrent", action="store_true", help="skip the concurrent run")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    args = parser.parse_args(argv)
    if not 100 <= args.requests <= 100_000:
        parser.error("--requests must be between 100 and 100000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def on_sigterm(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through the `finally` blocks that stop the servers

    signal.signal(signal.SIGTERM, on_sigterm)
    tmp = Path(tempfile.mkdtemp(prefix="kvgate-bench-ddb-"))
    try:
        return run(args, tmp)
    except BenchError as exc:
        print(f"\nbench: ABORTED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nbench: interrupted; servers stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep_logs:
            print(f"logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
