"""Generated tokens that outlive a restart.

A database configured without a read-write token gets a random one.  It is kept in a file
(mode 0600) and read back on the next start, so clients keep working while the data
persists:

* a SQLite database keeps it beside its file: ``<file>-kvgate.token`` (next to the
  ``<file>-kvgate.lock`` kvgate already keeps there), so it lives and dies with the data;
* any other backend but an in-memory one keeps it in the state directory (``state_dir``,
  default ``$XDG_STATE_HOME/kvgate`` or ``~/.local/state/kvgate``):
  ``<database name>-<hash of the backend URL>.token``;
* fakeredis (in memory) gets a new one each run, as its data is new each run.

The file is created whole or not at all (written aside, then linked into place), so several
processes starting at once (workers reloading) agree on one token.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from kvgate.adapters import entry_for, redact_url
from kvgate.config import Config, ConfigError, DatabaseConfig

log = logging.getLogger("kvgate")


def state_dir(config: Config) -> Path:
    if config.state_dir:
        return Path(config.state_dir).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kvgate"


def token_file(db: DatabaseConfig, config: Config) -> Path | None:
    """Where ``db``'s generated token is kept; None for an in-memory backend."""
    entry = entry_for(db.backend)
    if entry.in_process:
        return None
    if entry.name == "sqlite":
        path = urlsplit(db.backend).path
        path = path[1:] if path.startswith("/") else path
        return Path(f"{path}-kvgate.token").absolute()
    digest = hashlib.sha256(redact_url(db.backend).encode()).hexdigest()[:12]
    return state_dir(config) / f"{db.name}-{digest}.token"


def _read(file: Path) -> str | None:
    try:
        token = file.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the saved token {file}: {exc.strerror or exc}") from None
    mode = stat.S_IMODE(file.stat().st_mode)
    if mode & 0o077:
        log.warning("the token file %s may be read by other users (mode %o): chmod 600 it", file, mode)
    return token or None


def _create(file: Path, token: str) -> str:
    """Write ``token`` to ``file`` unless another process did first; the token kept."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        aside = file.with_name(f".{file.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(token + "\n")
            try:
                os.link(aside, file)  # fails if it exists: never replaces another's token
            except FileExistsError:
                return _read(file) or token
        finally:
            aside.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot save the generated token in {file}: {exc.strerror or exc}") from None
    return token


def with_persistent_tokens(config: Config) -> tuple[Config, list[str]]:
    """``config`` with a token for every database that has none (read from its file, or
    generated and saved), and one line per such database to tell the operator.  A newly
    generated token is shown in its line (it is the only time it is shown); a token read
    back is not."""
    databases: list[DatabaseConfig] = []
    lines: list[str] = []
    for db in config.databases:
        if db.tokens:
            databases.append(db)
            continue
        where = f"database {db.name!r} ({db.path or '/'})"
        file = token_file(db, config)
        token = _read(file) if file is not None else None
        if token is not None:
            lines.append(f"no token configured for {where}; using the one saved in {file}")
        else:
            token = secrets.token_urlsafe(32)
            if file is None:
                lines.append(f"no token configured for {where}; generated one for this run: {token}")
            else:
                saved = _create(file, token)
                if saved != token:  # another process made it first
                    token = saved
                    lines.append(f"no token configured for {where}; using the one saved in {file}")
                else:
                    lines.append(
                        f"no token configured for {where}; generated one for this run: {token} "
                        f"(saved in {file}, mode 0600: later runs reuse it)"
                    )
        databases.append(replace(db, tokens=(token,), generated_token=True))
    return replace(config, databases=tuple(databases)), lines
