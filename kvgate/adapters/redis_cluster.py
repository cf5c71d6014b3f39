"""Redis Cluster backend: the single-Redis backend's multiplexed connections, a few per
node, with each command routed to the node that serves its keys' hash slot.

- **Topology.** Read at start from the URL's seed nodes (``CLUSTER SHARDS``, else
  ``CLUSTER SLOTS``), then again on a schedule (every :data:`REFRESH_EVERY` seconds,
  every :data:`REFRESH_DEGRADED` while a primary is unreachable or a slot unserved), after
  every ``MOVED`` and ``CLUSTERDOWN``, and when a connection is lost.  Each primary (and,
  with ``replica_reads=yes``, each replica) gets a :class:`~kvgate.adapters.redis_pool.NodePool`
  of ``pool_size`` connections; a node that leaves the topology has its pool closed once
  its requests had time to finish.
- **Routing** (:mod:`kvgate.adapters.redis_cluster_slots`): a command goes to the primary
  of its keys' slot, found with the key specs of the server's own ``COMMAND``.  Keys in
  several slots answer Redis's ``CROSSSLOT`` error; a transaction's keys must share one
  slot likewise.  A pipeline is split by node, each node's part sent as one batch (in the
  caller's order), all nodes at once, the replies put back in the caller's order.  Keyless
  commands go to any primary (scripts without keys to the primary of slot 0, so that EVAL
  then EVALSHA meet the same script cache), except those that concern the whole dataset,
  fanned out over every primary and their replies merged (:data:`FAN_OUT`), and SCAN,
  whose cursor says which node it is at (:func:`scan_cursor`).
- **Redirections.**  ``MOVED``: the slot's new primary is noted, the command sent there,
  the topology read again.  ``ASK`` (a slot being migrated): the command is sent to the
  importing node after ``ASKING``, once.  ``TRYAGAIN`` (a multi-key command during a
  migration): sent again shortly.  A command that meets none of these ran exactly once: a
  redirection means the node did not run it.  ``CLUSTERDOWN`` (a failover under way) and
  an unreachable node answer 503, never another node's reply.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
from binascii import crc_hqx
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio

from kvgate import error_texts
from kvgate.adapters import resp
from kvgate.adapters.base import Backend, BackendSettings, Health, Subscription
from kvgate.adapters.json_commands import json_command_entries
from kvgate.adapters.redis_cluster_slots import SLOTS, CrossSlot, command_slot, common_slot, key_slot
from kvgate.adapters.redis_cluster_topology import (
    Address,
    ClusterURL,
    Topology,
    address_text,
    from_shards,
    from_slots,
    parse_cluster_url,
    redirect_of,
)
from kvgate.adapters.redis_mux import CONNECT_TIMEOUT, _Connection, open_connection, tls_context
from kvgate.adapters.redis_pool import NodePool, describe
from kvgate.adapters.redis_pubsub import RedisSubscription
from kvgate.commands import Command, CommandTable, default_table, entries_from_reply
from kvgate.errors import BackendError, BackendOverloaded, BackendUnavailable, ReplyError
from kvgate.protocol import Args, Reply

log = logging.getLogger("kvgate.redis")

#: Seconds between two readings of the topology when all is well, and while it is not.
REFRESH_EVERY = 10.0
REFRESH_DEGRADED = 0.5
#: Redirections (MOVED, ASK, TRYAGAIN) one command may follow before the request gives up.
MAX_REDIRECTS = 5
#: Seconds a node that left the topology keeps its connections for requests under way.
RETIRE_AFTER = 2.0

ASKING = resp.encode([b"ASKING"])
#: Commands with keys that are planned in full (see ``_plan``), never by the single-key path.
_PLANNED = frozenset({"scan", "eval", "eval_ro"})
#: Scripts this process remembers having loaded on every primary (see ``_plan_eval``).
SCRIPTS_REMEMBERED = 10_000


#: The replies that mean a node did not run a command and another should (or, for
#: CLUSTERDOWN, that none can now).
REDIRECTIONS = (error_texts.MOVED, error_texts.ASK, "TRYAGAIN", "CLUSTERDOWN")


def _first_error(replies: list[Reply]) -> ReplyError | None:
    for reply in replies:
        if isinstance(reply, ReplyError):
            return reply
    return None


def _same(replies: list[Reply]) -> Reply:
    """Every primary did the same (FLUSHDB, SCRIPT LOAD): its reply, or the first error."""
    return _first_error(replies) or replies[0]


def _sum(replies: list[Reply]) -> Reply:
    return _first_error(replies) or sum(r for r in replies if isinstance(r, int))


def _concat(replies: list[Reply]) -> Reply:
    error = _first_error(replies)
    if error is not None:
        return error
    out: list[Reply] = []
    for reply in replies:
        if isinstance(reply, list):
            out.extend(reply)
    return out


def _union(replies: list[Reply]) -> Reply:
    merged = _concat(replies)
    return list(dict.fromkeys(merged)) if isinstance(merged, list) else merged


def _all_exist(replies: list[Reply]) -> Reply:
    """SCRIPT EXISTS: a script is there when every primary has it."""
    error = _first_error(replies)
    if error is not None:
        return error
    lists = [r for r in replies if isinstance(r, list)]
    return [int(all(flags)) for flags in zip(*lists, strict=True)]


def _sum_pairs(replies: list[Reply]) -> Reply:
    """PUBSUB NUMSUB: ``channel, count`` pairs in the order asked, counts summed."""
    error = _first_error(replies)
    if error is not None:
        return error
    lists = [r for r in replies if isinstance(r, list)]
    out = list(lists[0])
    for other in lists[1:]:
        for i in range(1, len(out), 2):
            out[i] = int(out[i]) + int(other[i])
    return out


def _first(replies: list[Reply]) -> Reply:
    return replies[0]


def _random_key(replies: list[Reply]) -> Reply:
    error = _first_error(replies)
    if error is not None:
        return error
    keys = [r for r in replies if r is not None]
    return random.choice(keys) if keys else None


def _killed(replies: list[Reply]) -> Reply:
    """SCRIPT KILL, FUNCTION KILL: OK where one was killed, else the NOTBUSY error."""
    for reply in replies:
        if not isinstance(reply, ReplyError):
            return reply
    return replies[0]


#: Commands that concern every node's data, sent to every primary; how their replies merge.
FAN_OUT: dict[str, Callable[[list[Reply]], Reply]] = {
    "dbsize": _sum,
    "keys": _concat,
    "flushdb": _same,
    "flushall": _same,
    "randomkey": _random_key,
    "script|load": _same,
    "script|flush": _same,
    "script|exists": _all_exist,
    "script|kill": _killed,
    "function|load": _same,
    "function|delete": _same,
    "function|flush": _same,
    "function|restore": _same,
    "function|kill": _killed,
    "pubsub|channels": _union,
    "pubsub|shardchannels": _union,
    "pubsub|numsub": _sum_pairs,
    "pubsub|shardnumsub": _sum_pairs,
    "pubsub|numpat": _sum,
}


@dataclass(slots=True)
class _Part:
    """One command (or one node's share of a fanned-out one) on its way to a node."""

    args: Args
    address: Address
    asking: bool = False
    reply: Reply = None
    redirects: int = 0


@dataclass(slots=True)
class _Plan:
    """How one of the caller's commands runs: its parts and how their replies merge."""

    parts: list[_Part]
    merge: Callable[[list[Reply]], Reply] | None = None
    error: ReplyError | None = None


def scan_cursor(node_cursor: int, first_slot: int) -> int:
    """kvgate's SCAN cursor: the node's own cursor times 16384, plus the lowest slot of
    the node being scanned (which names the node whatever its address, and survives a
    failover: the promoted replica serves the same slots).  0 starts at the node of slot
    0; a node's end moves to the node with the next lowest slot; the last one's end is 0."""
    return node_cursor * SLOTS + first_slot


class RedisClusterBackend(Backend):
    kind = "rediscluster"

    def __init__(
        self, url: str, settings: BackendSettings | None = None, *, connect_timeout: float = CONNECT_TIMEOUT
    ) -> None:
        super().__init__(url, settings)
        self.connect_timeout = connect_timeout
        self.config: ClusterURL = self.parse_url(url)
        self._tls = tls_context(self.config.tls, None if self.config.verify_tls else "none")
        self._handshake: list[Args] = []
        if self.config.password is not None:
            auth: Args = [b"AUTH"]
            if self.config.username:
                auth.append(self.config.username.encode())
            self._handshake.append([*auth, self.config.password.encode()])
        if self.config.replica_reads:
            self._handshake.append([b"READONLY"])  # harmless on a primary
        self._target = "cluster " + ",".join(address_text(a) for a in self.config.seeds)
        self._pools: dict[Address, NodePool] = {}
        self._slots: list[Address | None] = [None] * SLOTS
        self._primaries: list[Address] = []  # by lowest slot served
        self._lowest: dict[Address, int] = {}  # each primary's lowest slot
        self._replicas: dict[Address, list[Address]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight = 0
        self._closing = False
        self._last_error = "not connected yet"
        self._commands = self._served(default_table())
        self._script_names = self._scripts_of(self._commands)
        self._home_commands = self._script_names | {"publish"}
        self._answered = False
        self._refresh_wanted: asyncio.Event | None = None
        self._refreshing: asyncio.Lock | None = None
        self._pubsub_clients: dict[Address, redis.asyncio.Redis] = {}
        self._everywhere: OrderedDict[bytes, None] = OrderedDict()
        self._single_key: dict[bytes, int] = {}
        self.refreshes = 0  # topology readings, for tests and metrics

    @classmethod
    def parse_url(cls, url: str) -> ClusterURL:
        from kvgate.adapters import entry_named  # the registry imports this module lazily

        options = entry_named(cls.kind).read_options(urlsplit(url).query)
        return parse_cluster_url(url, options)

    @property
    def commands(self) -> CommandTable:
        return self._commands

    @staticmethod
    def _served(table: CommandTable) -> CommandTable:
        """As the Redis backend: without a JSON module, JSON.* refused with a word on
        where documents are (rather than an unknown command)."""
        if table.get("json.get") is not None:
            return table
        json_commands = json_command_entries()
        return table.merged(json_commands, "JSON.* (no JSON module)").refusing(
            json_commands, error_texts.JSON_UNAVAILABLE, "no JSON module"
        )

    @staticmethod
    def _scripts_of(table: CommandTable) -> frozenset[str]:
        return frozenset(c.name for c in table if "@scripting" in c.categories)

    # -- lifecycle
    async def start(self) -> None:
        self._refresh_wanted = asyncio.Event()
        self._refreshing = asyncio.Lock()
        if not await self._refresh():
            log.warning(
                "redis cluster at %s is not reachable yet (%s); answering 503 until it is",
                self._target,
                self._last_error,
            )
        await asyncio.gather(*(p.wait_first(self.connect_timeout) for p in self._pools.values()))
        self._tasks.append(asyncio.create_task(self._keep_refreshing()))
        self._tasks.append(asyncio.create_task(self._watch_timeouts()))
        await self._learn_commands()

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(p.close() for p in self._pools.values()))
        self._pools.clear()
        for client in self._pubsub_clients.values():
            await client.aclose()
        self._pubsub_clients.clear()

    async def _open(self, address: Address) -> _Connection:
        conn, replies = await open_connection(address, self._tls, self._handshake, self.connect_timeout)
        for reply in replies:
            if isinstance(reply, ReplyError):
                conn.abort()
                raise reply
        return conn

    def _pool(self, address: Address) -> NodePool:
        pool = self._pools.get(address)
        if pool is None:
            pool = NodePool(
                lambda: self._open(address),
                self.pool_size,
                f"{address_text(address)} ({self._target})",
                on_lost=self.want_refresh,
            )
            self._pools[address] = pool
            pool.start()
        return pool

    # -- topology
    def want_refresh(self) -> None:
        if self._refresh_wanted is not None:
            self._refresh_wanted.set()

    @property
    def degraded(self) -> bool:
        if not self._primaries or any(a is None for a in self._slots):
            return True
        return any(self._pools[a].connected == 0 for a in self._primaries if a in self._pools)

    async def _keep_refreshing(self) -> None:
        assert self._refresh_wanted is not None
        while not self._closing:
            wait = REFRESH_DEGRADED if self.degraded else REFRESH_EVERY
            # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancellation
            # that comes as the event is set, and close() would wait for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._refresh_wanted.wait()
            self._refresh_wanted.clear()
            try:
                await self._refresh()
            except Exception:  # never let the refresher die
                log.exception("reading the redis cluster's topology failed")
            await asyncio.sleep(0.1)  # at most ten readings a second, however asked

    async def _ask_topology(self, address: Address) -> Topology | None:
        """``CLUSTER SHARDS`` (else ``CLUSTER SLOTS``) of one node, on a connection of its
        pool or, for a node kvgate holds none to, on a connection of its own."""
        pool = self._pools.get(address)
        conn = pool.pick() if pool is not None else None
        own = conn is None
        try:
            if conn is None:
                conn = await self._open(address)
            (reply,) = await asyncio.wait_for(
                conn.submit(resp.encode([b"CLUSTER", b"SHARDS"]), 1), self.connect_timeout
            )
            if isinstance(reply, ReplyError):
                (reply,) = await asyncio.wait_for(
                    conn.submit(resp.encode([b"CLUSTER", b"SLOTS"]), 1), self.connect_timeout
                )
                if not isinstance(reply, list):
                    self._last_error = f"{address_text(address)} answered CLUSTER SLOTS with {reply}"
                    return None
                return from_slots(reply, address)
            if not isinstance(reply, list):
                return None
            return from_shards(reply, address, tls=self.config.tls)
        except (TimeoutError, OSError, BackendError, ReplyError) as exc:
            self._last_error = f"{address_text(address)}: {describe(exc)}"
            return None
        finally:
            if own and conn is not None:
                conn.abort()

    async def _refresh(self) -> bool:
        """Read the topology from the first node that answers with every slot served
        (else the best answer), and apply it; False when no node answered."""
        assert self._refreshing is not None
        async with self._refreshing:
            self.refreshes += 1
            known = [a for a in self._primaries if a in self._pools and self._pools[a].connected]
            random.shuffle(known)
            others = [a for a in (*self.config.seeds, *self._pools) if a not in known]
            best: Topology | None = None
            for address in dict.fromkeys([*known, *others]):
                topology = await self._ask_topology(address)
                if topology is None:
                    continue
                if best is None or topology.covered > best.covered:
                    best = topology
                if best.covered == SLOTS:
                    break
            if best is None or not best.primaries:
                return False
            self._apply(best)
            return True

    def _apply(self, topology: Topology) -> None:
        slots = topology.slot_table()
        primaries = topology.primaries
        lowest = {a: slots.index(a) for a in primaries if a in slots}
        primaries.sort(key=lambda a: lowest.get(a, SLOTS))
        replicas = {p: topology.replicas_of(p) for p in primaries} if self.config.replica_reads else {}
        wanted = set(primaries) | {r for rs in replicas.values() for r in rs}
        for address in wanted:
            self._pool(address)
        if primaries != self._primaries:
            self._everywhere.clear()  # a new primary has none of them
            log.info(
                "redis cluster at %s: primaries %s",
                self._target,
                ", ".join(f"{address_text(a)} (from slot {lowest.get(a)})" for a in primaries),
            )
        self._slots = slots
        self._primaries = primaries
        self._lowest = lowest
        self._replicas = replicas
        retired = [self._pools.pop(a) for a in list(self._pools) if a not in wanted]
        if retired and not self._closing:
            self._tasks.append(asyncio.create_task(self._retire(retired)))

    async def _retire(self, pools: list[NodePool]) -> None:
        await asyncio.sleep(RETIRE_AFTER)
        await asyncio.gather(*(p.close() for p in pools))

    async def _learn_commands(self) -> None:
        """Serve the cluster's own commands (a primary's ``COMMAND``), as the Redis backend
        does; the baseline until one answers."""
        if not self._primaries:
            return
        try:
            infos, docs = await self._send_raw(
                self._primaries[0], resp.encode_many([[b"COMMAND"], [b"COMMAND", b"DOCS"]]), 2
            )
            if not isinstance(infos, list):
                raise ValueError(f"COMMAND answered {infos!r}")
            entries = entries_from_reply(infos, docs)
        except (BackendError, TimeoutError, ValueError, KeyError, IndexError, TypeError) as exc:
            log.warning("cannot read the commands of %s (%s); serving the baseline", self._target, exc)
            return
        self._commands = self._served(
            default_table().merged(entries, f"{len(entries)} from the {self._target}")
        )
        self._single_key = {}
        self._script_names = self._scripts_of(self._commands)
        self._home_commands = self._script_names | {"publish"}
        self._answered = True

    async def _send_raw(self, address: Address, payload: bytes, expected: int) -> list[Reply]:
        conn = self._pool(address).pick()
        if conn is None:
            raise BackendUnavailable(error_texts.backend_unavailable(self._why(address)))
        return await asyncio.wait_for(conn.submit(payload, expected), self.connect_timeout)

    async def _watch_timeouts(self) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.settings.timeout
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            now = loop.time()
            for pool in list(self._pools.values()):
                pool.expire(now, timeout)

    def _why(self, address: Address) -> str:
        pool = self._pools.get(address)
        return f"cluster node {address_text(address)}: {pool.last_error if pool else 'not known'}"

    # -- routing
    def _node_of(self, slot: int | None) -> Address:
        if slot is None:
            return self._any()
        address = self._slots[slot]
        if address is None:
            self.want_refresh()
            raise BackendUnavailable(error_texts.backend_unavailable(f"no cluster node serves slot {slot}"))
        return address

    def _any(self) -> Address:
        if not self._primaries:
            raise BackendUnavailable(error_texts.backend_unavailable(self._last_error))
        return random.choice(self._primaries)

    def _home(self) -> Address:
        """Where keyless scripts run (one script cache for them), subscriptions listen and
        PUBLISH goes: the primary of slot 0.  Redis Cluster sends every PUBLISH to every
        node, but its reply counts the subscribers of the node that took it: there, it
        counts this kvgate's."""
        address = self._slots[0]
        return address if address is not None else self._any()

    def _reader(self, primary: Address) -> Address:
        """A replica of ``primary`` with an open connection, for a read (replica_reads)."""
        replicas = self._replicas.get(primary)
        if replicas:
            ready = [r for r in replicas if r in self._pools and self._pools[r].connected]
            if ready:
                return random.choice(ready)
        return primary

    def _lookup(self, args: Args) -> Command | None:
        try:
            return self._commands.lookup(args)
        except ReplyError:
            return None

    def _key_position(self, name: bytes) -> int:
        """Where the one key of a plain single-key command is (GET, SET, INCR...), else 0:
        such commands skip the general planning (cached per spelling of the name)."""
        position = self._single_key.get(name)
        if position is None:
            command = self._commands.get(name.decode("utf-8", "replace").lower())
            position = 0
            if (
                command is not None
                and not command.subcommands
                and command.name not in FAN_OUT
                and command.name not in _PLANNED
                and len(command.key_specs) == 1
            ):
                spec = command.key_specs[0]
                if spec.begin == "index" and spec.find == "range" and spec.lastkey == 0 and spec.index > 0:
                    position = spec.index
            if len(self._single_key) >= 4096:  # names in every spelling of their case: bounded
                self._single_key.clear()
            self._single_key[name] = position
        return position

    def _simple_address(self, args: Args) -> Address | None:
        """The node of a plain single-key command (None: plan it in full)."""
        position = self._single_key.get(args[0])
        if position is None:
            position = self._key_position(args[0])
        if not position or position >= len(args) or self._replicas:
            return None
        key = args[position]
        return self._slots[key_slot(key) if b"{" in key else crc_hqx(key, 0) & (SLOTS - 1)]

    def _plan(self, args: Args) -> _Plan:
        address = self._simple_address(args)
        if address is not None:
            return _Plan([_Part(args, address)])
        command = self._lookup(args)
        if command is None:
            return _Plan([_Part(args, self._any())])
        name = command.name
        merge = FAN_OUT.get(name)
        if merge is not None:
            if name in ("script|flush", "function|flush"):
                self._everywhere.clear()
            if not self._primaries:
                raise BackendUnavailable(error_texts.backend_unavailable(self._last_error))
            return _Plan([_Part(list(args), a) for a in self._primaries], merge)
        if name == "scan":
            return self._plan_scan(args)
        try:
            slot = command_slot(command, args)
        except CrossSlot:
            return _Plan([], error=ReplyError(error_texts.CROSSSLOT))
        if slot is None:
            address = self._home() if name in self._home_commands else self._any()
        else:
            address = self._node_of(slot)
            if self._replicas and "readonly" in command.flags:
                address = self._reader(address)
        if name in ("eval", "eval_ro") and len(self._primaries) > 1:
            return self._plan_eval(args, address)
        return _Plan([_Part(args, address)])

    def _plan_eval(self, args: Args, address: Address) -> _Plan:
        """EVAL caches its script on the node that runs it; the first EVAL of a script in
        this process also loads it on the other primaries (at the same time), so that
        EVALSHA and SCRIPT EXISTS then find it whatever the keys, as on one Redis."""
        sha = hashlib.sha1(args[1]).digest()
        if sha in self._everywhere:
            self._everywhere.move_to_end(sha)
            return _Plan([_Part(args, address)])
        self._everywhere[sha] = None
        while len(self._everywhere) > SCRIPTS_REMEMBERED:
            self._everywhere.popitem(last=False)
        load: Args = [b"SCRIPT", b"LOAD", args[1]]
        others = [_Part(load, a) for a in self._primaries if a != address]
        return _Plan([_Part(args, address), *others], _first)

    def _plan_scan(self, args: Args) -> _Plan:
        raw = args[1]
        if not raw.isdigit() or int(raw) >= 1 << 64:
            return _Plan([], error=ReplyError(error_texts.INVALID_CURSOR))
        cursor = int(raw)
        node_cursor, first_slot = divmod(cursor, SLOTS)
        address = self._node_of(first_slot)
        lowest = self._lowest.get(address, first_slot)
        following = [a for a in self._primaries if self._lowest.get(a, SLOTS) > lowest]

        def merge(replies: list[Reply]) -> Reply:
            reply = replies[0]
            if not isinstance(reply, list) or len(reply) != 2:
                return reply
            next_cursor = int(reply[0])
            if next_cursor:
                out = scan_cursor(next_cursor, lowest)
            elif following:
                out = scan_cursor(0, self._lowest[following[0]])
            else:
                out = 0
            return [str(out).encode(), reply[1]]

        return _Plan([_Part([args[0], str(node_cursor).encode(), *args[2:]], address)], merge)

    # -- running
    def _admit(self) -> None:
        # Admitted while fewer than max_inflight commands are in flight, whatever its size
        # (as the Redis backend: a batch at the batch limit is never refused for its size).
        if self._inflight >= self.settings.max_inflight:
            raise BackendOverloaded(error_texts.BACKEND_OVERLOADED)

    async def _send(self, address: Address, parts: list[_Part], limit: int) -> None:
        """One node's share of a request, as one batch; each part gets its reply."""
        pool = self._pools.get(address) or self._pool(address)
        conn = pool.pick()
        if conn is None and pool.first is not None and not pool.first.done():
            await pool.wait_first(self.connect_timeout)  # a node just learned of (MOVED)
            conn = pool.pick()
        if conn is None:
            self.want_refresh()
            raise BackendUnavailable(error_texts.backend_unavailable(self._why(address)))
        if len(parts) == 1 and not parts[0].asking:
            (parts[0].reply,) = await conn.submit(resp.encode(parts[0].args), 1, limit)
            return
        chunks: list[bytes] = []
        expected = 0
        for part in parts:
            if part.asking:
                chunks.append(ASKING)
                expected += 1
            chunks.append(resp.encode(part.args))
            expected += 1
        replies = await conn.submit(b"".join(chunks), expected, limit)
        at = 0
        for part in parts:
            at += part.asking
            part.reply = replies[at]
            at += 1

    def _follow(self, part: _Part) -> bool:
        """Whether a part's reply is a redirection to follow (the part is then aimed at
        its new node); raises 503 for CLUSTERDOWN and past :data:`MAX_REDIRECTS`."""
        reply = part.reply
        if not isinstance(reply, ReplyError):
            return False
        message = reply.message
        head = message[:6]
        if head.startswith((error_texts.MOVED, error_texts.ASK)):
            redirect = redirect_of(message, part.address)
            if redirect is None:
                return False
            if not redirect.ask:
                self._slots[redirect.slot] = redirect.address
                self.want_refresh()
            part.address = redirect.address
            part.asking = redirect.ask
        elif head.startswith("TRYAGA"):
            pass  # the same node again (after ASKING again when it was asked so), shortly
        elif head.startswith("CLUSTE"):  # CLUSTERDOWN: a failover under way
            self.want_refresh()
            raise BackendUnavailable(error_texts.backend_unavailable(f"the cluster answered: {message}"))
        else:
            return False
        part.redirects += 1
        if part.redirects > MAX_REDIRECTS:
            raise BackendUnavailable(error_texts.backend_unavailable(f"still redirected after: {message}"))
        return True

    async def _run_parts(self, parts: list[_Part], limit: int) -> int:
        """Send every part, following redirections; return how many batches were sent (one:
        the connection counted the replies against ``limit`` exactly)."""
        todo = parts
        batches = 0
        while todo:
            by_node: dict[Address, list[_Part]] = {}
            for part in todo:
                by_node.setdefault(part.address, []).append(part)
            batches += len(by_node)
            if len(by_node) == 1:
                ((address, group),) = by_node.items()
                await self._send(address, group, limit)
            else:
                await asyncio.gather(*(self._send(a, g, limit) for a, g in by_node.items()))
            todo = [part for part in todo if isinstance(part.reply, ReplyError) and self._follow(part)]
            if todo and any(p.reply is not None and str(p.reply).startswith("TRYAGAIN") for p in todo):
                await asyncio.sleep(0.05)
        return batches

    async def execute(self, commands: list[Args]) -> list[Reply]:
        weight = len(commands)
        self._admit()
        self._inflight += weight
        limit = self.settings.max_reply_bytes
        try:
            if len(commands) == 1:
                args = commands[0]
                address = self._simple_address(args)
                conn = None
                if address is not None:
                    pool = self._pools.get(address)
                    conn = pool.pick() if pool is not None else None
                if conn is not None:  # the common case: one key, its node connected
                    (reply,) = await conn.submit(resp.encode(args), 1, limit)
                    if isinstance(reply, ReplyError) and reply.message.startswith(REDIRECTIONS):
                        part = _Part(args, address, reply=reply)  # type: ignore[arg-type]
                        if self._follow(part):
                            await self._run_parts([part], limit)
                        reply = part.reply
                    return [reply]
                plan = self._plan(args)
                if plan.error is not None:
                    return [plan.error]
                batches = await self._run_parts(plan.parts, limit)
                replies = [p.reply for p in plan.parts]
                reply = plan.merge(replies) if plan.merge is not None else replies[0]
                return [reply] if batches == 1 else self.reply_budget().admit_all([reply])
            fast = await self._execute_simple(commands, limit)
            if fast is not None:
                return fast
            plans = [self._plan(args) for args in commands]
            batches = await self._run_parts([part for plan in plans for part in plan.parts], limit)
            out: list[Reply] = []
            for plan in plans:
                if plan.error is not None:
                    out.append(plan.error)
                    continue
                replies = [p.reply for p in plan.parts]
                out.append(plan.merge(replies) if plan.merge is not None else replies[0])
            # One batch: its connection counted the replies; several: count them together.
            return out if batches == 1 else self.reply_budget().admit_all(out)
        finally:
            self._inflight -= weight

    async def _execute_simple(self, commands: list[Args], limit: int) -> list[Reply] | None:
        """A pipeline of plain single-key commands whose nodes are connected (the common
        case): one batch per node, sent at once, replies put back in order, redirections
        then followed.  None when a command needs the general path."""
        groups: dict[Address, list[int]] = {}
        for i, args in enumerate(commands):
            address = self._simple_address(args)
            if address is None:
                return None
            group = groups.get(address)
            if group is None:
                groups[address] = [i]
            else:
                group.append(i)
        conns = []
        for address in groups:
            pool = self._pools.get(address)
            conn = pool.pick() if pool is not None else None
            if conn is None:
                return None
            conns.append(conn)
        sends = [
            conn.submit_pending(resp.encode_many([commands[i] for i in indexes]), len(indexes), limit)
            for conn, indexes in zip(conns, groups.values(), strict=True)
        ]
        if len(sends) == 1:
            batches = [await sends[0].future]
        else:
            batches = await asyncio.gather(*(send.future for send in sends))
        out: list[Reply] = [None] * len(commands)
        redirected: list[tuple[int, _Part]] = []
        for (address, indexes), replies in zip(groups.items(), batches, strict=True):
            for i, reply in zip(indexes, replies, strict=True):
                out[i] = reply
                if isinstance(reply, ReplyError) and reply.message.startswith(REDIRECTIONS):
                    redirected.append((i, _Part(commands[i], address, reply=reply)))
        if redirected:
            todo = [part for _, part in redirected if self._follow(part)]
            if todo:
                await self._run_parts(todo, limit)
            for i, part in redirected:
                out[i] = part.reply
        # Each node's connection counted its replies against the whole limit: together
        # they fit unless their counts add up past it (then count again, in order).
        if not redirected and sum(limit - send.budget for send in sends) <= limit:
            return out
        return self.reply_budget().admit_all(out)

    async def transaction(self, commands: list[Args]) -> list[Reply]:
        slots: list[int | None] = []
        scripts = False
        for args in commands:
            command = self._lookup(args)
            if command is None:
                continue
            if command.name in FAN_OUT or command.name == "scan":
                raise ReplyError(error_texts.cluster_not_in_transaction(command.name))
            scripts |= command.name in self._script_names
            try:
                slots.append(command_slot(command, args))
            except CrossSlot:
                raise ReplyError(error_texts.CROSSSLOT) from None
        try:
            slot = common_slot(slots)
        except CrossSlot:
            raise ReplyError(error_texts.CROSSSLOT) from None
        address = self._node_of(slot) if slot is not None else self._home() if scripts else self._any()
        weight = len(commands)
        self._admit()
        self._inflight += weight
        try:
            block = _Part([], address)
            payload = resp.encode_transaction(commands)
            while True:
                pool = self._pools.get(block.address) or self._pool(block.address)
                conn = pool.pick()
                if conn is None and pool.first is not None and not pool.first.done():
                    await pool.wait_first(self.connect_timeout)
                    conn = pool.pick()
                if conn is None:
                    self.want_refresh()
                    raise BackendUnavailable(error_texts.backend_unavailable(self._why(block.address)))
                asking = block.asking
                replies = await conn.submit(
                    ASKING + payload if asking else payload,
                    len(commands) + 2 + asking,
                    self.settings.max_reply_bytes,
                )
                replies = replies[1:] if asking else replies
                # A queued command redirected (EXEC then answers EXECABORT), or EXEC itself
                # (TRYAGAIN, CLUSTERDOWN): nothing ran.
                redirected = next(
                    (
                        r
                        for r in replies[1:]
                        if isinstance(r, ReplyError) and r.message.startswith(REDIRECTIONS)
                    ),
                    None,
                )
                if redirected is None:
                    break
                block.reply = redirected
                if not self._follow(block):
                    break
                if redirected.message.startswith("TRYAGAIN"):
                    await asyncio.sleep(0.05)
        finally:
            self._inflight -= weight
        return self.reply_budget().whole(resp.exec_replies(replies))

    # -- health and pub/sub
    def health(self) -> Health:
        connected = {a: self._pools[a].connected for a in self._primaries if a in self._pools}
        down = [address_text(a) for a, n in connected.items() if not n]
        unserved = sum(1 for a in self._slots if a is None)
        ok = bool(connected) and not down and not unserved
        detail = "ok"
        if not ok:
            detail = (
                f"primaries unreachable: {', '.join(down)}"
                if down
                else f"{unserved} slots unserved"
                if connected and unserved
                else self._last_error
            )
        return Health(
            ok=ok,
            detail=detail,
            gauges={
                "connections_open": sum(p.connected for p in self._pools.values()),
                "connections_configured": self.pool_size * len(self._pools),
                "commands_in_flight": self._inflight,
                "cluster_nodes": len(self._pools),
                "cluster_primaries": len(self._primaries),
                "cluster_slots_served": SLOTS - unserved,
            },
        )

    def connections_per_node(self) -> dict[str, int]:
        return {address_text(a): p.connected for a, p in self._pools.items()}

    def subscription(self) -> Subscription:
        """A connection of its own (redis-py's pool, bounded by ``max_subscriptions``) to
        the home primary (:meth:`_home`): Redis Cluster sends every PUBLISH to every node,
        so a subscriber on any node sees them all."""
        address = self._home() if self._primaries else self.config.seeds[0]
        client = self._pubsub_clients.get(address)
        if client is None:
            kwargs: dict[str, Any] = {}
            if self.config.tls:
                kwargs["ssl"] = True
                if not self.config.verify_tls:
                    kwargs["ssl_cert_reqs"] = "none"
            client = redis.asyncio.Redis(
                host=address[0],
                port=address[1],
                username=self.config.username,
                password=self.config.password,
                max_connections=self.settings.max_subscriptions,
                socket_connect_timeout=self.connect_timeout,
                **kwargs,
            )
            self._pubsub_clients[address] = client
        return RedisSubscription(client.pubsub())
