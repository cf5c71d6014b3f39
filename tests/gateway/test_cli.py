"""``kvgate serve`` as a real process: tokens, configuration errors, workers, shutdown."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import SLOW, KvgateServer, RedisServer, free_port, serve_fails


def call(url: str, body: Any, token: str | None, timeout: float = 10) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_generates_and_prints_a_token_when_none_is_configured() -> None:
    server = KvgateServer().start()
    try:
        deadline = time.monotonic() + 10
        while "generated one for this run" not in server.output():
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        token = re.search(r"generated one for this run: (\S+)", server.output()).group(1)  # type: ignore[union-attr]
        assert len(token) >= 32
        assert call(server.url, ["PING"], None)[0] == 401
        assert call(server.url, ["PING"], token) == (200, {"result": "PONG"})
    finally:
        server.close()


def test_tokens_are_never_logged(redis_server: RedisServer) -> None:
    server = KvgateServer("--backend", redis_server.url, "--token", "query-token-123", "--log-level", "debug")
    server.start()
    try:
        with urllib.request.urlopen(server.url + "/set/k/v?_token=query-token-123", timeout=5) as resp:
            assert json.loads(resp.read()) == {"result": "OK"}
        assert call(server.url, ["GET", "k"], "query-token-123") == (200, {"result": "v"})
        assert call(server.url, ["GET", "k"], "wrong-token-456")[0] == 401
    finally:
        server.stop()
        output = server.output()
        server.close()
    assert "query-token-123" not in output and "wrong-token-456" not in output, output


def test_settings_from_environment(redis_server: RedisServer) -> None:
    env = {"KVGATE_TOKEN": "env-token", "KVGATE_BACKEND": redis_server.url}
    server = KvgateServer(env=env).start()
    try:
        assert call(server.url, ["SET", "from-env", "yes"], "env-token") == (200, {"result": "OK"})
        assert redis_server.command("GET", "from-env") == b"yes"
        assert "generated" not in server.output()
    finally:
        server.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--backend", "mysql://x"], "unsupported backend URL 'mysql://x'"),
        (["--backend", "redis://h:notaport/0"], "invalid backend URL"),
        (["--port", "70000"], "port 70000 is out of range"),
        (["--workers", "0"], "workers must be at least 1"),
        (["--workers", "2", "--port", "0"], "needs a fixed port"),
        (["--workers", "2", "--backend", "fakeredis://"], "cannot be served by several workers"),
        (["--timeout", "0"], "timeout must be positive"),
        (["--log-level", "loud"], "log_level must be one of"),
        (["--token", "same", "--read-only-token", "same"], "both read-write and read-only"),
        (["--config", "/nonexistent/kvgate.toml"], "does not exist"),
    ],
)
def test_config_errors_are_one_line_and_exit_2(args: list[str], message: str) -> None:
    assert message in serve_fails(*args)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[databases.a]\nbakend = 'fakeredis://'\n", "unknown setting 'bakend'"),
        ("[server]\nport = 'x'\n[databases.a]\n", "setting 'port' = 'x'"),
        ("[databases]\n", "no databases"),
        ("[database.a]\n", "unknown section [database]"),
        ("[databases.a]\npath = 'nope'\n", "must look like /db/a"),
        ("[databases.a]\n[databases.b]\npath = '/db/a'\n", "also used by 'a'"),
        ("[databases.'a b']\n", "may use only letters"),
        ("[databases.a]\ntokens = 'x'\npool_size = 0\n", "pool_size must be at least 1"),
        ("not = [toml\n", "not valid TOML"),
    ],
)
def test_config_file_errors(tmp_path: Path, toml: str, message: str) -> None:
    conf = tmp_path / "kvgate.toml"
    conf.write_text(toml)
    assert message in serve_fails("--config", str(conf))


def test_config_file_cannot_be_mixed_with_database_options(tmp_path: Path) -> None:
    conf = tmp_path / "kvgate.toml"
    conf.write_text("[databases.a]\n")
    assert "do not combine it with --backend" in serve_fails(
        "--config", str(conf), "--backend", "fakeredis://"
    )


def test_many_databases_from_a_config_file(tmp_path: Path, redis_server: RedisServer) -> None:
    conf = tmp_path / "kvgate.toml"
    conf.write_text(
        f"""
[server]
max_body_bytes = 4096

[databases.cache]
backend = "{redis_server.url}"
tokens = ["cache-rw"]
read_only_tokens = ["cache-ro"]

[databases.scratch]
backend = "fakeredis://"
tokens = ["scratch-rw"]
path = "/tenants/scratch"
"""
    )
    server = KvgateServer("--config", str(conf)).start()
    try:
        assert call(server.url + "/db/cache", ["SET", "k", "cache"], "cache-rw") == (200, {"result": "OK"})
        assert call(server.url + "/db/cache", ["GET", "k"], "cache-ro") == (200, {"result": "cache"})
        assert call(server.url + "/db/cache", ["SET", "k", "x"], "cache-ro")[0] == 403
        assert call(server.url + "/tenants/scratch", ["GET", "k"], "scratch-rw") == (200, {"result": None})
        assert call(server.url + "/tenants/scratch", ["GET", "k"], "cache-rw")[0] == 401
        assert call(server.url + "/db/cache", ["SET", "k", "x" * 5000], "cache-rw")[0] == 413
    finally:
        server.close()


def test_two_workers_share_the_port(redis_server: RedisServer) -> None:
    port = free_port()
    server = KvgateServer("--backend", redis_server.url, "--token", "t", "--workers", "2")
    server.port = port
    server.args[server.args.index("--port") + 1] = str(port)
    server.start()
    try:
        pids: set[str] = set()  # the answering worker's pid begins each sync token
        deadline = time.monotonic() + 15
        while len(pids) < 2 and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(server.url + "/_kvgate/health", timeout=5) as resp:
                    pids.add(resp.headers["Upstash-Sync-Token"].partition("-")[0])
            except OSError:
                time.sleep(0.1)  # a worker may still be starting
        assert len(pids) == 2, server.output()
        for i in range(20):
            assert call(server.url, ["INCR", "shared"], "t") == (200, {"result": i + 1})
    finally:
        assert server.stop() == 0, server.output()
        server.close()


def test_sigterm_lets_in_flight_requests_finish(redis_server: RedisServer) -> None:
    server = KvgateServer("--backend", redis_server.url, "--token", "t").start()
    try:
        result: dict[str, Any] = {}

        def slow_request() -> None:
            result["reply"] = call(server.url, ["EVAL", SLOW, "0", "800", "finished"], "t")

        thread = threading.Thread(target=slow_request)
        thread.start()
        time.sleep(0.3)
        server.signal()
        thread.join(15)
        assert result["reply"] == (200, {"result": "finished"})
        assert server.proc is not None
        assert server.proc.wait(15) == 0, server.output()  # exits by itself, cleanly
        with pytest.raises(OSError):
            call(server.url, ["PING"], "t", timeout=2)
    finally:
        server.close()
