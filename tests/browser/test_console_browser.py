"""The web console end to end in headless Chromium: sign in, the key browser (SCAN with
MATCH, type filter, paging; type, TTL, size), a viewer and editor per type, TTL changes and
delete with confirmation, the command line with history, a read-only console for a
read-only token, JSON documents and a type without a viewer of its own; no Content-Security-
Policy violation on the way.  Screenshots go to the artifacts directory (printed)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import KvgateServer, RedisServer

RW, RO = "console-rw-token-123456", "console-ro-token-654321"


def api(server: KvgateServer, *args: Any, token: str = RW) -> Any:
    request = urllib.request.Request(server.url, data=json.dumps(list(args)).encode(), method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())["result"]


SEED = [
    ["SET", "user:1:name", "Ada Lovelace"],
    ["HSET", "user:1", "name", "Ada", "born", "1815"],
    ["RPUSH", "queue", "first", "second", "third"],
    ["SADD", "tags", "redis", "http", "edge"],
    ["ZADD", "scores", "10", "alice", "20", "bob"],
    ["SET", "session:temp", "x", "EX", "3600"],
]


@pytest.fixture
def server() -> Iterator[KvgateServer]:
    """kvgate on its default backend (SQLite, kvgate's engine), seeded."""
    server = KvgateServer("--token", RW, "--read-only-token", RO).start()
    for command in SEED:
        api(server, *command)
    for i in range(30):
        api(server, "SET", f"page:{i:02d}", str(i))
    yield server
    server.close()


def open_console(browser: Any, server: KvgateServer, token: str) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda err: problems.append(str(err)))
    response = page.goto(server.url + "/_kvgate/console")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#token", token)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#app:not([hidden])")
    page.wait_for_selector("#keys tbody tr")
    settled(page)
    return page, problems


def until(page: Any, expression: str, timeout: float = 30.0) -> None:
    """Wait for a JavaScript expression to hold.  (Playwright's wait_for_function compiles
    its text with eval inside the page, which the console's CSP forbids, as it should.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        assert time.monotonic() < deadline, f"still false after {timeout}s: {expression}"
        time.sleep(0.05)


def eventually(check: Any, timeout: float = 30.0) -> None:
    """Wait for a write the page sent to be seen through the API."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the console's write was not seen"
        time.sleep(0.05)


def rows(page: Any) -> dict[str, list[str]]:
    """The key table: name -> [type, TTL, size]."""
    cells = page.eval_on_selector_all(
        "#keys tbody tr", "trs => trs.map(tr => [...tr.cells].map(td => td.textContent))"
    )
    return {row[0]: row[1:] for row in cells}


def scan(page: Any, match: str = "", kind: str = "", count: str = "100") -> dict[str, list[str]]:
    page.fill("#match", match)
    page.select_option("#type-filter", kind)
    page.select_option("#count", count)
    page.evaluate("document.querySelector('#keys tbody').replaceChildren()")
    click(page, "#scan")
    page.wait_for_selector("#keys tbody tr")
    return rows(page)


def settled(page: Any) -> None:
    """The page's requests are answered and what they show is drawn (body[data-busy] is
    set while any is under way)."""
    page.wait_for_selector("body:not([data-busy])", state="attached")


def click(page: Any, selector: str) -> None:
    page.click(selector)
    settled(page)


def confirm(page: Any, ok: bool) -> None:
    page.wait_for_selector("#confirm[open]")
    page.click("#confirm-ok" if ok else "#confirm-cancel")
    page.wait_for_selector("#confirm:not([open])", state="attached")
    settled(page)


def open_key(page: Any, name: str) -> None:
    scan(page, match=name)
    click(page, f"#keys tbody tr[data-key='{name}']")
    until(page, f"document.getElementById('detail-key').textContent === {json.dumps(name)}")
    page.wait_for_selector("#viewer > *")


def test_console_read_write(browser: Any, server: KvgateServer, artifacts: Path) -> None:
    page, problems = open_console(browser, server, RW)
    # the key browser: every key with its type, TTL and size
    listed = scan(page, count="500")
    assert listed["user:1"] == ["hash", "no expiry", "2"]
    assert listed["queue"] == ["list", "no expiry", "3"]
    assert listed["tags"] == ["set", "no expiry", "3"]
    assert listed["scores"] == ["zset", "no expiry", "2"]
    assert listed["user:1:name"] == ["string", "no expiry", "12"]
    assert listed["session:temp"][1].endswith(" s")
    page.screenshot(path=str(artifacts / "console-keys.png"), full_page=True)
    assert set(scan(page, match="user:*")) == {"user:1", "user:1:name"}
    assert set(scan(page, kind="hash")) == {"user:1"}
    # paging: 36 keys, 20 a page
    seen = set(scan(page, count="20"))
    assert page.is_enabled("#next") and not page.is_enabled("#prev")
    while page.is_enabled("#next"):
        click(page, "#next")
        until(page, "document.getElementById('page').textContent.startsWith('page ')")
        page.wait_for_selector("#keys tbody tr")
        seen |= set(rows(page))
    assert len({k for k in seen if k.startswith("page:")}) == 30
    click(page, "#prev")
    page.wait_for_selector("#keys tbody tr")

    # a string: view, edit, save (its TTL kept)
    open_key(page, "user:1:name")
    assert page.input_value("#string-value") == "Ada Lovelace"
    page.fill("#string-value", "Ada King")
    click(page, "#string-save")
    eventually(lambda: api(server, "GET", "user:1:name") == "Ada King")
    page.screenshot(path=str(artifacts / "console-string.png"), full_page=True)
    # bytes that are not UTF-8 cannot round-trip through a text box: read-only
    raw = urllib.request.Request(server.url + "/set/binary", data=b"\xff\xfeok", method="POST")
    raw.add_header("Authorization", f"Bearer {RW}")
    urllib.request.urlopen(raw, timeout=10).close()
    open_key(page, "binary")
    assert page.get_attribute("#string-value", "readonly") is not None
    assert not page.is_visible("#string-save")
    assert "Not UTF-8" in page.text_content("#viewer")

    # a hash: edit a field, add one, delete one (confirmed)
    open_key(page, "user:1")
    page.fill("#viewer tbody tr:nth-child(2) input", "1816")  # born
    click(page, "#viewer tbody tr:nth-child(2) button:has-text('Save')")
    eventually(lambda: api(server, "HGET", "user:1", "born") == "1816")
    page.fill("#viewer input[placeholder=field]", "title")
    page.fill("#viewer input[placeholder=value]", "Countess")
    click(page, "#viewer button:has-text('Add field')")
    page.wait_for_selector("#viewer td:has-text('title')")
    page.screenshot(path=str(artifacts / "console-hash.png"), full_page=True)
    page.click("#viewer tbody tr:nth-child(1) button:has-text('Delete')")
    confirm(page, ok=True)
    until(page, "!document.querySelector('#viewer tbody').textContent.includes('Ada')")
    assert api(server, "HGETALL", "user:1") == ["born", "1816", "title", "Countess"]

    # a list, a set, a sorted set
    open_key(page, "queue")
    assert page.eval_on_selector_all("#viewer tbody input", "els => els.map(e => e.value)") == [
        "first",
        "second",
        "third",
    ]
    page.fill("#viewer tbody tr:nth-child(2) input", "2nd")
    click(page, "#viewer tbody tr:nth-child(2) button:has-text('Save')")
    eventually(lambda: api(server, "LINDEX", "queue", "1") == "2nd")
    page.wait_for_selector("#viewer tbody tr:nth-child(2) input")  # the viewer redrawn
    page.click("#viewer tbody tr:nth-child(1) button:has-text('Remove')")
    confirm(page, ok=True)
    until(page, "document.querySelectorAll('#viewer tbody tr').length === 2")
    assert api(server, "LRANGE", "queue", "0", "-1") == ["2nd", "third"]
    open_key(page, "tags")
    page.fill("#viewer input[placeholder=member]", "browser")
    click(page, "#viewer button:has-text('Add member')")
    page.wait_for_selector("#viewer td:has-text('browser')")
    assert sorted(api(server, "SMEMBERS", "tags")) == ["browser", "edge", "http", "redis"]
    open_key(page, "scores")
    page.fill("#viewer tbody tr:nth-child(1) input", "30")  # alice 10 -> 30: now after bob
    click(page, "#viewer tbody tr:nth-child(1) button:has-text('Save score')")
    until(page, "document.querySelector('#viewer tbody tr td:nth-child(2)').textContent === 'bob'")
    assert api(server, "ZSCORE", "scores", "alice") == "30"

    # TTL and delete, each confirmed
    open_key(page, "tags")
    page.fill("#ttl-input", "500")
    page.click("#ttl-set")
    confirm(page, ok=True)
    until(page, "document.getElementById('detail-ttl').textContent.includes(' s')")
    assert 0 < api(server, "TTL", "tags") <= 500
    page.click("#ttl-persist")
    confirm(page, ok=True)
    until(page, "document.getElementById('detail-ttl').textContent.includes('no expiry')")
    assert api(server, "TTL", "tags") == -1
    page.click("#delete")
    confirm(page, ok=False)  # cancelled: nothing happens
    assert api(server, "EXISTS", "tags") == 1
    page.click("#delete")
    confirm(page, ok=True)
    page.wait_for_selector("#detail", state="hidden")
    assert api(server, "EXISTS", "tags") == 0

    # a new key
    page.click("#new-key")
    page.fill("#nk-name", "created")
    page.select_option("#nk-type", "list")
    page.fill("#nk-value", "one")
    click(page, "#newkey-form button[type=submit]")
    until(page, "document.getElementById('detail-key').textContent === 'created'")
    assert api(server, "LRANGE", "created", "0", "-1") == ["one"]

    # a JSON document on kvgate's own engine (type ReJSON-RL), edited with JSON.SET
    api(server, "JSON.SET", "doc", "$", '{"a":[1,2],"b":{"c":"d"}}')
    open_key(page, "doc")
    assert page.text_content("#detail-type") == "ReJSON-RL"
    assert json.loads(page.input_value("#json-value")) == {"a": [1, 2], "b": {"c": "d"}}
    page.fill("#json-value", '{"a": [1, 2, 3]}')
    click(page, "#json-save")
    eventually(lambda: json.loads(api(server, "JSON.GET", "doc")) == {"a": [1, 2, 3]})
    page.fill("#json-value", "{not json")
    click(page, "#json-save")  # refused in the page: nothing is sent
    assert "JSON" in page.text_content("#detail-error")
    assert json.loads(api(server, "JSON.GET", "doc")) == {"a": [1, 2, 3]}

    # the command line: replies as the REST API gives them, and history
    page.fill("#cli-input", 'SET cli:key "hello world"')
    page.press("#cli-input", "Enter")
    until(page, "document.getElementById('cli-output').textContent.includes('{\"result\":\"OK\"}')")
    page.fill("#cli-input", "GET cli:key")
    page.press("#cli-input", "Enter")
    until(page, "document.getElementById('cli-output').textContent.includes('{\"result\":\"hello world\"}')")
    page.fill("#cli-input", "NOSUCHCOMMAND")
    page.press("#cli-input", "Enter")
    until(
        page,
        "document.getElementById('cli-output').textContent.includes('400 {\"error\":\"ERR unknown command')",
    )
    page.press("#cli-input", "ArrowUp")
    assert page.input_value("#cli-input") == "NOSUCHCOMMAND"
    page.press("#cli-input", "ArrowUp")
    assert page.input_value("#cli-input") == "GET cli:key"
    page.press("#cli-input", "ArrowDown")
    assert page.input_value("#cli-input") == "NOSUCHCOMMAND"
    page.screenshot(path=str(artifacts / "console-command-line.png"), full_page=True)
    page.close()
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def test_console_read_only(browser: Any, server: KvgateServer, artifacts: Path) -> None:
    page, _ = open_console(browser, server, RO)
    assert "read-only" in page.text_content("#who")
    assert not page.is_visible("#new-key")
    open_key(page, "user:1:name")
    assert not page.is_visible("#ttl-set") and not page.is_visible("#delete")
    assert not page.is_visible("#string-save")
    assert page.get_attribute("#string-value", "readonly") is not None
    page.fill("#cli-input", "SET x 1")
    page.press("#cli-input", "Enter")
    until(page, "document.getElementById('cli-output').textContent.includes('403 {\"error\":\"NOPERM')")
    page.screenshot(path=str(artifacts / "console-read-only.png"), full_page=True)
    page.close()
    assert api(server, "EXISTS", "x") == 0


def test_a_wrong_token_is_refused(browser: Any, server: KvgateServer) -> None:
    page = browser.new_page()
    page.goto(server.url + "/_kvgate/console")
    page.wait_for_selector("body[data-ready='1']")
    page.fill("#token", "not-a-token")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#signin-error:has-text('WRONGPASS')")
    assert not page.is_visible("#app")
    page.close()


@pytest.fixture
def redisjson_server() -> Iterator[RedisServer]:
    from tests.support.redisjson import rejson_module

    try:
        module = rejson_module()
    except Exception as exc:  # no network for the first download
        pytest.skip(f"RedisJSON module unavailable: {exc}")
    server = RedisServer(modules=[str(module)]).start()
    yield server
    server.close()


def test_json_documents_and_types_without_a_viewer(
    browser: Any, redisjson_server: RedisServer, artifacts: Path
) -> None:
    """On a Redis with RedisJSON: a document is JSON text, edited with JSON.SET; a stream
    (no viewer of its own) is shown read-only, as its raw reply."""
    server = KvgateServer("--backend", redisjson_server.url, "--token", RW).start()
    try:
        api(server, "JSON.SET", "doc", "$", '{"name":"Ada","langs":["en","fr"]}')
        api(server, "XADD", "events", "1-1", "kind", "login")
        page, problems = open_console(browser, server, RW)
        assert rows(page)["doc"][0] == "ReJSON-RL"
        open_key(page, "doc")
        assert json.loads(page.input_value("#json-value")) == {"name": "Ada", "langs": ["en", "fr"]}
        page.fill("#json-value", '{"name": "Ada", "langs": ["en"], "born": 1815}')
        click(page, "#json-save")
        eventually(
            lambda: (
                json.loads(api(server, "JSON.GET", "doc")) == {"name": "Ada", "langs": ["en"], "born": 1815}
            )
        )
        page.screenshot(path=str(artifacts / "console-json.png"), full_page=True)
        open_key(page, "events")
        raw = json.loads(page.text_content("#raw-value"))
        assert raw == {"result": [["1-1", ["kind", "login"]]]}
        assert not page.is_visible("#viewer textarea")
        page.screenshot(path=str(artifacts / "console-stream.png"), full_page=True)
        page.close()
        assert not [p for p in problems if "Content Security Policy" in p], problems
    finally:
        server.close()
