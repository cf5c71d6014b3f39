"""Generate kvgate's command table from a real Redis server.

Usage:  python tools/gen_command_table.py redis://127.0.0.1:6380 > kvgate/command_table.json

Reads ``COMMAND`` (arity, flags, ACL categories, key specs) and ``COMMAND DOCS``
(summary, group, since) and adds kvgate's own policy for each command: whether a
stateless REST request may run it, in a pipeline or a transaction, and with a
read-only token.  The policy rules live here, next to the facts they read, so the
server has exactly one source of command facts: the generated JSON.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any
from urllib.parse import urlparse

import hiredis

# --- kvgate policy --------------------------------------------------------------
# Why a command cannot run over REST, by rule.  The first matching rule wins.
REASON_TRANSACTION = "transactions run through the /multi-exec endpoint"
REASON_CONNECTION = "connection state does not outlive a REST request"
REASON_BLOCKING = "blocking commands would hold a shared backend connection"
REASON_SUBSCRIBE = "subscribe with POST /subscribe/<channel> and Accept: text/event-stream"
REASON_ADMIN = "server administration is not exposed over REST"
REASON_CLUSTER = "cluster topology commands are not exposed over REST"
REASON_CROSS_DB = "commands that reach other databases or servers are not exposed over REST"

TRANSACTION_COMMANDS = {"multi", "exec", "discard", "watch", "unwatch"}
SUBSCRIBE_COMMANDS = {
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
}
CONNECTION_ALLOWED = {"ping", "echo", "command"}
# Cluster-topology commands change connection state (or expose topology) too.
CONNECTION_EXTRA = {"readonly", "readwrite", "asking", "wait", "waitaof", "script|debug"}
CROSS_DB = {"swapdb", "move", "migrate"}
# Blocking only when given this argument; otherwise ordinary reads.
BLOCKING_WITH_ARG = {"xread", "xreadgroup"}
# Options that make an otherwise allowed command refused.  Redis reads options left to
# right from `start`, each option word followed by `arity` values, until `stop`; so
# `XREADGROUP GROUP BLOCK c ...` (a group named BLOCK) is not the BLOCK option.
REFUSED_OPTIONS = {
    "xread": {
        "keyword": "BLOCK",
        "start": 1,
        "stop": "STREAMS",
        "arity": {"COUNT": 1, "BLOCK": 1},
        "reason": REASON_BLOCKING,
    },
    "xreadgroup": {
        "keyword": "BLOCK",
        "start": 1,
        "stop": "STREAMS",
        "arity": {"GROUP": 2, "COUNT": 1, "BLOCK": 1, "NOACK": 0},
        "reason": REASON_BLOCKING,
    },
    "copy": {
        "keyword": "DB",
        "start": 3,
        "stop": None,
        "arity": {"DB": 1, "REPLACE": 0},
        "reason": REASON_CROSS_DB,
    },
}
# Commands answered as another: FLUSHALL empties this database only, as on a hosted
# database of its own, never the other databases of a shared Redis.
ALIASES = {"flushall": "flushdb"}
RO_DENY_COMMANDS = {"memory|purge"}

# Read-only tokens may run commands flagged readonly, plus keyless, harmless ones
# that do not write, script, publish or administer.
RO_DENY_CATEGORIES = {"@write", "@dangerous", "@admin", "@pubsub", "@scripting"}
RO_DENY_FLAGS = {"write", "may_replicate"}


def refusal(name: str, flags: set[str], categories: set[str]) -> str | None:
    root = name.split("|")[0]
    if root in TRANSACTION_COMMANDS:
        return REASON_TRANSACTION
    if root in SUBSCRIBE_COMMANDS:
        return REASON_SUBSCRIBE
    if root == "cluster":
        return REASON_CLUSTER
    if (
        name in CONNECTION_EXTRA
        or root in CONNECTION_EXTRA
        or ("@connection" in categories and root not in CONNECTION_ALLOWED)
    ):
        return REASON_CONNECTION
    if "blocking" in flags and root not in BLOCKING_WITH_ARG:
        return REASON_BLOCKING
    if root in CROSS_DB:
        return REASON_CROSS_DB
    if "@admin" in categories or root == "monitor":
        return REASON_ADMIN
    return None


def readonly_ok(name: str, flags: set[str], categories: set[str], has_keys: bool) -> bool:
    if name in RO_DENY_COMMANDS:
        return False
    if "readonly" in flags:
        return True
    if flags & RO_DENY_FLAGS or categories & RO_DENY_CATEGORIES:
        return False
    return not has_keys


# --- reading Redis --------------------------------------------------------------


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


def _pairs(flat: list[Any]) -> dict[str, Any]:
    return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}


def _spec(flat: list[Any] | None) -> dict[str, Any]:
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in _pairs(flat or []).items()}


def _key_spec(raw: list[Any]) -> dict[str, Any]:
    spec = _pairs(raw)
    bs, fk = _pairs(spec["begin_search"]), _pairs(spec["find_keys"])
    return {
        "flags": [f.decode() for f in spec.get("flags", [])],
        "begin_search": {"type": bs["type"].decode(), **_spec(bs["spec"])},
        "find_keys": {"type": fk["type"].decode(), **_spec(fk["spec"])},
    }


def command_entry(info: list[Any], docs: dict[str, Any]) -> dict[str, Any]:
    name = info[0].decode()
    flags = {f.decode() for f in info[2]}
    categories = {c.decode() for c in info[6]}
    key_specs = [_key_spec(ks) for ks in info[8]]
    doc = docs.get(name, {})
    reason = refusal(name, flags, categories)
    entry: dict[str, Any] = {
        "arity": info[1],
        "flags": sorted(flags),
        "categories": sorted(categories),
        "first_key": info[3],
        "last_key": info[4],
        "key_step": info[5],
        "key_specs": key_specs,
        "summary": doc.get("summary", ""),
        "group": doc.get("group", ""),
        "since": doc.get("since", ""),
        "policy": {
            "rest": reason is None,
            "pipeline": reason is None,
            "transaction": reason is None and "no_multi" not in flags,
            "readonly_token": readonly_ok(name, flags, categories, bool(key_specs) or info[3] > 0),
            "refusal": reason,
            "refused_option": REFUSED_OPTIONS.get(name),
            "alias_of": ALIASES.get(name),
        },
    }
    subcommands = info[9] if len(info) > 9 else []
    if subcommands:
        sub_docs = doc.get("subcommands", {})
        entry["subcommands"] = {
            sub[0].decode().split("|", 1)[1]: command_entry(sub, sub_docs) for sub in subcommands
        }
    return entry


def _docs_map(raw: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(0, len(raw), 2):
        fields = _pairs(raw[i + 1])
        doc = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in fields.items()}
        if isinstance(fields.get("subcommands"), list):
            doc["subcommands"] = _docs_map(fields["subcommands"])
        out[raw[i].decode()] = doc
    return out


def main(url: str) -> None:
    parsed = urlparse(url)
    with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379)) as sock:
        version = _pairs(
            [
                p
                for line in query(sock, "INFO", "server").decode().splitlines()
                if ":" in line
                for p in [x.encode() for x in line.split(":", 1)]
            ]
        )["redis_version"].decode()
        infos = query(sock, "COMMAND")
        docs = _docs_map(query(sock, "COMMAND", "DOCS"))
    commands = {info[0].decode(): command_entry(info, docs) for info in infos}
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
