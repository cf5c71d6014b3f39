"""The SQLite backend as real processes on a real file: acknowledged writes survive a
SIGKILL, several processes on one file lose no update, the writer thread's behaviour
(expiry sweeper, a locked file, group commit), and start-up errors."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kvgate.adapters.sqlite import SqliteBackend
from tests.support.api import GATEWAYS, RW, Api, GatewayClient, make_config
from tests.support.servers import KvgateServer, serve_fails


def sqlite_url(path: Path, **query: object) -> str:
    tail = "&".join(f"{k}={v}" for k, v in query.items())
    return f"sqlite:///{path}" + (f"?{tail}" if tail else "")


async def post(session: aiohttp.ClientSession, url: str, body: Any) -> tuple[int, Any]:
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {RW}"}) as resp:
        return resp.status, await resp.json()


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "data.db"
    server = KvgateServer("--backend", sqlite_url(db), "--token", RW).start()
    acked: list[int] = []
    pushed: list[int] = []
    counter = iter(range(10**9))
    stop = asyncio.Event()

    async def writer(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            i = next(counter)
            try:
                status, body = await post(
                    session, server.url + "/pipeline", [["SET", f"k{i}", f"v{i}"], ["RPUSH", "log", str(i)]]
                )
            except (TimeoutError, aiohttp.ClientError):
                return  # the server is gone: this write was never acknowledged
            if status == 200:
                assert body == [{"result": "OK"}, {"result": body[1]["result"]}], body
                acked.append(i)
                pushed.append(i)

    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            tasks = [asyncio.create_task(writer(session)) for _ in range(16)]
            await asyncio.sleep(1.5)
            assert acked, "no write was acknowledged before the kill"
            assert server.proc is not None
            os.killpg(server.proc.pid, signal.SIGKILL)  # mid-flight: requests are still running
            server.proc.wait()
            stop.set()
            await asyncio.gather(*tasks)
    finally:
        server.close()

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    restarted = KvgateServer("--backend", sqlite_url(db), "--token", RW).start()
    try:
        async with aiohttp.ClientSession() as session:
            for start in range(0, len(acked), 500):
                chunk = acked[start : start + 500]
                status, body = await post(session, restarted.url, ["MGET", *(f"k{i}" for i in chunk)])
                assert status == 200
                missing = [i for i, v in zip(chunk, body["result"], strict=True) if v != f"v{i}"]
                assert not missing, f"acknowledged but lost after SIGKILL: {missing[:10]}"
            status, body = await post(session, restarted.url, ["LRANGE", "log", "0", "-1"])
            logged = {int(x) for x in body["result"]}
            assert set(pushed) <= logged
    finally:
        restarted.close()


async def test_two_processes_on_one_file_lose_no_increment(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path / "shared.db")
    servers = [KvgateServer("--backend", url, "--token", RW).start() for _ in range(2)]
    per_task, tasks_per_server = 60, 8
    try:
        async with aiohttp.ClientSession() as session:

            async def bump(base: str) -> None:
                for _ in range(per_task):
                    status, body = await post(
                        session, base + "/pipeline", [["INCR", "n"], ["HINCRBY", "h", "f", "2"]]
                    )
                    assert status == 200, body
                    assert all("result" in r for r in body), body

            await asyncio.gather(*(bump(s.url) for s in servers for _ in range(tasks_per_server)))
            total = per_task * tasks_per_server * len(servers)
            assert (await post(session, servers[0].url, ["GET", "n"]))[1] == {"result": str(total)}
            assert (await post(session, servers[1].url, ["HGET", "h", "f"]))[1] == {"result": str(2 * total)}
    finally:
        for s in servers:
            s.close()


@pytest.fixture
async def sqlite_api(gateway_client: GatewayClient, tmp_path: Path) -> Api:
    return Api(await gateway_client(make_config(sqlite_url(tmp_path / "api.db"))))


def backend_of(api: Api) -> SqliteBackend:
    backend = GATEWAYS[api.client].databases[0][1].backend
    assert isinstance(backend, SqliteBackend)
    return backend


async def test_the_sweeper_deletes_expired_keys_nobody_reads(sqlite_api: Api, tmp_path: Path) -> None:
    assert await sqlite_api.result("SET", "gone", "x", "PX", "50") == "OK"
    assert await sqlite_api.result("SET", "kept", "y") == "OK"
    deadline = time.monotonic() + 5
    with sqlite3.connect(tmp_path / "api.db") as conn:
        while time.monotonic() < deadline:
            names = {row[0] for row in conn.execute("SELECT name FROM keys")}
            if names == {b"kept"}:
                break
            await asyncio.sleep(0.1)
    assert names == {b"kept"}


async def test_a_locked_file_answers_503_then_recovers(gateway_client: GatewayClient, tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    api = Api(await gateway_client(make_config(sqlite_url(path, busy_timeout_ms=200))))
    assert await api.result("SET", "k", "before") == "OK"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        status, body = await api.cmd("SET", "k", "during")
        assert status == 503, body
        assert "sqlite is busy" in body["error"]
        assert await api.result("GET", "k") == "before"  # WAL: reads go on
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await api.result("SET", "k", "after") == "OK"
    assert await api.result("GET", "k") == "after"


async def test_concurrent_writes_share_commits(sqlite_api: Api) -> None:
    replies = await asyncio.gather(*(sqlite_api.cmd("SET", f"k{i}", "v") for i in range(200)))
    assert all(r == (200, {"result": "OK"}) for r in replies)
    backend = backend_of(sqlite_api)
    assert backend.grouped >= 200
    assert backend.commits < backend.grouped  # several jobs per commit: a group commit


async def test_commands_the_engine_lacks_are_named(sqlite_api: Api) -> None:
    status, body = await sqlite_api.cmd("OBJECT", "ENCODING", "k")
    assert status == 400
    assert body == {"error": "ERR command 'object|encoding' is not supported by the sqlite backend"}
    status, body = await sqlite_api.multi(["SET", "a", "1"], ["OBJECT", "FREQ", "a"])
    assert (status, body["error"]) == (400, "EXECABORT Transaction discarded because of previous errors.")
    assert await sqlite_api.result("EXISTS", "a") == 0


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://host/x.db", "a sqlite URL has no host"),
        ("sqlite:///", "a sqlite URL needs a file path"),
        ("sqlite:///x.db?synchronous=sometimes", "synchronous must be NORMAL or FULL"),
    ],
)
def test_bad_sqlite_urls_are_one_line_errors(url: str, message: str) -> None:
    err = serve_fails("--backend", url, "--token", "t")
    assert message in err
    assert len(err.strip().splitlines()) == 1


def start_fails(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "kvgate", "serve", *args], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_missing_directory_stops_kvgate_with_one_line(tmp_path: Path, workers: str) -> None:
    line = start_fails(
        "--backend", sqlite_url(tmp_path / "nope" / "x.db"), "--token", "t", "--workers", workers
    )
    assert line.startswith("kvgate: database 'default': sqlite: cannot create ")
    assert line.endswith("does not exist")


def test_a_file_that_is_not_a_database_stops_kvgate(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    line = start_fails("--backend", sqlite_url(junk), "--token", "t")
    assert line == f"kvgate: database 'default': sqlite: cannot open {junk}: file is not a database"


async def test_a_writer_slower_than_the_timeout_answers_504(
    gateway_client: GatewayClient, tmp_path: Path
) -> None:
    path = tmp_path / "slow.db"
    api = Api(await gateway_client(make_config(sqlite_url(path, busy_timeout_ms=3000), timeout=0.3)))
    assert await api.result("SET", "k", "before") == "OK"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        status, body = await api.cmd("SET", "k", "late")
        assert status == 504, body
        assert body["error"].startswith("ERR the sqlite writer did not answer within 0.3s")
    finally:
        other.execute("ROLLBACK")
        other.close()
    # the write was queued, not lost: it applies once the lock is free, as the error said
    deadline = time.monotonic() + 5
    while await api.result("GET", "k") != "late":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
