"""CORS in a real browser: a page on one origin uses the official ``@upstash/redis``
client (its web build, loaded from node_modules) against ``kvgate serve`` on another origin.

* an origin in ``cors_origins``: the client's auto-pipelined calls, a single command, a
  transaction and ``scan(0, {withType: true})`` all work (each preceded by a preflight,
  since the client sends Authorization and Upstash-* headers), and the client reads the
  exposed ``Upstash-Sync-Token``;
* any other origin, and a database without ``cors_origins``: Chromium blocks the call
  ("blocked by CORS policy") and the client's fetch fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.pages import CLIENT, PageServer
from tests.support.servers import KvgateServer

TOKEN = "browser-token-1234567890"

pytestmark = pytest.mark.skipif(
    not CLIENT.exists(), reason="the JS client is not installed (npm ci --prefix tests/clients/js)"
)

SCRIPT = """async ([url, token]) => {
  const redis = new window.Redis({ url, token, retry: false });
  await redis.set("browser:user", { name: "Ada" });
  const user = await redis.get("browser:user");
  const p = redis.pipeline();
  p.incr("browser:n");
  p.incr("browser:n");
  const piped = await p.exec();
  const tx = redis.multi();
  tx.hset("browser:h", { f: "v" });
  tx.hget("browser:h", "f");
  const txResult = await tx.exec();
  const [cursor, typed] = await redis.scan(0, { withType: true, count: 100 });
  typed.sort((a, b) => a.key.localeCompare(b.key));
  return { user, piped, txResult, cursor: String(cursor), typed, sync: redis.client.upstashSyncToken };
}"""

FAILING = """async ([url, token]) => {
  const redis = new window.Redis({ url, token, retry: false });
  try { await redis.get("browser:user"); return "no error"; }
  catch (err) { return String(err); }
}"""


@pytest.fixture(scope="module")
def page_server() -> Iterator[PageServer]:
    with PageServer() as server:
        yield server


def open_page(browser: Any, page_server: PageServer) -> tuple[Any, list[str]]:
    page = browser.new_page()
    messages: list[str] = []
    page.on("console", lambda msg: messages.append(msg.text))
    page.goto(page_server.origin + "/")
    page.wait_for_function("window.clientReady === true", timeout=10_000)
    return page, messages


def test_a_page_on_an_allowed_origin_uses_the_official_client(browser: Any, page_server: PageServer) -> None:
    server = KvgateServer(
        "--backend", "fakeredis://", "--token", TOKEN, "--cors-origin", page_server.origin, "--access-log"
    ).start()
    try:
        page, messages = open_page(browser, page_server)
        result = page.evaluate(SCRIPT, [server.url, TOKEN])
        page.close()
    finally:
        server.stop()
        log = server.output()
        server.close()
    assert result["user"] == {"name": "Ada"}, (result, messages)
    assert result["piped"] == [1, 2]
    assert result["txResult"] == [1, "v"]
    assert result["cursor"] == "0"
    assert result["typed"] == [
        {"key": "browser:h", "type": "hash"},
        {"key": "browser:n", "type": "string"},
        {"key": "browser:user", "type": "string"},
    ]
    assert result["sync"], "the page could not read Upstash-Sync-Token (Access-Control-Expose-Headers)"
    assert "OPTIONS /pipeline 204" in log or "OPTIONS / 204" in log, log  # preflights answered
    assert not any("CORS" in m for m in messages), messages


def test_another_origin_is_blocked(browser: Any, page_server: PageServer) -> None:
    server = KvgateServer(
        "--backend", "fakeredis://", "--token", TOKEN, "--cors-origin", "https://app.example.com"
    ).start()
    try:
        page, messages = open_page(browser, page_server)
        error = page.evaluate(FAILING, [server.url, TOKEN])
        page.close()
    finally:
        server.close()
    assert "Failed to fetch" in error or "TypeError" in error, error
    assert any("blocked by CORS policy" in m for m in messages), messages


def test_no_cors_origins_by_default(browser: Any, page_server: PageServer) -> None:
    server = KvgateServer("--backend", "fakeredis://", "--token", TOKEN).start()
    try:
        page, messages = open_page(browser, page_server)
        error = page.evaluate(FAILING, [server.url, TOKEN])
        page.close()
    finally:
        server.close()
    assert "Failed to fetch" in error or "TypeError" in error, error
    assert any("blocked by CORS policy" in m for m in messages), messages
