"""A real Redis Cluster for tests: 3 primaries and 3 replicas of Debian's ``redis-server``
on free loopback ports (client and cluster-bus ports alike), built with ``redis-cli
--cluster create ... --cluster-replicas 1``.

It starts the first time a test asks for it (:func:`cluster_for`) and stops when pytest
ends (``config.add_cleanup``), so a run that needs no cluster never starts one.  A small
``cluster-node-timeout`` makes a failover take a couple of seconds.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import subprocess
import time
from typing import Any

import pytest

from tests.support.servers import RedisServer, free_port, wait_for_port

#: Milliseconds before a silent node is failed over (Redis's default is 15000).
NODE_TIMEOUT_MS = 1000


class ClusterNode(RedisServer):
    """One cluster member; its nodes.conf lives in its directory, so a restarted node
    rejoins the cluster with its identity."""

    def __init__(self, port: int | None = None) -> None:
        super().__init__(port)
        self.bus_port = free_port()

    def start(self) -> ClusterNode:
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--cluster-port",
            str(self.bus_port),
            "--bind",
            "127.0.0.1",
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            str(NODE_TIMEOUT_MS),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            self.dir,
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, proc=self.proc)
        return self

    def kill(self) -> None:
        """Die at once (SIGKILL): no goodbye to clients or to the cluster."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


class RedisCluster:
    def __init__(self, primaries: int = 3, replicas_per_primary: int = 1) -> None:
        self.nodes = [ClusterNode() for _ in range(primaries * (1 + replicas_per_primary))]
        self.replicas_per_primary = replicas_per_primary

    def start(self) -> RedisCluster:
        for node in self.nodes:
            node.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not installed (apt-get install redis-tools)")
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(n.address for n in self.nodes),
                "--cluster-replicas",
                str(self.replicas_per_primary),
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_healthy()
        return self

    def url(self, scheme: str = "redis+cluster", query: str = "") -> str:
        seeds = ",".join(n.address for n in self.live_primaries())
        return f"{scheme}://{seeds}" + (f"?{query}" if query else "")

    @property
    def url_all(self) -> str:
        return self.url()

    # -- looking at it
    def nodes_view(self, node: ClusterNode) -> list[dict[str, Any]]:
        """``CLUSTER NODES`` of one node, parsed."""
        text = node.command("CLUSTER", "NODES")
        assert isinstance(text, bytes)
        out = []
        for line in text.decode().splitlines():
            fields = line.split()
            address = fields[1].split("@")[0]
            out.append(
                {
                    "id": fields[0],
                    "address": address,
                    "flags": set(fields[2].split(",")),
                    "master": fields[3],
                    "slots": fields[8:],
                }
            )
        return out

    def node_at(self, address: str) -> ClusterNode:
        return next(n for n in self.nodes if n.address == address)

    def live_primaries(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.alive and self.role(n) == "master"]

    def role(self, node: ClusterNode) -> str:
        reply = node.command("ROLE")
        assert isinstance(reply, list)
        return reply[0].decode()

    def primary_of_slot(self, slot: int) -> ClusterNode:
        for node in self.live_primaries():
            for entry in self.nodes_view(node):
                if "myself" not in entry["flags"]:
                    continue
                for rng in entry["slots"]:
                    if rng.startswith("["):
                        continue
                    low, _, high = rng.partition("-")
                    if int(low) <= slot <= int(high or low):
                        return node
        raise LookupError(f"no live primary serves slot {slot}")

    def replica_of(self, primary: ClusterNode) -> ClusterNode:
        my_id = next(e["id"] for e in self.nodes_view(primary) if "myself" in e["flags"])
        for entry in self.nodes_view(primary):
            if entry["master"] == my_id and "fail" not in entry["flags"]:
                return self.node_at(entry["address"])
        raise LookupError(f"{primary.address} has no replica")

    def keyslot(self, key: str | bytes) -> int:
        reply = self.nodes[0].command("CLUSTER", "KEYSLOT", key) if self.nodes[0].alive else None
        if reply is None:
            reply = self.live_primaries()[0].command("CLUSTER", "KEYSLOT", key)
        assert isinstance(reply, int)
        return reply

    def healthy(self) -> bool:
        live = [n for n in self.nodes if n.alive]
        if len(live) != len(self.nodes):
            return False
        for node in live:
            info = node.command("CLUSTER", "INFO")
            assert isinstance(info, bytes)
            fields = dict(line.split(":", 1) for line in info.decode().split() if ":" in line)
            if fields.get("cluster_state") != "ok" or fields.get("cluster_slots_ok") != "16384":
                return False
            if int(fields.get("cluster_known_nodes", 0)) != len(self.nodes):
                return False
            view = self.nodes_view(node)
            if any(flag in e["flags"] for e in view for flag in ("fail", "fail?", "handshake", "noaddr")):
                return False
        # every replica in sync with its primary
        for node in live:
            if self.role(node) == "slave":
                info = node.command("INFO", "replication")
                assert isinstance(info, bytes)
                if b"master_link_status:up" not in info:
                    return False
        return True

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if time.monotonic() > deadline:
                raise TimeoutError("the redis cluster did not become healthy")
            time.sleep(0.1)

    def node_id(self, node: ClusterNode) -> str:
        reply = node.command("CLUSTER", "MYID")
        assert isinstance(reply, bytes)
        return reply.decode()

    # -- slot migrations, as redis-cli --cluster reshard does them
    def begin_migration(self, slot: int, source: ClusterNode, target: ClusterNode) -> None:
        """Slot ``slot`` migrating from ``source`` to ``target``: keys not yet moved stay
        on ``source``, which answers ASK for the others."""
        assert target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", self.node_id(source)) == b"OK"
        assert source.command("CLUSTER", "SETSLOT", slot, "MIGRATING", self.node_id(target)) == b"OK"

    def migrate_keys(self, source: ClusterNode, target: ClusterNode, keys: list[str]) -> None:
        reply = source.command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        assert reply in (b"OK", b"NOKEY"), reply

    def finish_migration(self, slot: int, target: ClusterNode) -> None:
        """The slot is ``target``'s, told to every primary (the others learn it from them)."""
        target_id = self.node_id(target)
        assert target.command("CLUSTER", "SETSLOT", slot, "NODE", target_id) == b"OK"
        for node in self.live_primaries():
            if node is not target:
                node.command("CLUSTER", "SETSLOT", slot, "NODE", target_id)

    def move_slot(self, slot: int, target: ClusterNode) -> ClusterNode:
        """Every key of ``slot`` to ``target``, then the slot itself; returns where it was."""
        source = self.primary_of_slot(slot)
        if source is target:
            return source
        self.begin_migration(slot, source, target)
        while True:
            keys = source.command("CLUSTER", "GETKEYSINSLOT", slot, 100)
            assert isinstance(keys, list)
            if not keys:
                break
            self.migrate_keys(source, target, [k.decode() for k in keys])
        self.finish_migration(slot, target)
        deadline = time.monotonic() + 10
        while any(self.primary_of_slot_seen_by(n, slot) != target.address for n in self.live_primaries()):
            assert time.monotonic() < deadline, "the cluster did not agree on the slot's new home"
            time.sleep(0.05)
        return source

    def primary_of_slot_seen_by(self, node: ClusterNode, slot: int) -> str | None:
        for entry in self.nodes_view(node):
            if "master" not in entry["flags"]:
                continue
            for rng in entry["slots"]:
                if rng.startswith("["):
                    continue
                low, _, high = rng.partition("-")
                if int(low) <= slot <= int(high or low):
                    return str(entry["address"])
        return None

    # -- using it
    def flush(self) -> None:
        """Every primary emptied, its script and function caches too; slots stable."""
        for node in self.live_primaries():
            node.commands([["FLUSHALL"], ["SCRIPT", "FLUSH"], ["FUNCTION", "FLUSH"]])

    def restore(self) -> None:
        """Back to six live nodes after a test killed some (they rejoin as replicas)."""
        for node in self.nodes:
            if not node.alive:
                node.start()
        self.wait_healthy(60)

    def close(self) -> None:
        for node in self.nodes:
            node.close()


_CLUSTER: RedisCluster | None = None


def cluster_for(config: pytest.Config) -> RedisCluster:
    """The session's cluster, started on first use and stopped when pytest ends."""
    global _CLUSTER
    if _CLUSTER is None:
        cluster = RedisCluster()
        try:
            cluster.start()
        except BaseException:
            cluster.close()
            raise
        _CLUSTER = cluster
        config.add_cleanup(_close)
        atexit.register(_close)
    return _CLUSTER


def _close() -> None:
    global _CLUSTER
    if _CLUSTER is not None:
        _CLUSTER.close()
        _CLUSTER = None


def standalone_cluster() -> RedisCluster:
    """A cluster for bench/ (stopped by the caller)."""
    return RedisCluster().start()


__all__ = ["NODE_TIMEOUT_MS", "ClusterNode", "RedisCluster", "cluster_for", "standalone_cluster"]
