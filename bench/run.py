#!/usr/bin/env python3
"""Benchmark kvgate against webdis and raw Redis, all on this machine, in one run.

    python -m bench.run [--duration SECONDS] [--quick] [--json PATH]

Starts its own redis-server, kvgate (2 workers and 1 worker), webdis and the aiohttp
ceiling (bench/aiohttp_ceiling.py: kvgate's serving stack answering a constant reply, 2
workers and 1 worker) on free loopback ports, checks that each answers correctly, drives
them with wrk (and Redis itself with redis-benchmark), prints one table, the ratios
measured in this run and the targets next to them, and stops everything it started, also
on error or Ctrl-C.

Figures are for comparison within a run only: wrk, the servers and Redis share the
machine's cores.  Nothing here is a timed assertion; the exit status is 1 only when a run
saw errors (non-2xx replies, socket errors, wrong pipeline replies) or could not start.

Standard library only.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TOKEN = "bench-token"
AUTH_HEADER = f"Authorization: Bearer {TOKEN}"

WRK_THREADS = 2
CONCURRENCIES = (50, 200)
PIPELINE_COMMANDS = 100
PIPELINE_CONNECTIONS = 50
REDIS_BENCHMARK_REQUESTS = 200_000
REDIS_BENCHMARK_CLIENTS = 50
WARMUP_SECONDS = 1
MAX_DURATION = 60
NOISY_PCT = 10  # a run where other processes used more CPU than this is flagged

# Targets: printed next to the figures, never asserted.
TARGET_GET_RATIO = 0.45
TARGET_P99_MS = 5.0
TARGET_PIPELINE_CPS = 500_000
TARGET_SQLITE_SET = 0.7  # SQLite backend / Redis backend, kvgate 2 workers
TARGET_SQLITE_GET = 0.8
TARGET_SQLITE_PIPELINE = 0.6  # /pipeline of 100, SQLite backend / Redis backend, 2 workers

KVGATE_2W = "kvgate-2w"
KVGATE_1W = "kvgate-1w"
SQLITE_2W = "sqlite-2w"  # kvgate on its SQLite backend (its own engine, one file)
SQLITE_1W = "sqlite-1w"
WEBDIS = "webdis"
AIOHTTP_2W = "aiohttp-2w"  # the aiohttp ceiling: kvgate's serving stack, constant reply, no Redis
AIOHTTP_1W = "aiohttp-1w"
CEILING_SCRIPT = REPO / "bench" / "aiohttp_ceiling.py"
CEILING_REPLY = {"result": "bar"}
REDIS = "redis"


class BenchError(Exception):
    """Setup or verification failed: the run stops with this message."""


# --------------------------------------------------------------------------- processes


class Service:
    """A server process started in its own session, its output going to a log file.

    ``own_log`` is a log file the server writes itself (webdis), read along with its output.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: dict[str, str] | None = None,
        own_log: Path | None = None,
    ):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.own_log = own_log
        with log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env=env,
                start_new_session=True,  # Ctrl-C reaches us only; we stop the whole group
            )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        text = ""
        for path in (self.log_path, self.own_log):
            if path and path.exists():
                text += path.read_text(errors="replace")
        return text

    def log_tail(self, lines: int = 30) -> str:
        tail = self.log_text().splitlines()[-lines:]
        return "\n".join(f"    | {line}" for line in tail) or "    | (empty log)"

    def exited_error(self) -> BenchError:
        return BenchError(
            f"{self.name} exited with code {self.proc.returncode}; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def _group_exists(self) -> bool:
        self.proc.poll()  # reap the leader, or its zombie keeps the group alive
        try:
            os.killpg(self.proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM to the process group (kvgate's workers included), SIGKILL if it lingers."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not self._group_exists():
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + timeout
            while self._group_exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        try:
            self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            print(f"warning: {self.name} (pid {self.proc.pid}) did not exit", file=sys.stderr)


@contextmanager
def services() -> Iterator[list[Service]]:
    """Collects started services and stops them all, in reverse order, whatever happens."""
    started: list[Service] = []
    try:
        yield started
    finally:
        for service in reversed(started):
            service.stop()


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open until every one is chosen)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def listening_sockets(port: int) -> int | None:
    """How many sockets listen on HOST:port (one per kvgate worker, SO_REUSEPORT); None off Linux."""
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return None
    wanted = f"{socket.htonl(0x7F000001):08X}:{port:04X}"
    return sum(1 for line in lines if line.split()[1:4:2] == [wanted, "0A"])  # 0A = LISTEN


def wait_until(service: Service, what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if not service.alive():
            raise service.exited_error()
        if check():
            return
        if time.monotonic() > deadline:
            raise BenchError(
                f"{service.name}: timed out after {timeout:.0f}s waiting for {what}; "
                f"last lines of {service.log_path}:\n{service.log_tail()}"
            )
        time.sleep(0.1)


class CpuMeter:
    """CPU used by everything else on the machine during a measurement.

    The machine is shared (the figures are only comparable within a quiet run), so each run
    reports the share of all cores used by processes this script did not start, plus
    hypervisor steal: /proc/stat's busy time minus ours (this script, wrk and
    redis-benchmark via rusage, the servers by their session id).  Linux only.
    """

    def __init__(self, started: list[Service]):
        self.started = started
        self.tick = os.sysconf("SC_CLK_TCK")
        self.cpus = os.cpu_count() or 1
        self.before: tuple[float, float, float] | None = None

    def _sample(self) -> tuple[float, float, float] | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        except (OSError, ValueError):
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields
        busy = (user + nice + system + irq + softirq + steal) / self.tick
        sessions = {service.proc.pid for service in self.started}
        servers = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                after_name = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # exited meanwhile
            if int(after_name[3]) in sessions:
                servers += int(after_name[11]) + int(after_name[12])
        usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        ours = servers / self.tick + sum(u.ru_utime + u.ru_stime for u in usage)
        return time.monotonic(), busy, ours

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


def busy_before() -> float:
    meter = CpuMeter([])
    meter.start()
    time.sleep(1)
    return meter.other_pct() or 0.0


# --------------------------------------------------------------------------- clients


def redis_command(port: int, *args: str) -> bytes:
    """One command in RESP over a fresh connection; returns the raw reply line(s)."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(arg.encode())}\r\n{arg}\r\n" for arg in args)
    with socket.create_connection((HOST, port), timeout=2) as sock:
        sock.sendall(payload.encode())
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    return reply


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


def http_request(
    url: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError as exc:
        return 0, f"<no reply: {exc}>".encode()


def expect_json(
    label: str, url: str, expected: Any, headers: dict[str, str] | None = None, body: bytes | None = None
) -> None:
    status, raw = http_request(url, headers, body)
    try:
        decoded = json.loads(raw)
    except ValueError:
        decoded = None
    if status != 200 or decoded != expected:
        method = "POST" if body is not None else "GET"
        raise BenchError(
            f"{label}: wrong reply, so nothing would be worth measuring.\n"
            f"    request:  {method} {url}\n"
            f"    expected: 200 {json.dumps(expected)[:200]}\n"
            f"    got:      {status} {raw[:500]!r}"
        )


# --------------------------------------------------------------------------- results


@dataclass
class Result:
    target: str
    test: str
    requests_per_s: float
    commands_per_s: float
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None  # wrk's slowest request
    requests: int | None = None
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    bad_bodies: int = 0
    other_cpu_pct: float | None = None  # CPU used by processes we did not start (% of all cores)
    problem: str = ""  # why the figures cannot be trusted (unparseable output, crash, ...)

    def error_summary(self) -> str:
        parts = []
        if self.non_2xx:
            parts.append(f"{self.non_2xx} non-2xx/3xx responses")
        if any(self.socket_errors.values()):
            detail = ", ".join(f"{k} {v}" for k, v in self.socket_errors.items() if v)
            parts.append(f"socket errors ({detail})")
        if self.bad_bodies:
            parts.append(f"{self.bad_bodies} replies with a wrong body")
        if self.problem:
            parts.append(self.problem)
        return "; ".join(parts)

    @property
    def valid(self) -> bool:
        return not self.error_summary() and self.requests_per_s > 0


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def to_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match[1]) * _UNITS_MS[match[2]]


def parse_wrk(target: str, test: str, output: str, commands_per_request: int = 1) -> Result:
    rps = re.search(r"^Requests/sec:\s*([\d.]+)", output, re.M)
    if not rps:
        return Result(target, test, 0.0, 0.0, problem="wrk output not understood (see above)")

    def percentile(pct: int) -> float | None:
        match = re.search(rf"^\s*{pct}(?:\.0+)?%\s+(\S+)", output, re.M)
        try:
            return to_ms(match[1]) if match else None
        except ValueError:
            return None

    slowest = re.search(r"^\s*Latency\s+\S+\s+\S+\s+(\S+)", output, re.M)  # avg, stdev, max
    requests = re.search(r"^\s*(\d+) requests in", output, re.M)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    bad = re.search(r"^bad_bodies:\s*(\d+)", output, re.M)
    socket_errors = {}
    if sock:
        socket_errors = dict(
            zip(("connect", "read", "write", "timeout"), map(int, sock.groups()), strict=True)
        )
    per_s = float(rps[1])
    return Result(
        target,
        test,
        requests_per_s=per_s,
        commands_per_s=per_s * commands_per_request,
        p50_ms=percentile(50),
        p99_ms=percentile(99),
        max_ms=to_ms(slowest[1]) if slowest else None,
        requests=int(requests[1]) if requests else None,
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=socket_errors,
        bad_bodies=int(bad[1]) if bad else 0,
    )


def parse_redis_benchmark(output: str, label: str) -> list[Result]:
    """`redis-benchmark -q` lines such as `GET: 98765.43 requests per second, p50=0.263 msec`."""
    results = []
    for line in re.split(r"[\r\n]+", output):
        match = re.match(r"^(\w+): ([\d.]+) requests per second(?:, p50=([\d.]+) msec)?", line.strip())
        if match:
            per_s = float(match[2])
            p50 = float(match[3]) if match[3] else None
            results.append(Result(REDIS, f"{match[1]} {label}", per_s, per_s, p50_ms=p50))
    return results


# --------------------------------------------------------------------------- load


def run_wrk(
    url: str,
    connections: int,
    seconds: int,
    headers: Sequence[str] = (),
    script: Path | None = None,
) -> str:
    argv = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        argv += ["-H", header]
    if script:
        argv += ["-s", str(script)]
    argv.append(url)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        output += f"\n(wrk exited with code {done.returncode})"
    return output


def pipeline_body() -> list[list[str]]:
    body: list[list[str]] = []
    for i in range(1, PIPELINE_COMMANDS // 2 + 1):
        body += [["SET", f"k{i}", "v"], ["GET", f"k{i}"]]
    return body


def pipeline_expected() -> list[dict[str, str]]:
    return [{"result": "OK"} if command[0] == "SET" else {"result": "v"} for command in pipeline_body()]


def write_pipeline_script(path: Path) -> None:
    body = json.dumps(pipeline_body(), separators=(",", ":"))
    expected = json.dumps(pipeline_expected(), separators=(",", ":"))
    path.write_text(
        f"""-- generated by bench/run.py: POST /pipeline, {PIPELINE_COMMANDS} commands a request
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {TOKEN}"

local expected = [==[{expected}]==]
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad_bodies = 0
end

-- A pipeline answers 200 even when commands inside it fail: check the body too.
function response(status, headers, body)
  if body ~= expected then
    bad_bodies = bad_bodies + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("bad_bodies")
  end
  io.write(string.format("bad_bodies: %d\\n", total))
end
"""
    )


def write_checked_script(
    path: Path, endpoint: str, body: object, good: str, pipeline: bool, generated_by: str
) -> None:
    """A wrk script posting ``body`` to ``endpoint``; a reply is counted wrong (``bad_bodies``)
    unless it starts with ``good`` (one command) or holds no error (a pipeline)."""
    check = (
        "body:find('\"error\"', 1, true) ~= nil"
        if pipeline
        else f"body:sub(1, {len(good)}) ~= [==[{good}]==]"
    )
    path.write_text(
        f"""-- generated by {generated_by}
wrk.method = "POST"
wrk.path = "{endpoint}"
wrk.body = [==[{json.dumps(body, separators=(",", ":"))}]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {TOKEN}"
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) bad_bodies = 0 end
function response(status, headers, body)
  if {check} then bad_bodies = bad_bodies + 1 end
end
function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do total = total + thread:get("bad_bodies") end
  io.write(string.format("bad_bodies: %d\\n", total))
end
"""
    )


def report_ratios(
    results: list[Result], baseline: str, candidate: str, tests: Sequence[str], target: float
) -> int:
    """A table of commands/s, ``candidate`` / ``baseline`` and ``target`` per test (printed,
    never asserted), then any invalid run; 1 when a run was invalid."""
    by = {(r.target, r.test): r for r in results}
    width = max(len(t) for t in tests)
    print(
        f"\n  {'test':<{width}} {baseline + ' cmd/s':>17} {candidate + ' cmd/s':>13} {'ratio':>7} {'target':>8}"
        "   p99 ms"
    )
    failed = False
    for test in tests:
        base, cand = by[(baseline, test)], by[(candidate, test)]
        failed |= not (base.valid and cand.valid)
        ratio = cand.commands_per_s / base.commands_per_s if base.commands_per_s else float("nan")
        p99 = f"{base.p99_ms or float('nan'):.1f} / {cand.p99_ms or float('nan'):.1f}"
        print(
            f"  {test:<{width}} {base.commands_per_s:>17,.0f} {cand.commands_per_s:>13,.0f} "
            f"{ratio:>6.2f}x {'>= ' + str(target) + 'x':>8}   {p99}"
        )
    for r in results:
        if not r.valid:
            print(f"  !! {r.target} {r.test}: {r.error_summary()}")
    return 1 if failed else 0


def run_in_tempdir(
    prefix: str, run: Callable[[argparse.Namespace, Path], int], args: argparse.Namespace
) -> int:
    """``run(args, tmp)`` in a new temporary directory; a :class:`BenchError` is one line
    on stderr and exit status 1."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        try:
            return run(args, Path(tmp))
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1


@dataclass
class HttpTarget:
    name: str
    service: Service
    base_url: str
    get_path: str
    set_path: str | None  # None: no SET tests
    headers: tuple[str, ...] = ()
    pipeline: bool = False
    ceiling: bool = False  # bench/aiohttp_ceiling.py: a constant reply whatever the request
    crashed: bool = False


def bench_http(
    meter: CpuMeter,
    target: HttpTarget,
    test: str,
    path: str,
    connections: int,
    seconds: int,
    *,
    script: Path | None = None,
    commands_per_request: int = 1,
) -> Result:
    """One wrk run; a script, when given, sets the method, body and every header itself."""
    if target.crashed:
        return Result(target.name, test, 0.0, 0.0, problem="not run: the server had exited")
    print(f"  {target.name:<10} {test:<16} wrk -c{connections} -d{seconds}s ...", end="", flush=True)
    headers = () if script else target.headers
    meter.start()
    output = run_wrk(target.base_url + path, connections, seconds, headers, script)
    result = parse_wrk(target.name, test, output, commands_per_request)
    result.other_cpu_pct = meter.other_pct()
    if not target.service.alive():
        target.crashed = True
        result.problem = f"server exited (code {target.service.proc.returncode}) during the run"
    if result.valid:
        print(f" {result.requests_per_s:>10,.0f} req/s{noise_note(result)}")
    else:
        print(f" !! {result.error_summary()}")
        if result.problem.startswith("wrk output"):
            print("\n".join(f"    | {line}" for line in output.splitlines()))
    return result


def noise_note(result: Result) -> str:
    pct = result.other_cpu_pct
    return f"   (others used {pct:.0f}% CPU: noisy)" if pct is not None and pct > NOISY_PCT else ""


def run_redis_benchmark(meter: CpuMeter, port: int, pipeline: int | None) -> list[Result]:
    argv = ["redis-benchmark", "-h", HOST, "-p", str(port), "-t", "get,set"]
    argv += ["-c", str(REDIS_BENCHMARK_CLIENTS), "-n", str(REDIS_BENCHMARK_REQUESTS), "-q"]
    label = f"c{REDIS_BENCHMARK_CLIENTS}"
    if pipeline:
        argv += ["-P", str(pipeline)]
        label += f" -P{pipeline}"
    print(f"  {REDIS:<10} {'get,set ' + label:<16} redis-benchmark ...", end="", flush=True)
    meter.start()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    other = meter.other_pct()
    results = parse_redis_benchmark(done.stdout, label)
    for result in results:
        result.other_cpu_pct = other
    if done.returncode != 0 or len(results) != 2:
        print(" !! failed")
        problem = f"redis-benchmark exited {done.returncode}: {(done.stdout + done.stderr)[-300:]!r}"
        return [Result(REDIS, f"get,set {label}", 0.0, 0.0, problem=problem)]
    print(
        "  "
        + ", ".join(f"{r.test.split()[0]} {r.requests_per_s:,.0f}/s" for r in results)
        + noise_note(results[0])
    )
    return results


# --------------------------------------------------------------------------- setup


def check_tools() -> None:
    missing = [
        tool for tool in ("redis-server", "redis-benchmark", "wrk", "webdis") if not shutil.which(tool)
    ]
    if missing:
        raise BenchError(
            f"missing tools: {', '.join(missing)} (Debian: apt-get install redis-server wrk webdis)"
        )


def start_redis(started: list[Service], tmp: Path, port: int) -> Service:
    argv = ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    argv += ["--dir", str(tmp)]
    redis = Service(REDIS, argv, tmp / "redis.log")
    started.append(redis)

    def pong() -> bool:
        try:
            return redis_command(port, "PING") == b"+PONG\r\n"
        except OSError:
            return False

    wait_until(redis, "PING to answer PONG", pong, timeout=15)
    return redis


def start_kvgate(
    started: list[Service],
    tmp: Path,
    name: str,
    port: int,
    backend: str,
    workers: int,
    extra: Sequence[str] = (),
) -> Service:
    argv = [sys.executable, "-m", "kvgate", "serve", "--host", HOST, "--port", str(port)]
    argv += ["--backend", backend, "--token", TOKEN]
    argv += ["--workers", str(workers), "--log-level", "warning", *extra]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVGATE_")}  # only our flags count
    env["PYTHONUNBUFFERED"] = "1"
    kvgate = Service(name, argv, tmp / f"{name}.log", env=env)
    started.append(kvgate)
    wait_until(kvgate, "'kvgate listening on'", lambda: "kvgate listening on" in kvgate.log_text(), 60)
    wait_until(kvgate, f"port {port} to accept connections", lambda: port_accepts(port), 30)
    # The parent announces before its workers bind: wait for one listening socket per worker.
    if listening_sockets(port) is not None:
        wait_until(kvgate, f"{workers} listening sockets", lambda: listening_sockets(port) == workers, 30)
    health = f"http://{HOST}:{port}/_kvgate/health"
    wait_until(kvgate, f"GET {health} to answer 200", lambda: http_request(health)[0] == 200, 30)
    return kvgate


def redis_and_sqlite_targets(
    started: list[Service], tmp: Path, redis_name: str, redis_port: int, db_file: str
) -> list[HttpTarget]:
    """kvgate (2 workers) on the Redis at ``redis_port`` and on a new SQLite file in
    ``tmp``: the pair the families and documents benches compare, as POST targets."""
    redis_kv, sqlite_kv = free_ports(2)
    redis_url, sqlite_url = f"redis://{HOST}:{redis_port}/0", f"sqlite:///{tmp / db_file}"
    return [
        HttpTarget(
            redis_name,
            start_kvgate(started, tmp, "kvgate-redis", redis_kv, redis_url, 2),
            f"http://{HOST}:{redis_kv}",
            "/",
            None,
        ),
        HttpTarget(
            "sqlite",
            start_kvgate(started, tmp, "kvgate-sqlite", sqlite_kv, sqlite_url, 2),
            f"http://{HOST}:{sqlite_kv}",
            "/",
            None,
        ),
    ]


def start_webdis(started: list[Service], tmp: Path, port: int, redis_port: int) -> Service:
    config = {
        "redis_host": HOST,
        "redis_port": redis_port,
        "redis_auth": None,
        "http_host": HOST,
        "http_port": port,
        "threads": 2,
        "daemonize": False,
        "database": 0,
        "acl": [{"disabled": ["DEBUG"]}],
        "verbosity": 1,  # warnings and errors only, like kvgate's --log-level warning
        "logfile": str(tmp / "webdis.log"),
    }
    config_path = tmp / "webdis.json"
    config_path.write_text(json.dumps(config, indent=2))
    webdis = Service(WEBDIS, ["webdis", str(config_path)], tmp / "webdis.out", own_log=tmp / "webdis.log")
    started.append(webdis)
    wait_until(webdis, f"port {port} to accept connections", lambda: port_accepts(port), 15)
    return webdis


def start_ceiling(started: list[Service], tmp: Path, name: str, port: int, workers: int) -> Service:
    """bench/aiohttp_ceiling.py: the same readiness checks as kvgate, one socket per worker."""
    argv = [sys.executable, str(CEILING_SCRIPT), "--host", HOST, "--port", str(port)]
    argv += ["--workers", str(workers)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    ceiling = Service(name, argv, tmp / f"{name}.log", env=env)
    started.append(ceiling)
    wait_until(ceiling, f"port {port} to accept connections", lambda: port_accepts(port), 30)
    if listening_sockets(port) is not None:
        wait_until(ceiling, f"{workers} listening sockets", lambda: listening_sockets(port) == workers, 30)
    return ceiling


def verify_ceiling(target: HttpTarget, reference: HttpTarget) -> None:
    """The ceiling's reply must have the shape of kvgate's: same status, body, Content-Type."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    expect_json(target.name, target.base_url + target.get_path, CEILING_REPLY, auth)

    def reply_headers(url: str) -> dict[str, str]:
        request = urllib.request.Request(url, headers=auth)
        try:
            with _OPENER.open(request, timeout=5) as response:
                return {k.lower(): v for k, v in response.headers.items()}
        except OSError as exc:
            raise BenchError(f"{target.name}: no reply from {url}: {exc}") from None

    ours = reply_headers(target.base_url + target.get_path)
    theirs = reply_headers(reference.base_url + reference.get_path)
    if ours.get("content-type") != theirs.get("content-type") or not (
        "upstash-sync-token" in ours and "upstash-sync-token" in theirs
    ):
        raise BenchError(
            f"{target.name}: reply headers do not have the shape of {reference.name}'s "
            f"(Content-Type, Upstash-Sync-Token):\n    {target.name}: {ours}\n    {reference.name}: {theirs}"
        )


def ceiling_announcement(ceiling: Service) -> str:
    """Its "listening" line says how many workers and which event loop (uvloop or asyncio)."""
    for line in ceiling.log_text().splitlines():
        if "listening on http://" in line:
            return line.split("(", 1)[-1].rstrip(")")
    return "?"


def verify(targets: list[HttpTarget]) -> None:
    """One real request each: benchmarking wrong answers would be worthless."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    reference = next(target for target in targets if target.pipeline)  # a kvgate
    for target in targets:
        if target.ceiling:
            verify_ceiling(target, reference)
            continue
        if target.name == WEBDIS:
            expect_json(target.name, target.base_url + target.set_path, {"SET": [True, "OK"]})
            expect_json(target.name, target.base_url + target.get_path, {"GET": "bar"})
            continue
        expect_json(target.name, target.base_url + target.set_path, {"result": "OK"}, auth)
        expect_json(target.name, target.base_url + target.get_path, {"result": "bar"}, auth)
        body = json.dumps(pipeline_body()).encode()
        headers = {**auth, "Content-Type": "application/json"}
        expect_json(target.name, target.base_url + "/pipeline", pipeline_expected(), headers, body)
    print(
        "  replies verified: kvgate {'result': 'bar'}, webdis {'GET': 'bar'}, pipeline of 100 ok, "
        "aiohttp ceiling {'result': 'bar'} with kvgate's Content-Type"
    )


# --------------------------------------------------------------------------- report


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def other_cpu(result: Result) -> str:
    if result.other_cpu_pct is None:
        return "-"
    return f"{result.other_cpu_pct:.0f}%" + (" noisy" if result.other_cpu_pct > NOISY_PCT else "")


def print_table(results: list[Result]) -> None:
    header = ("target", "test", "req/s", "commands/s", "p50 ms", "p99 ms", "non-2xx", "errors", "other CPU")
    rows = []
    for r in results:
        socket_errors = sum(r.socket_errors.values())
        flag = "" if r.valid else "!! INVALID"
        rows.append(
            (
                r.target,
                r.test,
                fmt(r.requests_per_s),
                fmt(r.commands_per_s),
                fmt(r.p50_ms, ".2f"),
                fmt(r.p99_ms, ".2f"),
                str(r.non_2xx) if r.target != REDIS else "-",
                f"{socket_errors + r.bad_bodies} {flag}".strip() if r.target != REDIS or flag else "-",
                other_cpu(r),
            )
        )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    left = {0, 1}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def ratio(results: dict[tuple[str, str], Result], a: str, b: str, test: str) -> float | None:
    ra, rb = results.get((a, test)), results.get((b, test))
    if not ra or not rb or not ra.valid or not rb.valid:
        return None
    return ra.requests_per_s / rb.requests_per_s


def report(results: list[Result]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    by_key = {(r.target, r.test): r for r in results}
    single = [f"{cmd} c{c}" for cmd in ("GET", "SET") for c in CONCURRENCIES]
    gets = [f"GET c{c}" for c in CONCURRENCIES]
    # (key in --json, label, numerator, denominator, tests)
    pairs = [
        ("kvgate-2w/webdis", "kvgate 2 workers / webdis", KVGATE_2W, WEBDIS, single),
        (
            "kvgate-2w/kvgate-1w",
            "kvgate 2 workers / 1 worker",
            KVGATE_2W,
            KVGATE_1W,
            [*single, f"pipeline{PIPELINE_COMMANDS}"],
        ),
        (
            "kvgate-2w/aiohttp-2w",
            "kvgate 2 workers / aiohttp ceiling 2 workers",
            KVGATE_2W,
            AIOHTTP_2W,
            gets,
        ),
        ("kvgate-1w/aiohttp-1w", "kvgate 1 worker / aiohttp ceiling 1 worker", KVGATE_1W, AIOHTTP_1W, gets),
        (
            "sqlite-2w/kvgate-2w",
            "SQLite backend / Redis backend, 2 workers",
            SQLITE_2W,
            KVGATE_2W,
            [*single, f"pipeline{PIPELINE_COMMANDS}"],
        ),
        (
            "sqlite-1w/kvgate-1w",
            "SQLite backend / Redis backend, 1 worker",
            SQLITE_1W,
            KVGATE_1W,
            [*single, f"pipeline{PIPELINE_COMMANDS}"],
        ),
        ("aiohttp-2w/webdis", "aiohttp ceiling 2 workers / webdis", AIOHTTP_2W, WEBDIS, gets),
    ]
    width = max(len(label) for _, label, *_ in pairs)
    ratios: dict[str, Any] = {}
    print("\nRatios measured in this run (req/s; '-' where a side had errors)")
    for key, label, a, b, tests in pairs:
        ratios[key] = {}
        for test in tests:
            value = ratio(by_key, a, b, test)
            ratios[key][test] = value
            print(f"  {label:<{width}}  {test:<16} {fmt(value, '.2f')}x")

    targets: list[dict[str, Any]] = []

    def target(
        text: str, figures: list[tuple[str, float | None]], ok: Callable[[float], bool], unit: str
    ) -> dict[str, Any]:
        measured = [v for _, v in figures if v is not None]
        if len(measured) < len(figures):
            status = "no data"
        else:
            status = "meets" if all(map(ok, measured)) else "MISSES"
        spec = ",.0f" if unit == "/s" else ".2f"
        shown = ", ".join(f"{label} {fmt(value, spec)}{unit}" for label, value in figures)
        print(f"  {status:<7}  {text}: {shown}")
        targets.append({"target": text, "status": status, "figures": dict(figures)})
        return targets[-1]

    print("\nTargets (informational: never asserted)")
    target(
        f"single GET >= {TARGET_GET_RATIO}x webdis with --workers 2",
        [(f"c{c}", ratios["kvgate-2w/webdis"][f"GET c{c}"]) for c in CONCURRENCIES],
        lambda v: v >= TARGET_GET_RATIO,
        "x",
    )
    # The same target for aiohttp alone: what kvgate's serving stack reaches with no work at all.
    ceiling = target(
        f"same {TARGET_GET_RATIO}x for the aiohttp ceiling (2 workers, constant reply, no Redis)",
        [(f"c{c}", ratios["aiohttp-2w/webdis"][f"GET c{c}"]) for c in CONCURRENCIES],
        lambda v: v >= TARGET_GET_RATIO,
        "x",
    )
    ceiling_report(ceiling, ratios)
    c50 = [(test, by_key.get((KVGATE_2W, test))) for test in ("GET c50", "SET c50")]
    target(
        f"p99 <= {TARGET_P99_MS:g} ms at c50 (kvgate 2 workers)",
        [(test, r.p99_ms if r and r.valid else None) for test, r in c50],
        lambda v: v <= TARGET_P99_MS,
        " ms",
    )
    pipe = by_key.get((KVGATE_2W, f"pipeline{PIPELINE_COMMANDS}"))
    target(
        f"/pipeline >= {TARGET_PIPELINE_CPS:,} commands/s (kvgate 2 workers)",
        [("commands", pipe.commands_per_s if pipe and pipe.valid else None)],
        lambda v: v >= TARGET_PIPELINE_CPS,
        "/s",
    )
    target(
        f"SQLite-backend /pipeline of {PIPELINE_COMMANDS} >= {TARGET_SQLITE_PIPELINE}x the Redis-backend figure "
        "(2 workers)",
        [("commands", ratios["sqlite-2w/kvgate-2w"][f"pipeline{PIPELINE_COMMANDS}"])],
        lambda v: v >= TARGET_SQLITE_PIPELINE,
        "x",
    )
    for command, goal in (("SET", TARGET_SQLITE_SET), ("GET", TARGET_SQLITE_GET)):
        target(
            f"SQLite-backend single {command} >= {goal}x the Redis-backend figure (2 workers)",
            [(f"c{c}", ratios["sqlite-2w/kvgate-2w"][f"{command} c{c}"]) for c in CONCURRENCIES],
            lambda v, goal=goal: v >= goal,
            "x",
        )
    return ratios, targets


def ceiling_report(ceiling: dict[str, Any], ratios: dict[str, Any]) -> None:
    """Under the ceiling line: the share of the ceiling kvgate reaches and the share it would need.

    needed = target / (ceiling / webdis): above 1, no change to kvgate's own code can meet the
    target on this machine, since kvgate cannot be faster than aiohttp answering a constant.
    """
    reached: dict[str, float | None] = {}
    needed: dict[str, float | None] = {}
    for c in CONCURRENCIES:
        label, test = f"c{c}", f"GET c{c}"
        reached[label] = ratios["kvgate-2w/aiohttp-2w"][test]
        ceiling_ratio = ratios["aiohttp-2w/webdis"][test]
        needed[label] = TARGET_GET_RATIO / ceiling_ratio if ceiling_ratio else None
    ceiling["kvgate_share_of_ceiling"] = reached
    ceiling["needed_share_of_ceiling"] = needed

    def shown(values: dict[str, float | None]) -> str:
        return ", ".join(f"{label} {fmt(value, '.2f')}x" for label, value in values.items())

    print(
        f"{'':11}kvgate 2 workers is at {shown(reached)} of the ceiling; "
        f"{TARGET_GET_RATIO}x webdis needs {shown(needed)} of it"
    )
    above = [label for label, v in needed.items() if v is not None and v > 1]
    if above:
        where = "in this run" if len(above) == len(needed) else f"at {', '.join(above)}"
        print(f"{'':11}-> {TARGET_GET_RATIO}x webdis is above aiohttp's own ceiling {where}")


def report_errors(results: list[Result]) -> bool:
    """Loud banner for any run with errors: those rows are not throughput."""
    bad = [r for r in results if not r.valid]
    if not bad:
        print("\nNo errors: every wrk run got only 2xx replies and no socket errors.")
        return False
    bar = "!" * 78
    print(f"\n{bar}\n!! ERRORS DURING THE RUN: these rows are NOT valid throughput figures")
    for r in bad:
        print(f"!!   {r.target} {r.test}: {r.error_summary()}")
    print(f"!! (the servers' log lines, if any, follow)\n{bar}")
    return True


def report_logs(servers: list[Service]) -> None:
    """What the servers logged (they run at warning level), identical lines grouped."""
    for service in servers:
        lines = [
            line for line in service.log_text().splitlines() if line and " listening on http://" not in line
        ]
        if not lines:
            continue
        groups: dict[str, int] = {}
        for line in lines:
            # drop timestamps and pids, number fds: identical messages then group together
            key = re.sub(r"\d+", "N", line)
            groups[key] = groups.get(key, 0) + 1
        print(f"\n{service.name} logged {len(lines)} line(s) ({service.log_path.name}), grouped:")
        for key, count in list(groups.items())[:20]:
            print(f"  {count:>5} x  {key[:300]}")
        if len(groups) > 20:
            print(f"  ... and {len(groups) - 20} other kinds")


def report_noise(results: list[Result]) -> None:
    noisy = [r for r in results if r.other_cpu_pct is not None and r.other_cpu_pct > NOISY_PCT]
    if noisy:
        worst = max(noisy, key=lambda r: r.other_cpu_pct or 0.0)
        print(
            f"\nNOISY: in {len(noisy)} of {len(results)} runs, processes this script did not start used "
            f"more than {NOISY_PCT}% of the CPUs (worst: {worst.target} {worst.test}, "
            f"{worst.other_cpu_pct:.0f}%). Compare those figures with care, or rerun on a quiet machine."
        )


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=int, help="seconds per wrk run (default 10, 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help="3 s per wrk run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs and configs")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 3 if args.quick else 10
    if not 1 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration must be between 1 and {MAX_DURATION} seconds")
    return args


def first_line(argv: list[str]) -> str:
    """The first line a command prints (its version, say), or "?"."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd=REPO, check=False)
    except OSError as exc:
        return f"? ({exc})"
    lines = (done.stdout.strip() or done.stderr.strip()).splitlines()
    return lines[0] if lines else "?"


def versions() -> dict[str, str]:
    return {
        "kvgate": first_line([sys.executable, "-m", "kvgate", "--version"]),
        "kvgate_commit": first_line(["git", "describe", "--always", "--dirty"]),
        "python": sys.version.split()[0],
        "redis": first_line(["redis-server", "--version"]),
        "aiohttp": first_line([sys.executable, "-c", "import aiohttp; print(aiohttp.__version__)"]),
        "wrk": first_line(["wrk", "-v"]),
        "cpus": str(os.cpu_count()),
    }


def kvgate_target(name: str, service: Service, port: int) -> HttpTarget:
    base = f"http://{HOST}:{port}"
    return HttpTarget(name, service, base, "/get/foo", "/set/foo/bar", (AUTH_HEADER,), pipeline=True)


def ceiling_target(name: str, service: Service, port: int) -> HttpTarget:
    """GET tests only, with kvgate's exact request (the ceiling ignores path and headers)."""
    base = f"http://{HOST}:{port}"
    return HttpTarget(name, service, base, "/get/foo", None, (AUTH_HEADER,), ceiling=True)


def measure(
    meter: CpuMeter, targets: list[HttpTarget], script: Path, redis_port: int, seconds: int
) -> list[Result]:
    print(f"\nWarm-up ({WARMUP_SECONDS}s each, not reported)")
    for target in targets:
        bench_http(meter, target, "warm-up GET c50", target.get_path, 50, WARMUP_SECONDS)

    print("\nMeasuring (targets interleaved per test, so drift hits them alike)")
    results = []
    for command in ("GET", "SET"):
        for connections in CONCURRENCIES:
            for target in targets:
                path = target.get_path if command == "GET" else target.set_path
                if path is None:
                    continue
                test = f"{command} c{connections}"
                results.append(bench_http(meter, target, test, path, connections, seconds))
    for target in targets:
        if target.pipeline:
            test = f"pipeline{PIPELINE_COMMANDS}"
            result = bench_http(
                meter,
                target,
                test,
                "/pipeline",
                PIPELINE_CONNECTIONS,
                seconds,
                script=script,
                commands_per_request=PIPELINE_COMMANDS,
            )
            results.append(result)
    results += run_redis_benchmark(meter, redis_port, None)
    results += run_redis_benchmark(meter, redis_port, 16)
    return results


def run(args: argparse.Namespace, tmp: Path) -> int:
    check_tools()
    seconds: int = args.duration
    info = versions()
    print(
        f"kvgate bench: {seconds}s per wrk run, wrk -t{WRK_THREADS}, {info['cpus']} CPUs shared by everything"
    )
    print(
        f"  {info['kvgate']} ({info['kvgate_commit']}), aiohttp {info['aiohttp']}, {info['redis']}, {info['wrk']}"
    )
    print(f"  before starting, other processes use {busy_before():.0f}% of the CPUs (measured over 1 s)")
    with services() as started:
        redis_port, k2_port, k1_port, webdis_port, a2_port, a1_port, s2_port, s1_port = free_ports(8)
        kept = "kept" if args.keep_logs else "removed at the end"
        print(f"\nStarting servers (logs in {tmp}, {kept})")
        start_redis(started, tmp, redis_port)
        if redis_command(redis_port, "SET", "foo", "bar") != b"+OK\r\n":
            raise BenchError("redis: SET foo bar did not answer +OK")
        webdis = start_webdis(started, tmp, webdis_port, redis_port)
        redis_url = f"redis://{HOST}:{redis_port}/0"
        kvgate2 = start_kvgate(started, tmp, KVGATE_2W, k2_port, redis_url, workers=2)
        kvgate1 = start_kvgate(started, tmp, KVGATE_1W, k1_port, redis_url, workers=1)
        # one file per SQLite target, in the run's temporary directory (a real disk file)
        sqlite2 = start_kvgate(started, tmp, SQLITE_2W, s2_port, f"sqlite:///{tmp}/bench-2w.db", workers=2)
        sqlite1 = start_kvgate(started, tmp, SQLITE_1W, s1_port, f"sqlite:///{tmp}/bench-1w.db", workers=1)
        ceiling2 = start_ceiling(started, tmp, AIOHTTP_2W, a2_port, workers=2)
        ceiling1 = start_ceiling(started, tmp, AIOHTTP_1W, a1_port, workers=1)
        print(f"  redis :{redis_port}, webdis :{webdis_port}, kvgate :{k2_port} (2 workers), :{k1_port} (1)")
        print(f"  kvgate on SQLite :{s2_port} (2 workers), :{s1_port} (1), files in {tmp}")
        print(f"  aiohttp ceiling :{a2_port} (2 workers), :{a1_port} (1): {ceiling_announcement(ceiling2)}")
        targets = [
            kvgate_target(KVGATE_2W, kvgate2, k2_port),
            kvgate_target(KVGATE_1W, kvgate1, k1_port),
            kvgate_target(SQLITE_2W, sqlite2, s2_port),
            kvgate_target(SQLITE_1W, sqlite1, s1_port),
            HttpTarget(WEBDIS, webdis, f"http://{HOST}:{webdis_port}", "/GET/foo", "/SET/foo/bar"),
            ceiling_target(AIOHTTP_2W, ceiling2, a2_port),
            ceiling_target(AIOHTTP_1W, ceiling1, a1_port),
        ]
        verify(targets)
        script = tmp / "pipeline.lua"
        write_pipeline_script(script)
        results = measure(CpuMeter(started), targets, script, redis_port, seconds)

        print(
            f"\nResults ({seconds}s per wrk run; p50/p99 from wrk --latency; redis-benchmark -q gives p50 only)"
        )
        print_table(results)
        ratios, target_report = report(results)
        had_errors = report_errors(results)
        report_logs([kvgate2, kvgate1, sqlite2, sqlite1, webdis, ceiling2, ceiling1])
        report_noise(results)
        print("\nStopping servers")

    if args.json:
        payload = {
            "settings": {
                "duration_s": seconds,
                "wrk_threads": WRK_THREADS,
                "pipeline_commands": PIPELINE_COMMANDS,
                "aiohttp_ceiling": "bench/aiohttp_ceiling.py: aiohttp low-level server, constant reply",
            },
            "versions": info,
            "results": [asdict(r) | {"valid": r.valid} for r in results],
            "ratios": ratios,
            "targets": target_report,
            "errors": had_errors,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 1 if had_errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def on_sigterm(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # unwinds through the `finally` that stops the servers

    signal.signal(signal.SIGTERM, on_sigterm)
    tmp = Path(tempfile.mkdtemp(prefix="kvgate-bench-"))
    try:
        return run(args, tmp)
    except BenchError as exc:
        print(f"\nbench: ABORTED: {exc}", file=sys.stderr)
        return 2
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
