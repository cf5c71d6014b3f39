#!/usr/bin/env python3
"""aiohttp's own ceiling: kvgate's serving stack with nothing behind it.

    python bench/aiohttp_ceiling.py --host 127.0.0.1 --port PORT [--workers N]

The same stack as ``kvgate serve`` (aiohttp's low-level ``web.Server``, uvloop when
importable, ``access_log=None``, ``backlog=1024``, N ``spawn`` worker processes sharing the
port with SO_REUSEPORT) whose handler answers every request, whatever its method or path,
with a constant ``{"result":"bar"}``, ``Content-Type: application/json`` and
``Upstash-Sync-Token: x``, the shape of kvgate's reply to ``GET /get/foo``.  No routing, no
auth, no command parsing, no Redis: whatever it reaches is the most kvgate could reach on
the same machine.  bench/run.py measures it next to kvgate and webdis.

SIGTERM or SIGINT stops it: the workers stop listening and finish, the parent exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import signal
import sys
from collections.abc import Callable

from aiohttp import web

BODY = b'{"result":"bar"}'
HEADERS = {"Content-Type": "application/json", "Upstash-Sync-Token": "x"}


async def handle(_request: web.BaseRequest) -> web.Response:
    # A new Response per request, as kvgate builds one (a Response cannot be sent twice).
    return web.Response(body=BODY, headers=HEADERS)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def loop_name() -> str:
    return "uvloop" if loop_factory() else "asyncio"


async def serve(host: str, port: int, announce: str | None) -> None:
    runner = web.ServerRunner(web.Server(handle, max_field_size=65536), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_port=True, backlog=1024)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise SystemExit(f"aiohttp_ceiling: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if announce:
        print(announce, flush=True)
    await stop.wait()
    await runner.cleanup()


def run_worker(host: str, port: int, announce: str | None = None) -> None:
    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(serve(host, port, announce))
    except KeyboardInterrupt:  # SIGINT before the loop's handler was installed
        pass


def run(host: str, port: int, workers: int) -> int:
    announce = f"aiohttp ceiling listening on http://{host}:{port} ({workers} workers, {loop_name()})"
    if workers == 1:
        run_worker(host, port, announce)
        return 0
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=run_worker, args=(host, port), name=f"aiohttp-ceiling-{i}") for i in range(workers)
    ]
    stopping = False

    def forward(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.is_alive() and proc.pid:
                proc.terminate()

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        proc.start()
    print(announce, flush=True)  # the workers bind after this: wait for their sockets
    code = 0
    while any(proc.is_alive() for proc in procs):
        for proc in procs:
            proc.join(timeout=0.2)
            if not proc.is_alive() and proc.exitcode not in (0, None) and not stopping:
                print(f"aiohttp_ceiling: {proc.name} exited with code {proc.exitcode}", file=sys.stderr)
                code = 1
                forward(signal.SIGTERM, None)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return run(args.host, args.port, args.workers)


if __name__ == "__main__":
    sys.exit(main())
