"""Running the server: one process, or N worker processes sharing a port.

Graceful shutdown: on SIGTERM/SIGINT the listening socket closes and the connections
drain (kvgate/connections.py): idle ones close at once; a request begun (its headers or
body still arriving, or waiting behind another on its connection) is read to the end and
answered, the connection's last answer saying ``Connection: close``.  The process exits
as soon as the last connection closes, or after ``shutdown_timeout`` seconds, when what
is left is cut; then backends are closed.

SIGHUP reloads the configuration file (``--config``): its databases, tokens and CORS
origins, and the certificate files; requests in flight finish on what they started with.
A configuration that does not load keeps the current one, with one ERROR line saying
why.  With ``--workers N`` the parent checks the file first (one line if it is bad), then
passes the signal on to each worker.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import signal
import ssl
from collections.abc import Callable
from dataclasses import fields

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

from aiohttp import web

from kvgate import logs, metrics
from kvgate.adapters import Backend, entry_for, open_backend, redact_url
from kvgate.app import Gateway, create_server
from kvgate.config import Config, ConfigError, load_file
from kvgate.errors import StartupError
from kvgate.tokens import with_persistent_tokens

log = logging.getLogger("kvgate")

#: Seconds handlers still running after ``shutdown_timeout`` get before they are cancelled.
CANCEL_GRACE = 0.5


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def setup_logging(config: Config) -> None:
    logs.setup_logging(config.log_level, config.log_format, config.access_log)


def ssl_context(config: Config) -> ssl.SSLContext | None:
    """HTTPS straight from kvgate (``certfile``/``keyfile``), or None for plain HTTP."""
    if not config.certfile:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    load_certificate(context, config)
    return context


def load_certificate(context: ssl.SSLContext, config: Config) -> None:
    try:
        context.load_cert_chain(config.certfile or "", config.keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise SystemExit(
            f"kvgate: cannot load certfile {config.certfile!r} / keyfile {config.keyfile!r}: {exc}"
        ) from None


#: Server settings a reload cannot change (the listening socket and processes are made).
RESTART_NEEDED = (
    "host",
    "port",
    "workers",
    "certfile",
    "keyfile",
    "log_format",
    "header_timeout",
    "body_timeout",
    "keepalive_timeout",
    "max_connections",
    "state_dir",
)


def reread(config: Config) -> Config:
    """The configuration file read again, the command line's options over it, generated
    tokens read back (or made); raises ConfigError."""
    assert config.config_file is not None
    fresh = load_file(config.config_file, dict(config.overrides))
    fresh, lines = with_persistent_tokens(fresh)
    for line in lines:
        log.info("%s", line.split(": ", 1)[0] if "generated one" in line else line)  # never a token
    return fresh


async def reload(gateway: Gateway, context: ssl.SSLContext | None) -> None:
    """SIGHUP in a worker: the new configuration, or the old one and one ERROR line."""
    config = gateway.config
    if context is not None:
        try:
            context.load_cert_chain(config.certfile or "", config.keyfile)
            log.info("reload: certificate %s read again", config.certfile)
        except (OSError, ssl.SSLError) as exc:
            log.error("reload: certificate not read again, the current one stays: %s", exc)
    if config.config_file is None:
        log.info("reload: nothing else to reload (kvgate was started without --config)")
        return
    try:
        fresh = reread(config)
        retired = await gateway.reload(fresh)
    except (ConfigError, StartupError) as exc:
        log.error("reload failed, keeping the current configuration: %s", redact_url(str(exc)))
        return
    except Exception as exc:  # a backend that cannot even be opened, say
        log.error(
            "reload failed, keeping the current configuration: %s: %s",
            type(exc).__name__,
            redact_url(str(exc)),
        )
        return
    logging.getLogger().setLevel(fresh.log_level.upper())
    needs_restart = [
        f.name
        for f in fields(Config)
        if f.name in RESTART_NEEDED and getattr(fresh, f.name) != getattr(config, f.name)
    ]
    log.info(
        "reload: serving %d databases (%s)%s",
        len(fresh.databases),
        ", ".join(f"{db.name} at {db.path or '/'}" for db in fresh.databases),
        f"; not applied until a restart: {', '.join(needs_restart)}" if needs_restart else "",
    )
    if retired:
        delay = config.shutdown_timeout + max(db.timeout for db in config.databases)
        task = asyncio.get_running_loop().create_task(_close_later(retired, delay))
        _CLOSING.add(task)  # held until done (the loop keeps only weak references)
        task.add_done_callback(_CLOSING.discard)


_CLOSING: set[asyncio.Task[None]] = set()


async def _close_later(backends: list[Backend], delay: float) -> None:
    """Close the backends of databases no longer served, once their requests are done."""
    await asyncio.sleep(delay)
    for backend in backends:
        await backend.close()


def startup_lines(config: Config, host: str, port: int, workers: int = 1) -> None:
    """What serves where, one INFO line each (never a token)."""
    base = f"{config.scheme}://{host}:{port}"
    for db in config.databases:
        entry = entry_for(db.backend)
        logs.event(
            "database %r at %s%s: %s (%s), %d read-write and %d read-only tokens%s, CORS: %s",
            db.name,
            base,
            db.path or "/",
            redact_url(db.backend),
            entry.name,
            len(db.tokens),
            len(db.read_only_tokens),
            " (generated)" if db.generated_token else "",
            ", ".join(db.cors_origins) or "off",
            database=db.name,
            url=f"{base}{db.path}",
            backend=entry.name,
            cors_origins=list(db.cors_origins),
        )
    if config.console:
        logs.event("web console at %s/_kvgate/console", base, url=f"{base}/_kvgate/console")
    logs.event(
        "health at %s/_kvgate/health, metrics at %s/_kvgate/metrics; %d worker%s; access log %s",
        base,
        base,
        workers,
        "" if workers == 1 else "s",
        "on" if config.access_log else "off",
        health=f"{base}/_kvgate/health",
        metrics=f"{base}/_kvgate/metrics",
        workers=workers,
    )


def announce_listening(config: Config, host: str, port: int, workers: int = 1) -> None:
    """The line scripts wait for: on stdout in text mode, a JSON log line in json mode."""
    suffix = f" ({workers} workers)" if workers > 1 else ""
    if config.log_format == "json":
        logs.event(
            "kvgate listening on %s://%s:%s%s",
            config.scheme,
            host,
            port,
            suffix,
            url=f"{config.scheme}://{host}:{port}",
        )
    else:
        print(f"kvgate listening on {config.scheme}://{host}:{port}{suffix}", flush=True)
    startup_lines(config, host, port, workers)


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
    loop = asyncio.get_running_loop()
    # A SIGHUP before the reload handler below exists is remembered and acted on then (a
    # worker starts with SIGHUP ignored, see run(): its default action would end it).
    early_hangups: list[bool] = []
    loop.add_signal_handler(signal.SIGHUP, early_hangups.append, True)
    if not announce and config.config_file is not None:
        # A worker of several: read the file now, after the handler above, so that a
        # SIGHUP sent while this process was starting (ignored then) is not lost.
        try:
            config = reread(config)
        except ConfigError as exc:  # the parent's copy stays, as a failed reload keeps it
            log.error("reload failed, keeping the current configuration: %s", redact_url(str(exc)))
    gateway = Gateway(config)
    try:
        await gateway.start()
    except StartupError as exc:
        await gateway.close()
        raise SystemExit(f"kvgate: {redact_url(str(exc))}") from None
    # What start-up made (command tables, backends, Lua runtimes) lives as long as the
    # process: out of the collector's way, a full collection walks only what requests
    # made.  Measured beside a 10,000-command pipeline: the event loop's longest pause
    # 15-21 ms instead of 34-58 ms (bench/README.md, "Stalls").
    gc.freeze()
    server = create_server(gateway, fit_open_files(config.max_connections, files_reserved(config)))
    runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=CANCEL_GRACE)
    await runner.setup()
    context = ssl_context(config)
    site = web.TCPSite(
        runner,
        config.host,
        config.port,
        reuse_port=config.workers > 1,
        backlog=1024,
        ssl_context=context,
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
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[None]] = set()

    def on_hangup() -> None:
        task = loop.create_task(reload(gateway, context))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    if early_hangups:
        on_hangup()
    if announce:
        sockets = runner.addresses
        host, port = sockets[0][:2] if sockets else (config.host, config.port)
        announce_listening(config, host, port)
    await stop.wait()
    config = gateway.config  # as last reloaded
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
    setup_logging(config)
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
    ssl_context(config)  # a certificate that does not load stops us here, in one line
    if config.workers == 1:
        run_worker(config)
        return 0
    setup_logging(config)
    metrics_dir = metrics.prepare_workers()  # before the workers start: they inherit it
    try:
        return _run_workers(config)
    finally:
        metrics.remove_directory(metrics_dir)


def _run_workers(config: Config) -> int:
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

    def hangup(signum: int, _frame: object) -> None:
        """Check the file once here (one line if it is bad), then let each worker reload."""
        if config.config_file is not None:
            try:
                reread(config)
            except ConfigError as exc:
                log.error("reload failed, keeping the current configuration: %s", redact_url(str(exc)))
                return
        for proc in workers:
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signal.SIGHUP)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    # The workers inherit an ignored SIGHUP until they handle it themselves (serve()): a
    # reload sent while one starts must not end it (its default action), which stopped the
    # whole server.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    for proc in workers:
        proc.start()
    signal.signal(signal.SIGHUP, hangup)
    announce_listening(config, config.host, config.port, config.workers)
    code = 0
    gone: set[int] = set()
    while any(proc.is_alive() for proc in workers):
        for proc in workers:
            proc.join(timeout=0.2)
            if not proc.is_alive() and proc.pid and proc.pid not in gone:
                gone.add(proc.pid)
                metrics.worker_exited(proc.pid)  # its live gauges no longer count
            if not proc.is_alive() and proc.exitcode not in (0, None) and not stopping:
                log.error("%s exited with code %s; stopping the others", proc.name, proc.exitcode)
                code = 1
                forward(signal.SIGTERM, None)
    return code
