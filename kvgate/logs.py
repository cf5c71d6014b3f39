"""Logging: text or JSON lines on stderr, and the opt-in access log.

``log_format = "text"``: ``<time> <pid> <LEVEL> <logger>: <message>``.
``log_format = "json"``: one object per line, ``{"time", "level", "pid", "logger",
"message"}`` plus the event's own fields (an access line's ``method``, ``path``...).

The access log (``access_log = true``, logger ``kvgate.access``, INFO whatever
``log_level`` says) has one line per request: method, path (the query string is left out:
it may hold ``?_token=``), status, duration, database, command name(s).  Tokens never
appear in any line: they are neither in paths nor in messages.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

ACCESS = logging.getLogger("kvgate.access")
#: The attributes every LogRecord has; anything else came as ``extra=`` (an event field).
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
#: Longest path written to the access log (a path-form value can be megabytes).
MAX_PATH = 256


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(level: str, fmt: str = "text", access_log: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    set_access_log(access_log)


def set_access_log(on: bool) -> None:
    ACCESS.setLevel(logging.INFO if on else logging.CRITICAL + 1)
    ACCESS.disabled = not on


def access(
    method: str, path: str, status: int, seconds: float, database: str, command: str, remote: str | None
) -> None:
    if len(path) > MAX_PATH:
        path = path[:MAX_PATH] + "..."
    ms = round(seconds * 1000, 2)
    ACCESS.info(
        "%s %s %d %.2fms database=%s command=%s",
        method,
        path,
        status,
        ms,
        database,
        command,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": ms,
            "database": database,
            "command": command,
            "remote": remote,
        },
    )


def event(message: str, *args: Any, **fields: Any) -> None:
    """A start-up line: a message, and its facts as fields in JSON."""
    logging.getLogger("kvgate").info(message, *args, extra=fields)
