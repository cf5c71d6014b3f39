"""Running the server: one process, or N worker processes sharing a port.

Graceful shutdown: on SIGTERM/SIGINT the listening socket closes and the connections
drain (kvgate/connections.py): idle ones close at once; a request begun (its headers or
body still arriving, or waiting behind another on its connection) is read to the end and
answered, the connection's last answer saying ``Connection: close``.  The process exits
as soon as the last connection closes, or after ``shutdown_timeout`` seconds, when what
is left is cut; then backends are closed.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import sys
from collections.abc import Callable

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

from aiohttp import web

from kvgate.adapters import entry_for, open_backend, redact_url
from kvgate.app import Gateway, create_server
from kvgate.config import Config
from kvgate.errors import StartupError

log = logging.getLogger("kvgate")

#: Seconds handlers still running after ``shutdown_timeout`` get before they are cancelled.
CANCEL_GRACE = 0.5


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def files_reserved(config: Config) -> int:
    """Open files a process needs besides its client connections: its own (the loop, logs,
    pipes) and each database's backend connections and subscriptions."""
    files = 64
    for db in config.databases:
        entry = entry_for(db.backend)
        if not entry.in_process:
            files += (db.pool_size or entry.default_pool_size or 8) + (
                db.max_subscriptions if entry.pubsub else 0
            )
    return files


def fit_open_files(max_connections: int, reserved: int) -> int:
    """The connection cap this process can keep: the soft open-file limit is raised (as
    far as the hard one) to hold ``max_connections`` plus ``reserved``; if it cannot be,
    the cap is lowered with a warning.  A cap above the limit would let clients use up the
    files, and then accept() fails and every new client is refused."""
    if resource is None:
        return max_connections
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + reserved
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return max_connections
    cap = max(soft - reserved, soft // 4, 1)
    log.warning(
        "max_connections lowered from %d to %d: this process may open %d files (ulimit -n; "
        "hard limit %s) and keeps %d of them for its backends",
        max_connections,
        cap,
        soft,
        "unlimited" if hard == resource.RLIM_INFINITY else hard,
        reserved,
    )
    return cap


async def serve(config: Config, *, announce: bool = True) -> None:
    gateway = Gateway(config)
    try:
        await gateway.start()
    except StartupError as exc:
        await gateway.close()
        raise SystemExit(f"kvgate: {redact_url(str(exc))}") from None
    server = create_server(gateway, fit_open_files(config.max_connections, files_reserved(config)))
    runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=CANCEL_GRACE)
    await runner.setup()
    site = web.TCPSite(
        runner,
        config.host,
        config.port,
        reuse_port=config.workers > 1,
        backlog=1024,
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await gateway.close()
        raise SystemExit(
            f"kvgate: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
        ) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if announce:
        sockets = runner.addresses
        host, port = sockets[0][:2] if sockets else (config.host, config.port)
        print(f"kvgate listening on http://{host}:{port}", flush=True)
    await stop.wait()
    log.info("shutting down: answering the requests begun (up to %gs)", config.shutdown_timeout)
    gateway.begin_shutdown()
    await site.stop()  # stop listening
    if not await server.drain(config.shutdown_timeout):
        log.warning(
            "shutdown_timeout (%gs) passed with %d connections still open: closing them",
            config.shutdown_timeout,
            len(server.open),
        )
    await runner.cleanup()  # cancels what is left
    await gateway.close()


def run_worker(config: Config, announce: bool = True) -> None:
    setup_logging(config.log_level)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(config, announce=announce))


def preflight(config: Config) -> None:
    for db in config.databases:
        try:
            open_backend(db.backend, db.backend_settings).preflight()
        except StartupError as exc:
            raise SystemExit(f"kvgate: database {db.name!r}: {redact_url(str(exc))}") from None


def run(config: Config) -> int:
    """Serve until SIGTERM/SIGINT; returns the process exit code."""
    preflight(config)
    if config.workers == 1:
        run_worker(config)
        return 0
    setup_logging(config.log_level)
    ctx = multiprocessing.get_context("spawn")
    workers = [
        ctx.Process(target=run_worker, args=(config, False), name=f"kvgate-worker-{i}")
        for i in range(config.workers)
    ]
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in workers:
            if proc.is_alive() and proc.pid:
                proc.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in workers:
        proc.start()
    print(
        f"kvgate listening on http://{config.host}:{config.port} ({config.workers} workers)",
        flush=True,
    )
    code = 0
    while any(proc.is_alive() for proc in workers):
        for proc in workers:
            proc.join(timeout=0.2)
            if not proc.is_alive() and proc.exitcode not in (0, None) and not stopping:
                log.error("%s exited with code %s; stopping the others", proc.name, proc.exitcode)
                code = 1
                forward(signal.SIGTERM, None)
    return code
