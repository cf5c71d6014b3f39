"""kvgate's metrics, kept with ``prometheus_client`` and scraped at ``/_kvgate/metrics``.

With ``--workers N`` every worker is a process of its own, and a scrape reaches one of
them: the metrics then live in ``prometheus_client``'s multiprocess mode (one small
memory-mapped file per process and metric in a directory the parent makes,
``PROMETHEUS_MULTIPROC_DIR``), and any worker's scrape sums them all.  The parent creates
the directory before it starts the workers (the mode is chosen when ``prometheus_client``
is first imported) and removes it at exit; a worker that dies has its live gauges dropped
(:func:`worker_exited`).  With one worker the values stay in process memory.

The hot path costs one counter and one histogram per request, one counter per command
name (counted per request first) and, for a request of one command, one histogram per
command family: see bench/README.md for the measured cost.

Labels stay bounded: ``database`` is a configured name, ``command`` a name from the
command table (anything else counts as ``other``), ``family`` its command group.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from kvgate.adapters import Health
from kvgate.commands import CommandTable

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

disable_created_metrics()  # no ``*_created`` series: scrapes stay small, nothing reads them

#: Upper bounds of the latency histograms, in seconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

#: DynamoDB capacity units consumed (from ReturnConsumedCapacity), by table, kind ("read"
#: or "write") and command (the unit's command, "multi", "pipeline" for a run of reads,
#: "gc" for cleanup); kvgate/adapters/dynamodb.py counts into it.  Module-level: the
#: adapter has no gateway to ask; every :class:`Metrics` registry exposes it.
DYNAMODB_CAPACITY = Counter(
    "kvgate_dynamodb_capacity_units",
    "DynamoDB capacity units consumed, by table, kind (read, write) and command.",
    ("table", "kind", "command"),
    registry=None,
)


def multiprocess_mode() -> bool:
    return MULTIPROC_ENV in os.environ


def prepare_workers() -> Path | None:
    """Called by the parent before it starts several workers: a fresh directory for their
    metrics, named in the environment the workers inherit (None: the operator named one,
    and its old files were removed)."""
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        for stale in Path(given).glob("*.db"):  # values of an earlier run
            stale.unlink()
        return None
    made = Path(tempfile.mkdtemp(prefix="kvgate-metrics-"))
    os.environ[MULTIPROC_ENV] = str(made)
    return made


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters keep counting in the totals)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid)


def remove_directory(made: Path | None) -> None:
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)


class _ClosedTally(Tally[str]):
    """The ``Counter`` kvgate/connections.py counts closed connections into (``closed[reason]
    += 1``), also counting into the metric."""

    def __init__(self, metric: Counter) -> None:
        super().__init__()
        self._metric = metric

    def __setitem__(self, key: str, value: int) -> None:
        self._metric.labels(key).inc(value - self.get(key, 0))
        super().__setitem__(key, value)


class Metrics:
    """One gateway's metrics (one per process)."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        # In multiprocess mode the values are in files: metric objects write there, the
        # scrape reads them all back through this collector.
        self.shared = multiprocess_mode()
        scrape = CollectorRegistry() if self.shared else registry
        if self.shared:
            multiprocess.MultiProcessCollector(scrape)
        self.scrape_registry = scrape
        self.requests = Counter(
            "kvgate_requests",
            "HTTP requests by database, endpoint and status.",
            ("database", "endpoint", "status"),
            registry=registry,
        )
        self.commands = Counter(
            "kvgate_commands",
            "Redis commands received, by database and command name.",
            ("database", "command"),
            registry=registry,
        )
        self.errors = Counter(
            "kvgate_errors",
            "Requests answered with an error, by database and kind: the HTTP status "
            "(bad_request, unauthorized, ...), or 'command' for a command's own error reply.",
            ("database", "kind"),
            registry=registry,
        )
        self.latency = Histogram(
            "kvgate_request_seconds",
            "Request latency, by database and endpoint.",
            ("database", "endpoint"),
            buckets=BUCKETS,
            registry=registry,
        )
        self.command_latency = Histogram(
            "kvgate_command_seconds",
            "Latency of requests of one command, by database and command family (its group "
            "in the command table: string, hash, sorted-set, scripting, ...).",
            ("database", "family"),
            buckets=BUCKETS,
            registry=registry,
        )
        self.in_flight_gauge = Gauge(
            "kvgate_in_flight_requests",
            "Requests being handled now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.connections_open = Gauge(
            "kvgate_connections_open",
            "Client connections open now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        closed = Counter(
            "kvgate_connections_closed",
            "Client connections kvgate closed, by reason: header_timeout, body_timeout, "
            "displaced and refused (at max_connections), malformed.",
            ("reason",),
            registry=registry,
        )
        #: Client connections kvgate closed, by reason (kvgate/connections.py counts them).
        self.connections_closed: Tally[str] = _ClosedTally(closed)
        self.subscribers = Gauge(
            "kvgate_subscribers",
            "Pub/sub subscriptions streaming now (/subscribe, /psubscribe), by database.",
            ("database",),
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.backend_up = Gauge(
            "kvgate_backend_up",
            "Whether the backend is reachable (1) or not (0); with several workers, the "
            "lowest any worker sees.",
            ("database", "backend"),
            registry=registry,
            multiprocess_mode="livemin",
        )
        self.backend_gauges = Gauge(
            "kvgate_backend",
            "Backend figures, by database and name: inflight (commands waiting on the "
            "backend, its queue depth), connections, and the backend's own counts; summed "
            "over workers.",
            ("database", "name"),
            registry=registry,
            multiprocess_mode="livesum",
        )
        start = Gauge(
            "kvgate_start_time_seconds",
            "When the oldest live worker started (seconds since the epoch).",
            registry=registry,
            multiprocess_mode="livemin",
        )
        start.set(time.time())
        registry.register(DYNAMODB_CAPACITY)
        #: Client connections open now; set by the server that counts them.
        self.open_connections: Callable[[], int] | None = None
        self._in_flight = 0

    # -- the hot path

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @in_flight.setter
    def in_flight(self, value: int) -> None:
        self.in_flight_gauge.inc(value - self._in_flight)
        self._in_flight = value

    def observe(
        self,
        database: str,
        endpoint: str,
        status: int,
        seconds: float,
        names: Iterable[bytes] = (),
        command_errors: int = 0,
        table: CommandTable | None = None,
    ) -> None:
        """One answered request: ``names`` its commands' names (lower case) as parsed,
        ``command_errors`` how many answered an error of their own, ``table`` the
        database's command table (which names are real, and their families)."""
        self.requests.labels(database, endpoint, str(status)).inc()
        self.latency.labels(database, endpoint).observe(seconds)
        counted = Tally(names)
        for name, n in counted.items():
            known = table is not None and table.group_of(name) is not None
            self.commands.labels(database, name.decode() if known else "other").inc(n)
        if len(counted) == 1 and endpoint == "command" and table is not None:
            family = table.group_of(next(iter(counted)))
            if family is not None:
                self.command_latency.labels(database, family).observe(seconds)
        if status >= 400 and not (status == 400 and command_errors):  # a command's error: its kind
            self.errors.labels(database, _KINDS.get(status, str(status))).inc()
        if command_errors:
            self.errors.labels(database, "command").inc(command_errors)

    # -- gauges read from the backends

    def refresh(self, backends: Iterable[tuple[str, str, Health]]) -> None:
        """Set the gauges that are read rather than counted: at each scrape, and every
        second in each worker (so one worker's scrape sees the others' recent figures)."""
        if self.open_connections is not None:
            self.connections_open.set(self.open_connections())
        for db, kind, health in backends:
            self.backend_up.labels(db, kind).set(int(health.ok))
            for name, value in health.gauges.items():
                self.backend_gauges.labels(db, name).set(value)

    def render(self, backends: Iterable[tuple[str, str, Health]]) -> str:
        self.refresh(backends)
        return generate_latest(self.scrape_registry).decode()


#: ``kvgate_errors_total``'s kind for an HTTP status.
_KINDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "timeout",
    413: "too_large",
    429: "overloaded",
    500: "internal",
    502: "backend_error",
    503: "unavailable",
    504: "backend_timeout",
}
