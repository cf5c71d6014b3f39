"""``max_reply_bytes``: a request's replies past it are answered with one clear error.

Issue 15, defect 3: four ``GET``s of a 100 MB value took kvgate from ~100 MB to 4-5 GB.
Every test here runs on every backend (values stay under DynamoDB's 400 KB item limit,
so the limit is small).  The Redis adapter's skipping of an oversized reply as it arrives
is tested on its own in tests/backends/test_redis_reply_limit.py.
"""

from __future__ import annotations

import asyncio
import base64
import platform
import random
import sys
from typing import Any

import pytest

from kvgate import error_texts, streaming
from kvgate.config import DATABASE_SETTINGS, ConfigError, from_options
from kvgate.protocol import dumps, result_encoder, result_pieces
from kvgate.reply_limit import ELEMENT_BYTES
from kvgate.streaming import STREAM_AFTER
from tests.support.api import Api, make_config
from tests.support.openapi import MULTI, PIPELINE, ROOT, Call, Contract, run_calls

LIMIT = 100_000
BIG = "b" * 300_000  # three times the limit, under DynamoDB's item limit
MEDIUM = "m" * 60_000  # fits alone; two of them do not
TOO_LARGE = error_texts.reply_past_limit(LIMIT)


@pytest.fixture
async def limited(gateway_client: Any, backend_url: str) -> Api:
    api = Api(await gateway_client(make_config(backend_url, max_reply_bytes=LIMIT)))
    # {big}: the slot of "big", for commands and transactions on several (a Redis Cluster)
    for key, value in (("big", BIG), ("{big}medium", MEDIUM), ("{big}small", "s")):
        assert await api.result("SET", key, value) == "OK"
    return api


async def test_a_reply_over_the_limit_is_answered_400_with_the_limit_and_the_setting_named(
    limited: Api,
) -> None:
    status, body = await limited.cmd("GET", "big")
    assert (status, body) == (400, {"error": TOO_LARGE})
    assert "max_reply_bytes (100000 bytes)" in TOO_LARGE
    assert await limited.result("GET", "{big}small") == "s"  # the backend is still usable


async def test_the_path_form_and_base64_are_refused_alike(limited: Api) -> None:
    assert await limited.request("GET", "/get/big") == (400, {"error": TOO_LARGE})
    assert await limited.cmd("GET", "big", headers={"Upstash-Encoding": "base64"}) == (
        400,
        {"error": TOO_LARGE},
    )


async def test_an_array_reply_over_the_limit_is_refused_as_a_whole(limited: Api) -> None:
    await limited.result("RPUSH", "list", *(["e" * 20_000] * 6))
    assert await limited.cmd("LRANGE", "list", "0", "-1") == (400, {"error": TOO_LARGE})
    assert await limited.result("LRANGE", "list", "0", "3") == ["e" * 20_000] * 4
    assert await limited.cmd("MGET", "{big}small", "big") == (400, {"error": TOO_LARGE})


async def test_a_reply_just_under_the_limit_is_answered(limited: Api) -> None:
    value = "u" * (LIMIT - ELEMENT_BYTES)
    await limited.result("SET", "under", value)
    assert await limited.result("GET", "under") == value
    await limited.result("APPEND", "under", "!")
    assert await limited.cmd("GET", "under") == (400, {"error": TOO_LARGE})


async def test_a_pipeline_answers_the_error_in_the_oversized_commands_slot_and_the_others_normally(
    limited: Api,
) -> None:
    status, body = await limited.pipeline(
        ["GET", "{big}small"], ["GET", "big"], ["INCR", "n"], ["GET", "{big}small"], ["STRLEN", "big"]
    )
    assert status == 200
    assert body == [
        {"result": "s"},
        {"error": TOO_LARGE},
        {"result": 1},
        {"result": "s"},
        {"result": len(BIG)},
    ]


async def test_a_pipelines_replies_count_together_and_only_those_past_the_limit_are_refused(
    limited: Api,
) -> None:
    status, body = await limited.pipeline(
        ["GET", "{big}medium"], ["GET", "{big}medium"], ["GET", "{big}small"]
    )
    assert status == 200
    assert body == [{"result": MEDIUM}, {"error": TOO_LARGE}, {"result": "s"}]


async def test_a_transaction_past_the_limit_ran_and_is_answered_with_the_error_as_a_whole(
    limited: Api,
) -> None:
    status, body = await limited.multi(["SET", "{big}ran", "yes"], ["GET", "big"])
    assert (status, body) == (400, {"error": TOO_LARGE})
    assert await limited.result("GET", "{big}ran") == "yes"
    status, body = await limited.multi(["GET", "{big}small"], ["GET", "{big}medium"])
    assert (status, body) == (200, [{"result": "s"}, {"result": MEDIUM}])


async def test_a_getdel_past_the_limit_still_deletes_as_the_error_says(limited: Api) -> None:
    assert await limited.cmd("GETDEL", "big") == (400, {"error": TOO_LARGE})
    assert await limited.result("EXISTS", "big") == 0


async def test_oversized_and_normal_requests_at_once_each_get_their_own_reply(limited: Api) -> None:
    async def small(i: int) -> None:
        await limited.result("SET", f"k{i}", str(i))
        assert await limited.result("GET", f"k{i}") == str(i)

    async def big() -> None:
        assert await limited.cmd("GET", "big") == (400, {"error": TOO_LARGE})

    await asyncio.gather(*(big() if i % 4 == 0 else small(i) for i in range(40)))


async def test_the_limit_error_matches_the_spec_on_every_endpoint(
    gateway_client: Any, backend_url: str, contract: Contract
) -> None:
    client = await gateway_client(make_config(backend_url, max_reply_bytes=LIMIT))
    await Api(client).result("SET", "big", BIG)
    calls = [
        Call("POST", "/", ROOT, 400, ["GET", "big"], expect={"error": TOO_LARGE}),
        Call("POST", "/pipeline", PIPELINE, 200, [["GET", "big"]], expect=[{"error": TOO_LARGE}]),
        Call("POST", "/multi-exec", MULTI, 400, [["GET", "big"]], expect={"error": TOO_LARGE}),
    ]
    await run_calls(contract, client, calls)


async def test_a_large_value_under_the_default_limit_comes_back_whole_in_text_and_base64(
    api: Api, backend_url: str
) -> None:
    if backend_url.startswith("dynamodb"):
        pytest.skip("a DynamoDB item holds at most 400 KB")
    # Bytes that need care across chunks: multi-byte UTF-8, quotes, control characters.
    piece = 'é"\\\n\x01€😀' + "x" * 1000
    value = piece * 2000  # ~2 MB: past the size at which a reply is streamed
    await api.result("SET", "large", value)
    assert await api.result("GET", "large") == value
    status, body = await api.cmd("GET", "large", headers={"Upstash-Encoding": "base64"})
    assert status == 200
    assert base64.b64decode(body["result"]).decode() == value


async def test_a_large_body_of_many_replies_comes_back_whole(api: Api) -> None:
    values = [str(i) * 300_000 for i in range(5)]  # 1.5 MB of JSON: sent in slices
    status, body = await api.pipeline(*(["SET", f"v{i}", v] for i, v in enumerate(values)))
    assert status == 200
    status, body = await api.pipeline(*(["GET", f"v{i}"] for i in range(5)))
    assert (status, body) == (200, [{"result": v} for v in values])


async def test_head_on_a_large_value_answers_its_headers_without_a_body(api: Api, backend_url: str) -> None:
    if backend_url.startswith("dynamodb"):
        pytest.skip("a DynamoDB item holds at most 400 KB")
    await api.result("SET", "large", "l" * (2 * STREAM_AFTER))
    async with api.client.head("/get/large", headers=api.headers()) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json"
        assert await resp.read() == b""
    assert await api.result("GET", "small-after") is None


@pytest.mark.parametrize("as_base64", [False, True])
def test_a_streamed_result_is_byte_for_byte_what_the_whole_encoding_gives(as_base64: bool) -> None:
    rng = random.Random(15)
    alphabet = list(b'\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa9a"\\\n\x01\x80\xff')
    for trial in range(200):
        value = bytes(rng.choice(alphabet) if trial % 2 else rng.randrange(256) for _ in range(trial * 7))
        whole = dumps({"result": result_encoder(as_base64)(value)})
        for piece in (1, 2, 3, 4, 5, 64):
            assert b"".join(result_pieces(value, as_base64, piece)) == whole, (trial, piece)


def test_memory_is_given_back_through_glibc_on_linux() -> None:
    if sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc":
        assert streaming._TRIM is not None
    streaming.give_back_memory()


def test_the_default_is_32_mib_per_database_and_less_than_1024_is_refused() -> None:
    default = next(s for s in DATABASE_SETTINGS if s.name == "max_reply_bytes").default
    assert default == 32 * 1024 * 1024
    assert from_options({"backend": "fakeredis://"}).databases[0].max_reply_bytes == default
    with pytest.raises(ConfigError, match="max_reply_bytes must be at least 1024"):
        from_options({"backend": "fakeredis://", "max_reply_bytes": 1000})
