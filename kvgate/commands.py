"""The command table: every fact kvgate knows about a Redis command, in one place.

The facts come from ``command_table.json``, generated from a real Redis by
``tools/gen_command_table.py`` (arity, flags, key specs, docs) together with kvgate's
policy (over REST, in a pipeline, in a transaction, with a read-only token).
Validation, read-only enforcement, refusal, key extraction and the docs all read it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from kvgate import error_texts as errors
from kvgate.errors import ReplyError

TABLE_PATH = Path(__file__).with_name("command_table.json")


class Context(Enum):
    """Where a command arrives; the policy can differ per context."""

    REST = "rest"
    PIPELINE = "pipeline"
    TRANSACTION = "transaction"


@dataclass(frozen=True, slots=True)
class KeySpec:
    begin: str  # "index" | "keyword" | "unknown"
    index: int = 0
    keyword: bytes = b""
    startfrom: int = 0
    find: str = "range"  # "range" | "keynum" | "unknown"
    lastkey: int = 0
    keystep: int = 1
    limit: int = 0
    keynumidx: int = 0
    firstkey: int = 0

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> KeySpec:
        bs, fk = raw["begin_search"], raw["find_keys"]
        return cls(
            begin=bs["type"],
            index=bs.get("index", 0),
            keyword=bs.get("keyword", "").encode(),
            startfrom=bs.get("startfrom", 0),
            find=fk["type"],
            lastkey=fk.get("lastkey", 0),
            keystep=fk.get("keystep", 1),
            limit=fk.get("limit", 0),
            keynumidx=fk.get("keynumidx", 0),
            firstkey=fk.get("firstkey", 0),
        )

    def positions(self, args: Sequence[bytes]) -> range:
        """Argument positions holding keys, as Redis's ``getKeysUsingKeySpecs`` finds them."""
        argc = len(args)
        empty = range(0)
        if self.begin == "index":
            first = self.index
        elif self.begin == "keyword":
            if self.startfrom >= 0:
                candidates = range(self.startfrom, argc)
            else:
                candidates = range(argc + self.startfrom, 0, -1)
            found = next((i for i in candidates if args[i].upper() == self.keyword), None)
            if found is None:
                return empty
            first = found + 1
        else:
            return empty
        if self.find == "range":
            step = self.keystep
            if self.lastkey >= 0:
                last = first + self.lastkey
            elif not self.limit:
                last = argc + self.lastkey
            else:
                last = first + ((argc - first) // self.limit + self.lastkey)
        elif self.find == "keynum":
            if first + self.keynumidx >= argc:
                return empty
            try:
                numkeys = int(args[first + self.keynumidx])
            except ValueError:
                return empty
            step = self.keystep
            first = first + self.firstkey
            last = first + (numkeys - 1) * step
        else:
            return empty
        return range(first, min(last, argc - 1) + 1, step) if last >= first else empty


@dataclass(frozen=True, slots=True)
class RefusedOption:
    """An option that makes an otherwise allowed command refused (``XREAD ... BLOCK``,
    ``COPY ... DB``), found the way Redis reads options: left to right from ``start``,
    each option word followed by its values, until ``stop``."""

    keyword: bytes
    start: int
    stop: bytes | None
    arity: dict[bytes, int]
    reason: str

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> RefusedOption | None:
        if not raw:
            return None
        return cls(
            keyword=raw["keyword"].encode(),
            start=raw["start"],
            stop=raw["stop"].encode() if raw["stop"] else None,
            arity={k.encode(): v for k, v in raw["arity"].items()},
            reason=raw["reason"],
        )

    def present(self, args: Sequence[bytes]) -> bool:
        i = self.start
        while i < len(args):
            word = args[i].upper()
            if word == self.keyword:
                return True
            if word == self.stop:
                return False
            i += 1 + self.arity.get(word, 0)
        return False


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # full name, "get" or "config|get"
    arity: int
    flags: frozenset[str]
    categories: frozenset[str]
    key_specs: tuple[KeySpec, ...]
    summary: str
    group: str
    since: str
    rest: bool
    pipeline: bool
    transaction: bool
    readonly_token: bool
    refusal: str | None
    refused_option: RefusedOption | None
    alias_of: bytes | None  # sent to the backend as this command instead
    subcommands: dict[bytes, Command] = field(default_factory=dict)
    # A tuple, not a frozenset: `in` then compares enum members by identity, no hashing.
    _contexts: tuple[Context, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        allowed = {
            Context.REST: self.rest,
            Context.PIPELINE: self.pipeline,
            Context.TRANSACTION: self.transaction,
        }
        object.__setattr__(self, "_contexts", tuple(c for c, ok in allowed.items() if ok))

    @classmethod
    def from_json(cls, name: str, raw: dict[str, Any]) -> Command:
        policy = raw["policy"]
        return cls(
            name=name,
            arity=raw["arity"],
            flags=frozenset(raw["flags"]),
            categories=frozenset(raw["categories"]),
            key_specs=tuple(KeySpec.from_json(k) for k in raw["key_specs"]),
            summary=raw.get("summary", ""),
            group=raw.get("group", ""),
            since=raw.get("since", ""),
            rest=policy["rest"],
            pipeline=policy["pipeline"],
            transaction=policy["transaction"],
            readonly_token=policy["readonly_token"],
            refusal=policy["refusal"],
            refused_option=RefusedOption.from_json(policy.get("refused_option")),
            alias_of=policy["alias_of"].encode() if policy.get("alias_of") else None,
            subcommands={
                sub.encode(): cls.from_json(f"{name}|{sub}", body)
                for sub, body in raw.get("subcommands", {}).items()
            },
        )

    def arity_ok(self, argc: int) -> bool:
        return argc == self.arity if self.arity > 0 else argc >= -self.arity

    @property
    def contexts(self) -> tuple[Context, ...]:
        return self._contexts

    def allowed_in(self, context: Context) -> bool:
        return context in self._contexts

    def key_positions(self, args: Sequence[bytes]) -> list[int]:
        seen: dict[int, None] = {}
        for spec in self.key_specs:
            for pos in spec.positions(args):
                seen.setdefault(pos, None)
        return list(seen)

    def keys(self, args: Sequence[bytes]) -> list[bytes]:
        return [args[i] for i in self.key_positions(args)]


def _text(b: bytes) -> str:
    return b.decode("utf-8", "replace")


class CommandTable:
    def __init__(self, raw: dict[str, Any]) -> None:
        self.generated_from: str = raw["generated_from"]
        self._by_name: dict[bytes, Command] = {
            name.encode(): Command.from_json(name, body) for name, body in raw["commands"].items()
        }

    @classmethod
    def load(cls, path: Path = TABLE_PATH) -> CommandTable:
        return cls(json.loads(path.read_text()))

    def __iter__(self) -> Iterator[Command]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def get(self, name: str) -> Command | None:
        container, _, sub = name.lower().partition("|")
        cmd = self._by_name.get(container.encode())
        if cmd is not None and sub:
            return cmd.subcommands.get(sub.encode())
        return cmd

    def lookup(self, args: Sequence[bytes]) -> Command:
        """Resolve a command (and subcommand) and check its arity, with Redis's error texts."""
        cmd = self._by_name.get(args[0].lower())
        if cmd is None:
            raise ReplyError(errors.unknown_command(_text(args[0]), [_text(a) for a in args[1:]]))
        if cmd.subcommands:
            if len(args) < 2:
                if cmd.arity_ok(len(args)):  # COMMAND alone lists every command
                    return cmd
                raise ReplyError(errors.wrong_arity(cmd.name))
            sub = cmd.subcommands.get(args[1].lower())
            if sub is None:
                raise ReplyError(errors.unknown_subcommand(cmd.name, _text(args[1])))
            cmd = sub
        if not cmd.arity_ok(len(args)):
            raise ReplyError(errors.wrong_arity(cmd.name))
        return cmd


@cache
def default_table() -> CommandTable:
    return CommandTable.load()
