"""The command table: every fact kvgate knows about a Redis command, in one place.

The baseline comes from ``command_table.json``, generated from a real Redis 7.0 by
``tools/gen_command_table.py`` (arity, flags, key specs, docs) together with kvgate's
policy (``kvgate/policy.py``: over REST, in a pipeline, in a transaction, with a
read-only token).  Each backend serves its own table built on the baseline
(:attr:`kvgate.adapters.Backend.commands`): a Redis adds what its server's ``COMMAND``
reports (modules, newer versions: :func:`entries_from_reply`); kvgate's engine keeps
what it implements and adds the facts it declares (:meth:`CommandTable.with_declared`).
Validation, read-only enforcement, refusal, key extraction and the docs all read it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from kvgate import error_texts
from kvgate.errors import ReplyError
from kvgate.policy import policy_for

TABLE_PATH = Path(__file__).with_name("command_table.json")


class Context(Enum):
    """Where a command arrives; the policy can differ per context."""

    REST = "rest"
    PIPELINE = "pipeline"
    TRANSACTION = "transaction"


@dataclass(frozen=True, slots=True)
class KeySpec:
    flags: frozenset[str]  # RW, OW, RO, access, update, insert, delete...
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
            flags=frozenset(raw.get("flags", ())),
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
    #: Whether the backend serving this table runs it (kvgate's engine runs a subset).
    supported: bool = True
    #: Whether the reply is a status (``+OK``) rather than a bulk string: Lua scripts see
    #: the two differently.  Redis's ``COMMAND`` does not say; the engine declares it.
    status_reply: bool = False
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
        """An entry of the table's JSON; without a ``policy`` record, the policy rules
        decide it from the facts."""
        policy = raw.get("policy") or policy_for(
            name,
            set(raw["flags"]),
            set(raw["categories"]),
            bool(raw["key_specs"]) or raw.get("first_key", 0) > 0,
        )
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
            status_reply=raw.get("status_reply", False),
        )

    @property
    def blind_write(self) -> bool:
        """Whether it may replace its keys without reading them: every key spec is flagged
        ``update`` and ``OW`` (overwrite), or ``variable_flags`` (SET: its reading options
        are the exception).  A store may then skip fetching the keys first."""
        return bool(self.key_specs) and all(
            "update" in ks.flags and ("OW" in ks.flags or "variable_flags" in ks.flags)
            for ks in self.key_specs
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
    def __init__(self, commands: dict[bytes, Command], generated_from: str) -> None:
        self.generated_from = generated_from  # where the facts came from, for docs and logs
        self._by_name = commands

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> CommandTable:
        commands = {name.encode(): Command.from_json(name, body) for name, body in raw["commands"].items()}
        return cls(commands, raw["generated_from"])

    @classmethod
    def load(cls, path: Path = TABLE_PATH) -> CommandTable:
        return cls.from_json(json.loads(path.read_text()))

    def __iter__(self) -> Iterator[Command]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    def everything(self) -> Iterator[Command]:
        """Every command and subcommand (containers such as SCRIPT themselves too)."""
        for command in self._by_name.values():
            yield command
            yield from command.subcommands.values()

    def get(self, name: str) -> Command | None:
        container, _, sub = name.lower().partition("|")
        cmd = self._by_name.get(container.encode())
        if cmd is not None and sub:
            return cmd.subcommands.get(sub.encode())
        return cmd

    def group_of(self, name: bytes) -> str | None:
        """The group (``string``, ``hash``, ...) of a lower-case command name, None when
        the table has no such command: for metrics, whose labels must stay bounded."""
        cmd = self._by_name.get(name)
        return None if cmd is None else cmd.group

    def lookup(self, args: Sequence[bytes]) -> Command:
        """Resolve a command (and subcommand) and check its arity, with Redis's error texts."""
        cmd = self._by_name.get(args[0].lower())
        if cmd is None:
            raise ReplyError(error_texts.unknown_command(_text(args[0]), [_text(a) for a in args[1:]]))
        if cmd.subcommands:
            if len(args) < 2:
                if cmd.arity_ok(len(args)):  # COMMAND alone lists every command
                    return cmd
                raise ReplyError(error_texts.wrong_arity(cmd.name))
            sub = cmd.subcommands.get(args[1].lower())
            if sub is None:
                raise ReplyError(error_texts.unknown_subcommand(cmd.name, _text(args[1])))
            cmd = sub
        if not cmd.arity_ok(len(args)):
            raise ReplyError(error_texts.wrong_arity(cmd.name))
        return cmd

    # -- tables built on this one

    def merged(self, entries: dict[str, dict[str, Any]], source: str) -> CommandTable:
        """This table with ``entries`` (COMMAND-shaped, see :func:`entries_from_reply`)
        replacing or adding commands: a live server's facts win over the baseline's."""
        commands = dict(self._by_name)
        for name, raw in entries.items():
            commands[name.encode()] = Command.from_json(name, raw)
        return CommandTable(commands, f"{self.generated_from} + {source}")

    def with_declared(self, declared: dict[str, dict[str, Any]], source: str) -> CommandTable:
        """This table with facts a backend declares: for a command the table has, extra
        ``flags`` and ``status_reply``; for one it lacks, a whole COMMAND-shaped entry."""
        table = CommandTable(dict(self._by_name), f"{self.generated_from} + {source}")
        for name, facts in declared.items():
            known = table.get(name)
            if known is None:
                missing = {"arity", "flags", "categories", "key_specs"} - set(facts)
                if "|" in name or missing:
                    raise ValueError(
                        f"{source}: {name} is not in the baseline: declare the whole entry "
                        f"(lacking {', '.join(sorted(missing)) or 'a container command'})"
                    )
                table._by_name[name.encode()] = Command.from_json(name, facts)
                continue
            extra = set(facts) - {"flags", "status_reply"}
            if extra:
                raise ValueError(
                    f"{source}: {name} is in the baseline; only flags and status_reply may change"
                )
            table._replace(
                replace(
                    known,
                    flags=known.flags | frozenset(facts.get("flags", ())),
                    status_reply=facts.get("status_reply", known.status_reply),
                )
            )
        return table

    def restricted(self, runs: Callable[[str], bool], source: str) -> CommandTable:
        """This table with every command ``runs`` refuses marked unsupported (a container
        stays supported while one of its subcommands is)."""
        table = CommandTable(dict(self._by_name), f"{self.generated_from}, {source}")
        for command in list(table._by_name.values()):
            subs = {k: replace(v, supported=runs(v.name)) for k, v in command.subcommands.items()}
            supported = runs(command.name) or any(v.supported for v in subs.values())
            table._by_name[command.name.encode()] = replace(command, subcommands=subs, supported=supported)
        return table

    def refusing(self, names: Iterable[str], reason: str, source: str) -> CommandTable:
        """This table with the commands ``names`` (full names, ``function|load``) refused in
        every context for ``reason``: a backend's own refusals, which depend on where its
        store is (a Redis that also holds another database).  Unknown names are skipped."""
        table = CommandTable(dict(self._by_name), f"{self.generated_from}, {source}")
        for name in names:
            known = table.get(name)
            if known is not None:
                table._replace(replace(known, rest=False, pipeline=False, transaction=False, refusal=reason))
        return table

    def _replace(self, command: Command) -> None:
        container, _, sub = command.name.partition("|")
        if not sub:
            self._by_name[container.encode()] = command
            return
        parent = self._by_name[container.encode()]
        subs = {**parent.subcommands, sub.encode(): command}
        self._by_name[container.encode()] = replace(parent, subcommands=subs)


# --- reading a server's COMMAND and COMMAND DOCS replies --------------------------------


def _str(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _pairs(flat: list[Any]) -> dict[str, Any]:
    return {_str(flat[i]): flat[i + 1] for i in range(0, len(flat) - 1, 2)}


def _key_spec(raw: list[Any]) -> dict[str, Any]:
    spec = _pairs(raw)
    bs, fk = _pairs(spec["begin_search"]), _pairs(spec["find_keys"])
    return {
        "flags": [_str(f) for f in spec.get("flags", [])],
        "begin_search": {
            "type": _str(bs["type"]),
            **{k: _str(v) for k, v in _pairs(bs["spec"] or []).items()},
        },
        "find_keys": {"type": _str(fk["type"]), **{k: _str(v) for k, v in _pairs(fk["spec"] or []).items()}},
    }


def _legacy_key_spec(first: int, last: int, step: int) -> list[dict[str, Any]]:
    """A key spec from COMMAND's first/last/step (servers before 7.0, and modules that
    declare no key specs)."""
    if first <= 0:
        return []
    return [
        {
            "flags": [],
            "begin_search": {"type": "index", "index": first},
            "find_keys": {
                "type": "range",
                "lastkey": last - first if last >= 0 else last,
                "keystep": step,
                "limit": 0,
            },
        }
    ]


def entry_from_info(info: list[Any], docs: dict[str, Any]) -> dict[str, Any]:
    """One command table entry (without its policy) from a ``COMMAND`` reply element."""
    name = _str(info[0]).lower()
    key_specs = [_key_spec(ks) for ks in info[8]] if len(info) > 8 and info[8] else []
    if not key_specs:
        key_specs = _legacy_key_spec(info[3], info[4], info[5])
    doc = docs.get(name, {})
    entry: dict[str, Any] = {
        "arity": info[1],
        "flags": sorted(_str(f) for f in info[2]),
        "categories": sorted(_str(c) for c in info[6]) if len(info) > 6 else [],
        "first_key": info[3],
        "last_key": info[4],
        "key_step": info[5],
        "key_specs": key_specs,
        "summary": doc.get("summary", ""),
        "group": doc.get("group", ""),
        "since": doc.get("since", ""),
    }
    subcommands = info[9] if len(info) > 9 else []
    if subcommands:
        sub_docs = doc.get("subcommands", {})
        entry["subcommands"] = dict(
            sorted(
                (_str(sub[0]).lower().split("|", 1)[1], entry_from_info(sub, sub_docs)) for sub in subcommands
            )
        )
    return entry


def _docs_map(raw: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(0, len(raw) - 1, 2):
        fields = _pairs(raw[i + 1])
        doc = {k: _str(v) for k, v in fields.items()}
        if isinstance(fields.get("subcommands"), list):
            doc["subcommands"] = _docs_map(fields["subcommands"])
        out[_str(raw[i]).lower()] = doc
    return out


def _with_policy(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    has_keys = bool(entry["key_specs"]) or entry["first_key"] > 0
    entry["policy"] = policy_for(name, set(entry["flags"]), set(entry["categories"]), has_keys)
    for sub, body in entry.get("subcommands", {}).items():
        _with_policy(f"{name}|{sub}", body)
    return entry


def entries_from_reply(infos: list[Any], docs: Any) -> dict[str, dict[str, Any]]:
    """Table entries, policy included, from a server's ``COMMAND`` and ``COMMAND DOCS``
    replies (RESP2 as hiredis gives them; ``docs`` may be an error or None where the
    server has no COMMAND DOCS)."""
    doc_map = _docs_map(docs) if isinstance(docs, list) else {}
    entries = {_str(info[0]).lower(): entry_from_info(info, doc_map) for info in infos}
    return {name: _with_policy(name, entry) for name, entry in sorted(entries.items())}


@cache
def default_table() -> CommandTable:
    return CommandTable.load()
