"""CORS: which pages on other origins may call a database from a browser.

Per database (``cors_origins``: none by default, ``*``, or a list of origins).  A preflight
(``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) carries no token, so the
database is the one its *path* routes to, as for any request (``/db/<name>/...``, or the root
database): each database answers for its own origins.

* A preflight from an allowed origin: ``204`` with the origin, the methods the path takes,
  every header the official clients send, ``Access-Control-Max-Age`` and ``Vary: Origin``.
  From any other origin: ``403`` and no CORS header (the browser blocks the call).  A plain
  ``OPTIONS`` (no ``Origin`` or no requested method) is no preflight: ``405`` as before.
* Every reply of the database to an allowed origin names it in
  ``Access-Control-Allow-Origin`` and exposes ``Upstash-Sync-Token`` (the JS client reads it
  for read-your-writes); errors too, so a page can read them.
* The origin is echoed, never ``*``, even when every origin is allowed: one rule for every
  reply, and a cache keyed on ``Vary: Origin`` stays correct.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: What @upstash/redis (JS) and upstash-redis (Python) send, plus Accept for streams.
ALLOWED_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "Upstash-Encoding",
    "Upstash-Sync-Token",
    "Upstash-Response-Format",
    "Upstash-Telemetry-Sdk",
    "Upstash-Telemetry-Runtime",
    "Upstash-Telemetry-Platform",
    "Upstash-Telemetry-Retry",
)
EXPOSED_HEADERS = ("Upstash-Sync-Token",)
#: Seconds a browser may cache a preflight (Chromium caps it at 7200).
MAX_AGE = 7200


@dataclass(frozen=True)
class CorsPolicy:
    origins: frozenset[str]

    @classmethod
    def of(cls, origins: Iterable[str]) -> CorsPolicy | None:
        origins = frozenset(origins)
        return cls(origins) if origins else None

    def allows(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins

    def reply_headers(self, origin: str) -> dict[str, str]:
        """Headers for any reply of the database to ``origin`` (already allowed)."""
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": ", ".join(EXPOSED_HEADERS),
            "Vary": "Origin",
        }

    def preflight_headers(self, origin: str, methods: Iterable[str]) -> dict[str, str]:
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ", ".join(methods),
            "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
            "Access-Control-Max-Age": str(MAX_AGE),
            "Vary": "Origin",
        }


def is_preflight(method: str, origin: str | None, requested_method: str | None) -> bool:
    return method == "OPTIONS" and bool(origin) and bool(requested_method)
