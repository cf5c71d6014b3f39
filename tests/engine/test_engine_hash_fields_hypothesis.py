"""Hash field expiration on SQLite and DynamoDB Local against the memory store, under one
clock the test moves.

No Redis here has field expiration, so the memory store (the reference implementation of
the storage interface, obviously right: it drops expired fields at lookup) is the model.
Each step runs one command on all three at the same fixed time; the clock moves by steps
of 1 ms to 1 s, so fields expire between commands, and are then met by readers (which
SQLite's read-only units must hide), by writers (which drop them), by the SQLite sweeper
and by a spilled DynamoDB hash.  Replies must be equal, error texts included.

Default: ``KVGATE_HYPOTHESIS_EXAMPLES`` (15 here) examples of 25 steps: 18 s here with
DynamoDB Local's start (the machine loaded).  Checked to fail: with SQLite's read-only
units no longer hiding expired fields, the first run of 15 examples found it.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from kvgate.adapters.sqlite_store import SqliteStore
from kvgate.engine import Engine, command_table
from kvgate.engine.memory import MemoryStore
from kvgate.protocol import Reply
from tests.support.engine import DynamoEngineClient, comparable
from tests.support.servers import DynamoDBLocal

#: The clock's start (2033): later than the real time, so no background sweep that reads
#: the real clock (DynamoDB's) drops what this clock has not expired.
BASE = 2_000_000_000_000
EXAMPLES = int(os.environ.get("KVGATE_HYPOTHESIS_EXAMPLES", "15"))
KEYS = ("a", "b")
FIELDS = tuple(f"f{i}" for i in range(5))

keys = st.sampled_from(KEYS)
fields = st.lists(st.sampled_from(FIELDS), min_size=1, max_size=4)
#: Expiry times relative to the clock: past, now, soon, later.
offsets = st.sampled_from([-1000, 0, 1, 40, 40, 300, 300, 5000])
values = st.sampled_from(["1", "2", "x", "10"])


def _unordered(cmd: list[bytes], reply: object) -> object:
    """Field-value pairs as a sorted list: a big hash's order is the store's own (by field
    on DynamoDB, a hash table's on Redis), a small one's is compared by the unit tests."""
    if cmd[0] in (b"HGETALL", b"HRANDFIELD", b"HSCAN") and isinstance(reply, list):
        flat = reply[1] if cmd[0] == b"HSCAN" else reply
        assert isinstance(flat, list)
        return sorted(zip(flat[::2], flat[1::2], strict=True))
    return reply


class Stores:
    """The three stores, one engine, one clock."""

    def __init__(self, tmp: Path, dynamo: DynamoEngineClient) -> None:
        self.engine = Engine("test")
        self.table = command_table()
        self.memory = MemoryStore()
        self.sqlite = SqliteStore(str(tmp / "hf.db"))
        self.dynamo = dynamo
        self.now = BASE

    def run(self, *args: object) -> None:
        cmd = [str(a).encode() for a in args]
        write = "readonly" not in self.table.lookup(cmd).flags
        replies: dict[str, Reply] = {"memory": self.engine.execute(self.memory.txn(self.now), cmd)}
        with self.sqlite.unit(write, self.now) as t:
            replies["sqlite"] = self.engine.execute(t, cmd)
        with self.dynamo._unit(write, self.now) as d:
            replies["dynamodb"] = self.engine.execute(d, cmd)
        seen = {name: _unordered(cmd, comparable(r)) for name, r in replies.items()}
        assert seen["sqlite"] == seen["memory"] == seen["dynamodb"], f"{args}: {seen}"

    def close(self) -> None:
        self.sqlite.close()


class FieldExpiryMatchesMemory(RuleBasedStateMachine):
    stores: Stores

    @initialize()
    def start(self) -> None:
        self.stores = STORES[-1]
        self.stores.now = BASE  # every example at the same times: replays are exact
        self.stores.run("FLUSHALL")

    def at(self, offset: int) -> int:
        return max(1, self.stores.now + offset)

    @rule(key=keys, pairs=st.lists(st.tuples(st.sampled_from(FIELDS), values), min_size=1, max_size=3))
    def hset(self, key: str, pairs: list[tuple[str, str]]) -> None:
        self.stores.run("HSET", key, *[x for p in pairs for x in p])

    @rule(key=keys)
    def hset_big(self, key: str) -> None:
        """Past Redis's listpack limits: DynamoDB keeps an item per field."""
        self.stores.run("HSET", key, *[x for i in range(130) for x in (f"g{i}", "v")])

    @rule(key=keys, offset=offsets, cond=st.sampled_from(["", "NX", "XX", "GT", "LT"]), f=fields)
    def hpexpireat(self, key: str, offset: int, cond: str, f: list[str]) -> None:
        big = ["g1", "g2"] if offset > 0 else []
        self.stores.run(
            "HPEXPIREAT", key, self.at(offset), *([cond] if cond else []), "FIELDS", len(f + big), *f, *big
        )

    @rule(key=keys, f=fields, ms=st.sampled_from([1, 40]), cond=st.sampled_from(["", "NX", "LT"]))
    def expire_then_read(self, key: str, f: list[str], ms: int, cond: str) -> None:
        """The case the machine is for, made likely: fields expire, then readers meet them."""
        self.stores.run("HPEXPIREAT", key, self.at(ms), *([cond] if cond else []), "FIELDS", len(f), *f)
        self.stores.now += ms
        self.read(key, f)

    @rule(key=keys, f=fields)
    def hpersist(self, key: str, f: list[str]) -> None:
        self.stores.run("HPERSIST", key, "FIELDS", len(f), *f)

    @rule(key=keys, offset=offsets, persist=st.booleans(), f=fields)
    def hgetex(self, key: str, offset: int, persist: bool, f: list[str]) -> None:
        option = ["PERSIST"] if persist else ["PXAT", self.at(offset)]
        self.stores.run("HGETEX", key, *option, "FIELDS", len(f), *f)

    @rule(
        key=keys,
        cond=st.sampled_from(["", "FNX", "FXX"]),
        option=st.sampled_from(["", "KEEPTTL", "PXAT"]),
        offset=offsets,
        f=fields,
    )
    def hsetex(self, key: str, cond: str, option: str, offset: int, f: list[str]) -> None:
        opts = ([cond] if cond else []) + ([option] if option else [])
        if option == "PXAT":
            opts.append(str(self.at(offset)))
        self.stores.run("HSETEX", key, *opts, "FIELDS", len(f), *[x for name in f for x in (name, "s")])

    @rule(key=keys, f=fields, how=st.sampled_from(["HGETDEL", "HDEL"]))
    def delete(self, key: str, f: list[str], how: str) -> None:
        if how == "HDEL":
            self.stores.run("HDEL", key, *f)
        else:
            self.stores.run("HGETDEL", key, "FIELDS", len(f), *f)

    @rule(key=keys, field=st.sampled_from(FIELDS), float_=st.booleans())
    def hincr(self, key: str, field: str, float_: bool) -> None:
        self.stores.run("HINCRBYFLOAT" if float_ else "HINCRBY", key, field, "1")

    @rule(key=keys, field=st.sampled_from(FIELDS))
    def hsetnx(self, key: str, field: str) -> None:
        self.stores.run("HSETNX", key, field, "n")

    @rule(key=keys, f=fields)
    def reads(self, key: str, f: list[str]) -> None:
        self.read(key, f)

    def read(self, key: str, f: list[str]) -> None:
        s = self.stores
        for cmd in (
            ["HGETALL", key],
            ["HLEN", key],
            ["HMGET", key, *f],
            ["HPTTL", key, "FIELDS", len(f), *f],
            ["HPEXPIRETIME", key, "FIELDS", len(f), *f],
            ["HEXISTS", key, f[0]],
            ["HSTRLEN", key, f[0]],
            ["HRANDFIELD", key, 1000, "WITHVALUES"],
            ["HSCAN", key, 0, "COUNT", 1000],
            ["EXISTS", key],
            ["TYPE", key],
        ):
            s.run(*cmd)

    @rule(src=keys, how=st.sampled_from(["COPY", "RENAME"]))
    def move(self, src: str, how: str) -> None:
        dest = "b" if src == "a" else "a"
        self.stores.run(how, src, dest, *(["REPLACE"] if how == "COPY" else []))

    @rule(ms=st.sampled_from([1, 10, 40, 100, 1000]), f=fields)
    def tick(self, ms: int, f: list[str]) -> None:
        """Time moves, and readers meet what expired first (SQLite's read-only units)."""
        self.stores.now += ms
        for key in KEYS:
            self.read(key, f)

    @rule()
    def sweep(self) -> None:
        with self.stores.sqlite.unit(True, self.stores.now) as t:
            t.sweep()


STORES: list[Stores] = []


def test_field_expiry_on_sqlite_and_dynamodb_matches_memory(
    tmp_path: Path, dynamodb_local: DynamoDBLocal
) -> None:
    dynamo = DynamoEngineClient(dynamodb_local.clean_table())
    STORES.append(Stores(tmp_path, dynamo))
    try:
        run_state_machine_as_test(
            FieldExpiryMatchesMemory,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=25,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            ),
        )
    finally:
        STORES.pop().close()
        dynamo.close()
