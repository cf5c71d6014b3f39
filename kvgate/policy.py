"""kvgate's policy over Redis commands: which may run over stateless REST requests, in
a pipeline, in a transaction, and with a read-only token, and why the others are refused.

The rules read a command's facts (name, flags, ACL categories, whether it has keys), so
they apply alike to the committed baseline table, to the commands a live Redis reports
(modules, newer versions) and to the commands kvgate's engine declares.  This is the
only place that decides them.
"""

from __future__ import annotations

from typing import Any

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


def policy_for(name: str, flags: set[str], categories: set[str], has_keys: bool) -> dict[str, Any]:
    """The ``policy`` record of a command table entry."""
    reason = refusal(name, flags, categories)
    return {
        "rest": reason is None,
        "pipeline": reason is None,
        "transaction": reason is None and "no_multi" not in flags,
        "readonly_token": readonly_ok(name, flags, categories, has_keys),
        "refusal": reason,
        "refused_option": REFUSED_OPTIONS.get(name),
        "alias_of": ALIASES.get(name),
    }
