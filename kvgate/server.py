"""Running the server: one process, or N worker processes sharing a port.

Graceful shutdown: on SIGTERM/SIGINT the listening socket closes, in-flight requests get
``shutdown_timeout`` seconds to finish, then backends are closed.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import sys
from collections.abc import Callable

from aiohttp import web

from kvgate.adapters import open_backend
from kvgate.app import Gateway, create_server
from kvgate.config import Config
from kvgate.errors import StartupError

log = logging.getLogger("kvgate")


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


async def serve(config: Config, *, announce: bool = True) -> None:
    gateway = Gateway(config)
    try:
        await gateway.start()
    except StartupError as exc:
        await gateway.close()
        raise SystemExit(f"kvgate: {exc}") from None
    runner = web.ServerRunner(
        create_server(gateway), handle_signals=False, shutdown_timeout=config.shutdown_timeout
    )
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
    log.info("shutting down: finishing in-flight requests (up to %gs)", config.shutdown_timeout)
    gateway.begin_shutdown()
    await runner.cleanup()  # stops listening, waits for in-flight requests
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
            raise SystemExit(f"kvgate: database {db.name!r}: {exc}") from None


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
