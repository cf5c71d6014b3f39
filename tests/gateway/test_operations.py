"""Operations, on real ``kvgate serve`` processes: generated tokens that persist, SIGHUP
reloads, HTTPS, logs (text, JSON, the access log; never a token), start-up lines."""

from __future__ import annotations

import datetime
import json
import signal
import ssl
import stat
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import SLOW, KvgateServer, RedisServer


def call(
    url: str, body: Any, token: str | None, timeout: float = 30, context: ssl.SSLContext | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def wait_for(server: KvgateServer, text: str, timeout: float = 30, count: int = 1) -> str:
    deadline = time.monotonic() + timeout
    while server.output().count(text) < count:
        assert time.monotonic() < deadline, f"{text!r} not seen:\n{server.output()}"
        time.sleep(0.05)
    return server.output()


# --- generated tokens ------------------------------------------------------------------


def test_a_generated_token_is_saved_beside_the_sqlite_file_and_reused() -> None:
    first = KvgateServer().start()
    try:
        out = wait_for(first, "generated one for this run")
        token = out.split("generated one for this run: ", 1)[1].split()[0]
        file = Path(first.dir) / "kvgate.db-kvgate.token"
        assert file.read_text().strip() == token
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        assert call(first.url, ["SET", "k", "kept"], token) == (200, {"result": "OK"})
        first.stop()
        second = KvgateServer()
        second.dir = first.dir  # the same working directory, so the same kvgate.db
        second.start()
        try:
            out = wait_for(second, "using the one saved in")
            assert token not in out  # read back, never shown again
            assert call(second.url, ["GET", "k"], token) == (200, {"result": "kept"})
        finally:
            second.stop()
            Path(second.log.name).unlink(missing_ok=True)
    finally:
        first.close()


def test_other_backends_keep_theirs_in_the_state_dir(redis_server: RedisServer, tmp_path: Path) -> None:
    state = tmp_path / "state"
    tokens: list[str] = []
    for _ in range(2):
        server = KvgateServer("--backend", redis_server.url, "--state-dir", str(state)).start()
        try:
            out = wait_for(server, "no token configured")
            (file,) = state.glob("default-*.token")
            assert stat.S_IMODE(file.stat().st_mode) == 0o600
            tokens.append(file.read_text().strip())
            assert call(server.url, ["PING"], tokens[-1]) == (200, {"result": "PONG"})
        finally:
            server.close()
    assert tokens[0] == tokens[1]
    assert "using the one saved in" in out


# --- SIGHUP ----------------------------------------------------------------------------


def write_config(file: Path, redis_url: str, *databases: tuple[str, str]) -> None:
    file.write_text(
        "".join(
            f'[databases.{name}]\nbackend = "{redis_url}"\ntokens = ["{token}"]\n\n'
            for name, token in databases
        )
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_reloads_tokens_and_databases(redis_server: RedisServer, tmp_path: Path, workers: int) -> None:
    file = tmp_path / "kvgate.toml"
    write_config(file, redis_server.url, ("a", "token-one"))
    server = KvgateServer("--config", str(file), "--workers", str(workers)).start()
    try:
        a = server.url + "/db/a"
        deadline = time.monotonic() + 30
        while call(a, ["PING"], "token-one")[0] != 200:  # every worker up
            assert time.monotonic() < deadline
            time.sleep(0.05)
        slow: list[Any] = []
        thread = threading.Thread(
            target=lambda: slow.append(call(a, ["EVAL", SLOW, "0", "1500", "done"], "token-one"))
        )
        thread.start()
        time.sleep(0.3)  # the slow request is in flight
        write_config(file, redis_server.url, ("a", "token-two"), ("b", "token-b"))
        server.signal(signal.SIGHUP)
        wait_for(server, "reload: serving 2 databases", count=workers)
        thread.join(30)
        assert slow == [(200, {"result": "done"})]  # not dropped by the reload
        for _ in range(4 * workers):  # whichever worker answers
            assert call(a, ["PING"], "token-one")[0] == 401
            assert call(a, ["PING"], "token-two") == (200, {"result": "PONG"})
            assert call(server.url + "/db/b", ["PING"], "token-b") == (200, {"result": "PONG"})
        # a bad file: the current configuration stays, one clear line says why
        file.write_text("[databases.a\nbackend = ")
        server.signal(signal.SIGHUP)
        out = wait_for(server, "reload failed, keeping the current configuration")
        time.sleep(0.5)
        failures = [line for line in server.output().splitlines() if "reload failed" in line]
        assert len(failures) == 1, failures
        assert "not valid TOML" in failures[0]
        assert call(a, ["PING"], "token-two") == (200, {"result": "PONG"})
        assert server.proc is not None and server.proc.poll() is None
        assert "token-two" not in out and "token-b" not in out
    finally:
        server.close()


def test_a_sighup_while_the_workers_start_ends_none_of_them(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """Before: a worker that had not yet set up its handler took the SIGHUP's default
    action, died, and the parent stopped the whole server ("kvgate-worker-1 exited with
    code -1").  Now a worker starts with SIGHUP ignored and reads the file once it handles
    it, so a reload sent during start-up reaches every worker."""
    file = tmp_path / "kvgate.toml"
    write_config(file, redis_server.url, ("a", "token-one"))
    server = KvgateServer("--config", str(file), "--workers", "2").start()  # the parent's line
    try:
        write_config(file, redis_server.url, ("a", "token-two"))
        server.signal(signal.SIGHUP)  # the workers are still starting
        a = server.url + "/db/a"
        deadline = time.monotonic() + 30
        while call(a, ["PING"], "token-two")[0] != 200:
            assert server.proc is not None and server.proc.poll() is None, server.output()
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)
        for _ in range(12):  # connections of their own: either worker answers
            assert call(a, ["PING"], "token-one")[0] == 401, server.output()
            assert call(a, ["PING"], "token-two") == (200, {"result": "PONG"})
        assert "exited with code" not in server.output()
    finally:
        server.close()


# --- HTTPS -----------------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return certfile, keyfile


def test_https_with_certfile_and_keyfile(tmp_path: Path) -> None:
    certfile, keyfile = self_signed(tmp_path)
    server = KvgateServer(
        "--backend",
        "fakeredis://",
        "--token",
        "tls-token",
        "--certfile",
        str(certfile),
        "--keyfile",
        str(keyfile),
    ).start()
    try:
        out = wait_for(server, "kvgate listening on https://")
        context = ssl.create_default_context(cafile=str(certfile))
        url = f"https://127.0.0.1:{server.port}"
        assert call(url, ["PING"], "tls-token", context=context) == (200, {"result": "PONG"})
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP is not spoken
            call(server.url, ["PING"], "tls-token", timeout=3)
        server.signal(signal.SIGHUP)  # the certificate is read again
        wait_for(server, "certificate")
        assert call(url, ["PING"], "tls-token", context=context) == (200, {"result": "PONG"})
        assert "web console at https://" in out
    finally:
        server.close()


def test_a_missing_certificate_is_one_line(tmp_path: Path) -> None:
    from tests.support.servers import serve_fails

    line = serve_fails(
        "--backend",
        "fakeredis://",
        "--certfile",
        str(tmp_path / "nope.pem"),
        "--keyfile",
        str(tmp_path / "k.pem"),
    )
    assert "certfile" in line
    line = serve_fails("--backend", "fakeredis://", "--certfile", str(tmp_path / "nope.pem"))
    assert "certfile and keyfile go together" in line


# --- logs ------------------------------------------------------------------------------


SECRET = "secret-token-9f8e7d6c5b4a"


def exercise(server: KvgateServer) -> None:
    with urllib.request.urlopen(f"{server.url}/set/k/v?_token={SECRET}", timeout=5) as resp:
        assert resp.status == 200
    assert call(server.url + "/pipeline", [["GET", "k"], ["INCR", "n"]], SECRET)[0] == 200
    assert call(server.url, ["GET", "k"], SECRET + "-wrong")[0] == 401


def test_json_logs_and_the_access_log_never_show_a_token() -> None:
    server = KvgateServer(
        "--backend", "fakeredis://", "--token", SECRET, "--log-format", "json", "--access-log"
    ).start()
    try:
        wait_for(server, "health at")
        exercise(server)
        out = wait_for(server, '"logger": "kvgate.access"', count=3)
    finally:
        server.stop()
        server.close()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    access = [e for e in lines if e["logger"] == "kvgate.access"]
    assert [(e["method"], e["path"], e["status"], e["database"], e["command"]) for e in access] == [
        ("GET", "/set/k/v", 200, "default", "set"),
        ("POST", "/pipeline", 200, "default", "get,incr"),
        ("POST", "/", 401, "default", "-"),
    ]
    assert all(isinstance(e["duration_ms"], float) for e in access)
    assert {"time", "level", "pid", "message"} <= set(access[0])
    startup = [e["message"] for e in lines if e["logger"] == "kvgate"]
    assert any(m.startswith("kvgate listening on http://127.0.0.1:") for m in startup), startup
    assert any(m.startswith("database 'default' at http://127.0.0.1:") for m in startup), startup
    assert any("web console at" in m for m in startup)
    assert SECRET not in out


def test_text_access_log_and_it_is_off_by_default(redis_server: RedisServer) -> None:
    server = KvgateServer(
        "--backend", redis_server.url, "--token", SECRET, "--access-log", "--log-level", "warning"
    ).start()
    try:
        exercise(server)
        out = wait_for(server, "kvgate.access:", count=3)
    finally:
        server.close()
    assert "GET /set/k/v 200" in out and "database=default command=set" in out
    assert "POST /pipeline 200" in out and "command=get,incr" in out
    assert SECRET not in out
    quiet = KvgateServer("--backend", redis_server.url, "--token", SECRET).start()
    try:
        exercise(quiet)
        out = wait_for(quiet, "database 'default' at")
        time.sleep(0.2)
    finally:
        quiet.close()
    assert "kvgate.access" not in out
    assert SECRET not in out


def test_console_can_be_turned_off() -> None:
    server = KvgateServer("--backend", "fakeredis://", "--token", SECRET, "--no-console").start()
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(server.url + "/_kvgate/console", timeout=5)
        assert err.value.code == 404
        assert "web console" not in server.output()
    finally:
        server.close()
