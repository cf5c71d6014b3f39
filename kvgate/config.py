"""Configuration: every setting declared once, as data, with its default and help.

Two ways in, one result (:class:`Config`):

* one database from command-line options / ``KVGATE_*`` environment variables, served at
  the root path;
* many databases from a TOML file (``--config kvgate.toml``), each under its own base path.

Any problem is a :class:`ConfigError` whose message is one line a person can act on.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from kvgate.adapters import REGISTRY, BackendSettings, BackendURLError, check_url, entry_for, redact_url

DEFAULT_BACKEND = "sqlite:///kvgate.db"
MIB = 1024 * 1024


def _backend_help() -> str:
    forms = "; ".join(f"{e.url_form} ({e.name})" for e in REGISTRY)
    return f"Backend URL: {forms}. See the README's backends table."


def _pool_help() -> str:
    defaults = ", ".join(f"{e.default_pool_size} for {e.name}" for e in REGISTRY if e.default_pool_size)
    return f"Connections each process keeps open to the backend. Default: per backend ({defaults})."


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class Setting:
    name: str
    kind: type
    default: Any
    help: str
    env: str | None = None  # environment variable, for the single-database command line
    secret: bool = False  # never shown in a message (a configuration error is printed)


SERVER_SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, "127.0.0.1", "Address to listen on.", "KVGATE_HOST"),
    Setting("port", int, 8379, "TCP port to listen on.", "KVGATE_PORT"),
    Setting("workers", int, 1, "Processes serving the same port (SO_REUSEPORT).", "KVGATE_WORKERS"),
    Setting(
        "max_body_bytes",
        int,
        10 * MIB,
        "Largest request body accepted; a larger one is answered 413.",
        "KVGATE_MAX_BODY_BYTES",
    ),
    Setting(
        "shutdown_timeout",
        float,
        10.0,
        "Most seconds the drain after SIGTERM/SIGINT may take: requests begun are answered, then "
        "the process exits (at once if none is under way); what is left after it is cut.",
        "KVGATE_SHUTDOWN_TIMEOUT",
    ),
    Setting(
        "max_batch_commands",
        int,
        10_000,
        "Most commands in one /pipeline or /multi-exec request.",
        "KVGATE_MAX_BATCH_COMMANDS",
    ),
    Setting(
        "header_timeout",
        float,
        10.0,
        "Seconds a client has to send a request's line and headers, from its connection or from "
        "the request's first byte; then 408 and the connection is closed (a connection that sent "
        "nothing is just closed).",
        "KVGATE_HEADER_TIMEOUT",
    ),
    Setting(
        "body_timeout",
        float,
        30.0,
        "Seconds a client has to send a request's whole body once its headers are in; then 408 "
        "and the connection is closed.",
        "KVGATE_BODY_TIMEOUT",
    ),
    Setting(
        "keepalive_timeout",
        float,
        75.0,
        "Seconds an idle keep-alive connection stays open for its next request (a proxy in front "
        "should close idle connections sooner).",
        "KVGATE_KEEPALIVE_TIMEOUT",
    ),
    Setting(
        "max_connections",
        int,
        4096,
        "Client connections open per process. At the cap a new connection displaces the one "
        "waiting longest without a request under way (else the one receiving a body longest), or "
        "gets 503 if every one has a request being answered. Lowered to fit the open-file limit "
        "(kvgate raises its soft limit as far as the hard one allows).",
        "KVGATE_MAX_CONNECTIONS",
    ),
    Setting("log_level", str, "info", "debug, info, warning or error.", "KVGATE_LOG_LEVEL"),
    Setting(
        "log_format",
        str,
        "text",
        "text (one line per event) or json (one JSON object per line).",
        "KVGATE_LOG_FORMAT",
    ),
    Setting(
        "access_log",
        bool,
        False,
        "Log one line per request: method, path (never a token), status, duration, database, command name.",
        "KVGATE_ACCESS_LOG",
    ),
    Setting(
        "console",
        bool,
        True,
        "Serve the web console at /_kvgate/console (it shows nothing without a database's token).",
        "KVGATE_CONSOLE",
    ),
    Setting(
        "certfile",
        str,
        None,
        "PEM certificate chain: serve HTTPS directly (with keyfile; reloaded on SIGHUP).",
        "KVGATE_CERTFILE",
    ),
    Setting("keyfile", str, None, "PEM private key of certfile.", "KVGATE_KEYFILE"),
    Setting(
        "state_dir",
        str,
        None,
        "Directory for generated tokens of databases that are not SQLite files (those keep theirs "
        "beside the file). Default: $XDG_STATE_HOME/kvgate or ~/.local/state/kvgate.",
        "KVGATE_STATE_DIR",
    ),
)

DATABASE_SETTINGS: tuple[Setting, ...] = (
    Setting("backend", str, DEFAULT_BACKEND, _backend_help(), "KVGATE_BACKEND"),
    Setting(
        "tokens",
        list,
        [],
        "Read-write bearer tokens. With none, one is generated, printed once and saved for later runs "
        "(README: Operations).",
        "KVGATE_TOKEN",
        secret=True,
    ),
    Setting(
        "read_only_tokens",
        list,
        [],
        "Tokens allowed read commands only.",
        "KVGATE_READ_ONLY_TOKEN",
        secret=True,
    ),
    Setting("path", str, "/db/<name>", "Base path of the database (config file only)."),
    Setting(
        "cors_origins",
        list,
        [],
        "Origins whose pages may call this database from a browser (CORS): * for any, or a list "
        "such as https://app.example.com. None by default.",
        "KVGATE_CORS_ORIGINS",
    ),
    Setting("pool_size", int, None, _pool_help(), "KVGATE_POOL_SIZE"),
    Setting(
        "max_inflight",
        int,
        10_000,
        "Commands in flight to the backend, per process, at which new requests get 503 (a batch "
        "admitted below it may overshoot it, so a full batch is never refused for its size).",
        "KVGATE_MAX_INFLIGHT",
    ),
    Setting(
        "timeout",
        float,
        10.0,
        "Seconds to wait for the backend before answering 504.",
        "KVGATE_TIMEOUT",
    ),
    Setting(
        "max_subscriptions",
        int,
        100,
        "Open /subscribe streams per process (each holds a backend connection).",
        "KVGATE_MAX_SUBSCRIPTIONS",
    ),
    Setting(
        "max_reply_bytes",
        int,
        32 * MIB,
        "Most bytes of replies one request gets (a command's, or a pipeline's or transaction's "
        "together); a reply past it is answered with an error instead (the command still ran).",
        "KVGATE_MAX_REPLY_BYTES",
    ),
)

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PATH = re.compile(r"^(/[A-Za-z0-9._~-]+)+$")
_LEVELS = ("debug", "info", "warning", "error")
_FORMATS = ("text", "json")
_BOOLEANS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}
#: An origin as browsers send it: scheme://host[:port], nothing after.
_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/\s?#]+$")


def _default(settings: tuple[Setting, ...], name: str) -> Any:
    """A dataclass field whose default is the setting's (declared once, above)."""
    value = next(s.default for s in settings if s.name == name)
    if isinstance(value, list):
        return field(default=tuple(value))
    return field(default=value)


@dataclass(frozen=True)
class DatabaseConfig:
    name: str
    path: str  # "" for the root
    backend: str = _default(DATABASE_SETTINGS, "backend")
    tokens: tuple[str, ...] = _default(DATABASE_SETTINGS, "tokens")
    read_only_tokens: tuple[str, ...] = _default(DATABASE_SETTINGS, "read_only_tokens")
    pool_size: int | None = _default(DATABASE_SETTINGS, "pool_size")  # None: the backend's default
    max_inflight: int = _default(DATABASE_SETTINGS, "max_inflight")
    timeout: float = _default(DATABASE_SETTINGS, "timeout")
    max_subscriptions: int = _default(DATABASE_SETTINGS, "max_subscriptions")
    max_reply_bytes: int = _default(DATABASE_SETTINGS, "max_reply_bytes")
    cors_origins: tuple[str, ...] = _default(DATABASE_SETTINGS, "cors_origins")
    generated_token: bool = False

    @property
    def backend_settings(self) -> BackendSettings:
        return BackendSettings(
            pool_size=self.pool_size,
            max_inflight=self.max_inflight,
            timeout=self.timeout,
            max_subscriptions=self.max_subscriptions,
            max_reply_bytes=self.max_reply_bytes,
        )


@dataclass(frozen=True)
class Config:
    databases: tuple[DatabaseConfig, ...]
    host: str = _default(SERVER_SETTINGS, "host")
    port: int = _default(SERVER_SETTINGS, "port")
    workers: int = _default(SERVER_SETTINGS, "workers")
    max_body_bytes: int = _default(SERVER_SETTINGS, "max_body_bytes")
    shutdown_timeout: float = _default(SERVER_SETTINGS, "shutdown_timeout")
    max_batch_commands: int = _default(SERVER_SETTINGS, "max_batch_commands")
    header_timeout: float = _default(SERVER_SETTINGS, "header_timeout")
    body_timeout: float = _default(SERVER_SETTINGS, "body_timeout")
    keepalive_timeout: float = _default(SERVER_SETTINGS, "keepalive_timeout")
    max_connections: int = _default(SERVER_SETTINGS, "max_connections")
    log_level: str = _default(SERVER_SETTINGS, "log_level")
    log_format: str = _default(SERVER_SETTINGS, "log_format")
    access_log: bool = _default(SERVER_SETTINGS, "access_log")
    console: bool = _default(SERVER_SETTINGS, "console")
    certfile: str | None = _default(SERVER_SETTINGS, "certfile")
    keyfile: str | None = _default(SERVER_SETTINGS, "keyfile")
    state_dir: str | None = _default(SERVER_SETTINGS, "state_dir")
    #: The file it was read from and the command-line options over it: SIGHUP reads it again.
    config_file: str | None = None
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def scheme(self) -> str:
        return "https" if self.certfile else "http"


def _coerce(setting: Setting, value: Any, where: str) -> Any:
    try:
        if setting.kind is list:
            if isinstance(value, str):
                value = [value]
            if isinstance(value, tuple):
                value = list(value)
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ValueError("expected a list of non-empty strings")
            return tuple(value)
        if setting.kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise ValueError("expected an integer")
            return int(value)
        if setting.kind is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if setting.kind is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in _BOOLEANS:
                return _BOOLEANS[value.lower()]
            raise ValueError("expected true or false")
        if not isinstance(value, str):
            raise ValueError("expected a string")
        return value
    except ValueError as exc:
        shown = "(hidden)" if setting.secret else redact_url(repr(value))
        raise ConfigError(f"{where}: setting {setting.name!r} = {shown}: {exc}") from None


def _apply(settings: tuple[Setting, ...], values: Mapping[str, Any], where: str) -> dict[str, Any]:
    known = {s.name: s for s in settings}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return {name: _coerce(known[name], v, where) for name, v in values.items() if v is not None}


def _check_server(given: dict[str, Any]) -> None:
    values = {**{s.name: s.default for s in SERVER_SETTINGS}, **given}
    port = values["port"]
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is out of range 0-65535")
    if values["workers"] < 1:
        raise ConfigError("workers must be at least 1")
    if values["workers"] > 1 and port == 0:
        raise ConfigError("workers > 1 needs a fixed port (port 0 would give each worker its own)")
    if values["max_batch_commands"] < 1:
        raise ConfigError("max_batch_commands must be at least 1")
    if values["max_body_bytes"] < 1024:
        raise ConfigError("max_body_bytes must be at least 1024")
    if values["shutdown_timeout"] < 0:
        raise ConfigError("shutdown_timeout must not be negative")
    for name in ("header_timeout", "body_timeout", "keepalive_timeout"):
        if values[name] <= 0:
            raise ConfigError(f"{name} must be positive")
    if values["max_connections"] < 1:
        raise ConfigError("max_connections must be at least 1")
    if values["log_level"].lower() not in _LEVELS:
        raise ConfigError(f"log_level must be one of {', '.join(_LEVELS)}")
    if values["log_format"].lower() not in _FORMATS:
        raise ConfigError(f"log_format must be one of {', '.join(_FORMATS)}")
    if bool(values["certfile"]) != bool(values["keyfile"]):
        raise ConfigError("certfile and keyfile go together: give both to serve HTTPS, or neither")
    for name in ("certfile", "keyfile"):
        if values[name] and not Path(values[name]).is_file():
            raise ConfigError(f"{name} {values[name]!r} is not a readable file")


def _database(name: str, values: dict[str, Any], where: str) -> DatabaseConfig:
    if not _NAME.match(name):
        raise ConfigError(f"{where}: database name {name!r} may use only letters, digits, _ and -")
    backend = values.get("backend", DEFAULT_BACKEND)
    try:
        check_url(backend)
    except BackendURLError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ImportError as exc:  # an optional dependency (an extra) is not installed
        kind = entry_for(backend).name
        raise ConfigError(
            f"{where}: the {kind} backend needs the Python package {exc.name!r}: pip install 'kvgate[{kind}]'"
        ) from None
    for key in ("pool_size", "max_inflight", "max_subscriptions"):
        if values.get(key, 1) < 1:
            raise ConfigError(f"{where}: {key} must be at least 1")
    if values.get("timeout", 1.0) <= 0:
        raise ConfigError(f"{where}: timeout must be positive")
    if values.get("max_reply_bytes", 1024) < 1024:
        raise ConfigError(f"{where}: max_reply_bytes must be at least 1024")
    for origin in values.get("cors_origins", ()):
        if origin != "*" and not _ORIGIN.match(origin):
            raise ConfigError(
                f"{where}: cors_origins: {origin!r} is not an origin: give * or scheme://host[:port] "
                "(no path, no trailing slash)"
            )
    ro = set(values.get("read_only_tokens", ())) & set(values.get("tokens", ()))
    if ro:
        raise ConfigError(f"{where}: a token cannot be both read-write and read-only")
    return DatabaseConfig(name=name, **values)


def _finish(server: dict[str, Any], databases: list[DatabaseConfig]) -> Config:
    _check_server(server)
    for name in ("log_level", "log_format"):
        if name in server:
            server[name] = server[name].lower()
    if server.get("workers", 1) > 1:
        for db in databases:
            if entry_for(db.backend).in_process:
                raise ConfigError(
                    f"database {db.name!r}: {entry_for(db.backend).name}:// keeps data in one "
                    "process's memory; it cannot be served by several workers"
                )
    return Config(databases=tuple(databases), **server)


def from_options(options: Mapping[str, Any]) -> Config:
    """One database at the root path, from command-line options (None = not given)."""
    server_names = {s.name for s in SERVER_SETTINGS}
    server = _apply(SERVER_SETTINGS, {k: v for k, v in options.items() if k in server_names}, "options")
    db_values = _apply(
        DATABASE_SETTINGS,
        {k: v for k, v in options.items() if k not in server_names and v not in (None, ())},
        "options",
    )
    db_values["path"] = ""
    return _finish(server, [_database("default", db_values, "options")])


def load_file(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """Many databases from a TOML file; ``overrides`` (command-line server options) win."""
    where = str(path)
    try:
        raw = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {where} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {where}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    unknown = sorted(set(raw) - {"server", "databases"})
    if unknown:
        raise ConfigError(
            f"{where}: unknown section [{unknown[0]}] (expected [server] and [databases.<name>])"
        )
    server = _apply(SERVER_SETTINGS, raw.get("server", {}), f"{where} [server]")
    server.update(_apply(SERVER_SETTINGS, dict(overrides or {}), "options"))
    tables = raw.get("databases", {})
    if not isinstance(tables, dict) or not tables:
        raise ConfigError(f"{where}: no databases: add a [databases.<name>] table with a backend")
    databases: list[DatabaseConfig] = []
    seen_paths: dict[str, str] = {}
    for name, body in tables.items():
        section = f"{where} [databases.{name}]"
        if not isinstance(body, dict):
            raise ConfigError(f"{section}: expected a table")
        if not _NAME.match(name):
            raise ConfigError(f"{section}: database name {name!r} may use only letters, digits, _ and -")
        values = _apply(DATABASE_SETTINGS, body, section)
        db_path = values.get("path", f"/db/{name}")
        if db_path == "/":
            db_path = ""
        elif not _PATH.match(db_path) or db_path.startswith("/_kvgate"):
            raise ConfigError(
                f"{section}: path {db_path!r} must look like /db/{name} (and not start with /_kvgate)"
            )
        if db_path in seen_paths:
            raise ConfigError(f"{section}: path {db_path or '/'!r} is also used by {seen_paths[db_path]!r}")
        seen_paths[db_path] = name
        values["path"] = db_path
        databases.append(_database(name, values, section))
    config = _finish(server, databases)
    return replace(config, config_file=str(path), overrides=tuple(sorted((overrides or {}).items())))
