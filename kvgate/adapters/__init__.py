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


def _sqlite(url: str, **options: object) -> Backend:
    from kvgate.adapters.sqlite import SqliteBackend, SqliteOptions, parse_url

    _, query = parse_url(url)
    return SqliteBackend(
        url,
        SqliteOptions(
            busy_timeout_ms=int(query.get("busy_timeout_ms", 5000)),
            synchronous=query.get("synchronous", "NORMAL").upper(),
            max_inflight=int(options.get("max_inflight", 10_000)),  # type: ignore[call-overload]
            timeout=float(options.get("timeout", 10.0)),  # type: ignore[arg-type]
        ),
    )


def _dynamodb(url: str, **options: object) -> Backend:
    from kvgate.adapters.dynamodb import DynamoBackend, DynamoOptions

    return DynamoBackend(url, DynamoOptions(**options))  # type: ignore[arg-type]


def _fakeredis(url: str, **options: object) -> Backend:
    from kvgate.adapters.fake import FakeRedisBackend

    return FakeRedisBackend(url)


SCHEMES: dict[str, Callable[..., Backend]] = {
    "redis": _redis,
    "rediss": _redis,
    "unix": _redis,
    "fakeredis": _fakeredis,
    "sqlite": _sqlite,
    "dynamodb": _dynamodb,
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
    if scheme == "sqlite":
        from kvgate.adapters.sqlite import parse_url as parse_sqlite_url

        try:
            _, query = parse_sqlite_url(url)
            int(query.get("busy_timeout_ms", 5000))
            if query.get("synchronous", "NORMAL").upper() not in ("NORMAL", "FULL"):
                raise ValueError("synchronous must be NORMAL or FULL")
        except ValueError as exc:
            raise BackendURLError(f"invalid backend URL {url!r}: {exc}") from None
    if scheme == "dynamodb":
        from kvgate.adapters.dynamodb import parse_url as parse_dynamodb_url

        try:
            parse_dynamodb_url(url)
        except ValueError as exc:
            raise BackendURLError(f"invalid backend URL {url!r}: {exc}") from None
    return scheme


def open_backend(url: str, **options: object) -> Backend:
    return SCHEMES[check_url(url)](url, **options)
