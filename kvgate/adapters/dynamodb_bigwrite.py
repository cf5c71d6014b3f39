"""Writes larger than one ``TransactWriteItems``, and the cleanup of what they and DEL,
overwrites and expiry leave behind.

A spilled collection's elements belong to the generation its head names (``g``); any
other generation is invisible to readers.  That gives two things:

* **O(1) removal.**  DEL, an overwrite (SET over a hash), RENAME away and expiry change or
  remove the head only, in the unit's own transaction, which also writes a *cleanup
  record* (``pk`` = ``g``, ``sk`` = due time + id) naming the old generation.  A
  background sweeper in every kvgate process queries the records that are due, and
  deletes the generation's items once the head no longer names it.  Records are due a
  grace period after they are written (longer than any unit may run), so a reader that
  read the head just before it changed still finds the frozen elements it names.  An
  expiring collection gets a record due when it expires: its elements go then, and its
  head with them (DynamoDB's own TTL deletes heads only, and lazily).
* **Large writes, atomically** (*shadow generation*).  A unit whose element writes do not
  fit one transaction (more than 100 items or 4 MB: HSET of 1,000 fields, a big
  ZUNIONSTORE, RENAME of a big collection, a collection growing past the inline limits at
  once) writes the collection's whole next state as a new generation, page by page with
  ``BatchWriteItem``, invisible while it is written.  A cleanup record due after a lease
  (the unit's timeout and more) is written first, so a writer that dies midway leaves
  nothing the sweeper will not find.  The switch is then one ``TransactWriteItems``: the
  head names the new generation, on condition that its version is the one the unit read
  and that the lease record is still there (unclaimed by the sweeper); a cleanup record
  for the old generation goes in the same transaction.  Readers see the old state or the
  new one, never a mix.  The cost is a copy of the collection: O(N) writes for a command
  that changes more than about 90 elements (one that changes fewer is a transaction of
  exactly those elements and the head).
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from typing import TYPE_CHECKING, Any

from kvgate.adapters import dynamodb_items as items
from kvgate.adapters.dynamodb_items import ELEMENT, GC_PK, HEAD, KEY_PREFIX, ORDER, Entry
from kvgate.engine.storage import Member

if TYPE_CHECKING:
    from kvgate.adapters.dynamodb import DynamoBackend

log = logging.getLogger("kvgate.dynamodb")
_U64 = struct.Struct(">Q")
#: The generation of a record that names no generation: a hash's field expiry is due
#: (Redis 7.4's field expiration).  The sweeper then runs a writable unit that reads the
#: key, whose lookup drops the expired fields (and the hash with its last one), as a
#: client's write would.
FIELDS_DUE = b""
#: BatchWriteItem calls a large write keeps in flight.
WRITERS = 16


class InjectedFailure(Exception):
    """Raised by a large write after ``fail_after_batches`` batches (tests of a crash)."""


def gc_record(name: bytes, gen: bytes, due_ms: int) -> dict[str, Any]:
    """A cleanup record: generation ``gen`` of key ``name`` goes once the head no longer
    names it (or has expired), from ``due_ms`` on."""
    return {
        "pk": {"B": GC_PK},
        "sk": {"B": _U64.pack(max(0, due_ms)) + os.urandom(8)},
        "key": {"B": KEY_PREFIX + name},
        "gen": {"B": gen},
        "ttl": {"N": str(due_ms // 1000 + 30 * 86400)},  # a forgotten record goes in a month
    }


def record_key(record: dict[str, Any]) -> dict[str, Any]:
    return {"pk": record["pk"], "sk": record["sk"]}


# --- the shadow generation -------------------------------------------------------------------


async def write_generation(
    backend: DynamoBackend, entry: Entry, old_gen: bytes | None, members: list[Member] | None
) -> None:
    """Write ``entry``'s whole state as generation ``entry.gen`` (new, invisible): from
    ``members`` when given, else the old generation's elements with ``entry.changes``
    applied.  The caller has written the lease record."""
    name, type, gen = entry.key.name, entry.key.type, entry.gen
    assert gen is not None
    pending: list[dict[str, Any]] = []
    batches = 0
    running: set[asyncio.Task[None]] = set()

    async def one(chunk: list[dict[str, Any]]) -> None:
        await backend._batch_write([{"PutRequest": {"Item": i}} for i in chunk])

    async def flush(force: bool) -> None:
        nonlocal batches
        while len(pending) >= 25 or (force and pending):
            chunk, pending[:] = pending[:25], pending[25:]
            if backend.fail_after_batches is not None and batches >= backend.fail_after_batches:
                await asyncio.gather(*running)
                raise InjectedFailure(f"injected failure after {batches} batches")
            running.add(asyncio.ensure_future(one(chunk)))
            batches += 1
            if len(running) >= WRITERS:  # a few batches in flight at once
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                running.difference_update(done)
                for task in done:
                    task.result()
        if force and running:
            await asyncio.gather(*running)
            running.clear()

    def add(m: Member) -> None:
        pending.extend(items.element_items(name, type, gen, m))

    try:
        if members is not None:
            for m in members:
                add(m)
                await flush(False)
        else:
            assert old_gen is not None
            async for m in backend._query_elements(name, type, old_gen):
                if m.member in entry.changes:
                    continue
                add(m)
                await flush(False)
            for changed in entry.changes.values():
                if changed is not None:
                    add(changed)
                    await flush(False)
        await flush(True)
    except BaseException:
        for task in running:
            task.cancel()
        raise


# --- the sweeper -----------------------------------------------------------------------------


async def sweep(backend: DynamoBackend, now: int, limit: int = 25) -> int:
    """Handle the cleanup records due by ``now``; how many were handled."""
    page = await backend._call(
        backend._client.query,
        TableName=backend.table,
        KeyConditionExpression="#pk = :g AND #sk < :now",
        ExpressionAttributeNames={"#pk": "pk", "#sk": "sk"},
        ExpressionAttributeValues={":g": {"B": GC_PK}, ":now": {"B": _U64.pack(now)}},
        Limit=limit,
    )
    handled = 0
    for record in page.get("Items", []):
        if await _handle(backend, record, now):
            handled += 1
    return handled


async def _handle(backend: DynamoBackend, record: dict[str, Any], now: int) -> bool:
    from kvgate.adapters.dynamodb import _Conflict

    pk_bytes: bytes = record["key"]["B"]
    gen: bytes = record["gen"]["B"]
    # claim it: the record moves a lease ahead, so a sweeper that dies here leaves it to
    # be found again, and a large write waiting on this record can no longer switch
    moved = gc_record(pk_bytes[len(KEY_PREFIX) :], gen, now + backend.lease_ms)
    try:
        await backend._write(
            backend._client.transact_write_items,
            TransactItems=[
                {
                    "Delete": {
                        "TableName": backend.table,
                        "Key": record_key(record),
                        "ConditionExpression": "attribute_exists(#pk)",
                        "ExpressionAttributeNames": {"#pk": "pk"},
                    }
                },
                {"Put": {"TableName": backend.table, "Item": moved}},
            ],
        )
    except _Conflict:
        return False  # another sweeper has it
    if gen == FIELDS_DUE:  # a failure leaves the moved record, due again after the lease
        await backend._unit([[b"HLEN", pk_bytes[len(KEY_PREFIX) :]]], writable=True)
        await backend._write(backend._client.delete_item, TableName=backend.table, Key=record_key(moved))
        return True
    head = await backend._call(
        backend._client.get_item,
        TableName=backend.table,
        Key={"pk": {"B": pk_bytes}, "sk": {"B": HEAD}},
        ConsistentRead=True,
    )
    item = head.get("Item")
    named = item is not None and item.get("g", {}).get("B") == gen
    expire_at = int(item["x"]["N"]) if item is not None and "x" in item else None
    if named and (expire_at is None or expire_at > now):
        if expire_at is not None:  # still live, expiring later: look again then
            later = gc_record(pk_bytes[len(KEY_PREFIX) :], gen, expire_at + backend.gc_grace_ms)
            await backend._write(backend._client.put_item, TableName=backend.table, Item=later)
    else:
        if named:  # expired: the head goes too (if unchanged since read)
            assert item is not None
            try:
                await backend._write(
                    backend._client.delete_item,
                    TableName=backend.table,
                    Key={"pk": {"B": pk_bytes}, "sk": {"B": HEAD}},
                    ConditionExpression="#ver = :ver",
                    ExpressionAttributeNames={"#ver": "ver"},
                    ExpressionAttributeValues={":ver": item["ver"]},
                )
            except _Conflict:  # written meanwhile: it names the generation still, or not
                return True  # the moved record comes back after the lease
        for prefix in (ELEMENT, ORDER):
            await delete_prefix(backend, pk_bytes, prefix + gen)
    await backend._write(backend._client.delete_item, TableName=backend.table, Key=record_key(moved))
    return True


async def delete_prefix(backend: DynamoBackend, pk_bytes: bytes, prefix: bytes) -> int:
    """Delete every item of partition ``pk_bytes`` whose sort key starts with ``prefix``."""
    deleted = 0
    start: dict[str, Any] | None = None
    while True:
        kwargs: dict[str, Any] = {"ExclusiveStartKey": start} if start else {}
        page = await backend._call(
            backend._client.query,
            TableName=backend.table,
            KeyConditionExpression="#pk = :pk AND begins_with(#sk, :p)",
            ExpressionAttributeNames={"#pk": "pk", "#sk": "sk"},
            ExpressionAttributeValues={":pk": {"B": pk_bytes}, ":p": {"B": prefix}},
            ProjectionExpression="#pk, #sk",
            ConsistentRead=True,
            **kwargs,
        )
        keys = [{"pk": i["pk"], "sk": i["sk"]} for i in page.get("Items", [])]
        await backend._batch_write([{"DeleteRequest": {"Key": k}} for k in keys])
        deleted += len(keys)
        start = page.get("LastEvaluatedKey")
        if start is None:
            return deleted


async def sweeper(backend: DynamoBackend) -> None:
    """Every ``gc_interval`` seconds, the due cleanup records (a failure is logged and
    tried again next time)."""
    from kvgate.adapters.dynamodb import CAPACITY_LABEL, now_ms

    CAPACITY_LABEL.set("gc")
    while True:
        await asyncio.sleep(backend.gc_interval)
        if backend._client is None:
            continue
        try:
            while await sweep(backend, now_ms()) > 0:
                pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("dynamodb cleanup: %s", exc)
