"""The Redis adapter and ``max_reply_bytes``: an oversized reply is skipped as it arrives,
never buffered whole, and the connection stays in step with its requests.

Three levels: the :class:`Skimmer` against hiredis on the same bytes cut every way; a
connection fed a reply stream cut at every point (no network: every chunk boundary is
tried); a real redis-server with one connection carrying oversized and normal requests at
once; and a real ``kvgate serve`` whose memory must not grow by the oversized value.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import hiredis
import pytest

from kvgate.adapters import default_settings
from kvgate.adapters import redis_mux as mux
from kvgate.adapters.resp_skim import RespError, Skimmer
from kvgate.errors import ReplyError
from kvgate.reply_limit import UNLIMITED, ReplyTooLarge, reply_size
from tests.support.servers import KvgateServer, RedisServer

MIB = 1024 * 1024

# Replies of every RESP2 shape (and RESP3's, which a skimmer reads too).
REPLIES = [
    b"+OK\r\n",
    b"-ERR wrong\r\n",
    b":42\r\n",
    b"$-1\r\n",
    b"*-1\r\n",
    b"$0\r\n\r\n",
    b"$5\r\nhe\r\nl\r\n",  # CRLF inside a payload
    b"*0\r\n",
    b"*3\r\n$1\r\na\r\n:1\r\n*2\r\n$-1\r\n+x\r\n",
    b"*2\r\n*1\r\n*1\r\n$3\r\nabc\r\n-ERR in\r\n",
    b"$300\r\n" + b"v" * 300 + b"\r\n",
    b"*4\r\n" + b"$100\r\n" + b"w" * 100 + b"\r\n" + b"*0\r\n" + b"$-1\r\n" + b"$2\r\nhi\r\n",
]
RESP3 = [
    b"%1\r\n+k\r\n:1\r\n",
    b"~2\r\n,1.5\r\n#t\r\n",
    b"_\r\n",
    b"(12345678901234567890\r\n",
    b"=7\r\ntxt:abc\r\n",
]


def chunks(data: bytes, cuts: list[int]) -> Iterator[bytes]:
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        yield data[start:cut]
        start = cut


# --- the skimmer -----------------------------------------------------------------------


def test_the_skimmer_finds_every_reply_boundary_and_size_as_hiredis_reads_them_however_cut() -> None:
    stream = b"".join(REPLIES)
    reader = hiredis.Reader(replyError=ReplyError)
    reader.feed(stream)
    expected = []
    while (reply := reader.gets()) is not False:
        expected.append(reply_size(reply))
    assert len(expected) == len(REPLIES)
    for cut in range(len(stream) + 1):
        for second in (cut, min(len(stream), cut + 1), min(len(stream), cut + 7)):
            skimmer = Skimmer()
            sizes = []
            for part in chunks(stream, [cut, second]):
                pos = 0
                while pos < len(part):
                    before = skimmer.replies
                    pos = skimmer.feed(part, pos, stop_after_reply=True)
                    if skimmer.replies != before:
                        sizes.append(skimmer.last_size)
            assert sizes == expected, (cut, second)
            assert not skimmer.in_reply


def test_the_skimmer_reads_resp3_types_and_refuses_what_is_not_resp() -> None:
    skimmer = Skimmer()
    skimmer.feed(b"".join(RESP3))
    assert (skimmer.replies, skimmer.in_reply) == (len(RESP3), False)
    with pytest.raises(RespError):
        Skimmer().feed(b"?what\r\n")
    with pytest.raises(RespError):
        Skimmer().feed(b"$x\r\n")


def test_a_bulk_strings_whole_size_is_known_from_its_header() -> None:
    skimmer = Skimmer()
    skimmer.feed(b"*2\r\n$1\r\na\r\n$" + str(100 * MIB).encode() + b"\r\nxyz")
    assert skimmer.in_reply
    assert skimmer.size == 8 + (1 + 8) + (100 * MIB + 8)


# --- one connection, fed by hand ---------------------------------------------------------


class FakeTransport:
    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        raise AssertionError("the connection was dropped")


HIREDIS_READER = hiredis.Reader


class CountingReader:
    """hiredis's reader, noting the most bytes it ever held unparsed."""

    most = 0

    def __init__(self, **kwargs: Any) -> None:
        self._reader = HIREDIS_READER(**kwargs)

    def feed(self, data: bytes) -> None:
        self._reader.feed(data)
        CountingReader.most = max(CountingReader.most, self._reader.len())

    def gets(self) -> Any:
        return self._reader.gets()

    def has_data(self) -> bool:
        return self._reader.has_data()


def bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


LIMIT = 200
BIG = b"B" * 1000
# (replies expected by one request, their bytes, what the request should get)
REQUESTS = [
    (1, bulk(b"first"), [b"first"]),
    (1, bulk(BIG), [ReplyTooLarge]),
    (2, b":1\r\n" + bulk(BIG), [1, ReplyTooLarge]),
    (1, b"*3\r\n" + bulk(b"a") + b"*1\r\n" + bulk(BIG) + b":2\r\n", [ReplyTooLarge]),
    (3, bulk(b"x" * 120) + bulk(b"y" * 120) + b"+OK\r\n", [b"x" * 120, ReplyTooLarge, b"OK"]),
    (1, b"*3\r\n" + bulk(b"a") + bulk(b"b") + b"$-1\r\n", [[b"a", b"b", None]]),
    (1, b"*40\r\n" + b":7\r\n" * 40, [ReplyTooLarge]),  # 40 small elements count too
    (1, b"*10\r\n" + bulk(b"0123456789") * 10, [[b"0123456789"] * 10]),  # a big array within budget
    (1, bulk(BIG), [ReplyTooLarge]),
    (1, bulk(b"last"), [b"last"]),
]


Requests = list[tuple[int, bytes, list[Any]]]


def run_connection(
    requests: Requests, cut_points: list[int], monkeypatch: pytest.MonkeyPatch
) -> list[list[Any]]:
    """Feed one connection the replies to ``requests``, cut at ``cut_points``."""
    monkeypatch.setattr(mux, "SKIM_AFTER", 64)
    loop = asyncio.new_event_loop()
    try:
        conn = mux._Connection(loop)
        conn.connection_made(FakeTransport())  # type: ignore[arg-type]
        futures = [conn.submit(b"", expected, LIMIT) for expected, _, _ in requests]
        stream = b"".join(data for _, data, _ in requests)
        for part in chunks(stream, cut_points):
            conn.data_received(part)
        assert all(f.done() for f in futures)
        assert not conn.pending
        return [f.result() for f in futures]
    finally:
        loop.close()


def shape(replies: list[Any]) -> list[Any]:
    return [ReplyTooLarge if isinstance(r, ReplyTooLarge) else r for r in replies]


def test_a_connection_answers_every_request_its_own_replies_wherever_the_stream_is_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stream_length = sum(len(data) for _, data, _ in REQUESTS)
    expected = [want for _, _, want in REQUESTS]
    rng = random.Random(15)
    cuts = [[cut] for cut in range(1, stream_length)]
    cuts += [sorted(rng.sample(range(1, stream_length), k)) for k in (3, 10, 50, 200) for _ in range(30)]
    cuts.append(list(range(1, stream_length)))  # a byte at a time
    for cut_points in cuts:
        assert [shape(r) for r in run_connection(REQUESTS, cut_points, monkeypatch)] == expected, cut_points


def test_an_oversized_reply_arriving_in_pieces_is_never_held_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mux.hiredis, "Reader", CountingReader)
    huge = b"H" * 100_000
    requests = [
        (1, bulk(b"before"), [b"before"]),
        (1, bulk(huge), [ReplyTooLarge]),
        (1, b"*2\r\n" + bulk(huge) + bulk(b"a"), [ReplyTooLarge]),
        (1, bulk(b"after"), [b"after"]),
    ]
    length = sum(len(data) for _, data, _ in requests)
    rng = random.Random(3)
    for piece in (1, 7, 1000, 4096):
        cut_points = list(range(piece, length, piece))
        if piece > 1:
            cut_points = sorted({max(1, c - rng.randrange(piece // 2 + 1)) for c in cut_points})
        CountingReader.most = 0
        replies = run_connection(requests, cut_points, monkeypatch)
        assert [shape(r) for r in replies] == [want for _, _, want in requests]
        # hiredis never holds more than the skimming threshold, a chunk, and the 1 KB of
        # parsed bytes it keeps before compacting: nothing like the 100 KB value.
        assert CountingReader.most < 64 + 2 * 4096 + 1024, (piece, CountingReader.most)


# --- a real redis-server ---------------------------------------------------------------


@contextlib.asynccontextmanager
async def backend(url: str, limit: int) -> AsyncIterator[mux.RedisBackend]:
    b = mux.RedisBackend(url, replace(default_settings(), pool_size=1, max_reply_bytes=limit))
    await b.start()
    try:
        yield b
    finally:
        await b.close()


async def test_oversized_replies_skipped_on_one_shared_connection_leave_every_other_reply_in_place(
    redis_server: RedisServer,
) -> None:
    big = b"z" * (3 * MIB)
    redis_server.commands([["FLUSHALL"], ["SET", "big", big], ["RPUSH", "list", "a", big, "b"]])
    async with backend(redis_server.url, MIB) as b:

        async def normal(i: int) -> None:
            key = f"k{i}".encode()
            assert await b.execute([[b"SET", key, str(i).encode()], [b"GET", key]]) == [
                b"OK",
                str(i).encode(),
            ]
            assert await b.execute([[b"ECHO", key]]) == [key]

        async def oversized(i: int) -> None:
            commands: list[list[bytes]] = [
                [[b"GET", b"big"]],
                [[b"LRANGE", b"list", b"0", b"-1"]],
                [[b"EVAL", b"return {1, {redis.call('GET', 'big')}}", b"0"]],
                [[b"PING"], [b"GET", b"big"], [b"ECHO", b"after"]],
            ][i % 4]
            replies = await b.execute(commands)
            if len(commands) == 3:
                assert replies[0] == b"PONG" and replies[2] == b"after"
                replies = [replies[1]]
            assert isinstance(replies[0], ReplyTooLarge)

        await asyncio.gather(*(oversized(i) if i % 3 == 0 else normal(i) for i in range(60)))
        with pytest.raises(ReplyTooLarge):
            await b.transaction([[b"SET", b"t", b"1"], [b"GET", b"big"]])
        assert await b.execute([[b"GET", b"t"], [b"STRLEN", b"big"]]) == [b"1", len(big)]
        (conn,) = b._conns
        assert not conn._skipping and conn._skimmer is None
        assert conn._reader.len() < MIB  # the reader holding megabytes was let go


async def test_kvgates_own_commands_are_not_limited(redis_server: RedisServer) -> None:
    async with backend(redis_server.url, 1024) as b:
        (conn,) = b._conns
        (docs,) = await conn.submit(b"*2\r\n$7\r\nCOMMAND\r\n$4\r\nDOCS\r\n", 1, UNLIMITED)
        assert isinstance(docs, list) and reply_size(docs) > 1024
        assert "from the server at" in b.commands.generated_from  # COMMAND DOCS was read at start


# --- a real kvgate serve -------------------------------------------------------------


def memory_mib(pid: int, field: str) -> float:
    """``VmHWM`` (peak resident size) or ``VmRSS`` (resident now) of a process, in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field}")


@contextlib.asynccontextmanager
async def served(redis_server: RedisServer, big: int, *options: str) -> AsyncIterator[tuple[int, Any]]:
    """A ``kvgate serve`` on the session's Redis holding ``big`` (a value of that many
    bytes) and ``small``, warmed up; yields its pid and a ``get(key) -> (status, body)``."""
    redis_server.commands([["FLUSHALL"], ["SET", "big", b"v" * big], ["SET", "small", "s"]])
    server = KvgateServer("--backend", redis_server.url, "--token", "t", *options)
    server.start()
    try:
        assert server.proc is not None
        async with aiohttp.ClientSession(server.url, headers={"Authorization": "Bearer t"}) as session:

            async def get(key: str) -> tuple[int, Any]:
                async with session.post("/", json=["GET", key]) as resp:
                    return resp.status, await resp.json()

            for _ in range(5):  # warm up: imports, buffers
                assert await get("small") == (200, {"result": "s"})
            yield server.proc.pid, get
    finally:
        server.close()


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
async def test_fetching_an_oversized_value_does_not_grow_kvgates_memory_by_it(
    redis_server: RedisServer,
) -> None:
    value = 32 * MIB
    async with served(redis_server, value, "--max-reply-bytes", str(MIB)) as (pid, get):
        before = memory_mib(pid, "VmHWM")
        replies = await asyncio.gather(*(get("big") for _ in range(4)))
        assert all(status == 400 for status, _ in replies), replies
        assert await get("small") == (200, {"result": "s"})
        grown = memory_mib(pid, "VmHWM") - before
    # Before the limit: 416 MiB.
    assert grown < 10, f"peak RSS grew by {grown:.1f} MiB fetching a {value // MIB} MiB value 4 times"


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
async def test_the_memory_of_large_replies_is_given_back_once_they_are_sent(
    redis_server: RedisServer,
) -> None:
    value = 8 * MIB
    async with served(redis_server, value) as (pid, get):
        before = memory_mib(pid, "VmRSS")
        replies = await asyncio.gather(get("big"), get("big"))
        assert [(status, len(body["result"])) for status, body in replies] == [(200, value)] * 2
        del replies
        await asyncio.sleep(0.5)  # past the second trim
        kept = memory_mib(pid, "VmRSS") - before
    # Before: 32-48 MiB kept (hiredis's buffers, the C heap); without malloc_trim up to 9.
    assert kept < 6, f"kept {kept:.1f} MiB after sending two {value // MIB} MiB replies"
