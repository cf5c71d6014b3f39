"""kvgate's metrics, kept with ``prometheus_client`` and scraped at ``/_kvgate/metrics``.

With ``--workers N`` every worker is a process of its own, and a scrape reaches one of
them: the metrics then live in ``prometheus_client``'s multiprocess mode (one small
memory-mapped file per process and metric in a directory the parent makes,
``PROMETHEUS_MULTIPROC_DIR``), and any worker's scrape sums them all.  The parent creates
the directory before it starts the workers (the mode is chosen when ``prometheus_client``
is first imported) and removes it at exit; a worker that dies has its live gauges dropped
(:func:`worker_exited`).  With one worker the values stay in process memory.

The hot path only counts in plain dictionaries; the counts are added to the metrics at
each scrape and every second (:meth:`Metrics.flush`), since a labelled
``prometheus_client`` metric costs microseconds per update (measured: bench/README.md,
"Metrics").

Labels stay bounded: ``database`` is a configured name, ``command`` a name from the
command table (anything else counts as ``other``), ``family`` its command group.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from bisect import bisect_left
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Sequence
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
        #: Requests being handled now (the app counts; the gauge is set at each refresh).
        self.in_flight = 0
        # Counts not yet added to the metrics (see :meth:`observe`).
        self._requests: Tally[tuple[str, str, str]] = Tally()
        self._commands: Tally[tuple[str, bytes, CommandTable | None]] = Tally()
        self._errors: Tally[tuple[str, str]] = Tally()
        self._latency: dict[tuple[str, str], list[float]] = {}
        self._family_latency: dict[tuple[str, str], list[float]] = {}

    # -- the hot path: plain counts, added to the metrics at each flush

    def observe(
        self,
        database: str,
        endpoint: str,
        status: int,
        seconds: float,
        names: Sequence[bytes] = (),
        command_errors: int = 0,
        table: CommandTable | None = None,
    ) -> None:
        """One answered request: ``names`` its commands' names (lower case) as parsed,
        ``command_errors`` how many answered an error of their own, ``table`` the
        database's command table (which names are real, and their families).

        Counted in plain dictionaries and added to the ``prometheus_client`` metrics by
        :meth:`flush` (at each scrape, and every second): labelled metrics cost about 25 µs
        per request here, these counts under 3 (bench/README.md, "Metrics")."""
        self._requests[(database, endpoint, str(status))] += 1
        bucket = bisect_left(BUCKETS, seconds)
        _pend(self._latency, (database, endpoint), bucket, seconds)
        pending = self._commands
        single: bytes | None = None
        if len(names) == 1:
            single = names[0]
            pending[(database, single, table)] += 1
        else:  # a batch: counted by name first (in C), then once per distinct name
            for name, n in Tally(names).items():
                pending[(database, name, table)] += n
        if single and endpoint == "command" and table is not None:
            family = table.group_of(single)
            if family is not None:
                _pend(self._family_latency, (database, family), bucket, seconds)
        if status >= 400 and not (status == 400 and command_errors):  # a command's error: its kind
            self._errors[(database, _KINDS.get(status, str(status)))] += 1
        if command_errors:
            self._errors[(database, "command")] += command_errors

    def flush(self) -> None:
        """Add the counts gathered since the last flush to the metrics."""
        requests, self._requests = self._requests, Tally()
        for request, n in requests.items():
            self.requests.labels(*request).inc(n)
        commands, self._commands = self._commands, Tally()
        for (database, name, table), n in commands.items():
            known = table is not None and table.group_of(name) is not None
            self.commands.labels(database, name.decode() if known else "other").inc(n)
        errors, self._errors = self._errors, Tally()
        for error, n in errors.items():
            self.errors.labels(*error).inc(n)
        latency, self._latency = self._latency, {}
        for labels, counts in latency.items():
            add_observations(self.latency.labels(*labels), counts)
        family_latency, self._family_latency = self._family_latency, {}
        for labels, counts in family_latency.items():
            add_observations(self.command_latency.labels(*labels), counts)

    # -- gauges read from the backends

    def refresh(self, backends: Iterable[tuple[str, str, Health]]) -> None:
        """Flush the counts and set the gauges that are read rather than counted: at each
        scrape, and every second in each worker (so that one worker's scrape sees the
        others' figures, at most a second old)."""
        self.flush()
        self.in_flight_gauge.set(self.in_flight)
        if self.open_connections is not None:
            self.connections_open.set(self.open_connections())
        for db, kind, health in backends:
            self.backend_up.labels(db, kind).set(int(health.ok))
            for name, value in health.gauges.items():
                self.backend_gauges.labels(db, name).set(value)

    def render(self, backends: Iterable[tuple[str, str, Health]]) -> str:
        self.refresh(backends)
        return generate_latest(self.scrape_registry).decode()


def _pend(
    pending: dict[tuple[str, str], list[float]], labels: tuple[str, str], bucket: int, seconds: float
) -> None:
    """Count one observation: ``[count in bucket 0, ..., count in +Inf, sum]``."""
    counts = pending.get(labels)
    if counts is None:
        counts = pending[labels] = [0.0] * (len(BUCKETS) + 2)
    counts[bucket] += 1
    counts[-1] += seconds


def add_observations(child: Histogram, counts: list[float]) -> None:
    """Add many observations to a histogram's child at once, as :meth:`Histogram.observe`
    adds one (its sum and one bucket each).  prometheus_client has no public call for this:
    it reaches the child's ``_sum`` and ``_buckets`` (the same values ``observe`` writes, in
    memory or in the multiprocess files); tests/gateway/test_metrics.py checks the result
    against ``observe`` so a change there fails a test, not a scrape."""
    child._sum.inc(counts[-1])
    for bucket, n in zip(child._buckets, counts[:-1], strict=True):
        if n:
            bucket.inc(n)


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
