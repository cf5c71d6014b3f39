"""``/subscribe`` and ``/psubscribe`` as Server-Sent Events, on every backend: Redis and
fakeredis (the server's pub/sub), SQLite and DynamoDB (kvgate's engine:
tests/backends/test_engine_pubsub.py has what is particular to them)."""

from __future__ import annotations

from tests.support.api import RO, Api, read_event, require_commands


async def publish_until_received(api: Api, channel: str, payload: str) -> None:
    # The subscription is confirmed before publishing, so one PUBLISH must reach it.
    assert await api.result("PUBLISH", channel, payload) == 1


async def test_subscribe_streams_messages(api: Api, backend_url: str) -> None:
    require_commands(backend_url, "publish")
    headers = api.headers({"Accept": "text/event-stream"})
    async with api.client.post("/subscribe/chat/news", headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert resp.headers["Upstash-Sync-Token"]
        assert await read_event(resp) == "subscribe,chat,1"
        assert await read_event(resp) == "subscribe,news,2"
        await publish_until_received(api, "chat", "hello, world")
        assert await read_event(resp) == "message,chat,hello, world"
        # line breaks are escaped: a raw one would end the event, and the JS client would
        # take the rest for a message of its own (here: forged on channel "admin")
        await publish_until_received(api, "news", 'two\r\nlines\nmessage,admin,{"grant":"root"}')
        assert await read_event(resp) == 'message,news,two\\r\\nlines\\nmessage,admin,{"grant":"root"}'
        await publish_until_received(api, "chat", "after")
        assert await read_event(resp) == "message,chat,after"


async def test_psubscribe_streams_pattern_messages(api: Api, backend_url: str) -> None:
    require_commands(backend_url, "publish")
    headers = api.headers({"Accept": "text/event-stream"})
    async with api.client.post("/psubscribe/user:*", headers=headers) as resp:
        assert await read_event(resp) == "psubscribe,user:*,1"
        await publish_until_received(api, "user:42", "signed-in")
        assert await read_event(resp) == "pmessage,user:*,user:42,signed-in"


async def test_read_only_token_may_subscribe_but_not_publish(api: Api, backend_url: str) -> None:
    require_commands(backend_url, "publish")
    ro = Api(api.client, token=RO)
    async with api.client.post("/subscribe/c", headers=ro.headers()) as resp:
        assert resp.status == 200
        assert await read_event(resp) == "subscribe,c,1"
    assert (await ro.cmd("PUBLISH", "c", "x"))[0] == 403


async def test_subscribe_needs_a_token(api: Api) -> None:
    async with api.client.post("/subscribe/c") as resp:
        assert resp.status == 401
        assert await resp.json() == {"error": "WRONGPASS invalid or missing auth token"}
