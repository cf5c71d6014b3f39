#!/usr/bin/env python3
"""What kvgate's metrics add to each request, in microseconds, in one run.

    python -m bench.metrics_cost [--requests 200000]

Times :meth:`kvgate.metrics.Metrics.observe` (what the request path calls once per
request) for a one-command request and for a /pipeline of 100, in this process
(one worker) and in prometheus_client's multiprocess mode (several workers), against
a call that does nothing (the baseline, measured in the same run), plus the flush
that adds the counts to the metrics every second.  Not part of the test suite; figures
compare within a run only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import timeit

from kvgate.commands import default_table


def measure(requests: int) -> None:
    from kvgate.metrics import Metrics

    table = default_table()
    metrics = Metrics()
    one = [b"get"]
    hundred = [b"set", b"get"] * 50

    def nothing(*args: object) -> None:
        return None

    cases = {
        "baseline (a call that does nothing)": lambda: nothing("db", "command", 200, 0.0007, one, 0, table),
        "one command": lambda: metrics.observe("db", "command", 200, 0.0007, one, 0, table),
        "/pipeline of 100": lambda: metrics.observe("db", "pipeline", 200, 0.002, hundred, 0, table),
    }
    mode = "multiprocess (--workers N)" if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else "one process"
    for name, case in cases.items():
        seconds = timeit.timeit(case, number=requests)
        print(f"  {mode:28} {name:38} {seconds / requests * 1e6:6.2f} us per request")
    seconds = timeit.timeit(
        lambda: (metrics.observe("db", "command", 200, 0.0007, one, 0, table), metrics.flush()), number=2000
    )
    print(f"  {mode:28} {'observe + flush (the flush runs 1/s)':38} {seconds / 2000 * 1e6:6.2f} us")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        measure(args.requests)
        return 0
    print(f"kvgate metrics: cost per request, {args.requests:,} requests per case")
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    argv_child = [sys.executable, "-m", "bench.metrics_cost", "--child", "--requests", str(args.requests)]
    subprocess.run(argv_child, env=env, check=True)
    with tempfile.TemporaryDirectory(prefix="kvgate-metrics-bench-") as shared:
        subprocess.run(argv_child, env={**env, "PROMETHEUS_MULTIPROC_DIR": shared}, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
