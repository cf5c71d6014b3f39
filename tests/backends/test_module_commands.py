"""A Redis backend serves its server's own commands: a module's (RedisJSON 2.8, loaded into
Debian's Redis 7.0) pass through kvgate with the facts the server reports, under kvgate's
policy; and the command facts kvgate's engine declares reach the same checks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from kvgate.commands import default_table
from kvgate.engine import command_table
from tests.support.api import RO, RW, Api, GatewayClient, make_config
from tests.support.redisjson import rejson_module
from tests.support.servers import RedisServer


@pytest.fixture(scope="module")
def redisjson_server() -> Iterator[RedisServer]:
    server = RedisServer(modules=[str(rejson_module())]).start()
    yield server
    server.close()


async def test_module_commands_pass_through_with_the_servers_facts(
    gateway_client: GatewayClient, redisjson_server: RedisServer
) -> None:
    redisjson_server.command("FLUSHALL")
    client = await gateway_client(make_config(redisjson_server.url))
    rw, ro = Api(client, RW), Api(client, RO)

    doc = {"name": "kvgate", "tags": ["gateway"], "stars": 3}
    assert await rw.cmd("JSON.SET", "doc", "$", json.dumps(doc)) == (200, {"result": "OK"})
    status, body = await rw.cmd("JSON.GET", "doc", "$.name")
    assert (status, json.loads(body["result"])) == (200, ["kvgate"])

    # A read-only token may read a document and never change it.
    status, body = await ro.cmd("JSON.GET", "doc", "$.stars")
    assert (status, json.loads(body["result"])) == (200, [3])
    assert await ro.cmd("JSON.SET", "doc", "$.stars", "4") == (
        403,
        {"error": "NOPERM this user has no permissions to run the 'json.set' command"},
    )
    assert redisjson_server.command("JSON.GET", "doc", "$.stars") == b"[3]"

    # Arity comes from the server: JSON.GET needs a key.
    assert await rw.cmd("JSON.GET") == (
        400,
        {"error": "ERR wrong number of arguments for 'json.get' command"},
    )

    # Pipelines and transactions follow the same facts.
    status, body = await rw.pipeline(
        ["JSON.NUMINCRBY", "doc", "$.stars", "2"], ["JSON.TYPE", "doc", "$.tags"]
    )
    assert (status, body) == (200, [{"result": "[5]"}, {"result": ["array"]}])
    status, body = await ro.pipeline(["JSON.GET", "doc", "$.stars"], ["JSON.DEL", "doc", "$.tags"])
    assert status == 200
    assert body[0] == {"result": "[5]"}
    assert body[1] == {"error": "NOPERM this user has no permissions to run the 'json.del' command"}
    status, body = await rw.multi(
        ["JSON.ARRAPPEND", "doc", "$.tags", '"redis"'], ["JSON.GET", "doc", "$.tags"]
    )
    assert (status, body) == (200, [{"result": [2]}, {"result": '[["gateway","redis"]]'}])
    assert (await ro.multi(["JSON.SET", "doc", "$.x", "1"]))[0] == 403


async def test_without_the_module_json_is_refused_with_where_documents_are(
    gateway_client: GatewayClient, redis_server: RedisServer
) -> None:
    client = await gateway_client(make_config(redis_server.url))
    status, body = await Api(client).cmd("JSON.SET", "doc", "$", "{}")
    assert status == 400
    assert body["error"].startswith(
        "ERR command 'json.set' is not available over REST: this Redis server has no JSON"
    )
    status, body = await Api(client).cmd("NOSUCH.COMMAND", "x")
    assert body["error"].startswith("ERR unknown command 'NOSUCH.COMMAND', with args beginning with:")


def test_declared_facts_extend_the_baseline() -> None:
    """A command beyond Redis 7.0 declared with its facts gets arity, keys and policy like
    any other (the engine's ``commands.json`` is read the same way)."""
    hgetex = {
        "arity": -5,
        "flags": ["write", "fast"],
        "categories": ["@write", "@hash", "@fast"],
        "key_specs": [
            {
                "flags": ["RW", "access", "update"],
                "begin_search": {"type": "index", "index": 1},
                "find_keys": {"type": "range", "lastkey": 0, "keystep": 1, "limit": 0},
            }
        ],
        "summary": "Get the value of one or more fields of a hash and set their expiration",
        "group": "hash",
        "since": "8.0.0",
    }
    table = default_table().with_declared({"hgetex": hgetex, "lset": {"status_reply": True}}, "test")
    command = table.lookup([b"HGETEX", b"h", b"FIELDS", b"1", b"f"])
    assert (command.arity, command.readonly_token, command.rest, command.transaction) == (
        -5,
        False,
        True,
        True,
    )
    assert command.keys([b"HGETEX", b"h", b"FIELDS", b"1", b"f"]) == [b"h"]
    assert table.get("lset") is not None and table.get("lset").status_reply  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="only flags and status_reply may change"):
        default_table().with_declared({"get": {"arity": 3}}, "test")


def test_the_engine_table_marks_what_it_does_not_run() -> None:
    table = command_table()
    get, object_encoding, script = table.get("get"), table.get("object|encoding"), table.get("script")
    assert get is not None and get.supported
    assert object_encoding is not None and not object_encoding.supported
    assert script is not None and script.supported  # a container with a subcommand it runs
    pfcount, lset = table.get("pfcount"), table.get("lset")
    assert pfcount is not None and "may_replicate" in pfcount.flags
    assert lset is not None and lset.status_reply
