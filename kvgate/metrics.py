"""Request counters and latency, exposed in the Prometheus text format.

Hand-written rather than prometheus_client: a handful of counters per process, no
registry, no extra dependency on the hot path.  Each worker process reports its own.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable

from kvgate.adapters import Health

#: DynamoDB capacity units consumed in this process (from ReturnConsumedCapacity), by
#: (table, kind: "read" or "write", command: the unit's command, "multi", "pipeline" for a
#: run of reads, "gc" for cleanup); kvgate/adapters/dynamodb.py adds to it.
DYNAMODB_CAPACITY: Counter[tuple[str, str, str]] = Counter()

# Upper bounds of the latency histogram, in seconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.started = time.time()
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.commands: Counter[str] = Counter()
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: defaultdict[str, float] = defaultdict(float)
        self.in_flight = 0
        #: Client connections kvgate closed, by reason (kvgate/connections.py counts them).
        self.connections_closed: Counter[str] = Counter()
        #: Client connections open now; set by the server that counts them.
        self.open_connections: Callable[[], int] | None = None

    def observe(self, database: str, endpoint: str, status: int, seconds: float, commands: int) -> None:
        self.requests[(database, endpoint, status)] += 1
        self.commands[database] += commands
        buckets = self.latency.get(database)
        if buckets is None:
            buckets = self.latency[database] = [0] * (len(BUCKETS) + 1)
        buckets[bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum[database] += seconds

    def render(self, backends: Iterable[tuple[str, str, Health]]) -> str:
        pid = os.getpid()
        lines = [
            "# HELP kvgate_requests_total HTTP requests by database, endpoint and status.",
            "# TYPE kvgate_requests_total counter",
        ]
        for (db, endpoint, status), n in sorted(self.requests.items()):
            lines.append(
                f'kvgate_requests_total{{pid="{pid}",database="{db}",endpoint="{endpoint}",status="{status}"}} {n}'
            )
        lines += [
            "# HELP kvgate_commands_total Redis commands received, by database.",
            "# TYPE kvgate_commands_total counter",
        ]
        for db, n in sorted(self.commands.items()):
            lines.append(f'kvgate_commands_total{{pid="{pid}",database="{db}"}} {n}')
        lines += [
            "# HELP kvgate_request_seconds Request latency, by database.",
            "# TYPE kvgate_request_seconds histogram",
        ]
        for db, buckets in sorted(self.latency.items()):
            total = 0
            for bound, n in zip((*BUCKETS, "+Inf"), buckets, strict=True):
                total += n
                lines.append(
                    f'kvgate_request_seconds_bucket{{pid="{pid}",database="{db}",le="{bound}"}} {total}'
                )
            lines.append(
                f'kvgate_request_seconds_sum{{pid="{pid}",database="{db}"}} {self.latency_sum[db]:.6f}'
            )
            lines.append(f'kvgate_request_seconds_count{{pid="{pid}",database="{db}"}} {total}')
        lines += [
            "# HELP kvgate_in_flight_requests Requests being handled now.",
            "# TYPE kvgate_in_flight_requests gauge",
            f'kvgate_in_flight_requests{{pid="{pid}"}} {self.in_flight}',
        ]
        if self.open_connections is not None:
            lines += [
                "# HELP kvgate_connections_open Client connections open now.",
                "# TYPE kvgate_connections_open gauge",
                f'kvgate_connections_open{{pid="{pid}"}} {self.open_connections()}',
            ]
        lines += [
            "# HELP kvgate_connections_closed_total Client connections kvgate closed, by reason: "
            "header_timeout, body_timeout, displaced and refused (at max_connections), malformed.",
            "# TYPE kvgate_connections_closed_total counter",
        ]
        for reason, n in sorted(self.connections_closed.items()):
            lines.append(f'kvgate_connections_closed_total{{pid="{pid}",reason="{reason}"}} {n}')
        lines += [
            "# HELP kvgate_backend_up Whether the backend is reachable (1) or not (0).",
            "# TYPE kvgate_backend_up gauge",
        ]
        gauges: list[str] = []
        for db, kind, health in backends:
            lines.append(
                f'kvgate_backend_up{{pid="{pid}",database="{db}",backend="{kind}"}} {int(health.ok)}'
            )
            for name, value in sorted(health.gauges.items()):
                gauges.append(f'kvgate_backend_{name}{{pid="{pid}",database="{db}"}} {value:g}')
        lines += gauges
        if DYNAMODB_CAPACITY:
            lines += [
                "# HELP kvgate_dynamodb_capacity_units_total DynamoDB capacity units consumed, by table, "
                "kind (read, write) and command.",
                "# TYPE kvgate_dynamodb_capacity_units_total counter",
            ]
            for (table, kind, command), units in sorted(DYNAMODB_CAPACITY.items()):
                lines.append(
                    f'kvgate_dynamodb_capacity_units_total{{pid="{pid}",table="{table}",kind="{kind}",'
                    f'command="{command}"}} {units:g}'
                )
        lines.append(f'kvgate_start_time_seconds{{pid="{pid}"}} {self.started:.0f}')
        return "\n".join(lines) + "\n"
