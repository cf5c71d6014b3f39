"""Error texts and error types.

Two families, kept apart on purpose:

* :class:`ReplyError` is a Redis error *reply* (``ERR ...``, ``WRONGTYPE ...``).  It is a
  value that travels inside pipelines and transactions like any other reply, and its text
  is exactly what Redis would say.
* :class:`GatewayError` and its subclasses are failures of kvgate itself or of the path to
  the backend (unavailable, overloaded, timed out, bad request body).  Each carries the HTTP
  status it is answered with.
"""

from __future__ import annotations


class ReplyError(Exception):
    """A Redis error reply; ``str(err)`` is the full text with its prefix."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else "ERR"


class GatewayError(Exception):
    status = 400
    headers: dict[str, str] = {}
    #: The connection cannot carry another request after this answer (kvgate closes it).
    close = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(GatewayError):
    status = 400


class Unauthorized(GatewayError):
    status = 401


class Forbidden(GatewayError):
    status = 403


class NotFound(GatewayError):
    status = 404


class MethodNotAllowed(GatewayError):
    status = 405

    def __init__(self, message: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.headers = {"Allow": ", ".join(allowed)}


class PayloadTooLarge(GatewayError):
    status = 413


class BrokenBody(BadRequest):
    """The body's framing is broken (a bad chunk): where the next request starts is lost."""

    close = True


class RequestTimeout(GatewayError):
    """The client did not send its body within ``body_timeout`` (kvgate.connections)."""

    status = 408
    close = True


class ClientGone(Exception):
    """The client closed its connection before its request was read: there is nobody to
    answer.  Counted with status 499 (nginx's "client closed request"), never as a 500."""

    status = 499


class StartupError(Exception):
    """A backend that can never work as configured (a missing directory, a file that is
    not a kvgate database): kvgate stops with this one line instead of serving errors."""


class BackendError(GatewayError):
    """The backend could not answer; the reply to the command is unknown."""

    status = 503


class BackendUnavailable(BackendError):
    headers = {"Retry-After": "1"}


class BackendOverloaded(BackendError):
    headers = {"Retry-After": "1"}


class BackendTimeout(BackendError):
    status = 504
