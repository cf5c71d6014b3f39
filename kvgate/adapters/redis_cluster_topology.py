"""A Redis Cluster's topology as kvgate reads it: which primary serves each slot, and its
replicas; the URL of a cluster; the redirections a node answers (MOVED, ASK).

Read with ``CLUSTER SHARDS`` (Redis 7.0+: each shard's slot ranges and nodes with their
role and health) or, where the server has no such command, ``CLUSTER SLOTS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from kvgate import error_texts
from kvgate.adapters.redis_cluster_slots import SLOTS

#: host, port
Address = tuple[str, int]


def address_text(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True)
class ClusterURL:
    """``redis+cluster://[user:password@]host:port[,host:port...][?options]``."""

    seeds: tuple[Address, ...]
    tls: bool
    username: str | None
    password: str | None
    replica_reads: bool
    verify_tls: bool


def parse_cluster_url(url: str, options: dict[str, str | None]) -> ClusterURL:
    """The seeds and credentials of a cluster URL (``ValueError`` with one clear sentence);
    ``options`` are the URL's options as the registry read them."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("a cluster URL looks like redis+cluster://host:port[,host:port...]")
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    path = rest[len(netloc) :].split("?", 1)[0].split("#", 1)[0]
    if path not in ("", "/", "/0"):
        raise ValueError("a Redis Cluster has only database 0: give no /<db> (or /0)")
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
        if not colon:  # redis://password@host is not a form redis-py reads either
            raise ValueError("credentials are user:password@ or :password@")
    seeds: list[Address] = []
    for part in netloc.split(","):
        part = part.strip()
        if not part:
            continue
        if part.startswith("["):
            host, _, tail = part[1:].partition("]")
            port_text = tail.removeprefix(":")
        else:
            host, _, port_text = part.rpartition(":") if ":" in part else (part, "", "")
        try:
            port = int(port_text or 6379)
        except ValueError:
            raise ValueError(f"invalid port in {part!r}") from None
        if not host or not 0 < port < 65536:
            raise ValueError(f"invalid seed node {part!r}: expected host:port")
        seeds.append((host, port))
    if not seeds:
        raise ValueError("a cluster URL names at least one node: redis+cluster://host:port")
    return ClusterURL(
        seeds=tuple(seeds),
        tls=scheme.startswith("rediss"),
        username=username,
        password=password,
        replica_reads=(options.get("replica_reads") or "NO") == "YES",
        verify_tls=(options.get("ssl_cert_reqs") or "REQUIRED") == "REQUIRED",
    )


@dataclass
class Shard:
    primary: Address
    replicas: list[Address] = field(default_factory=list)
    ranges: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Topology:
    shards: list[Shard]

    def slot_table(self) -> list[Address | None]:
        table: list[Address | None] = [None] * SLOTS
        for shard in self.shards:
            for low, high in shard.ranges:
                for slot in range(max(0, low), min(high, SLOTS - 1) + 1):
                    table[slot] = shard.primary
        return table

    @property
    def primaries(self) -> list[Address]:
        return [s.primary for s in self.shards if s.ranges]

    def replicas_of(self, primary: Address) -> list[Address]:
        for shard in self.shards:
            if shard.primary == primary:
                return shard.replicas
        return []

    @property
    def covered(self) -> int:
        return sum(1 for a in self.slot_table() if a is not None)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> dict[str, Any]:
    return {_text(flat[i]): flat[i + 1] for i in range(0, len(flat) - 1, 2)}


def _host(endpoint: Any, ip: Any, asked: Address) -> str:
    """A node's host: its endpoint, else its IP; the node asked when it does not know its
    own address (``?`` or empty)."""
    for candidate in (endpoint, ip):
        text = _text(candidate) if candidate is not None else ""
        if text and text != "?":
            return text
    return asked[0]


def from_shards(reply: list[Any], asked: Address, tls: bool = False) -> Topology:
    """``CLUSTER SHARDS``: per shard, its slots and nodes.  The primary is the node with the
    role ``master`` that is online (after a failover the old one is ``failed``); replicas
    are counted only when online (a loading one cannot serve reads)."""
    shards: list[Shard] = []
    for raw in reply:
        shard = _pairs(raw)
        flat = [int(x) for x in shard.get("slots") or []]
        ranges = [(flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2)]
        primary: Address | None = None
        fallback: Address | None = None
        replicas: list[Address] = []
        for node_raw in shard.get("nodes") or []:
            node = _pairs(node_raw)
            port = node.get("tls-port") if tls and node.get("tls-port") else node.get("port")
            if port is None:
                continue
            address = (_host(node.get("endpoint"), node.get("ip"), asked), int(port))
            role, health = _text(node.get("role", "")), _text(node.get("health", ""))
            if role == "master":
                if health == "online":
                    primary = address
                elif health != "failed" or fallback is None:
                    fallback = address
            elif health == "online":
                replicas.append(address)
        primary = primary or fallback
        if primary is not None:
            shards.append(Shard(primary, replicas, ranges))
    return Topology(shards)


def from_slots(reply: list[Any], asked: Address) -> Topology:
    """``CLUSTER SLOTS``: per slot range, its primary then its replicas."""
    by_primary: dict[Address, Shard] = {}
    for entry in reply:
        low, high = int(entry[0]), int(entry[1])
        nodes = [((_host(n[0], None, asked)), int(n[1])) for n in entry[2:] if len(n) >= 2]
        if not nodes:
            continue
        shard = by_primary.setdefault(nodes[0], Shard(nodes[0]))
        shard.ranges.append((low, high))
        for replica in nodes[1:]:
            if replica not in shard.replicas:
                shard.replicas.append(replica)
    return Topology(list(by_primary.values()))


@dataclass(frozen=True)
class Redirect:
    ask: bool  # ASK (this request only) rather than MOVED (the slot's new home)
    slot: int
    address: Address


def redirect_of(message: str, answered_by: Address) -> Redirect | None:
    """``MOVED 3999 127.0.0.1:6381`` or ``ASK 3999 :6381`` (an empty host: the node's own)."""
    if not message.startswith((error_texts.MOVED, error_texts.ASK)):
        return None
    parts = message.split()
    if len(parts) != 3:
        return None
    host, _, port = parts[2].rpartition(":")
    try:
        return Redirect(
            message.startswith(error_texts.ASK),
            int(parts[1]),
            (host.strip("[]") or answered_by[0], int(port)),
        )
    except ValueError:
        return None
