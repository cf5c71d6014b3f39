"""The backend registry: one entry per kind of backend, chosen by the URL scheme of a
database's ``backend`` setting.

An entry holds everything kvgate knows about a backend besides its code: the URL schemes
it answers, the URL's form and options (with their defaults), the factory, the text the
CLI help and the README show, and what it supports.  Configuration checks, ``kvgate
serve --help``, the README's backends table and the tests' backend parametrization all
read :data:`REGISTRY`; a new backend is one new module plus one entry here.

The backend's module is imported only when a database uses it, so a Redis-only
deployment never loads kvgate's engine (nor Lua).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, replace
from functools import cache
from urllib.parse import parse_qsl, unquote, urlsplit

from kvgate.adapters.base import Backend, BackendSettings, Health, Message, Subscription

__all__ = [
    "REGISTRY",
    "Backend",
    "BackendEntry",
    "BackendSettings",
    "BackendURLError",
    "Health",
    "Message",
    "Subscription",
    "UrlOption",
    "check_url",
    "default_settings",
    "entry_for",
    "entry_named",
    "open_backend",
    "redact_url",
    "settings_for",
]


class BackendURLError(ValueError):
    pass


@dataclass(frozen=True)
class UrlOption:
    """A ``?name=value`` option of a backend URL."""

    name: str
    default: str | None
    help: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackendEntry:
    name: str  # also the backend's ``kind`` in messages, metrics and health
    schemes: tuple[str, ...]
    #: ``package.module:Class`` of the :class:`Backend`; imported on first use.
    factory: str
    url_form: str  # how its URLs look, for help texts
    summary: str  # one sentence for the README and ``--help``
    #: Whether kvgate's own engine runs the commands (else a server of Redis's does).
    engine: bool
    #: Connections per process when ``pool_size`` is not set; None: pool_size does not apply.
    default_pool_size: int | None
    #: Whether ``/subscribe`` works.
    pubsub: bool
    #: Data lives in one process's memory: lost at exit, never shared by several workers.
    in_process: bool = False
    url_options: tuple[UrlOption, ...] = ()

    def backend_class(self) -> type[Backend]:
        module, _, name = self.factory.partition(":")
        cls: type[Backend] = getattr(importlib.import_module(module), name)
        return cls

    def read_options(self, query: str) -> dict[str, str | None]:
        """Every URL option of this backend, from a URL's query string or its default;
        ``ValueError`` for an unknown option or a value not among its choices."""
        given = dict(parse_qsl(query, keep_blank_values=True))
        known = {o.name: o for o in self.url_options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise ValueError(
                f"unknown {self.name} URL option(s): {', '.join(unknown)} (known: {', '.join(known) or 'none'})"
            )
        values: dict[str, str | None] = {}
        for name, option in known.items():
            value = given.get(name, option.default)
            if value is not None and option.choices:
                value = value.upper()
                if value not in option.choices:
                    raise ValueError(f"{name} must be {' or '.join(option.choices)}")
            values[name] = value
        return values


REGISTRY: tuple[BackendEntry, ...] = (
    BackendEntry(
        name="sqlite",
        schemes=("sqlite",),
        factory="kvgate.adapters.sqlite:SqliteBackend",
        url_form="sqlite:///relative/file.db or sqlite:////absolute/file.db",
        summary="kvgate's own engine on one local SQLite file (the default: no server to run); "
        "several kvgate processes may share the file",
        engine=True,
        default_pool_size=None,
        pubsub=True,
        url_options=(
            UrlOption("busy_timeout_ms", "5000", "Milliseconds to wait for another process's write lock."),
            UrlOption(
                "synchronous",
                "NORMAL",
                "NORMAL survives a crash of kvgate; FULL also survives power loss, at a cost per commit.",
                ("NORMAL", "FULL"),
            ),
        ),
    ),
    BackendEntry(
        name="redis",
        schemes=("redis", "rediss", "unix"),
        factory="kvgate.adapters.redis_mux:RedisBackend",
        url_form="redis://[user:password@]host:port/db, rediss://... (TLS), unix:///path.sock?db=N",
        summary="a Redis server (or Valkey, or a managed Redis): commands pass through a few "
        "multiplexed connections, with the server's own command set, modules included",
        engine=False,
        default_pool_size=4,
        pubsub=True,
    ),
    BackendEntry(
        name="rediscluster",
        schemes=("redis+cluster", "rediss+cluster"),
        factory="kvgate.adapters.redis_cluster:RedisClusterBackend",
        url_form="redis+cluster://[user:password@]host:port[,host:port...], rediss+cluster://... (TLS)",
        summary="a Redis Cluster (or a managed one): a few multiplexed connections per node, "
        "each command sent to the node of its keys' hash slot, MOVED/ASK followed, failovers followed",
        engine=False,
        default_pool_size=2,
        pubsub=True,
        url_options=(
            UrlOption(
                "replica_reads",
                "NO",
                "YES sends read-only commands outside transactions to replicas (READONLY), "
                "which may lag their primary.",
                ("NO", "YES"),
            ),
            UrlOption(
                "ssl_cert_reqs", "REQUIRED", "NONE skips TLS certificate verification.", ("REQUIRED", "NONE")
            ),
        ),
    ),
    BackendEntry(
        name="dynamodb",
        schemes=("dynamodb",),
        factory="kvgate.adapters.dynamodb:DynamoBackend",
        url_form="dynamodb://<table>?region=..&endpoint_url=..",
        summary="kvgate's own engine on a DynamoDB table (create it with `kvgate dynamodb create-table`)",
        engine=True,
        default_pool_size=64,
        pubsub=True,
        url_options=(
            UrlOption("region", None, "AWS region (default: from the AWS configuration)."),
            UrlOption("endpoint_url", None, "http(s) URL of DynamoDB (DynamoDB Local, a VPC endpoint)."),
        ),
    ),
    BackendEntry(
        name="fakeredis",
        schemes=("fakeredis",),
        factory="kvgate.adapters.fake:FakeRedisBackend",
        url_form="fakeredis:// or fakeredis:///<db>",
        summary="fakeredis in kvgate's memory, for development and tests: lost when kvgate stops",
        engine=False,
        default_pool_size=None,
        pubsub=True,
        in_process=True,
    ),
)

_BY_SCHEME = {scheme: entry for entry in REGISTRY for scheme in entry.schemes}
_BY_NAME = {entry.name: entry for entry in REGISTRY}


def entry_named(name: str) -> BackendEntry:
    return _BY_NAME[name]


# A URL's password: what follows ``user:`` up to the last ``@`` before a space or a quote
# (a ``/`` in it, unescaped, breaks the URL but must not stop the redaction), and the
# values of query options that hold secrets (redis-py takes ``?password=``).
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:@/\s'\"]*:)(?P<secret>[^\s'\"]*)@")
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:password|passwd|pass|pwd|secret|token|secret_key|access_key)=)(?P<secret>[^&#\s'\"]*)",
    re.IGNORECASE,
)


def redact_url(text: str, url: str | None = None) -> str:
    """``text`` with the password of every URL in it shown as ``***``.  With ``url``, every
    piece of that URL's password is hidden too: a parser's error may quote a piece of a
    malformed URL (``redis://u:pa/ss@h`` reads as host ``u``, port ``pa``)."""
    pieces: set[str] = set()
    for source in (text, url or ""):
        for pattern in (_URL_PASSWORD, _QUERY_SECRET):
            for match in pattern.finditer(source):
                secret = match.group("secret")
                pieces.update((secret, unquote(secret)))
                if source is url:
                    pieces.update(re.split(r"[/?#:@]", secret))
    text = _URL_PASSWORD.sub(r"\g<head>***@", text)
    text = _QUERY_SECRET.sub(r"\g<head>***", text)
    for piece in sorted((p for p in pieces if len(p) >= 2), key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


def entry_for(url: str) -> BackendEntry:
    """The entry of a backend URL's scheme; :class:`BackendURLError` for an unknown one."""
    entry = _BY_SCHEME.get(urlsplit(url).scheme)
    if entry is None:
        known = ", ".join(f"{s}://" for s in _BY_SCHEME)
        raise BackendURLError(f"unsupported backend URL {redact_url(url)!r}: expected one of {known}")
    return entry


def check_url(url: str) -> BackendEntry:
    """Validate a backend URL with its backend's own parser; raises :class:`BackendURLError`
    with one clear line (the URL's password never in it)."""
    entry = entry_for(url)
    try:
        entry.backend_class().parse_url(url)
    except ValueError as exc:
        raise BackendURLError(
            f"invalid backend URL {redact_url(url)!r}: {redact_url(str(exc), url)}"
        ) from None
    return entry


@cache
def default_settings() -> BackendSettings:
    """The database settings' defaults (``kvgate.config.DATABASE_SETTINGS`` holds them)."""
    from kvgate.config import DATABASE_SETTINGS

    defaults = {s.name: s.default for s in DATABASE_SETTINGS}
    return BackendSettings(
        pool_size=defaults["pool_size"],
        max_inflight=defaults["max_inflight"],
        timeout=defaults["timeout"],
        max_subscriptions=defaults["max_subscriptions"],
        max_reply_bytes=defaults["max_reply_bytes"],
    )


def settings_for(kind: str, settings: BackendSettings | None) -> BackendSettings:
    """``settings`` (or the defaults) with the backend's own pool size filled in."""
    settings = settings or default_settings()
    if settings.pool_size is None:
        settings = replace(settings, pool_size=entry_named(kind).default_pool_size)
    return settings


def open_backend(url: str, settings: BackendSettings | None = None) -> Backend:
    entry = check_url(url)
    return entry.backend_class()(url, settings)
