"""Client connections: deadlines, a cap and a drain, which aiohttp's server lacks.

aiohttp closes a connection only after ``keepalive_timeout`` seconds idle *between*
requests.  A client that sends its headers or its body a byte at a time, or connects and
sends nothing, keeps its socket for as long as it likes; with enough of them the process
runs out of file descriptors, ``accept()`` fails, and every new client is refused (issue
15: 1,100 such sockets against 1,024 files refused every request).  And its shutdown stops
reading from connections at once, which cuts uploads in progress and drops requests sent
on a keep-alive connection during the drain.

:class:`Connection` (aiohttp's ``RequestHandler``, one per connection) adds:

* a header deadline (``header_timeout``) from the connection, or from the first byte of a
  request after a keep-alive pause, until its headers are in: past it, 408 and close;
* a body deadline (``body_timeout``) from the headers until the whole body is in: past it,
  the handler reading the body gets 408 and the connection closes;
* the drain: on shutdown an idle connection closes at once; one with a request begun (or
  received and waiting) answers it, marks its last answer ``Connection: close`` and closes.

Both deadlines are checked by one timer per connection, armed as it opens and then only
when a request arrives in pieces: a request whose headers (and body) come in one read
never touches it.

:class:`ConnectionServer` (aiohttp's ``Server``, the protocol factory) keeps the cap
(``max_connections``): at the cap a new connection displaces the connection that has been
waiting longest without a complete request (idle, or still sending headers), or else the
one that has been receiving a body longest, so stalled clients cannot lock out
well-behaved ones (whose requests come whole and are answered at once); if every
connection has a request being answered, the newcomer gets a 503 and is closed.  Under
such a flood an honest upload can be displaced too: a proxy with per-client limits in
front is the remedy for that.  A malformed request is answered with kvgate's JSON
error and logged as one line that names the problem but never the request's bytes: those
hold ``?_token=`` (aiohttp logs them with a traceback at ERROR).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.http import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from kvgate import error_texts
from kvgate.errors import BrokenBody, RequestTimeout
from kvgate.protocol import dumps

log = logging.getLogger("kvgate")

# Where a connection is between requests.
IDLE = 0  # no byte of a request yet (new, or after an answer on a keep-alive connection)
HEADERS = 1  # part of a request line or headers
BODY = 2  # headers in, body still coming
BUSY = 3  # a complete request is being answered (or waits behind another one)

#: Seconds between two "connection cap reached" warnings: one line, not one per client.
CAP_WARNING_EVERY = 60.0


@dataclass(frozen=True)
class Limits:
    header_timeout: float
    body_timeout: float
    keepalive_timeout: float
    max_connections: int


#: What answers an error: ``(status, message, headers) -> response`` (Gateway.error).
ErrorReply = Callable[[int, str, dict[str, str] | None], web.StreamResponse]


class Connection(RequestHandler):
    """One client connection: aiohttp's request handler with deadlines and a drain."""

    __slots__ = (
        "_answered",
        "_body",
        "_deadline",
        "_draining",
        "_partial",
        "_phase",
        "_refused",
        "_server",
        "_timer",
    )

    def __init__(self, manager: ConnectionServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._server = manager
        self._phase = IDLE
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # the body being received (phase BODY)
        self._partial = False  # bytes of a next request came while one was being answered
        self._answered = False  # the body arriving belongs to a request already answered
        self._refused = False
        self._draining = False

    # -- the connection's life
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._server.admit(self):
            self._refused = True
            cast(asyncio.Transport, transport).write(self._server.refusal())
            transport.close()
            return
        super().connection_made(transport)
        self._arm(self._loop.time() + self._server.limits.header_timeout)
        if self._draining:  # accepted as the listening socket closed
            self.force_close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        server = self._server
        task = self._task_handler
        running = False
        if task is not None and not task.done():
            # A client that left a slow request or a stream: the drain waits for it too.
            running = True
            task.add_done_callback(lambda _: server.handler_ended(self))
        server.connection_closed(self, running)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def begin_drain(self) -> None:
        """Shutdown: close now if no request has begun; else answer, then close."""
        self._draining = True
        if self._phase == IDLE:
            self.force_close()

    # -- reading requests
    def data_received(self, data: bytes) -> None:
        # The hot path (a request in one read): IDLE -> BUSY, one dict removal, no timer.
        if data and self._phase == IDLE:  # the first bytes of a request
            self._phase = HEADERS  # still waiting: it keeps its place in server.waiting
            if self._request_count:  # after a keep-alive pause; a new connection's runs on
                self._arm(self._loop.time() + self._server.limits.header_timeout)
        count = self._request_count
        super().data_received(data)
        if self._request_count != count:  # a request's headers are in (or it was malformed)
            self._server.waiting.pop(self, None)
            if self._phase == BODY:  # the body before it is in
                self._server.receiving.pop(self, None)
            self._partial = self._answered = False
            message, payload = self._messages[-1] if self._messages else (None, None)
            if not isinstance(message, RawRequestMessage):
                if self._body is not None and not self._body.is_eof():
                    # The parser failed inside a body (a bad chunk): end that body with an
                    # error, else its handler would wait for the rest forever.
                    self._end_body(error=True)
                self._phase, self._body = BUSY, None
            elif payload is None or payload.is_eof():
                self._phase, self._body = BUSY, None
            else:
                self._phase, self._body = BODY, payload
                self._server.receiving[self] = None
                self._arm(self._loop.time() + self._server.limits.body_timeout)
        elif self._phase == BODY:
            if self._body is None or self._body.is_eof():
                self._phase, self._body = BUSY, None
                self._server.receiving.pop(self, None)
                if self._answered and not self._messages:  # answered early (401, 413...)
                    self._answered = False
                    self._now_idle()
        elif data and self._phase == BUSY:
            self._partial = True

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        if self._draining and self._phase == BUSY and not self._messages and not self._partial:
            resp.force_close()  # the last answer of this connection: ``Connection: close``
        result = await super().finish_response(request, resp, start_time)
        if self._phase == BUSY and not self._messages and self.transport is not None:
            if self._partial:
                self._partial = False
                self._phase = HEADERS
                self._server.waiting[self] = None
                self._arm(self._loop.time() + self._server.limits.header_timeout)
            else:
                self._now_idle()
        elif self._phase == BODY and request.content is self._body:
            self._answered = True  # aiohttp reads the rest (lingers); idle once it is in
        return result

    def _now_idle(self) -> None:
        """No request under way: waiting again, last in line (aiohttp's keep-alive timer
        closes the connection if it stays idle); at once when draining."""
        self._phase = IDLE
        self._server.waiting[self] = None
        if self._draining:
            self.force_close()

    # -- deadlines
    def _arm(self, deadline: float) -> None:
        """Make ``deadline`` the one to check; the timer re-arms itself if it fires early."""
        self._deadline = deadline
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self._loop.call_at(deadline, self._check)

    def _check(self) -> None:
        self._timer = None
        if self.transport is None:
            return
        now = self._loop.time()
        phase = self._phase
        if phase == BUSY or (phase == IDLE and self._request_count):
            return  # being answered, or idle after an answer (aiohttp's keep-alive timer)
        if now < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._check)
            return
        if phase == BODY and (self._reading_paused or getattr(self, "_buffer_paused", False)):
            # kvgate stopped reading (its buffers are full): not the client's delay.
            self._timer = self._loop.call_at(now + 1.0, self._check)
            return
        limits = self._server.limits
        if phase == IDLE:  # connected and sent nothing
            self._server.closed["header_timeout"] += 1
            self.force_close()
        elif phase == HEADERS:
            self._server.closed["header_timeout"] += 1
            message = error_texts.headers_timeout(limits.header_timeout)
            self.transport.write(self._server.raw_error(408, "Request Timeout", message))
            self.force_close()
        else:
            self._server.closed["body_timeout"] += 1
            self._end_body(error=False)

    def _end_body(self, *, error: bool) -> None:
        """End the body being received: its handler (if one reads it) gets 408 or 400, and
        the connection reads nothing more and closes after that answer."""
        body = self._body
        self._body, self._phase, self._answered = None, BUSY, False
        self._server.receiving.pop(self, None)
        self.close()  # aiohttp: no more requests on this connection, ignore further bytes
        if body is None or body.is_eof():
            return
        request = self._current_request
        if request is not None and request.content is body:
            if error:
                body.set_exception(BrokenBody(error_texts.BODY_FRAMING))
            else:
                body.set_exception(RequestTimeout(error_texts.body_timeout(self._server.limits.body_timeout)))
        body.feed_eof()  # wakes a reader, and ends aiohttp's own wait for an unread body

    # -- malformed requests
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """One log line naming the problem, never the request's bytes; kvgate's JSON error."""
        if request.writer.output_size > 0:
            raise ConnectionError("a response was already being sent")  # as aiohttp does
        reason = type(exc).__name__ if exc is not None else "error"
        if status == 400:
            self._server.closed["malformed"] += 1
            log.info("malformed HTTP request from %s (%s): answered 400", request.remote, reason)
            text = error_texts.malformed_request(reason)
        else:  # aiohttp's own fallbacks (Gateway.handle answers its errors itself)
            log.error("error answering %s %s: %s", request.method, request.path, reason, exc_info=exc)
            text = error_texts.INTERNAL_ERROR
        resp = self._server.error(status, text, None)
        resp.force_close()
        return resp


class ConnectionServer(web.Server):
    """aiohttp's low-level server making :class:`Connection` objects, with the cap."""

    def __init__(
        self,
        handler: Any,
        *,
        limits: Limits,
        error: ErrorReply,
        sync_token: Callable[[], str],
        closed: Counter[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, keepalive_timeout=limits.keepalive_timeout, **kwargs)
        self.limits = limits
        self.error = error
        self.sync_token = sync_token
        self.open: set[Connection] = set()
        #: Connections closed whose handler still runs (not counted in the cap: no socket).
        self.running: set[Connection] = set()
        #: Connections without a complete request (idle, or sending headers), longest
        #: waiting first: the ones a new connection may displace at the cap.
        self.waiting: dict[Connection, None] = {}
        #: Connections receiving a body, longest first: displaced when none is waiting (a
        #: body sent a byte at a time on every connection would otherwise lock everyone out
        #: for ``body_timeout``).
        self.receiving: dict[Connection, None] = {}
        #: Connections kvgate closed, by reason (``kvgate_connections_closed_total``).
        self.closed: Counter[str] = Counter() if closed is None else closed
        self.draining = False
        self._drained = asyncio.Event()
        self._cap_warned = 0.0

    def __call__(self) -> Connection:
        return Connection(self, loop=self._loop, **self._kwargs)

    # -- the cap
    def admit(self, conn: Connection) -> bool:
        if len(self.open) >= self.limits.max_connections:
            victim = next(iter(self.waiting), None) or next(iter(self.receiving), None)
            self._warn_cap()
            if victim is None:
                self.closed["refused"] += 1
                return False
            self.closed["displaced"] += 1
            self._drop(victim)  # its place is free now; it closes in a moment
            victim.force_close()
        self.open.add(conn)
        self.waiting[conn] = None
        conn._draining = self.draining
        return True

    def _warn_cap(self) -> None:
        now = time.monotonic()
        if now - self._cap_warned >= CAP_WARNING_EVERY:
            self._cap_warned = now
            log.warning(
                "max_connections (%d) reached: a new connection displaces the one waiting longest "
                "(or receiving a body longest), or gets 503 if every one has a request being "
                "answered (warned at most once a minute)",
                self.limits.max_connections,
            )

    def _drop(self, conn: Connection) -> None:
        self.open.discard(conn)
        self.waiting.pop(conn, None)
        self.receiving.pop(conn, None)

    def connection_closed(self, conn: Connection, handler_running: bool) -> None:
        self._drop(conn)
        if handler_running:
            self.running.add(conn)
        self._check_drained()

    def handler_ended(self, conn: Connection) -> None:
        self.running.discard(conn)
        self._check_drained()

    def _check_drained(self) -> None:
        if self.draining and not self.open and not self.running:
            self._drained.set()

    def refusal(self) -> bytes:
        message = error_texts.too_many_connections(self.limits.max_connections)
        return self.raw_error(503, "Service Unavailable", message, "Retry-After: 1\r\n")

    def raw_error(self, status: int, reason: str, message: str, extra: str = "") -> bytes:
        """A whole response written straight to a transport, for a connection that has no
        request to answer (aiohttp's writer needs one): kvgate's JSON error, then close."""
        body = dumps({"error": message})
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nUpstash-Sync-Token: {self.sync_token()}\r\n"
            f"{extra}Connection: close\r\n\r\n"
        )
        return head.encode() + body

    # -- shutdown
    async def drain(self, timeout: float) -> bool:
        """Close idle connections now and the others after their last answer; True once
        every connection is closed, False if ``timeout`` passed first."""
        self.draining = True
        for conn in list(self.open):
            conn.begin_drain()
        if not self.open and not self.running:
            return True
        try:
            await asyncio.wait_for(self._drained.wait(), timeout)
        except TimeoutError:
            return False
        return True
