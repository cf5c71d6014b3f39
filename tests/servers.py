"""Real processes for tests: a redis-server and a kvgate server on free loopback ports.

Each is started by the test suite itself and stopped after; nothing relies on a Redis
that may already run on the machine.
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

    def __init__(self, port: int | None = None, password: str | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.port = port or free_port()
        self.password = password
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


class KvgateServer:
    """``kvgate serve`` as a real subprocess (python -m kvgate)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.args = ["--host", "127.0.0.1", "--port", str(self.port), *args]
        self.env = {**os.environ, **(env or {})}
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
        )
        wait_for_port(self.port, timeout, proc=self.proc)
        return self

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
