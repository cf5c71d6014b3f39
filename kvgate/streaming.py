"""Sending large replies: a slice at a time, then giving their memory back.

Up to ``max_reply_bytes`` (32 MiB by default) a reply is answered, and the obvious way
holds it several times over: the value, its JSON text, the body, and whatever the socket
has not taken yet (the transport copies an unsent remainder into its own buffer).  Here:

* one large string result (the usual large reply: a ``GET``) is encoded as it is sent
  (:func:`kvgate.protocol.result_pieces`), so its JSON text never exists whole;
* any other large body (an array, a pipeline) is built once, as before, and written in
  slices, each after the client took the previous ones, so the transport never copies it;
* afterwards, :func:`give_back_memory` asks glibc to return the freed pages to the OS.
  Large blocks are ``mmap``-ed and go back on their own, but glibc raises that threshold
  up to 32 MB as blocks are freed, after which megabyte-sized blocks live on its heap, and
  the process kept hundreds of MB it no longer used.

Streaming a large array element by element would save its JSON text too; it is not done:
arrays that large are rare under the limit, and the pipeline and error shapes would need
a second encoder to keep in step with :mod:`kvgate.protocol`.
"""

from __future__ import annotations

import asyncio
import ctypes
import sys
from collections.abc import Callable

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from kvgate.protocol import result_pieces

#: A reply at least this big is sent by the classes here.
STREAM_AFTER = 1024 * 1024
#: How much is handed to the socket at a time.
SLICE = 256 * 1024


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``; None elsewhere (macOS, musl, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()
#: The trim scheduled after the last one, and its loop.
_again: tuple[asyncio.AbstractEventLoop, asyncio.TimerHandle] | None = None
#: Seconds after a trim to trim once more: what the request's last frames and callbacks
#: still held when its reply was sent is free by then (measured: without it, one in two
#: runs of four concurrent 30 MB GETs kept 30 MB).
TRIM_AGAIN_AFTER = 0.25


def give_back_memory() -> None:
    """Return the C heap's free pages to the OS (tens of microseconds), now and once more
    shortly after (one pending at a time)."""
    global _again
    if _TRIM is None:
        return
    _TRIM(0)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if _again is None or _again[0] is not loop or _again[1].cancelled() or loop.time() > _again[1].when():
        _again = (loop, loop.call_later(TRIM_AGAIN_AFTER, _TRIM, 0))


class _Streamed(web.StreamResponse):
    """A response whose body is written during ``prepare``, as aiohttp's FileResponse
    does: the handler returns it, aiohttp prepares it and then ends it."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self.prepared:
            return await super().prepare(request)
        writer = await super().prepare(request)
        try:
            if writer is not None and request.method != "HEAD":
                await self._send()
        finally:
            self._release()
            give_back_memory()
        return writer

    async def _send(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError


class StreamedResult(_Streamed):
    """``{"result": "<value>"}`` for one large string, encoded as it is sent (chunked:
    the JSON text's length is not known before)."""

    def __init__(self, value: bytes, base64: bool, headers: dict[str, str]) -> None:
        super().__init__(status=200, headers=headers)
        self._value = value
        self._base64 = base64

    async def _send(self) -> None:
        for piece in result_pieces(self._value, self._base64, SLICE):
            await self.write(piece)

    def _release(self) -> None:
        self._value = b""


class SlicedBody(_Streamed):
    """A large body already built, written a slice at a time."""

    def __init__(self, body: bytes, status: int, headers: dict[str, str]) -> None:
        super().__init__(status=status, headers=headers)
        self.content_length = len(body)
        self._content = body

    async def _send(self) -> None:
        view = memoryview(self._content)
        for at in range(0, len(view), SLICE):
            await self.write(view[at : at + SLICE])

    def _release(self) -> None:
        self._content = b""
