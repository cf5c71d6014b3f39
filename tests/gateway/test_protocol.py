"""The Upstash REST protocol through aiohttp's test client, on real Redis and on fakeredis."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest

from tests.support.api import RO, RW, Api, make_config, require_commands

B64 = {"Upstash-Encoding": "base64"}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- one command --------------------------------------------------------------------


async def test_json_body_command(api: Api) -> None:
    assert await api.cmd("SET", "k", "v") == (200, {"result": "OK"})
    assert await api.cmd("GET", "k") == (200, {"result": "v"})
    assert await api.cmd("GET", "missing") == (200, {"result": None})
    assert await api.cmd("RPUSH", "l", "a", "b") == (200, {"result": 2})
    assert await api.cmd("LRANGE", "l", 0, -1) == (200, {"result": ["a", "b"]})


async def test_an_object_or_array_argument_is_its_json_text(api: Api) -> None:
    """As Upstash takes them (the Python client sends JSON.SET's document so): compact,
    numbers exactly as written, strings re-escaped, nesting kept; null stays refused."""
    body = '["SET", "k", {"a": 1.50, "b": [2e3, true, null, "x\\"y\\u00e9"], "c": {}}]'
    async with api.client.post("/", data=body, headers=api.headers()) as resp:
        assert (resp.status, await resp.json()) == (200, {"result": "OK"})
    assert await api.result("GET", "k") == '{"a":1.50,"b":[2e3,true,null,"x\\"yé"],"c":{}}'
    assert await api.result("SET", "k", [1, [2]]) == "OK"
    assert await api.result("GET", "k") == "[1,[2]]"


async def test_numbers_keep_their_literal_text(api: Api) -> None:
    status, _ = await api.request(
        "POST", "/", data=b'["SET","f",13.361389000]', headers={"Content-Type": "text/plain"}
    )
    assert status == 200
    assert await api.result("GET", "f") == "13.361389000"
    big = 2**62 + 1  # beyond 2**53: a float round-trip would change it
    await api.request("POST", "/", data=f'["SET","n",{big}]'.encode())
    assert await api.result("INCR", "n") == big + 1
    await api.cmd("SET", "b", True)
    assert await api.result("GET", "b") == "true"


async def test_doubles_are_strings(api: Api) -> None:
    await api.cmd("ZADD", "z", "1.5", "m")
    assert await api.result("ZSCORE", "z", "m") == "1.5"
    assert await api.result("INCRBYFLOAT", "x", "0.5") == "0.5"


async def test_unicode_and_binary_safe_values(api: Api) -> None:
    value = "héllo ✓ / spaces\nnewline"
    await api.cmd("SET", "u", value)
    assert await api.result("GET", "u") == value
    assert await api.cmd("GET", "u", headers=B64) == (200, {"result": b64(value)})


async def test_invalid_utf8_is_replaced_without_base64(api: Api) -> None:
    status, _ = await api.request("POST", "/set/bin", data=b"\xff\xfeok")
    assert status == 200
    assert await api.result("GET", "bin") == "\ufffd\ufffdok"
    _, body = await api.request("GET", "/get/bin", headers=B64)
    assert base64.b64decode(body["result"]) == b"\xff\xfeok"


# --- path form ----------------------------------------------------------------------


async def test_path_form_get_and_url_decoding(api: Api) -> None:
    assert await api.request("GET", "/set/a%2Fb/hello%20world") == (200, {"result": "OK"})
    assert await api.result("GET", "a/b") == "hello world"
    assert await api.request("GET", "/get/a%2Fb") == (200, {"result": "hello world"})


async def test_path_form_methods(api: Api) -> None:
    for method in ("GET", "POST", "PUT"):
        assert await api.request(method, f"/set/m/{method}") == (200, {"result": "OK"})
        assert await api.result("GET", "m") == method
    async with api.client.head("/get/m", headers=api.headers()) as resp:
        assert resp.status == 200
        assert resp.headers["Upstash-Sync-Token"]


async def test_path_form_body_is_last_argument_then_query_pairs(api: Api) -> None:
    status, body = await api.request("POST", "/set/k?EX=100", data=b"raw body value")
    assert (status, body) == (200, {"result": "OK"})
    assert await api.result("GET", "k") == "raw body value"
    ttl = await api.result("TTL", "k")
    assert 0 < ttl <= 100


async def test_path_form_query_flag_without_value(api: Api) -> None:
    await api.cmd("SET", "k", "old")
    assert await api.request("GET", "/set/k/new?NX") == (200, {"result": None})
    assert await api.result("GET", "k") == "old"


async def test_token_in_query_is_not_an_argument(api: Api) -> None:
    anonymous = Api(api.client, token=None)
    assert await anonymous.request("GET", f"/set/q/v?_token={RW}") == (200, {"result": "OK"})
    assert await anonymous.request("GET", f"/get/q?_token={RW}") == (200, {"result": "v"})


async def test_database_under_a_base_path(gateway_client: Any, tmp_path: Any) -> None:
    from kvgate.config import load_file

    conf = tmp_path / "kvgate.toml"
    conf.write_text(
        '[databases.cache]\nbackend = "fakeredis://"\ntokens = ["c"]\n'
        '[databases.sessions]\nbackend = "fakeredis://"\ntokens = ["s"]\npath = "/tenant/sessions"\n'
    )
    client = await gateway_client(load_file(conf))
    cache = Api(client, token="c", prefix="/db/cache")
    sessions = Api(client, token="s", prefix="/tenant/sessions")
    assert await cache.cmd("SET", "k", "cache") == (200, {"result": "OK"})
    assert await sessions.cmd("SET", "k", "sessions") == (200, {"result": "OK"})
    assert await cache.request("GET", "/get/k") == (200, {"result": "cache"})
    assert await sessions.pipeline(["GET", "k"]) == (200, [{"result": "sessions"}])
    # tokens are per database
    wrong = Api(client, token="s", prefix="/db/cache")
    assert (await wrong.cmd("GET", "k"))[0] == 401
    assert (await Api(client, token="c", prefix="/db/nope").cmd("PING"))[0] == 404


# --- pipeline and transaction -------------------------------------------------------


async def test_pipeline_is_not_atomic_and_answers_each_command(api: Api) -> None:
    status, body = await api.pipeline(
        ["SET", "a", "1"], ["INCR", "a"], ["LPUSH", "a", "x"], ["GET"], ["NOSUCH"], ["GET", "a"]
    )
    assert status == 200
    assert body == [
        {"result": "OK"},
        {"result": 2},
        {"error": "WRONGTYPE Operation against a key holding the wrong kind of value"},
        {"error": "ERR wrong number of arguments for 'get' command"},
        {"error": "ERR unknown command 'NOSUCH', with args beginning with: "},
        {"result": "2"},
    ]


async def test_transaction_runtime_error_does_not_abort(api: Api) -> None:
    status, body = await api.multi(["SET", "a", "1"], ["LPUSH", "a", "x"], ["INCR", "a"])
    assert status == 200
    assert body == [
        {"result": "OK"},
        {"error": "WRONGTYPE Operation against a key holding the wrong kind of value"},
        {"result": 2},
    ]


async def test_transaction_discarded_as_a_whole_is_non_2xx(api: Api) -> None:
    # {t}: one hash slot, as a Redis Cluster needs for the keys of one transaction
    status, body = await api.multi(["SET", "{t}", "1"], ["GET"], ["SET", "{t}2", "2"])
    assert status == 400
    assert body == {"error": "EXECABORT Transaction discarded because of previous errors."}
    assert await api.result("EXISTS", "{t}", "{t}2") == 0


async def test_transaction_is_atomic_under_concurrency(api: Api) -> None:
    import asyncio

    await api.cmd("SET", "{a}balance", "0")  # {a}: one hash slot (a Redis Cluster's transaction)

    async def move() -> None:
        status, _ = await api.multi(
            ["INCRBY", "{a}balance", "5"], ["DECRBY", "{a}balance", "5"], ["INCR", "{a}count"]
        )
        assert status == 200

    async def observe() -> set[str]:
        seen = set()
        for _ in range(20):
            seen.add(await api.result("GET", "{a}balance"))
        return seen

    results = await asyncio.gather(*(move() for _ in range(30)), observe())
    assert results[-1] == {"0"}  # never sees the intermediate "5"
    assert await api.result("GET", "{a}count") == "30"


async def test_refused_commands_in_batches(api: Api) -> None:
    _, body = await api.pipeline(["MULTI"], ["PING"])
    assert body[0]["error"].startswith("ERR command 'multi' is not available over REST")
    assert body[1] == {"result": "PONG"}
    status, body = await api.multi(["SELECT", "1"], ["PING"])
    assert status == 400 and body["error"].startswith("EXECABORT")


# --- base64 -------------------------------------------------------------------------


async def test_base64_rules(api: Api) -> None:
    assert await api.cmd("SET", "k", "v", headers=B64) == (200, {"result": "OK"})
    assert await api.cmd("GET", "k", headers=B64) == (200, {"result": b64("v")})
    assert await api.cmd("PING", headers=B64) == (200, {"result": b64("PONG")})
    assert await api.cmd("TYPE", "k", headers=B64) == (200, {"result": b64("string")})
    assert await api.cmd("INCR", "n", headers=B64) == (200, {"result": 1})
    assert await api.cmd("GET", "nope", headers=B64) == (200, {"result": None})
    await api.cmd("RPUSH", "l", "x", "y")
    assert await api.cmd("LRANGE", "l", 0, -1, headers=B64) == (200, {"result": [b64("x"), b64("y")]})
    # errors are never encoded
    assert await api.cmd("LPUSH", "k", "x", headers=B64) == (
        400,
        {"error": "WRONGTYPE Operation against a key holding the wrong kind of value"},
    )
    # each pipeline/transaction entry is top level: OK stays OK.  A *value* "OK" is sent as
    # "OK" too (RESP2 readers cannot tell a status from a bulk string); clients decode
    # both forms to the same "OK".
    assert await api.pipeline(["SET", "a", "OK"], ["GET", "a"], ["GET", "l"], headers=B64) == (
        200,
        [
            {"result": "OK"},
            {"result": "OK"},
            {"error": "WRONGTYPE Operation against a key holding the wrong kind of value"},
        ],
    )
    assert await api.multi(["SET", "a", "b"], ["GET", "a"], headers=B64) == (
        200,
        [{"result": "OK"}, {"result": b64("b")}],
    )


# --- auth ---------------------------------------------------------------------------


async def test_missing_or_wrong_token(api: Api) -> None:
    expected = (401, {"error": "WRONGPASS invalid or missing auth token"})
    assert await Api(api.client, token=None).cmd("PING") == expected
    assert await Api(api.client, token="nope").cmd("PING") == expected
    assert await Api(api.client, token=None).request("GET", "/ping?_token=nope") == expected
    basic = await api.request("GET", "/ping", headers={"Authorization": f"Basic {RW}"})
    assert basic == expected


async def test_read_only_token(api: Api) -> None:
    await api.cmd("SET", "k", "v")
    ro = Api(api.client, token=RO)
    assert await ro.cmd("GET", "k") == (200, {"result": "v"})
    assert await ro.cmd("SET", "k", "x") == (
        403,
        {"error": "NOPERM this user has no permissions to run the 'set' command"},
    )
    # scripts can write, so they are not read commands
    assert (await ro.cmd("EVAL", "return 1", 0))[0] == 403
    assert (await ro.cmd("EVAL_RO", "return 1", 0))[0] != 403  # fakeredis lacks EVAL_RO
    _, body = await ro.pipeline(["GET", "k"], ["DEL", "k"])
    assert body == [
        {"result": "v"},
        {"error": "NOPERM this user has no permissions to run the 'del' command"},
    ]
    # in a transaction the token, not a command, is at fault: the whole request is refused
    assert await ro.multi(["GET", "k"], ["DEL", "k"]) == (
        403,
        {"error": "NOPERM this user has no permissions to run the 'del' command"},
    )
    assert await api.result("GET", "k") == "v"


async def test_sync_token_on_every_reply_and_empty_one_accepted(api: Api) -> None:
    tokens = set()
    for headers in ({"Upstash-Sync-Token": ""}, {}, {"Upstash-Sync-Token": "whatever"}):
        async with api.client.post("/", json=["PING"], headers=api.headers(headers)) as resp:
            assert resp.status == 200
            tokens.add(resp.headers["Upstash-Sync-Token"])
    async with api.client.post("/", json=["PING"]) as resp:  # errors carry one too
        assert resp.status == 401
        tokens.add(resp.headers["Upstash-Sync-Token"])
    assert len(tokens) == 4 and all(tokens)


async def test_telemetry_headers_ignored(api: Api) -> None:
    headers = {
        "Upstash-Telemetry-Sdk": "py-upstash-redis@v1",
        "Upstash-Telemetry-Runtime": "python@v3.11",
        "Upstash-Telemetry-Platform": "unknown",
    }
    assert await api.cmd("PING", headers=headers) == (200, {"result": "PONG"})


# --- refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (["SELECT", "1"], "connection state"),
        (["WATCH", "k"], "/multi-exec"),
        (["MULTI"], "/multi-exec"),
        (["EXEC"], "/multi-exec"),
        (["BLPOP", "l", "0"], "blocking"),
        (["BRPOPLPUSH", "a", "b", "0"], "blocking"),
        (["BZPOPMIN", "z", "0"], "blocking"),
        (["XREAD", "BLOCK", "0", "STREAMS", "s", "0"], "blocking"),
        (["SUBSCRIBE", "ch"], "text/event-stream"),
        (["CLIENT", "SETNAME", "x"], "connection state"),
        (["HELLO", "3"], "connection state"),
        (["AUTH", "x"], "connection state"),
        (["CONFIG", "SET", "maxmemory", "1"], "administration"),
        (["SHUTDOWN"], "administration"),
        (["MONITOR"], "administration"),
        (["SWAPDB", "0", "1"], "other databases"),
        (["WAIT", "0", "0"], "connection state"),
    ],
)
async def test_stateless_refusals(api: Api, command: list[str], reason: str) -> None:
    status, body = await api.cmd(*command)
    assert status == 400
    assert body["error"].startswith(f"ERR command '{command[0].lower()}")
    assert "not available over REST" in body["error"] and reason in body["error"]


async def test_non_blocking_xread_is_allowed(api: Api, backend_url: str) -> None:
    require_commands(backend_url, "xadd", "xread")
    await api.cmd("XADD", "s", "1-1", "f", "v")
    result = await api.result("XREAD", "COUNT", "1", "STREAMS", "s", "0")
    assert result == [["s", [["1-1", ["f", "v"]]]]]
    # a stream named "block" is a key, not the BLOCK option
    await api.cmd("XADD", "block", "1-1", "f", "v")
    assert (await api.cmd("XREAD", "STREAMS", "block", "0"))[0] == 200


# --- scripts ------------------------------------------------------------------------

LIMIT_SCRIPT = "#!lua flags=allow-key-locking\nlocal v = redis.call('INCRBY', KEYS[1], ARGV[1])\nreturn v"


async def test_lua_shebang_with_unknown_flag_runs(api: Api) -> None:
    assert await api.result("EVAL", LIMIT_SCRIPT, 1, "counter", 5) == 5
    sha = hashlib.sha1(LIMIT_SCRIPT.encode()).hexdigest()
    # EVALSHA of the original script's SHA1 runs the normalized script
    assert await api.result("EVALSHA", sha, 1, "counter", 2) == 7


async def test_evalsha_fallback_flow_of_upstash_ratelimit(api: Api) -> None:
    script = "#!lua flags=allow-key-locking,no-writes\nreturn redis.call('GET', KEYS[1])"
    sha = hashlib.sha1(script.encode()).hexdigest()
    status, body = await api.cmd("EVALSHA", sha, 1, "k")
    assert status == 400 and "NOSCRIPT" in body["error"]
    await api.cmd("SET", "k", "v")
    assert await api.result("EVAL", script, 1, "k") == "v"
    assert await api.result("EVALSHA", sha, 1, "k") == "v"
    assert await api.result("SCRIPT", "EXISTS", sha, "0" * 40) == [1, 0]


async def test_script_load_answers_the_original_sha(api: Api) -> None:
    sha = hashlib.sha1(LIMIT_SCRIPT.encode()).hexdigest()
    assert await api.result("SCRIPT", "LOAD", LIMIT_SCRIPT) == sha
    assert await api.result("EVALSHA", sha, 1, "c", 1) == 1
    plain = "return 42"
    assert await api.result("SCRIPT", "LOAD", plain) == hashlib.sha1(plain.encode()).hexdigest()


async def test_script_known_flags_are_kept(api: Api, backend_url: str) -> None:
    script = "#!lua flags=no-writes\nreturn redis.call('SET', KEYS[1], 'x')"
    status, body = await api.cmd("EVAL", script, 1, "k")
    if backend_url.startswith("fakeredis"):
        pytest.skip("fakeredis has no shebang support; kvgate turns the line into a comment")
    assert status == 400 and "Write commands are not allowed" in body["error"]


async def test_health_and_metrics_need_no_token(api: Api) -> None:
    await api.cmd("PING")
    await api.pipeline(["PING"], ["PING"])
    await Api(api.client, token=None).cmd("PING")
    async with api.client.get("/_kvgate/health") as resp:
        assert resp.status == 200
        body = await resp.json()
        assert body["status"] == "ok" and body["databases"]["default"]["ok"] is True
    async with api.client.get("/_kvgate/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    assert re.search(
        r'kvgate_requests_total\{database="default",endpoint="command",status="200"\} 1\.0\n', text
    )
    assert re.search(r'endpoint="pipeline",status="200"\} 1\.0\n', text)
    assert re.search(r'status="401"\} 1\.0\n', text)
    assert re.search(r'kvgate_commands_total\{command="ping",database="default"\} 3\.0\n', text)
    assert re.search(r'kvgate_backend_up\{backend="\w+",database="default"\} 1\.0\n', text)


async def test_error_nested_in_a_script_reply_is_a_string_and_base64_encoded(api: Api) -> None:
    script = "return {1, redis.error_reply('boom')}"
    assert await api.cmd("EVAL", script, 0) == (200, {"result": [1, "ERR boom"]})
    assert await api.cmd("EVAL", script, 0, headers=B64) == (200, {"result": [1, b64("ERR boom")]})


async def test_flagged_script_runs_read_only_with_eval_ro(api: Api, backend_url: str) -> None:
    if backend_url.startswith("fakeredis"):
        pytest.skip("fakeredis has no EVAL_RO")
    await api.cmd("SET", "k", "v")
    script = "#!lua flags=allow-key-locking\nreturn redis.call('GET', KEYS[1])"
    assert await api.cmd("EVAL_RO", script, 1, "k") == (200, {"result": "v"})
    # a flag Redis knows stays, with the unknown one removed
    mixed = "#!lua flags=allow-key-locking,no-writes\nreturn redis.call('GET', KEYS[1])"
    assert await api.cmd("EVAL_RO", mixed, 1, "k") == (200, {"result": "v"})


async def test_command_alone_is_allowed(api: Api, backend_url: str) -> None:
    require_commands(backend_url, "command")
    status, body = await api.cmd("COMMAND", "COUNT")
    assert status == 200 and body["result"] > 200
    status, body = await api.cmd("COMMAND")
    assert status == 200 and len(body["result"]) > 200


@pytest.mark.parametrize(
    "command",
    [
        ["COPY", "a", "b", "DB", "1"],
        ["COPY", "a", "b", "REPLACE", "db", "1"],
        ["MIGRATE", "127.0.0.1", "1", "k", "0", "100", "COPY"],
        ["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", ">"],
    ],
)
async def test_commands_reaching_other_databases_or_blocking_are_refused(
    api: Api, command: list[str]
) -> None:
    status, body = await api.cmd(*command)
    assert status == 400 and "is not available over REST" in body["error"], body


async def test_options_are_read_the_way_redis_reads_them(api: Api, backend_url: str) -> None:
    require_commands(backend_url, "xadd", "xgroup|create", "xreadgroup")
    # a key named "db" or a group named "BLOCK" is not an option
    await api.cmd("SET", "DB", "v")
    assert await api.cmd("COPY", "DB", "{DB}copy") == (200, {"result": 1})  # {DB}: DB's slot
    await api.cmd("XADD", "s", "1-1", "f", "v")
    await api.cmd("XGROUP", "CREATE", "s", "BLOCK", "0")
    status, body = await api.cmd("XREADGROUP", "GROUP", "BLOCK", "c", "COUNT", "1", "STREAMS", "s", ">")
    assert (status, body) == (200, {"result": [["s", [["1-1", ["f", "v"]]]]]})


async def test_malformed_input_is_a_400_not_a_crash(api: Api) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    status, body = await api.request("POST", "/", data=deep)
    assert status == 400 and "nested too deeply" in body["error"]
    async with api.client.post("/", json=["PING"], headers={"Authorization": "Bearer \udcff"}) as resp:
        assert resp.status == 401
    long_value = "x" * 100_000
    assert await api.request("GET", f"/set/long/{long_value}") == (200, {"result": "OK"})
    assert await api.result("STRLEN", "long") == 100_000


async def test_batches_are_capped(gateway_client: Any, backend_url: str) -> None:
    api = Api(await gateway_client(make_config(backend_url, max_batch_commands=3)))
    assert (await api.pipeline(["PING"], ["PING"], ["PING"]))[0] == 200
    status, body = await api.pipeline(["PING"], ["PING"], ["PING"], ["PING"])
    assert (
        status == 400
        and body["error"] == "ERR too many commands in one request: 4 (limit 3); split the batch"
    )
    assert (await api.multi(*[["PING"]] * 4))[0] == 400


async def test_flushall_empties_only_this_database(
    gateway_client: Any, redis_server: Any, tmp_path: Any
) -> None:
    from kvgate.config import load_file

    base = redis_server.url.rsplit("/", 1)[0]
    conf = tmp_path / "kvgate.toml"
    conf.write_text(
        f'[databases.a]\nbackend = "{base}/1"\ntokens = ["a"]\n'
        f'[databases.b]\nbackend = "{base}/2"\ntokens = ["b"]\n'
    )
    client = await gateway_client(load_file(conf))
    a, b = Api(client, token="a", prefix="/db/a"), Api(client, token="b", prefix="/db/b")
    await a.cmd("SET", "k", "a")
    await b.cmd("SET", "k", "b")
    assert await a.cmd("FLUSHALL") == (200, {"result": "OK"})
    assert await a.result("DBSIZE") == 0
    assert await b.result("GET", "k") == "b"


# --- the body parsers alone: orjson's quick reading and the exact one agree ---------------

BODIES = [
    b'["SET","k","v"]',
    b'["SET","n",1.50]',
    b'["JSON.SET","d","$",{"a":[1e3,-0,"x"]}]',
    b'["SET","s","\\ud800"]',  # a lone surrogate: orjson refuses it, json.loads keeps it
    b'  ["GET", "k"]  ',
    b'[["SET","k","v"],["INCRBY","n",2]]',
    b'["SET","z",0]',
    b'["SET","z",-0]',
    b'["SET","big",-123456789012345678901234567890]',
    b'["SETBIT","b",7,true]',
    b'[["GET","k"],"GET"]',
    b"[[]]",
    b"[]",
    b"",
    b"[1",
    b'{"a":1}',
    b'["a",null]',
    b"[NaN]",
]


@pytest.mark.parametrize("body", BODIES)
def test_quick_and_exact_body_readings_agree(body: bytes) -> None:
    from kvgate import protocol

    def outcome(parse: Any) -> Any:
        try:
            return parse(body)
        except Exception as exc:
            return (type(exc).__name__, str(exc))

    for parse in (protocol.parse_command, protocol.parse_commands):
        exact = outcome(lambda b, parse=parse: _without_orjson(protocol, parse, b))
        assert outcome(parse) == exact


def _without_orjson(protocol: Any, parse: Any, body: bytes) -> Any:
    saved = protocol._orjson_loads
    protocol._orjson_loads = None
    try:
        return parse(body)
    finally:
        protocol._orjson_loads = saved
