"""Generate kvgate's command table from a real Redis server.

Usage:  python tools/gen_command_table.py redis://127.0.0.1:6380 > kvgate/command_table.json

Reads ``COMMAND`` (arity, flags, ACL categories, key specs) and ``COMMAND DOCS``
(summary, group, since) and adds kvgate's own policy for each command: whether a
stateless REST request may run it, in a pipeline or a transaction, and with a
read-only token.  The rules live in ``kvgate/policy.py`` and the reading of the reply in
``kvgate/commands.py``, which the Redis backend also uses on a live server at start.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any
from urllib.parse import urlparse

import hiredis

from kvgate.commands import entries_from_reply


def _encode(*args: str) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def query(sock: socket.socket, *args: str) -> Any:
    reader = hiredis.Reader()
    sock.sendall(_encode(*args))
    while True:
        reply = reader.gets()
        if reply is not False:
            if isinstance(reply, hiredis.ReplyError):
                raise SystemExit(f"redis: {reply}")
            return reply
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise SystemExit("redis closed the connection")
        reader.feed(chunk)


def main(url: str) -> None:
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379)) as sock:
        info = query(sock, "INFO", "server").decode()
        version = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)["redis_version"]
        commands = entries_from_reply(query(sock, "COMMAND"), query(sock, "COMMAND", "DOCS"))
    table = {
        "generated_from": f"redis {version}",
        "generator": "tools/gen_command_table.py",
        "commands": dict(sorted(commands.items())),
    }
    json.dump(table, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
