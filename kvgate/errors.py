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
