"""Two kvgate databases on one Redis (database numbers 1 and 2): a Lua script sent to one
must not reach the other (issue 15, defect 2).

Each attack is a script run through database ``a`` while database ``b`` holds a secret;
afterwards ``b`` must be untouched and unread.  The scripts build command names at run time
and reach ``redis`` through ``_G``, so no reading of their text could stop them: only the
Redis ACL user kvgate runs scripts as does (README, "Databases that share one Redis").
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from kvgate import error_texts
from kvgate.adapters import redis_mux
from kvgate.config import Config, DatabaseConfig
from tests.support.api import Api, GatewayClient
from tests.support.servers import RedisServer

SECRET = "b's secret"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """A Redis of this module's own (the tests create ACL users on it), with a user
    ``tenant`` that may run everything but administration: no ACL SETUSER."""
    redis = RedisServer().start()
    redis.command("ACL", "SETUSER", "tenant", "on", ">tenant-pw", "~*", "&*", "+@all", "-@admin")
    yield redis
    redis.close()


@pytest.fixture
def redis(server: RedisServer) -> RedisServer:
    """The module's Redis, every database empty but ``b``'s (database 2), which holds
    ``secret`` and ``list``."""
    server.commands(
        [["FLUSHALL"], ["SCRIPT", "FLUSH"], ["FUNCTION", "FLUSH"], ["SELECT", "2"], ["SET", "secret", SECRET]]
    )
    server.commands([["SELECT", "2"], ["RPUSH", "list", "x", "y"]])
    return server


@dataclass
class Pair:
    """Database ``a`` (read-write and read-only tokens) and database ``b``, one Redis."""

    a: Api
    a_ro: Api
    b: Api
    redis: RedisServer

    def b_is_intact(self) -> bool:
        """Database 2 still holds exactly what the fixture put there (read straight from
        Redis, not through kvgate)."""
        replies = self.redis.commands([["SELECT", "2"], ["GET", "secret"], ["LRANGE", "list", "0", "-1"]])
        keys = self.redis.commands([["SELECT", "2"], ["DBSIZE"]])[1]
        return replies[1:] == [SECRET.encode(), [b"x", b"y"]] and keys == 2


def config(url_a: str, url_b: str) -> Config:
    return Config(
        databases=(
            DatabaseConfig(
                name="a", path="/db/a", backend=url_a, tokens=("a-rw",), read_only_tokens=("a-ro",)
            ),
            DatabaseConfig(name="b", path="/db/b", backend=url_b, tokens=("b-rw",)),
        )
    )


async def serve_pair(gateway_client: GatewayClient, redis: RedisServer, url_a: str, url_b: str) -> Pair:
    client = await gateway_client(config(url_a, url_b))
    return Pair(
        a=Api(client, token="a-rw", prefix="/db/a"),
        a_ro=Api(client, token="a-ro", prefix="/db/a"),
        b=Api(client, token="b-rw", prefix="/db/b"),
        redis=redis,
    )


@pytest.fixture
async def pair(gateway_client: GatewayClient, redis: RedisServer) -> Pair:
    """``a`` on database 1 and ``b`` on database 2 of one Redis, as its default user."""
    base = f"redis://127.0.0.1:{redis.port}"
    return await serve_pair(gateway_client, redis, f"{base}/1", f"{base}/2")


def failed(reply: tuple[int, Any]) -> bool:
    status, body = reply
    return status == 400 and "error" in body


# --- the attacks ----------------------------------------------------------------------

ATTACKS = {
    "flushall": "return redis.call('FLUSHALL')",
    "flushall async, name built at run time": "return redis.call(string.upper('flush' .. 'all'), 'ASYNC')",
    "swapdb": "return redis.call('SWAPDB', 1, 2)",
    "swapdb through _G": "return rawget(_G, 'redis').call('SWAPDB', '2', '1')",
    "select then delete": "redis.call(string.lower('SEL' .. 'ECT'), 2) return redis.call('DEL', 'secret', 'list')",
    "move into b": "redis.call('SET', 'planted', 'x') return redis.call('MOVE', 'planted', 2)",
    "copy into b": "redis.call('SET', 'secret', 'forged') return redis.call('COPY', 'secret', 'secret', 'DB', 2, 'REPLACE')",
    "migrate into b": "redis.call('SET', 'secret', 'forged') "
    "return redis.call('MIGRATE', '127.0.0.1', ARGV[1], 'secret', 2, 1000, 'REPLACE')",
}


@pytest.mark.parametrize("script", ATTACKS.values(), ids=ATTACKS.keys())
async def test_a_script_cannot_change_another_database(pair: Pair, script: str) -> None:
    reply = await pair.a.cmd("EVAL", script, "0", str(pair.redis.port))
    assert failed(reply), reply
    assert pair.b_is_intact()
    assert await pair.b.result("GET", "secret") == SECRET


async def test_a_script_cannot_read_another_database(pair: Pair) -> None:
    script = "redis.call(string.lower('SEL' .. 'ECT'), 2) return redis.call('GET', 'secret')"
    reply = await pair.a.cmd("EVAL", script, "0")
    assert failed(reply), reply
    assert SECRET not in str(reply)


async def test_a_read_only_token_cannot_read_another_database_with_eval_ro(pair: Pair) -> None:
    # pcall swallows the refusal of SELECT: the GET then reads a's own database.
    script = "redis.pcall('SELECT', 2) return redis.call('GET', 'secret')"
    status, body = await pair.a_ro.cmd("EVAL_RO", script, "0")
    assert (status, body) == (200, {"result": None})
    sha = await pair.a.result("SCRIPT", "LOAD", script)
    assert await pair.a_ro.cmd("EVALSHA_RO", sha, "0") == (200, {"result": None})


async def test_a_pipeline_or_transaction_does_not_carry_a_script_out(pair: Pair) -> None:
    status, body = await pair.a.pipeline(["SET", "k", "1"], ["EVAL", ATTACKS["flushall"], "0"], ["GET", "k"])
    assert status == 200 and "error" in body[1] and body[2] == {"result": "1"}, body
    status, body = await pair.a.multi(["EVAL", ATTACKS["swapdb"], "0"], ["GET", "k"])
    assert status == 200 and "error" in body[0], body
    assert pair.b_is_intact()


async def test_scripts_still_run_in_their_own_database(pair: Pair) -> None:
    script = "redis.call('SET', KEYS[1], ARGV[1]) redis.call('SELECT', 1) return redis.call('GET', KEYS[1])"
    plain = "redis.call('SET', KEYS[1], ARGV[1]) return redis.call('GET', KEYS[1])"
    assert await pair.a.result("EVAL", plain, "1", "mine", "a-value") == "a-value"
    sha = await pair.a.result("SCRIPT", "LOAD", plain)
    assert await pair.a.result("EVALSHA", sha, "1", "other", "v2") == "v2"
    assert await pair.a.result("GET", "mine") == "a-value"
    assert await pair.a.result("COPY", "mine", "copied") == 1  # COPY outside scripts still works
    assert failed(await pair.a.cmd("EVAL", script, "1", "k", "v"))  # even its own number: no SELECT
    assert pair.redis.commands([["SELECT", "1"], ["GET", "mine"]])[1] == b"a-value"
    assert pair.b_is_intact()


async def test_function_libraries_shared_by_the_databases_cannot_be_changed(pair: Pair) -> None:
    library = "#!lua name=lib\nredis.register_function('f', function() return redis.call('FLUSHALL') end)"
    for command in (["FUNCTION", "LOAD", library], ["FUNCTION", "FLUSH"], ["FUNCTION", "DELETE", "lib"]):
        status, body = await pair.a.cmd(*command)
        assert status == 400 and "server-wide" in body["error"], body
    assert pair.redis.command("FUNCTION", "LIST") == []


# --- when kvgate cannot confine scripts -------------------------------------------------


@pytest.fixture
async def unconfined_pair(gateway_client: GatewayClient, redis: RedisServer) -> Pair:
    """``a`` and ``b`` as the user ``tenant``, who may not create ACL users."""
    base = f"redis://tenant:tenant-pw@127.0.0.1:{redis.port}"
    return await serve_pair(gateway_client, redis, f"{base}/1", f"{base}/2")


@pytest.mark.parametrize("command", ["EVAL", "EVAL_RO", "EVALSHA", "EVALSHA_RO", "FCALL", "FCALL_RO"])
async def test_scripts_are_refused_where_kvgate_cannot_confine_them(
    unconfined_pair: Pair, command: str
) -> None:
    script = ATTACKS["flushall"]
    name = script if command.startswith("EVAL") and "SHA" not in command else "f" * 40
    status, body = await unconfined_pair.a.cmd(command, name, "0")
    reason = error_texts.SCRIPTS_NOT_CONFINED
    assert (status, body) == (400, {"error": error_texts.not_available(command.lower(), reason)})
    assert unconfined_pair.b_is_intact()
    # everything else still works
    assert await unconfined_pair.a.result("SET", "k", "v") == "OK"
    assert await unconfined_pair.b.result("GET", "secret") == SECRET


async def test_start_up_says_scripts_are_refused_and_why(
    gateway_client: GatewayClient, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kvgate.redis")
    base = f"redis://tenant:tenant-pw@127.0.0.1:{redis.port}"
    await serve_pair(gateway_client, redis, f"{base}/1", f"{base}/2")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for db in (1, 2):
        (line,) = [line for line in lines if f"{redis.port}/{db} " in line]
        assert "shares its server with another database" in line
        assert "scripts are refused" in line
        assert "acl|setuser" in line  # Redis's own words for why


async def test_start_up_says_scripts_are_confined(
    gateway_client: GatewayClient, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kvgate.redis")
    base = f"redis://127.0.0.1:{redis.port}"
    await serve_pair(gateway_client, redis, f"{base}/1", f"{base}/2")
    lines = [r.getMessage() for r in caplog.records]
    for db in (1, 2):
        (line,) = [line for line in lines if f"{redis.port}/{db} " in line and "ACL user" in line]
        assert "scripts run as the ACL user kvgate-confined-" in line
        assert f"which cannot leave database {db}" in line


async def test_scripts_are_refused_when_the_confined_user_could_still_select(
    gateway_client: GatewayClient, redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server (or rules) under which the ACL does not hold: each connection's check fails
    # closed.
    monkeypatch.setattr(redis_mux, "CONFINED_RULES", ("~*", "&*", "+@all"))
    base = f"redis://127.0.0.1:{redis.port}"
    pair = await serve_pair(gateway_client, redis, f"{base}/1", f"{base}/2")
    status, body = await pair.a.cmd("EVAL", ATTACKS["flushall"], "0")
    assert (status, body) == (
        400,
        {"error": error_texts.not_available("eval", error_texts.SCRIPTS_NOT_CONFINED)},
    )
    assert pair.b_is_intact()


# --- what counts as sharing -------------------------------------------------------------


async def test_two_names_of_one_redis_still_share_it(
    gateway_client: GatewayClient, redis: RedisServer
) -> None:
    pair = await serve_pair(
        gateway_client, redis, f"redis://127.0.0.1:{redis.port}/1", f"redis://localhost:{redis.port}/2"
    )
    assert failed(await pair.a.cmd("EVAL", ATTACKS["flushall"], "0"))
    assert pair.b_is_intact()


async def test_a_database_alone_on_its_redis_is_left_as_it_was(
    gateway_client: GatewayClient, redis: RedisServer
) -> None:
    single = Config(
        databases=(
            DatabaseConfig(name="solo", path="", backend=f"redis://127.0.0.1:{redis.port}/1", tokens=("t",)),
        )
    )
    api = Api(await gateway_client(single), token="t")
    assert await api.result("EVAL", "return redis.call('SELECT', 1)", "0") == "OK"
