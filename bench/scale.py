#!/usr/bin/env python3
"""How each backend's cost grows with a collection: the same commands at a small and a
large size, through kvgate's HTTP API, in one run.

    python -m bench.scale [--small 1000] [--large 100000] [--samples 30] [--no-dynamodb]

Starts, on free loopback ports in a temporary directory, a private ``redis-server`` with
kvgate in front of it (the reference: Redis's own complexity), kvgate on a new SQLite file,
and (unless ``--no-dynamodb``) DynamoDB Local with kvgate in front of it, one worker each.
For each backend, two phases:

1. *small*: a hash, a set, a sorted set and a list of ``--small`` elements each, and as
   many string keys; each command below is timed ``--samples`` times (sequential round
   trips on one kept-alive connection) and its median kept;
2. *large*: the same four collections at ``--large`` elements and twice as many string
   keys (DBSIZE's keyspace), timed the same way.

It prints, per command and backend, the median at each size and the growth (large /
small), next to the growth each command's complexity allows (targets from issue 17,
printed, never asserted); on DynamoDB also the read and write capacity units one command
consumed, from kvgate's ``/_kvgate/metrics``
(``kvgate_dynamodb_capacity_units_total``).  The exit status is 1 only when a reply was
wrong or a server failed.

Standard library only (plus kvgate and the test suite's DynamoDB Local installer).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.run import (
    HOST,
    TOKEN,
    BenchError,
    Service,
    busy_before,
    free_ports,
    run_in_tempdir,
    services,
    start_kvgate,
    start_redis,
)

CHUNK = 1000  # elements per loading command
KEYS_CHUNK = 100  # keys per MSET: DynamoDB changes at most 100 keys atomically
COMMANDS_PER_LOAD = 10  # loading commands per /pipeline
CAPACITY_METRIC = "kvgate_dynamodb_capacity_units_total"


# --------------------------------------------------------------------------- client


class Client:
    """One kept-alive HTTP connection to one kvgate."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=300)
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def post(self, path: str, body: object) -> Any:
        self.conn.request("POST", path, json.dumps(body), self.headers)
        response = self.conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise BenchError(f"POST {path} answered {response.status}: {data[:300]!r}")
        return json.loads(data)

    def command(self, *args: str | int) -> Any:
        reply = self.post("/", [str(a) for a in args])
        if "error" in reply:
            raise BenchError(f"{args[:4]} answered {reply['error']}")
        return reply["result"]

    def pipeline(self, commands: list[list[str]]) -> list[Any]:
        replies = self.post("/pipeline", commands)
        for cmd, reply in zip(commands, replies, strict=True):
            if "error" in reply:
                raise BenchError(f"{cmd[:3]}... answered {reply['error']}")
        return [r["result"] for r in replies]

    def metrics(self) -> str:
        self.conn.request("GET", "/_kvgate/metrics")
        response = self.conn.getresponse()
        return response.read().decode()

    def close(self) -> None:
        self.conn.close()


def capacity(text: str) -> dict[str, float]:
    """Capacity units consumed so far, by kind, summed over every label set."""
    totals = {"read": 0.0, "write": 0.0}
    for line in text.splitlines():
        if line.startswith(CAPACITY_METRIC + "{"):
            labels, _, value = line.rpartition(" ")
            for kind in totals:
                if f'kind="{kind}"' in labels:
                    totals[kind] += float(value)
    return totals


# --------------------------------------------------------------------------- data


def load(client: Client, size: int, keys: int, tag: str) -> None:
    """Collections ``h/s/z/l:<tag>`` of ``size`` elements and ``keys`` string keys."""
    commands: list[list[str]] = []

    def flush() -> None:
        if commands:
            client.pipeline(commands)
            commands.clear()

    def add(command: list[str]) -> None:
        commands.append(command)
        if len(commands) >= COMMANDS_PER_LOAD:
            flush()

    for start in range(0, size, CHUNK):
        ids = range(start, min(start + CHUNK, size))
        add(["HSET", f"h:{tag}", *(x for i in ids for x in (f"f{i}", f"v{i}"))])
        add(["SADD", f"s:{tag}", *(f"m{i}" for i in ids)])
        add(["ZADD", f"z:{tag}", *(x for i in ids for x in (str(i), f"m{i}"))])
        add(["RPUSH", f"l:{tag}", *(f"e{i}" for i in ids)])
    for start in range(0, keys, KEYS_CHUNK):
        ids = range(start, min(start + KEYS_CHUNK, keys))
        add(["MSET", *(x for i in ids for x in (f"k:{tag}:{i}", "v"))])
    flush()
    got = client.pipeline(
        [["HLEN", f"h:{tag}"], ["SCARD", f"s:{tag}"], ["ZCARD", f"z:{tag}"], ["LLEN", f"l:{tag}"]]
    )
    if got != [size] * 4:
        raise BenchError(f"loaded {size} elements per collection, the counts say {got}")


@dataclass
class Probe:
    """A command timed at each size; ``growth``: the target for large / small."""

    name: str
    run: Callable[[Client, str, int, int], None]  # client, tag, size, sample number
    growth: float | None = None
    one_element: bool = False  # the DynamoDB capacity target applies


def _expect(value: Any, expected: Any, what: str) -> None:
    if value != expected:
        raise BenchError(f"{what}: got {value!r}, expected {expected!r}")


def _lpush_lpop(c: Client, tag: str, size: int, i: int) -> None:
    _expect(c.command("LPUSH", f"l:{tag}", f"x{i}"), size + 1, "LPUSH")
    _expect(c.command("LPOP", f"l:{tag}"), f"x{i}", "LPOP")


PROBES = [
    Probe("HLEN", lambda c, t, n, i: _expect(c.command("HLEN", f"h:{t}"), n, "HLEN"), 1.5),
    Probe("SCARD", lambda c, t, n, i: _expect(c.command("SCARD", f"s:{t}"), n, "SCARD"), 1.5),
    Probe("ZCARD", lambda c, t, n, i: _expect(c.command("ZCARD", f"z:{t}"), n, "ZCARD"), 1.5),
    Probe("LLEN", lambda c, t, n, i: _expect(c.command("LLEN", f"l:{t}"), n, "LLEN"), 1.5),
    Probe(
        "ZRANK middle",
        lambda c, t, n, i: _expect(c.command("ZRANK", f"z:{t}", f"m{n // 2}"), n // 2, "ZRANK"),
        2,
    ),
    Probe(
        "ZRANGE 0 9",
        lambda c, t, n, i: _expect(
            c.command("ZRANGE", f"z:{t}", 0, 9), [f"m{j}" for j in range(10)], "ZRANGE"
        ),
        2,
    ),
    Probe(
        "LINDEX middle",
        lambda c, t, n, i: _expect(c.command("LINDEX", f"l:{t}", n // 2), f"e{n // 2}", "LINDEX"),
        2,
    ),
    Probe("LPUSH+LPOP", _lpush_lpop, 1.5, one_element=True),
    Probe(
        "HGET",
        lambda c, t, n, i: _expect(c.command("HGET", f"h:{t}", f"f{n // 2}"), f"v{n // 2}", "HGET"),
        None,
        True,
    ),
    Probe(
        "HSET one",
        lambda c, t, n, i: _expect(c.command("HSET", f"h:{t}", f"f{n // 2}", "w"), 0, "HSET"),
        None,
        True,
    ),
    Probe(
        "SISMEMBER",
        lambda c, t, n, i: _expect(c.command("SISMEMBER", f"s:{t}", f"m{i}"), 1, "SISMEMBER"),
        None,
        True,
    ),
    Probe(
        "SADD new", lambda c, t, n, i: _expect(c.command("SADD", f"s:{t}", f"new{i}"), 1, "SADD"), None, True
    ),
    Probe(
        "ZSCORE",
        lambda c, t, n, i: _expect(c.command("ZSCORE", f"z:{t}", f"m{i}"), str(i), "ZSCORE"),
        None,
        True,
    ),
    Probe("ZINCRBY", lambda c, t, n, i: c.command("ZINCRBY", f"z:{t}", 0, f"m{i}"), None, True),
]
DBSIZE = "DBSIZE"


@dataclass
class Figure:
    ms: float
    read: float | None = None  # capacity units per command (DynamoDB)
    write: float | None = None


@dataclass
class BackendRun:
    name: str
    client: Client
    dynamodb: bool = False
    figures: dict[tuple[str, str], Figure] = field(default_factory=dict)  # (probe, phase)


def measure(run: BackendRun, phase: str, tag: str, size: int, keys: int, samples: int) -> None:
    c = run.client
    started = time.monotonic()
    load(c, size, keys, tag)
    print(
        f"  {run.name}: loaded 4 collections of {size:,} and {keys:,} keys in {time.monotonic() - started:.0f}s"
    )
    dbsize = c.command("DBSIZE")
    probes = [*PROBES, Probe(DBSIZE, lambda c, t, n, i: _expect(c.command("DBSIZE"), dbsize, "DBSIZE"), 1.5)]
    for probe in probes:
        probe.run(c, tag, size, samples)  # warm, with a sample number of its own
        before = capacity(c.metrics()) if run.dynamodb else None
        times = []
        for i in range(samples):
            t0 = time.perf_counter()
            probe.run(c, tag, size, i)
            times.append((time.perf_counter() - t0) * 1000)
        figure = Figure(statistics.median(times))
        if before is not None:
            after = capacity(c.metrics())
            per = 2 * samples if probe.name == "LPUSH+LPOP" else samples
            figure.read = (after["read"] - before["read"]) / per
            figure.write = (after["write"] - before["write"]) / per
        run.figures[(probe.name, phase)] = figure


# --------------------------------------------------------------------------- report


def report(runs: list[BackendRun], small: int, large: int) -> dict[str, Any]:
    names = [p.name for p in PROBES] + [DBSIZE]
    targets = {p.name: p.growth for p in PROBES} | {DBSIZE: 1.5}
    print(f"\nMedian ms per round trip; growth = {large:,} / {small:,} elements (DBSIZE: keys)")
    header = ["command"] + [f"{r.name} {s}" for r in runs for s in ("small", "large", "growth")] + ["target"]
    rows: list[list[str]] = []
    out: dict[str, Any] = {}
    for name in names:
        row = [name]
        for r in runs:
            a, b = r.figures[(name, "small")], r.figures[(name, "large")]
            growth = b.ms / a.ms if a.ms else float("nan")
            row += [f"{a.ms:.2f}", f"{b.ms:.2f}", f"{growth:.2f}x"]
            out.setdefault(name, {})[r.name] = {"small_ms": a.ms, "large_ms": b.ms, "growth": growth}
        target = targets.get(name)
        row.append(f"<= {target}x (sqlite)" if target else "-")
        rows.append(row)
    _table(header, rows)
    for r in runs:
        if not r.dynamodb:
            continue
        print(
            f"\n{r.name}: capacity units per command (read / write), from /_kvgate/metrics; target <= 4 for one element"
        )
        cap_rows = []
        for name in names:
            a, b = r.figures[(name, "small")], r.figures[(name, "large")]
            one = next((p.one_element for p in PROBES if p.name == name), False)
            cap_rows.append(
                [
                    name,
                    f"{a.read:.1f} / {a.write:.1f}",
                    f"{b.read:.1f} / {b.write:.1f}",
                    "<= 4 / 4" if one else "-",
                ]
            )
            out[name][r.name] |= {
                "small_rcu": a.read,
                "small_wcu": a.write,
                "large_rcu": b.read,
                "large_wcu": b.write,
            }
        _table(["command", f"{small:,}", f"{large:,}", "target"], cap_rows)
    return out


def _table(header: Sequence[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(row[i])) for row in [list(header), *rows]) for i in range(len(header))]
    for row in [list(header), *rows]:
        print(
            "  "
            + "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )


# --------------------------------------------------------------------------- main


def run(args: argparse.Namespace, tmp: Path) -> int:
    print(
        f"kvgate scale bench: {args.small:,} vs {args.large:,} elements, {args.samples} samples, {os.cpu_count()} CPUs"
    )
    print(f"  before starting, other processes use {busy_before():.0f}% of the CPUs (measured over 1 s)")
    ddb = None
    try:
        with services() as started:
            redis_port, redis_kv, sqlite_kv, ddb_kv = free_ports(4)
            start_redis(started, tmp, redis_port)
            backends: list[tuple[str, str, bool]] = [
                ("redis", f"redis://{HOST}:{redis_port}/0", False),
                ("sqlite", f"sqlite:///{tmp / 'scale.db'}", False),
            ]
            if not args.no_dynamodb:
                for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                    os.environ.setdefault(name, "bench")
                os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
                import asyncio

                from kvgate.adapters.dynamodb import create_table
                from tests.support.servers import DynamoDBLocal

                ddb = DynamoDBLocal()
                ddb.start()
                url = ddb.url("kvgate_scale")
                print(f"  {asyncio.run(create_table(url))}")
                backends.append(("dynamodb", url, True))
            runs: list[BackendRun] = []
            servers: list[Service] = []
            for (name, url, is_ddb), port in zip(backends, (redis_kv, sqlite_kv, ddb_kv), strict=False):
                # loading writes big commands: on DynamoDB each is a new generation of the
                # whole collection, well past the default 10 s timeout at 100,000 elements
                extra = ["--timeout", "300"] if is_ddb else []
                servers.append(
                    start_kvgate(started, tmp, f"kvgate-{name}", port, url, workers=1, extra=extra)
                )
                runs.append(BackendRun(name, Client(port), is_ddb))
            for r in runs:
                measure(r, "small", "small", args.small, args.small, args.samples)
                measure(r, "large", "large", args.large, 2 * args.large, args.samples)
            for service in servers:
                if not service.alive():
                    raise service.exited_error()
            result = report(runs, args.small, args.large)
            for r in runs:
                r.client.close()
    finally:
        if ddb is not None:
            ddb.close()
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=1000, help="elements per collection, small phase")
    parser.add_argument("--large", type=int, default=100_000, help="elements per collection, large phase")
    parser.add_argument("--samples", type=int, default=30, help="round trips per command and phase")
    parser.add_argument("--no-dynamodb", action="store_true", help="skip DynamoDB Local")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_in_tempdir("kvgate-scale-", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
