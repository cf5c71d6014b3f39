"""DynamoDB backend (``dynamodb://<table>?region=..&endpoint_url=..``): kvgate's engine
over a table, through one long-lived aiobotocore client per database.

Every command (a run of reads in a pipeline, a pipeline's consecutive writes on up to 100
keys, a whole ``/multi-exec``) is one optimistic unit (see
:mod:`kvgate.adapters.dynamodb_txn`): strongly consistent reads of its keys, in one
``BatchGetItem`` or ``TransactGetItems``, the engine in memory, then one conditional
write, or one ``TransactWriteItems`` with version checks on everything the unit read.
A failed condition means another writer won; the unit runs again on fresh data, so a
command applies exactly once, atomically, whichever kvgate process runs it.  A lone
``INCR``/``INCRBY``/``DECR``/``DECRBY`` on an integer is one ``UpdateItem ... ADD``
instead.

A write whose outcome is unknown (the connection broke after the request left) is never
retried: the client gets a 503 saying so, as with a Redis connection lost mid-command.
botocore's own retries are off for that reason; throttling and conflicts, which DynamoDB
answers before applying anything, are retried here with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import os
import random
import re
import struct
import time
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiobotocore  # noqa: F401  (the [dynamodb] extra: without it the URL is a config error)

from kvgate import error_texts
from kvgate.adapters import dynamodb_bigwrite as bigwrite
from kvgate.adapters import dynamodb_items as items
from kvgate.adapters import entry_named, redact_url
from kvgate.adapters.base import Backend, BackendSettings, Health, Subscription
from kvgate.adapters.dynamodb_items import (
    CURSOR_PREFIX,
    ELEMENT,
    HEAD,
    KEY_PREFIX,
    MAX_ITEM_BYTES,
    MAX_KEY_NAME_BYTES,
    MAX_TRANSACTION_BYTES,
    MAX_TRANSACTION_ITEMS,
    ORDER,
    SCRIPT_PREFIX,
    Entry,
)
from kvgate.adapters.dynamodb_txn import ELEMENT_REQUESTS, Need, Snapshot, SnapshotTxn
from kvgate.adapters.engine_pubsub import EngineSubscription
from kvgate.commands import CommandTable
from kvgate.engine import Engine, command_table
from kvgate.engine.pubsub import Deliver, LocalHub
from kvgate.engine.scripting import Scripting
from kvgate.engine.storage import Key, KeyType, Member
from kvgate.engine.strings import set_reads_first
from kvgate.errors import (
    BackendError,
    BackendOverloaded,
    BackendTimeout,
    BackendUnavailable,
    ReplyError,
    StartupError,
)
from kvgate.metrics import DYNAMODB_CAPACITY
from kvgate.protocol import Args, Reply

log = logging.getLogger("kvgate.dynamodb")

#: Times a unit runs again after losing a race, before the client is told to retry.
MAX_CONFLICT_RETRIES = 60
#: Fetches one unit may ask for along the way (keys a script did not declare...).
MAX_NEEDS = 500
#: How long a SCAN cursor stays valid.
CURSOR_TTL_MS = 24 * 3600 * 1000
#: DynamoDB's answers that mean "nothing was applied, try again".
_RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "TransactionInProgressException",
        "InternalServerError",  # documented as safe to retry for reads only: see _call
    }
)
_TOO_LARGE = re.compile(r"size|too large", re.IGNORECASE)  # DynamoDB's texts for its limits
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_INCRS = {b"incr": 1, b"decr": -1, b"incrby": 1, b"decrby": -1}
#: The command a DynamoDB call is made for (a label of the capacity metric).
CAPACITY_LABEL: contextvars.ContextVar[str] = contextvars.ContextVar("dynamodb_command", default="other")
_READ_CALLS = frozenset({"get_item", "batch_get_item", "transact_get_items", "query", "scan"})
_LIST_POSITION = struct.Struct(">d")
#: A unit that misses a third element of a collection this small reads all of it.
MAX_WHOLE_READ = 10_000
#: Candidate members fetched at once, once a unit has asked for a second element.
MAX_CANDIDATES = 5000


@dataclass(frozen=True)
class DynamoURL:
    table: str
    region: str | None
    endpoint_url: str | None

    @property
    def where(self) -> str:
        """For messages: an endpoint URL's password is never shown."""
        return (
            redact_url(self.endpoint_url)
            if self.endpoint_url
            else f"region {self.region or '(from the AWS configuration)'}"
        )


def parse_url(url: str) -> DynamoURL:
    parts = urlsplit(url)
    if parts.scheme != "dynamodb":
        raise ValueError("a DynamoDB URL starts with dynamodb://")
    table = parts.netloc
    if not _TABLE_NAME.match(table):
        raise ValueError(
            "a DynamoDB URL names its table: dynamodb://<table>?region=..&endpoint_url=.. "
            "(3 to 255 characters: letters, digits, '_', '-', '.')"
        )
    if parts.path not in ("", "/"):
        raise ValueError("a DynamoDB URL has no path: dynamodb://<table>?region=..")
    query = entry_named("dynamodb").read_options(parts.query)
    endpoint = query.get("endpoint_url")
    if endpoint is not None and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ValueError("endpoint_url must be an http:// or https:// URL")
    return DynamoURL(table, query.get("region"), endpoint)


class _Conflict(Exception):
    """Another writer changed what the unit read: run it again."""


class _Retry(Exception):
    """DynamoDB refused before applying anything (throttled, busy): run it again."""


class _Refused(Exception):
    """The unit breaks a DynamoDB limit; nothing was written.  ``message`` is the reply."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _client_config(connections: int, timeout: float) -> Any:
    from aiobotocore.config import AioConfig

    return AioConfig(
        max_pool_connections=connections,
        retries={"total_max_attempts": 1},  # see the module docstring
        connect_timeout=min(5.0, timeout),
        read_timeout=timeout,
        tcp_keepalive=True,
        # kvgate builds every request itself (dynamodb_items), and DynamoDB validates what
        # it receives anyway: botocore's own pass over the parameters cost 0.5-3 ms of CPU
        # per call with 100 items (measured: a 100-GET pipeline 13.1-14.7 ms -> 11.7-11.9)
        parameter_validation=False,
    )


class DynamoBackend(Backend):
    kind = "dynamodb"
    knows_shebang = True

    def __init__(self, url: str, settings: BackendSettings | None = None) -> None:
        super().__init__(url, settings)
        self.where = parse_url(url)
        self.table = self.where.table
        self.engine = Engine(self.kind)
        self.scripting = Scripting()  # this database's Lua runtimes, limits, unsaved scripts
        self._client: Any = None
        self._client_cm: Any = None
        self._inflight = 0
        self._failures = 0
        self._last_error = ""
        self.conflicts = 0
        self.units = 0
        #: Cleanup (see dynamodb_bigwrite): how often the sweeper looks, how long after a
        #: head stops naming a generation its elements go (longer than any unit runs), how
        #: long a large write may take before its half-written generation is swept.
        self.gc_interval = 5.0
        self.gc_grace_ms = int(self.settings.timeout * 1000) + 2000
        self.lease_ms = int(self.settings.timeout * 1000) + 5000
        #: Tests: a large write fails after this many batches, as if kvgate died there.
        self.fail_after_batches: int | None = None
        self._sweeper: asyncio.Task[None] | None = None
        #: pub/sub within this process only: DynamoDB has no cheap way to reach the others
        #: (README: DynamoDB's limits)
        self.hub = LocalHub()
        self._subscriptions = 0

    @classmethod
    def parse_url(cls, url: str) -> DynamoURL:
        return parse_url(url)

    @property
    def commands(self) -> CommandTable:
        return command_table()

    # -- lifecycle ------------------------------------------------------------------

    def preflight(self) -> None:
        """The table must exist with kvgate's key schema; credentials and a region must be
        found.  DynamoDB being unreachable is not fatal (it may come up later)."""
        import botocore.exceptions
        import botocore.session

        session = botocore.session.get_session()
        try:
            client = session.create_client(
                "dynamodb",
                region_name=self.where.region,
                endpoint_url=self.where.endpoint_url,
                config=_client_config(1, 5.0),
            )
            description = client.describe_table(TableName=self.table)["Table"]
        except botocore.exceptions.NoRegionError:
            raise StartupError(
                "dynamodb: no region: add ?region=... to the URL or set AWS_REGION / AWS_DEFAULT_REGION"
            ) from None
        except botocore.exceptions.NoCredentialsError:
            raise StartupError(
                "dynamodb: no AWS credentials found (environment, ~/.aws/credentials, or an instance role)"
            ) from None
        except botocore.exceptions.ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                raise StartupError(self._missing_table()) from None
            raise StartupError(f"dynamodb: {redact_url(str(exc))}") from None
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            log.warning(
                "dynamodb at %s is not reachable yet (%s); serving anyway",
                self.where.where,
                redact_url(str(exc)),
            )
            return
        schema = [(k["AttributeName"], k["KeyType"]) for k in description["KeySchema"]]
        types = {a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]}
        if schema == [("pk", "HASH")] and types.get("pk") == "B":
            raise StartupError(
                f"dynamodb: table {self.table!r} has kvgate's old layout (one item per key, no sort "
                f"key); create a table of the new layout with: kvgate dynamodb create-table <new url>, "
                f"then copy the keys with: python -m kvgate.adapters.dynamodb_upgrade "
                f"'{redact_url(self.url)}' <new url>"
            )
        if schema != [("pk", "HASH"), ("sk", "RANGE")] or types.get("pk") != "B" or types.get("sk") != "B":
            raise StartupError(
                f"dynamodb: table {self.table!r} is not a kvgate table (its key must be a binary "
                f"partition key 'pk' and a binary sort key 'sk'; it has {schema}); create one with: "
                f"kvgate dynamodb create-table <url>"
            )

    def _missing_table(self) -> str:
        return (
            f"dynamodb: table {self.table!r} does not exist at {self.where.where}; "
            f"create it with: kvgate dynamodb create-table '{redact_url(self.url)}'"
        )

    async def start(self) -> None:
        from aiobotocore.session import get_session

        self._client_cm = get_session().create_client(
            "dynamodb",
            region_name=self.where.region,
            endpoint_url=self.where.endpoint_url,
            config=_client_config(self.pool_size, self.settings.timeout),
        )
        self._client = await self._client_cm.__aenter__()
        self._sweeper = asyncio.get_running_loop().create_task(bigwrite.sweeper(self))

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(BaseException):
                await self._sweeper
            self._sweeper = None
        client_cm, self._client_cm, self._client = self._client_cm, None, None
        if client_cm is not None:
            await client_cm.__aexit__(None, None, None)

    def health(self) -> Health:
        ok = self._client is not None and self._failures == 0
        return Health(
            ok=ok,
            detail=f"table {self.table} at {self.where.where}" if ok else self._last_error or "closed",
            gauges={"inflight": self._inflight, "units": self.units, "conflicts": self.conflicts},
        )

    # -- pub/sub: this process's subscribers (see ``self.hub``) ---------------------------

    def subscription(self) -> Subscription:
        if self._client is None:
            raise BackendUnavailable(error_texts.BACKEND_CLOSED)
        if self._subscriptions >= self.settings.max_subscriptions:
            raise BackendOverloaded(error_texts.TOO_MANY_SUBSCRIPTIONS)
        self._subscriptions += 1
        return EngineSubscription(self._join, self._leave, self._subscription_closed)

    async def _join(self, deliver: Deliver, names: list[bytes], pattern: bool) -> None:
        self.hub.add(deliver, names, pattern)

    async def _leave(self, deliver: Deliver) -> None:
        self.hub.discard(deliver)

    def _subscription_closed(self) -> None:
        self._subscriptions -= 1

    # -- commands -------------------------------------------------------------------

    async def execute(self, commands: list[Args]) -> list[Reply]:
        # Counted once made: an item holds at most 400 KB, so one reply is never huge.
        return self.reply_budget().admit_all(await self._bounded(self._execute(commands)))

    async def transaction(self, commands: list[Args]) -> list[Reply]:
        return self.reply_budget().whole(await self._bounded(self._transaction(commands)))

    async def _bounded(self, work: Any) -> list[Reply]:
        if self._client is None:
            work.close()
            raise BackendUnavailable(error_texts.BACKEND_CLOSED)
        if self._inflight >= self.settings.max_inflight:
            work.close()
            raise BackendOverloaded(error_texts.DYNAMODB_BUSY)
        self._inflight += 1
        try:
            return await asyncio.wait_for(work, self.settings.timeout)
        except TimeoutError:
            raise BackendTimeout(error_texts.dynamodb_timeout(self.settings.timeout)) from None
        finally:
            self._inflight -= 1

    async def _execute(self, commands: list[Args]) -> list[Reply]:
        """In order, not atomically, in as few units as DynamoDB's limits allow (see
        :meth:`_parts`): a run of reads shares one snapshot; consecutive writes, with the
        reads between them, share one unit and one ``TransactWriteItems``.  A part that
        DynamoDB's limits refuse wrote nothing, so it runs again in halves, down to the
        one command whose slot answers the refusal.  When DynamoDB fails partway, what
        was applied stays applied, so the failure is answered in the failed part's slots
        (and the commands after it are not run) instead of failing the whole request as
        if nothing had been done."""
        replies: list[Reply] = []
        wrote = False
        parts = self._parts(commands)  # cut as the units run, not all before the first
        halves: list[tuple[list[Args], bool]] = []  # of a refused part, next first
        while True:
            if halves:
                part, writable = halves.pop()
            else:
                following = next(parts, None)
                if following is None:
                    break
                part, writable = following
            try:
                replies += await self._run_part(part, writable)
            except _Refused as exc:
                if len(part) == 1 or not writable:
                    replies += [ReplyError(exc.message)] * len(part)
                    continue
                half = len(part) // 2
                halves += [(part[half:], True), (part[:half], True)]
                continue
            except BackendError as exc:
                if not wrote:
                    raise  # nothing applied: the request as a whole failed
                replies += [ReplyError(exc.message)] * len(part)
                skipped = len(commands) - len(replies)
                replies += [ReplyError(error_texts.not_run_after_failure(exc.message))] * skipped
                return replies
            wrote = wrote or writable
        return replies

    def _parts(self, commands: list[Args]) -> Iterator[tuple[list[Args], bool]]:
        """A pipeline cut into units: (commands, whether the unit writes).  A write part
        takes the writes after it, and the reads between them, while their keys fit one
        ``TransactWriteItems`` (:data:`MAX_TRANSACTION_ITEMS`); reads left at the end
        are a read part of their own (a write unit would have to check them).  Commands
        whose keys the table cannot tell in advance (scripts, FLUSHDB, keyspace reads)
        stay parts of their own."""
        n, i = len(commands), 0
        while i < n:
            if self.engine.is_read(commands[i]):
                j = i + 1
                while j < n and self.engine.is_read(commands[j]):
                    j += 1
                yield commands[i:j], False
                i = j
                continue
            keys = self._batch_keys(commands[i])
            j = i + 1
            while keys is not None and j < n:
                taken = set(keys)
                k = j
                while k < n and self.engine.is_read(commands[k]):
                    more = self._batch_keys(commands[k])
                    if more is None:
                        break
                    taken.update(more)
                    k += 1
                if k == n:
                    break  # only reads left
                more = self._batch_keys(commands[k])
                if more is None:
                    break
                taken.update(more)
                if len(taken) > MAX_TRANSACTION_ITEMS:
                    break
                keys, j = taken, k + 1
            yield commands[i:j], True
            i = j

    def _batch_keys(self, args: Args) -> set[bytes] | None:
        """The keys a command touches, when the command table can tell them in advance
        and the command may share a unit with others; None when it may not: a script
        (``@scripting``: it may touch keys it does not declare) or a keyless command
        (FLUSHDB, which writes unconditionally; PUBLISH; SCAN...)."""
        command = self.commands.get(args[0].lower().decode("utf-8", "replace"))
        if command is None or "@scripting" in command.categories:
            return None
        if command.subcommands and len(args) > 1:
            command = command.subcommands.get(args[1].lower())
            if command is None:
                return None
        try:
            keys = set(command.keys(args))
        except Exception:  # malformed numkeys: the engine says so, alone
            return None
        return keys or None

    async def _run_part(self, commands: list[Args], writable: bool) -> list[Reply]:
        """A run of reads, or writes (with the reads between them) as one unit."""
        CAPACITY_LABEL.set(self._label(commands[0]) if len(commands) == 1 else "pipeline")
        if writable and len(commands) == 1:
            incr = self._as_increment(commands[0])
            if incr is not None:
                reply = await self._increment(*incr)
                if reply is not None:
                    return [reply]
        if writable:
            # refused (or too big for one transaction): the caller runs it in halves
            return await self._unit(commands, writable=True, divisible=len(commands) > 1)
        try:
            return await self._unit(commands, writable=False)
        except _Refused as exc:
            return [ReplyError(exc.message)] * len(commands)

    async def _transaction(self, commands: list[Args]) -> list[Reply]:
        writable = not all(self.engine.is_read(c) for c in commands)
        CAPACITY_LABEL.set("multi")
        try:
            return await self._unit(commands, writable=writable)
        except _Refused as exc:
            raise ReplyError(exc.message + "; the transaction was not applied") from None

    def _label(self, args: Args) -> str:
        command = self.commands.get(args[0].lower().decode("utf-8", "replace"))
        return command.name if command is not None else "other"

    # -- one unit -------------------------------------------------------------------

    async def _unit(self, commands: list[Args], writable: bool, divisible: bool = False) -> list[Reply]:
        """Run ``commands`` as one unit.  ``divisible``: a pipeline's part that may run in
        smaller parts instead, so a write that does not fit one transaction is refused
        rather than written through new generations (a copy of each collection)."""
        self.units += 1
        names, shas, together = self._prefetch(commands)
        snapshot = Snapshot()
        candidates = _candidates(commands)
        # A read unit reads its keys as one snapshot (TransactGetItems, twice the read
        # units of BatchGetItem on AWS) when a command reads several: pipelined commands
        # of one key each are not atomic together, in Redis either.
        atomic = not writable and (together or len(commands) == 1)
        await self._fetch(snapshot, names, shas, atomic=atomic)
        needs = conflicts = 0
        while True:
            txn = SnapshotTxn(snapshot, now_ms(), writable, self.scripting, self.hub)
            try:
                replies = [self.engine.execute(txn, c) for c in commands]
            except Need as need:
                needs += 1
                if needs > MAX_NEEDS:
                    raise _Refused(error_texts.dynamodb_too_many_needs(MAX_NEEDS)) from None
                await self._satisfy(snapshot, need.request, writable, candidates)
                continue
            try:
                if not writable:
                    await self._validate(snapshot)
                    return replies
                await self._commit(txn, snapshot, divisible)
                for channel, message in txn.published:  # committed: PUBLISH delivers
                    self.hub.deliver(channel, message)
                return replies
            except (_Conflict, _Retry):
                conflicts += 1
                self.conflicts += 1
                if conflicts > MAX_CONFLICT_RETRIES:
                    raise BackendOverloaded(error_texts.DYNAMODB_CONFLICTS) from None
                await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2**conflicts)))
                fresh = Snapshot(keyspace=snapshot.keyspace)
                # a key written blind that turned out to be a spilled collection is read now
                again = list(snapshot.entries) + [n for n in txn.dirty if n not in snapshot.entries]
                await self._fetch(fresh, again, list(snapshot.scripts), atomic=atomic)
                snapshot = fresh

    async def _validate(self, snapshot: Snapshot) -> None:
        """A read unit that read elements of a spilled collection besides one item: its
        heads are read again, and an unchanged version vouches that what was read of the
        collection is one state (every write of a collection replaces its version)."""
        read = [name for name, stored in snapshot.elements.items() if stored.reads]
        if not read:
            return
        if len(snapshot.entries) == 1 and sum(s.reads for s in snapshot.elements.values()) == 1:
            stored = snapshot.elements[read[0]]
            if len([m for m in stored.members.values()]) <= 1 and not stored.ranges and not stored.by_score:
                return  # one element of one key: read at one moment anyway
        found = await self._get_items([KEY_PREFIX + n for n in read], atomic=True)
        for name in read:
            item = found.get(KEY_PREFIX + name)
            token = item["ver"]["B"] if item and "ver" in item else None
            if token != snapshot.tokens.get(name):
                raise _Conflict()

    def _prefetch(self, commands: list[Args]) -> tuple[list[bytes], list[bytes], bool]:
        """The keys and cached scripts the command table says the unit will need, and
        whether one of its commands reads several keys (or is a script): those are read
        together, as one snapshot."""
        names: dict[bytes, None] = {}
        shas: dict[bytes, None] = {}
        together = False
        for args in commands:
            command = self.commands.get(args[0].lower().decode("utf-8", "replace"))
            if command is None:
                continue
            name = command.name
            if command.blind_write and not (name == "set" and set_reads_first(args)):
                continue  # written without being read
            keys: list[bytes] = []
            with contextlib.suppress(Exception):  # malformed numkeys: the engine says so
                keys = command.keys(args)
            for key in keys:
                if len(key) <= MAX_KEY_NAME_BYTES:
                    names[key] = None
            together = together or len(keys) > 1 or "@scripting" in command.categories
            if name in ("eval", "eval_ro") and len(args) > 1:
                shas[hashlib.sha1(args[1]).hexdigest().encode()] = None
            elif name in ("evalsha", "evalsha_ro") and len(args) > 1:
                shas[args[1].lower()] = None
        return list(names), list(shas), together

    async def _satisfy(
        self,
        snapshot: Snapshot,
        request: tuple[Hashable, ...],
        writable: bool,
        candidates: list[bytes] | None = None,
    ) -> None:
        kind = request[0]
        if kind == "key":
            name: bytes = request[1]  # type: ignore[assignment]
            if writable:
                await self._fetch(snapshot, [name], [], atomic=False)
            else:  # a read unit stays one snapshot: everything again, together
                snapshot.elements.clear()  # of the generations the heads named before
                await self._fetch(snapshot, [*snapshot.entries, name], list(snapshot.scripts), atomic=True)
        elif kind in ELEMENT_REQUESTS:
            await self._fetch_elements(snapshot, request, candidates or [])
        elif kind == "script":
            await self._fetch(snapshot, [], [request[1]], atomic=False)  # type: ignore[list-item]
        elif kind == "scan":
            snapshot.keyspace[request] = await self._scan_page(int(request[1]), int(request[2]))  # type: ignore[call-overload]
        elif kind == "keys":
            snapshot.keyspace[request] = [k async for k in self._all_keys()]
        elif kind == "random":
            snapshot.keyspace[request] = await self._random_key()
        else:  # pragma: no cover - a new request kind without a fetcher
            raise RuntimeError(f"unknown request {request!r}")

    # -- reads ----------------------------------------------------------------------

    async def _fetch_elements(
        self, snapshot: Snapshot, request: tuple[Hashable, ...], candidates: list[bytes]
    ) -> None:
        """Read what an element request asks of a spilled collection into the snapshot."""
        kind, name = request[0], request[1]
        assert isinstance(name, bytes)
        entry = snapshot.entries[name]
        assert entry is not None and entry.gen is not None
        type, gen = entry.key.type, entry.gen
        stored = snapshot.stored(name)
        stored.reads += 1
        if kind == "member" and stored.reads > 2 and entry.count <= MAX_WHOLE_READ:
            kind = "members"  # a third miss (a script walking the collection): all of it at once
        if kind == "member":
            member = request[2]
            assert isinstance(member, bytes)
            wanted = [member]
            if stored.reads > 1 and type is not KeyType.LIST:  # a second one: every candidate
                wanted += [c for c in candidates if c not in stored.members and c != member]
            keys = {}
            for want_m in wanted[: MAX_CANDIDATES + 1]:
                score = _LIST_POSITION.unpack(want_m)[0] if type is KeyType.LIST and len(want_m) == 8 else 0.0
                keys[items.element_sk(type, gen, want_m, score)] = want_m
            found = await self._get_element_items(name, list(keys))
            for sk, want_m in keys.items():
                item = found.get(sk)
                stored.members[want_m] = items.decode_element(type, item) if item is not None else None
        elif kind == "members":
            stored.members = {m.member: m async for m in self._query_elements(name, type, gen)}
            stored.complete = True
        elif kind == "range":
            rev, want = request[2], request[3]
            assert isinstance(want, int)
            prefix = (ELEMENT if type is KeyType.LIST else ORDER) + gen
            found_items, exhausted = await self._query_range(name, prefix, None, None, bool(rev), want)
            decode = (lambda i: items.decode_element(type, i)) if type is KeyType.LIST else items.decode_order
            in_order = [decode(i) for i in found_items]
            stored.ranges[bool(rev)] = (in_order, exhausted)
            for one in in_order:
                stored.members.setdefault(one.member, one)
        else:  # byscore
            low, low_open, high, high_open, rev, want = request[2:8]
            assert isinstance(low, int | float) and isinstance(high, int | float) and isinstance(want, int)
            prefix = ORDER + gen
            lo = prefix + items.order_bytes(low)
            hi_n = min(int.from_bytes(items.order_bytes(high), "big") + 1, 2**64 - 1)
            hi = prefix + hi_n.to_bytes(8, "big")

            def inside(m: Member) -> bool:
                return (m.score > low if low_open else m.score >= low) and (
                    m.score < high if high_open else m.score <= high
                )

            found_items, exhausted = await self._query_range(
                name, prefix, lo, hi, bool(rev), want, lambda i: inside(items.decode_order(i))
            )
            in_range = [one for one in map(items.decode_order, found_items) if inside(one)]
            stored.by_score[(low, bool(low_open), high, bool(high_open), bool(rev))] = (in_range, exhausted)
            for one in in_range:
                stored.members.setdefault(one.member, one)

    async def _get_element_items(self, name: bytes, sks: list[bytes]) -> dict[bytes, dict[str, Any]]:
        """Element items of ``name`` by sort key (strongly consistent)."""
        key = items.pk(name)
        if len(sks) == 1:
            r = await self._call(
                self._client.get_item,
                TableName=self.table,
                Key={"pk": key, "sk": {"B": sks[0]}},
                ConsistentRead=True,
            )
            return {sks[0]: r["Item"]} if "Item" in r else {}
        found: dict[bytes, dict[str, Any]] = {}

        async def batch(chunk: list[bytes]) -> None:
            pending: list[dict[str, Any]] = [{"pk": key, "sk": {"B": sk}} for sk in chunk]
            delay = 0.005
            while pending:
                r = await self._call(
                    self._client.batch_get_item,
                    RequestItems={self.table: {"Keys": pending, "ConsistentRead": True}},
                )
                for item in r["Responses"].get(self.table, []):
                    found[item["sk"]["B"]] = item
                pending = r.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
                if pending:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.5)

        chunks = [sks[at : at + 100] for at in range(0, len(sks), 100)]
        for at in range(0, len(chunks), 8):  # 8 requests in flight
            await asyncio.gather(*(batch(c) for c in chunks[at : at + 8]))
        return found

    async def _query_elements(self, name: bytes, type: KeyType, gen: bytes) -> Any:
        """Every element of generation ``gen`` of ``name``, in sort key order."""
        start = None
        while True:
            kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            page = await self._call(
                self._client.query,
                TableName=self.table,
                KeyConditionExpression="#pk = :pk AND begins_with(#sk, :p)",
                ExpressionAttributeNames={"#pk": "pk", "#sk": "sk"},
                ExpressionAttributeValues={":pk": items.pk(name), ":p": {"B": ELEMENT + gen}},
                ConsistentRead=True,
                **kwargs,
            )
            for item in page.get("Items", []):
                yield items.decode_element(type, item)
            start = page.get("LastEvaluatedKey")
            if start is None:
                return

    async def _query_range(
        self,
        name: bytes,
        prefix: bytes,
        lo: bytes | None,
        hi: bytes | None,
        rev: bool,
        want: int,
        keep: Any = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Items of ``name`` with sort keys starting with ``prefix`` (between ``lo`` and
        ``hi`` when given) in order, until ``want`` of them pass ``keep`` (-1: all); and
        whether that was all of them."""
        if lo is not None and hi is not None:
            condition = "#pk = :pk AND #sk BETWEEN :lo AND :hi"
            values = {":pk": items.pk(name), ":lo": {"B": lo}, ":hi": {"B": hi}}
        else:
            condition = "#pk = :pk AND begins_with(#sk, :p)"
            values = {":pk": items.pk(name), ":p": {"B": prefix}}
        out: list[dict[str, Any]] = []
        kept = 0
        start = None
        while True:
            kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            if want >= 0:
                kwargs["Limit"] = max(1, min(want - kept + 1, 1000))
            page = await self._call(
                self._client.query,
                TableName=self.table,
                KeyConditionExpression=condition,
                ExpressionAttributeNames={"#pk": "pk", "#sk": "sk"},
                ExpressionAttributeValues=values,
                ScanIndexForward=not rev,
                ConsistentRead=True,
                **kwargs,
            )
            for item in page.get("Items", []):
                out.append(item)
                kept += 1 if keep is None or keep(item) else 0
            start = page.get("LastEvaluatedKey")
            if start is None:
                return out, True
            if 0 <= want <= kept:
                return out, False

    async def _fetch(self, snapshot: Snapshot, names: list[bytes], shas: list[bytes], atomic: bool) -> None:
        """Read keys and scripts into ``snapshot``; ``atomic``: as one snapshot in time."""
        keys = [KEY_PREFIX + n for n in names] + [SCRIPT_PREFIX + s for s in shas]
        if not keys:
            return
        found = await self._get_items(keys, atomic)
        for name in names:
            item = found.get(KEY_PREFIX + name)
            snapshot.tokens[name] = item["ver"]["B"] if item and "ver" in item else None
            snapshot.entries[name] = items.decode(name, item) if item else None
        for sha in shas:
            item = found.get(SCRIPT_PREFIX + sha)
            snapshot.scripts[sha] = item["body"]["B"] if item else None

    async def _get_items(self, keys: list[bytes], atomic: bool) -> dict[bytes, dict[str, Any]]:
        """Single items (heads, scripts, cursors) by partition key."""
        client = self._client
        if len(keys) == 1:
            r = await self._call(
                client.get_item, TableName=self.table, Key=items.own_key(keys[0]), ConsistentRead=True
            )
            return {keys[0]: r["Item"]} if "Item" in r else {}
        if atomic and len(keys) <= MAX_TRANSACTION_ITEMS:
            try:
                r = await self._call(
                    client.transact_get_items,
                    TransactItems=[{"Get": {"TableName": self.table, "Key": items.own_key(k)}} for k in keys],
                )
                return {
                    k: resp["Item"] for k, resp in zip(keys, r["Responses"], strict=True) if "Item" in resp
                }
            except _Refused:
                pass  # over 4 MB together: read them one batch at a time (not one snapshot)
        found: dict[bytes, dict[str, Any]] = {}

        async def batch(pending: list[dict[str, Any]]) -> None:
            delay = 0.005
            while pending:
                r = await self._call(
                    client.batch_get_item,
                    RequestItems={self.table: {"Keys": pending, "ConsistentRead": True}},
                )
                for item in r["Responses"].get(self.table, []):
                    found[item["pk"]["B"]] = item
                pending = r.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
                if pending:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.5)

        unique = [items.own_key(k) for k in dict.fromkeys(keys)]
        # BatchGetItem takes 100 keys: the batches go out together, none waits on another
        await asyncio.gather(*(batch(unique[i : i + 100]) for i in range(0, len(unique), 100)))
        return found

    async def _scan(self, **kwargs: Any) -> Any:
        """Pages of a consistent scan over user keys (``pk``, ``t`` and ``x`` only)."""
        start = kwargs.pop("ExclusiveStartKey", None)
        while True:
            if start is not None:
                kwargs["ExclusiveStartKey"] = start
            page = await self._call(
                self._client.scan,
                TableName=self.table,
                ConsistentRead=True,
                ProjectionExpression="#pk, #t, #x",
                FilterExpression="begins_with(#pk, :k) AND #sk = :h",
                ExpressionAttributeNames={"#pk": "pk", "#sk": "sk", "#t": "t", "#x": "x"},
                ExpressionAttributeValues={":k": {"B": KEY_PREFIX}, ":h": {"B": HEAD}},
                **kwargs,
            )
            yield page
            start = page.get("LastEvaluatedKey")
            if start is None:
                return

    @staticmethod
    def _keys_of(page: dict[str, Any]) -> list[Key]:
        out = []
        for item in page.get("Items", []):
            if "t" in item:
                expire_at = int(item["x"]["N"]) if "x" in item else None
                out.append(Key(item["pk"]["B"][1:], KeyType(int(item["t"]["N"])), expire_at, None))
        return out

    async def _all_keys(self) -> Any:
        async for page in self._scan():
            for key in self._keys_of(page):
                yield key

    async def _scan_page(self, cursor: int, count: int) -> tuple[int, list[Key]]:
        """One SCAN page.  DynamoDB resumes a scan from the last key it evaluated, which
        does not fit in Redis's 64-bit cursor, so it is kept in an item named by a random
        cursor number for :data:`CURSOR_TTL_MS`."""
        start = None
        if cursor != 0:
            saved = await self._get_items([CURSOR_PREFIX + cursor.to_bytes(8, "big")], atomic=False)
            item = next(iter(saved.values()), None)
            if item is None or int(item["x"]["N"]) <= now_ms():
                return 0, []  # unknown or expired cursor: the scan is over
            start = {"pk": item["at"], "sk": item.get("as", {"B": HEAD})}
        pages = self._scan(Limit=max(1, min(count, 10_000)), ExclusiveStartKey=start)
        page = await anext(pages)
        await pages.aclose()
        last = page.get("LastEvaluatedKey")
        if last is None:
            return 0, self._keys_of(page)
        nxt = random.randrange(1, 2**63)
        expire_at = now_ms() + CURSOR_TTL_MS
        await self._call(
            self._client.put_item,
            TableName=self.table,
            Item={
                "pk": {"B": CURSOR_PREFIX + nxt.to_bytes(8, "big")},
                "sk": {"B": HEAD},
                "at": last["pk"],
                "as": last["sk"],
                "x": {"N": str(expire_at)},
                "ttl": {"N": str(expire_at // 1000 + 1)},
            },
        )
        return nxt, self._keys_of(page)

    async def _random_key(self) -> Key | None:
        """A live key near a random point of the table's order (not uniform)."""
        now = now_ms()
        for start in ({"pk": {"B": KEY_PREFIX + os.urandom(8)}, "sk": {"B": HEAD}}, None):
            async with contextlib.aclosing(self._scan(ExclusiveStartKey=start, Limit=100)) as pages:
                async for page in pages:
                    live = [k for k in self._keys_of(page) if k.expire_at is None or k.expire_at > now]
                    if live:
                        return random.choice(live)
        return None

    # -- writes ---------------------------------------------------------------------

    async def _commit(self, txn: SnapshotTxn, snapshot: Snapshot, divisible: bool = False) -> None:
        """Write what ``txn`` changed, conditioned on the versions it read (none after a
        FLUSHDB, which is not atomic).  Raises :class:`_Conflict` when another writer won,
        :class:`_Refused` (before writing anything) past a DynamoDB limit.

        Heads, element items and cleanup records go in one ``TransactWriteItems``; when a
        collection's element writes do not fit one, its next state is written first as a
        new generation and the transaction switches the head to it (dynamodb_bigwrite)."""
        conditional = not txn.flushed
        now = now_ms()
        heads: dict[bytes, dict[str, Any]] = {}  # name -> one TransactWriteItems action
        elements: dict[bytes, list[dict[str, Any]]] = {}  # name -> element actions
        records: list[dict[str, Any]] = []  # cleanup records written with the transaction
        #: collections to write whole as a new generation if their elements do not fit:
        #: name -> (entry, old generation, all members or None: old generation + changes)
        shadows: dict[bytes, tuple[Entry, bytes | None, list[Member] | None]] = {}
        size = 0
        for name in txn.dirty:
            entry = txn.entries.get(name)
            if entry is not None and items.expired(entry, txn.now):
                entry = None  # an expiry in the past deletes the key, as in Redis
            if len(name) > MAX_KEY_NAME_BYTES:
                if entry is None:
                    continue
                raise _Refused(error_texts.dynamodb_key_too_long(len(name), MAX_KEY_NAME_BYTES))
            read = conditional and name in snapshot.tokens  # else a blind write: no condition
            token = snapshot.tokens.get(name)
            old = snapshot.entries.get(name) if read else None
            old_gen = old.gen if old is not None else None
            if entry is None:
                delete = {"Key": items.head_key(name)}
                if not read and conditional:  # a blind write that leaves nothing (SET k v EXAT 1)
                    heads[name] = {"Delete": _not_spilled(delete)}
                elif read and token is not None:
                    heads[name] = {"Delete": self._condition(delete, token)}
                if old_gen is not None:
                    records.append(bigwrite.gc_record(name, old_gen, now + self.gc_grace_ms))
                continue
            element_actions: list[dict[str, Any]] = []
            if entry.spilled and entry.gen == old_gen:
                element_actions = self._element_changes(entry, snapshot)
                shadows[name] = (entry, old_gen, None)
                expire_at = entry.key.expire_at
                if expire_at is not None and old is not None and old.key.expire_at != expire_at:
                    assert old_gen is not None
                    records.append(bigwrite.gc_record(name, old_gen, expire_at + self.gc_grace_ms))
            elif entry.key.value is None and not entry.spilled:
                members = list(entry.members.values())
                if not items.fits_inline(entry.key.type, members):  # spills: a new generation
                    entry.gen, entry.count = items.new_token(), len(members)
                    for m in members:
                        element_actions += [
                            {"Put": {"Item": i}}
                            for i in items.element_items(name, entry.key.type, entry.gen, m)
                        ]
                    shadows[name] = (entry, None, members)
                    if entry.key.expire_at is not None:
                        records.append(
                            bigwrite.gc_record(name, entry.gen, entry.key.expire_at + self.gc_grace_ms)
                        )
            if old_gen is not None and entry.gen != old_gen:
                records.append(bigwrite.gc_record(name, old_gen, now + self.gc_grace_ms))
            for action in element_actions:
                if "Put" in action:
                    item_bytes = items.item_size(action["Put"]["Item"])
                    if item_bytes > MAX_ITEM_BYTES:
                        raise _Refused(
                            error_texts.dynamodb_element_too_large(_shown(name), item_bytes, MAX_ITEM_BYTES)
                        )
                    size += item_bytes
            if element_actions:
                elements[name] = element_actions
            item = items.encode(entry, items.new_token())
            fx = entry.field_expiry  # a hash's field expiry: the sweeper drops the fields then
            if fx is not None and (old is None or old.field_expiry != fx):
                records.append(bigwrite.gc_record(name, bigwrite.FIELDS_DUE, fx))
            item_bytes = items.item_size(item)
            if item_bytes > MAX_ITEM_BYTES:
                raise _Refused(error_texts.dynamodb_value_too_large(_shown(name), item_bytes, MAX_ITEM_BYTES))
            size += item_bytes
            action = {"Item": item}
            if read:
                heads[name] = {"Put": self._condition(action, token)}
            else:
                heads[name] = {"Put": _not_spilled(action) if conditional else action}
        checks = []
        if (heads or records) and conditional:
            for name in txn.read_names():
                if name not in heads and name in snapshot.tokens:
                    key = {"Key": items.head_key(name)}
                    checks.append({"ConditionCheck": self._condition(key, snapshot.tokens[name])})
        if len(heads) + len(checks) > MAX_TRANSACTION_ITEMS:
            raise _Refused(error_texts.dynamodb_too_many_keys(MAX_TRANSACTION_ITEMS, len(heads), len(checks)))
        element_count = sum(len(a) for a in elements.values())
        fixed = len(heads) + len(checks) + len(records)
        big: list[bytes] = []
        if divisible and (fixed + element_count > MAX_TRANSACTION_ITEMS or size > MAX_TRANSACTION_BYTES):
            raise _Refused(error_texts.dynamodb_too_many_keys(MAX_TRANSACTION_ITEMS, len(heads), len(checks)))
        if fixed + element_count > MAX_TRANSACTION_ITEMS or size > MAX_TRANSACTION_BYTES:
            # the largest collections' elements go to new generations until the rest fits
            for name in sorted(elements, key=lambda n: len(elements[n]), reverse=True):
                if (
                    fixed + element_count + 2 * len(big) <= MAX_TRANSACTION_ITEMS
                    and size <= MAX_TRANSACTION_BYTES
                ):
                    break
                big.append(name)
                element_count -= len(elements[name])
                size -= sum(items.item_size(a["Put"]["Item"]) for a in elements[name] if "Put" in a)
            if fixed + element_count + 2 * len(big) > MAX_TRANSACTION_ITEMS:
                raise _Refused(
                    error_texts.dynamodb_too_many_keys(
                        MAX_TRANSACTION_ITEMS, len(heads), len(checks) + len(records)
                    )
                )
            if size > MAX_TRANSACTION_BYTES:
                raise _Refused(error_texts.dynamodb_too_many_bytes(MAX_TRANSACTION_BYTES, size))
        # scripts are content-addressed: storing one is idempotent, safe before the rest
        if txn.scripts_flushed:
            await self._delete_all(SCRIPT_PREFIX)
        for sha, body in txn.scripts_put.items():
            item = {"pk": {"B": SCRIPT_PREFIX + sha}, "sk": {"B": HEAD}, "body": {"B": body}}
            await self._write(self._client.put_item, TableName=self.table, Item=item)
        if txn.flushed:
            kept = {KEY_PREFIX + name for name, w in heads.items() if "Put" in w}
            await self._delete_all(KEY_PREFIX, keep=kept)
        leases: list[dict[str, Any]] = []
        for name in big:
            entry, old_gen, all_members = shadows[name]
            del elements[name]
            old_head_gen = entry.gen
            if all_members is None:  # a new generation: the old one's elements, changed
                entry.gen = items.new_token()
                assert old_gen is not None and old_head_gen == old_gen
                records.append(bigwrite.gc_record(name, old_gen, now + self.gc_grace_ms))
                if entry.key.expire_at is not None:  # the new generation goes when it expires
                    records.append(
                        bigwrite.gc_record(name, entry.gen, entry.key.expire_at + self.gc_grace_ms)
                    )
            assert entry.gen is not None
            lease = bigwrite.gc_record(name, entry.gen, now + self.lease_ms)
            await self._write(self._client.put_item, TableName=self.table, Item=lease)
            leases.append(lease)
            await bigwrite.write_generation(self, entry, old_gen, all_members)
            heads[name]["Put"]["Item"] = self._reencode(heads[name]["Put"]["Item"], entry)
        actions = list(heads.values())
        for element_actions in elements.values():
            actions += element_actions
        actions += [{"Put": {"Item": r}} for r in records]
        actions += [
            {
                "ConditionCheck": {
                    "Key": bigwrite.record_key(lease),
                    "ConditionExpression": "attribute_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": "pk"},
                }
            }
            for lease in leases
        ]
        if len(actions) == 1 and not checks:
            ((kind, action),) = actions[0].items()
            call = self._client.put_item if kind == "Put" else self._client.delete_item
            await self._write(call, TableName=self.table, **action)
        elif actions:
            for a in actions + checks:
                next(iter(a.values()))["TableName"] = self.table
            await self._write(self._client.transact_write_items, TransactItems=actions + checks)
        for lease in leases:  # switched: the lease has served (the sweeper would drop it too)
            with contextlib.suppress(BackendError, _Conflict, _Retry):
                await self._write(
                    self._client.delete_item, TableName=self.table, Key=bigwrite.record_key(lease)
                )

    @staticmethod
    def _reencode(item: dict[str, Any], entry: Entry) -> dict[str, Any]:
        """``item`` (a head) naming ``entry``'s generation now."""
        item = dict(item)
        item["g"] = {"B": entry.gen}
        item["n"] = {"N": str(entry.count)}
        return item

    @staticmethod
    def _element_changes(entry: Entry, snapshot: Snapshot) -> list[dict[str, Any]]:
        """The writes of a spilled collection's changed elements (for one transaction)."""
        name, type, gen = entry.key.name, entry.key.type, entry.gen
        assert gen is not None
        stored = snapshot.stored(name)
        actions: list[dict[str, Any]] = []
        for member, new in entry.changes.items():
            old = stored.members.get(member)
            if type in items.SCORED and old is not None and (new is None or new.score != old.score):
                actions.append(
                    {
                        "Delete": {
                            "Key": {"pk": items.pk(name), "sk": {"B": items.order_sk(gen, member, old.score)}}
                        }
                    }
                )
            if new is None:
                if old is not None or type is KeyType.LIST:
                    key = items.element_keys(
                        name, type, gen, old or Member(member, b"", _LIST_POSITION.unpack(member)[0])
                    )[0]
                    actions.append({"Delete": {"Key": key}})
                continue
            made = items.element_items(name, type, gen, new)
            if type is KeyType.ZSET and old is not None and old.score == new.score:
                made = made[:1]  # its order item stands (a stream's carries the value: rewritten)
            actions += [{"Put": {"Item": i}} for i in made]
        return actions

    @staticmethod
    def _condition(action: dict[str, Any], token: bytes | None) -> dict[str, Any]:
        """``action`` only if the item still has version ``token`` (None: no item)."""
        if token is None:
            action["ConditionExpression"] = "attribute_not_exists(#pk)"
            action["ExpressionAttributeNames"] = {"#pk": "pk"}
        else:
            action["ConditionExpression"] = "#ver = :ver"
            action["ExpressionAttributeNames"] = {"#ver": "ver"}
            action["ExpressionAttributeValues"] = {":ver": {"B": token}}
        return action

    async def _delete_all(self, prefix: bytes, keep: Iterable[bytes] = ()) -> None:
        """FLUSHDB and SCRIPT FLUSH: page by page, not atomic (DynamoDB has no truncate)."""
        kept = set(keep)
        start = None
        while True:
            kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
            page = await self._call(
                self._client.scan,
                TableName=self.table,
                ConsistentRead=True,
                ProjectionExpression="#pk, #sk",
                FilterExpression="begins_with(#pk, :p)",
                ExpressionAttributeNames={"#pk": "pk", "#sk": "sk"},
                ExpressionAttributeValues={":p": {"B": prefix}},
                **kwargs,
            )
            doomed = [
                {"DeleteRequest": {"Key": {"pk": i["pk"], "sk": i["sk"]}}}
                for i in page.get("Items", [])
                if not (i["pk"]["B"] in kept and i["sk"]["B"] == HEAD)
            ]
            await self._batch_write(doomed)
            start = page.get("LastEvaluatedKey")
            if start is None:
                return

    async def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        """``BatchWriteItem`` 25 requests at a time, unprocessed ones again (with backoff)."""
        for at in range(0, len(requests), 25):
            pending = requests[at : at + 25]
            delay = 0.005
            while pending:
                r = await self._write(self._client.batch_write_item, RequestItems={self.table: pending})
                pending = r.get("UnprocessedItems", {}).get(self.table, [])
                if pending:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 0.5)

    # -- INCR as one UpdateItem -----------------------------------------------------

    def _as_increment(self, args: Args) -> tuple[bytes, int] | None:
        sign = _INCRS.get(args[0].lower())
        if sign is None or len(args) != (3 if args[0].lower().endswith(b"by") else 2):
            return None
        if len(args[1]) > MAX_KEY_NAME_BYTES:
            return None
        by = 1
        if len(args) == 3:
            n = items.canonical_int(args[2])
            if n is None or (sign < 0 and n == items.INT64_MIN):
                return None  # let the engine give Redis's error
            by = n
        return args[1], sign * by

    async def _increment(self, name: bytes, by: int) -> Reply | None:
        """INCRBY as DynamoDB's ``ADD`` when the key is absent or holds a live integer that
        will not overflow; None when it does not fit (the engine then runs the command)."""
        try:
            r = await self._write(
                self._client.update_item, **increment_request(self.table, name, by, now_ms())
            )
        except (_Conflict, _Retry):
            return None
        self.units += 1
        return int(r["Attributes"]["v"]["N"])

    # -- calls to DynamoDB ----------------------------------------------------------

    async def _call(self, method: Any, **kwargs: Any) -> Any:
        """A request that changes nothing: safe to repeat after any failure."""
        delay = 0.01
        for attempt in range(6):
            try:
                return await self._send(method, kwargs, write=False)
            except _Retry:
                if attempt == 5:
                    raise BackendOverloaded(error_texts.DYNAMODB_THROTTLING) from None
                await asyncio.sleep(random.uniform(0, delay))
                delay *= 2
        raise AssertionError("unreachable")

    async def _write(self, method: Any, **kwargs: Any) -> Any:
        return await self._send(method, kwargs, write=True)

    async def _send(self, method: Any, kwargs: dict[str, Any], write: bool) -> Any:
        import botocore.exceptions

        if self._client is None:
            raise BackendUnavailable(error_texts.BACKEND_CLOSED)
        kwargs["ReturnConsumedCapacity"] = "TOTAL"
        try:
            result = await method(**kwargs)
        except botocore.exceptions.ClientError as exc:
            code = _code(exc)
            if code == "ConditionalCheckFailedException":
                raise _Conflict() from None
            if code == "TransactionCanceledException":
                raise self._cancelled(exc) from None
            if code in _RETRYABLE and (code != "InternalServerError" or not write):
                raise _Retry() from None
            self._failed(str(exc))
            if code == "ResourceNotFoundException":
                raise BackendUnavailable(error_texts.err(self._missing_table())) from None
            if code == "ValidationException" and _TOO_LARGE.search(_message(exc)):
                raise _Refused(error_texts.dynamodb_refused("write", _message(exc))) from None
            applied = "the command may or may not have been applied" if write else "nothing was changed"
            raise BackendUnavailable(error_texts.dynamodb_failed(code, _message(exc), applied)) from None
        except botocore.exceptions.NoCredentialsError:
            self._failed("no AWS credentials")
            raise BackendUnavailable(error_texts.DYNAMODB_NO_CREDENTIALS) from None
        except (TimeoutError, botocore.exceptions.BotoCoreError, OSError) as exc:
            self._failed(str(exc))
            sent = not isinstance(
                exc, botocore.exceptions.EndpointConnectionError | botocore.exceptions.ConnectTimeoutError
            )
            applied = (
                "the command may or may not have been applied" if write and sent else "nothing was changed"
            )
            raise BackendUnavailable(error_texts.dynamodb_unreachable(exc, applied)) from None
        self._failures = 0
        self._count_capacity(method, result)
        return result

    def _count_capacity(self, method: Any, result: Any) -> None:
        consumed = result.get("ConsumedCapacity") if isinstance(result, dict) else None
        if not consumed:
            return
        units = sum(
            c.get("CapacityUnits", 0.0) for c in (consumed if isinstance(consumed, list) else [consumed])
        )
        kind = "read" if getattr(method, "__name__", "") in _READ_CALLS else "write"
        DYNAMODB_CAPACITY.labels(self.table, kind, CAPACITY_LABEL.get()).inc(units)

    def _cancelled(self, exc: Exception) -> Exception:
        reasons = [r.get("Code", "None") for r in getattr(exc, "response", {}).get("CancellationReasons", [])]
        if "ConditionalCheckFailed" in reasons:
            return _Conflict()
        if any(
            r in ("TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded") for r in reasons
        ):
            return _Retry()
        if "ValidationError" in reasons:
            return _Refused(error_texts.dynamodb_refused("transaction", _message(exc)))
        self._failed(str(exc))
        return BackendUnavailable(error_texts.dynamodb_cancelled(", ".join(reasons)))

    def _failed(self, error: str) -> None:
        self._failures += 1
        self._last_error = redact_url(error)  # shown by /_kvgate/health, which needs no token


def increment_request(table: str, name: bytes, by: int, now: int) -> dict[str, Any]:
    """The ``UpdateItem`` that adds ``by`` to the integer string ``name``, on condition
    that the key is absent, or a live string held as a number that will not overflow."""
    low, high = (
        (items.INT64_MIN, items.INT64_MAX - by) if by >= 0 else (items.INT64_MIN - by, items.INT64_MAX)
    )
    return {
        "TableName": table,
        "Key": items.head_key(name),
        "UpdateExpression": "ADD #v :by SET #t = :string, #ver = :ver",
        "ConditionExpression": (
            "attribute_not_exists(#pk) OR (#t = :string AND attribute_type(#v, :N) "
            "AND #v BETWEEN :low AND :high AND (attribute_not_exists(#x) OR #x > :now))"
        ),
        "ExpressionAttributeNames": {"#pk": "pk", "#t": "t", "#v": "v", "#ver": "ver", "#x": "x"},
        "ExpressionAttributeValues": {
            ":by": {"N": str(by)},
            ":string": {"N": str(int(KeyType.STRING))},
            ":ver": {"B": items.new_token()},
            ":N": {"S": "N"},
            ":low": {"N": str(low)},
            ":high": {"N": str(high)},
            ":now": {"N": str(now)},
        },
        "ReturnValues": "UPDATED_NEW",
    }


def _not_spilled(action: dict[str, Any]) -> dict[str, Any]:
    """A blind write's condition: the key is not a spilled collection (whose elements the
    write would leave behind unrecorded); when it is, the unit reads it and runs again."""
    action["ConditionExpression"] = "attribute_not_exists(#g)"
    action["ExpressionAttributeNames"] = {"#g": "g"}
    return action


def _candidates(commands: list[Args]) -> list[bytes]:
    """Every argument of a unit's commands after the command name: the members its
    commands may ask for (fetched at once when a unit asks for a second one)."""
    seen: dict[bytes, None] = {}
    for args in commands:
        for a in args[1:]:
            if len(seen) >= 20 * MAX_CANDIDATES:
                return list(seen)
            seen.setdefault(a, None)
    return list(seen)


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: Any) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Message", exc))


def _shown(name: bytes) -> str:
    text = name[:40].decode("utf-8", "replace")
    return repr(text + ("..." if len(name) > 40 else ""))


# --- the table -------------------------------------------------------------------------


async def create_table(url: str) -> str:
    """Create the table of ``url`` (on-demand billing, TTL on ``ttl``; binary partition key
    ``pk`` and sort key ``sk``, see dynamodb_items); a message."""
    from aiobotocore.session import get_session

    where = parse_url(url)
    async with get_session().create_client(
        "dynamodb", region_name=where.region, endpoint_url=where.endpoint_url
    ) as client:
        try:
            await client.create_table(
                TableName=where.table,
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "B"},
                    {"AttributeName": "sk", "AttributeType": "B"},
                ],
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
            created = True
        except client.exceptions.ResourceInUseException:
            created = False
        await client.get_waiter("table_exists").wait(TableName=where.table, WaiterConfig={"Delay": 1})
        ttl = await client.describe_time_to_live(TableName=where.table)
        if ttl["TimeToLiveDescription"].get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            await client.update_time_to_live(
                TableName=where.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
            )
    state = "created" if created else "already exists"
    return f"table {where.table} {state} at {where.where} (on-demand billing, TTL on attribute 'ttl')"
