"""Backends, chosen by the URL scheme of a database's ``backend`` setting."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from kvgate.adapters.base import Backend, Health

__all__ = ["SCHEMES", "Backend", "BackendURLError", "Health", "open_backend"]


class BackendURLError(ValueError):
    pass


def _redis(url: str, **options: object) -> Backend:
    from kvgate.adapters.redis_mux import RedisBackend, RedisOptions

    return RedisBackend(url, RedisOptions(**options))  # type: ignore[arg-type]


def _fakeredis(url: str, **options: object) -> Backend:
    from kvgate.adapters.fake import FakeRedisBackend

    return FakeRedisBackend(url)


SCHEMES: dict[str, Callable[..., Backend]] = {
    "redis": _redis,
    "rediss": _redis,
    "unix": _redis,
    "fakeredis": _fakeredis,
}


def check_url(url: str) -> str:
    """The scheme of a backend URL; raises :class:`BackendURLError` with one clear line."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in SCHEMES)
        raise BackendURLError(f"unsupported backend URL {url!r}: expected one of {known}")
    if scheme in ("redis", "rediss"):
        try:
            from redis.connection import parse_url

            parse_url(url)
        except ValueError as exc:
            raise BackendURLError(f"invalid backend URL {url!r}: {exc}") from None
    return scheme


def open_backend(url: str, **options: object) -> Backend:
    return SCHEMES[check_url(url)](url, **options)
