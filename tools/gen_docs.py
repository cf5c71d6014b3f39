"""Regenerate the generated sections of README.md from the command table and settings.

Usage:  python tools/gen_docs.py          (rewrites README.md in place)
        python tools/gen_docs.py --check  (exit 1 if README.md is out of date)
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

from kvgate.adapters import REGISTRY
from kvgate.commands import Command, default_table
from kvgate.config import DATABASE_SETTINGS, SERVER_SETTINGS, Setting

ROOT = Path(__file__).resolve().parents[1]

README = ROOT / "README.md"


def _all_commands() -> list[Command]:
    out: list[Command] = []
    for command in default_table():
        out.extend(command.subcommands.values() if command.subcommands else [command])
    return out


def commands_section() -> str:
    table = default_table()
    commands = _all_commands()
    refused: dict[str, list[str]] = defaultdict(list)
    for c in commands:
        if c.refusal:
            refused[c.refusal].append(c.name.replace("|", " ").upper())
    allowed = sum(1 for c in commands if c.rest)
    read_only = sum(1 for c in commands if c.rest and c.readonly_token)
    lines = [
        f"Generated from `kvgate/command_table.json` ({table.generated_from}, {len(commands)} commands"
        " and subcommands) by `python tools/gen_docs.py`.",
        "",
        f"- **Allowed over REST:** {allowed}; with a read-only token: {read_only} "
        "(commands Redis flags `readonly`, plus keyless ones such as PING, ECHO, TIME).",
        "- **Refused**, each with `ERR command '<name>' is not available over REST: <reason>`:",
        "",
        "| reason | commands |",
        "|---|---|",
    ]
    for reason, names in sorted(refused.items()):
        lines.append(f"| {reason} | {', '.join(sorted(names))} |")
    lines.append("")
    for c in sorted((c for c in commands if c.refused_option), key=lambda c: c.name):
        option = c.refused_option
        assert option is not None
        lines.append(
            f"- {c.name.upper()} is refused with its `{option.keyword.decode()}` option: {option.reason}."
        )
    for c in sorted((c for c in commands if c.alias_of), key=lambda c: c.name):
        assert c.alias_of is not None
        lines.append(
            f"- {c.name.upper()} runs as {c.alias_of.decode().upper()}: it empties this database, "
            "never the other databases of a shared Redis."
        )
    return "\n".join(lines)


def backend_urls_section() -> str:
    """The backend registry: one row per kind of backend."""
    lines = [
        "Generated from the backend registry (`kvgate/adapters/__init__.py`) by `python tools/gen_docs.py`.",
        "",
        "| backend | URL | what | commands run by | pub/sub | `pool_size` default | URL options |",
        "|---|---|---|---|---|---|---|",
    ]
    for e in REGISTRY:
        runs = "kvgate's engine" if e.engine else "the backend itself"
        options = "; ".join(
            f"`{o.name}`" + (f" (default `{o.default}`)" if o.default else "") + f": {o.help.rstrip('.')}"
            for o in e.url_options
        )
        lines.append(
            f"| {e.name} | `{e.url_form}` | {e.summary} | {runs} "
            f"| {'yes' if e.pubsub else 'no'} | {e.default_pool_size or '—'} | {options or '—'} |"
        )
    return "\n".join(lines)


def backends_section() -> str:
    """What kvgate's own engine (the SQLite and DynamoDB backends) runs, per Redis command
    group."""
    from kvgate.engine import command_table

    engine = command_table()
    by_group: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for c in _all_commands():
        if not c.rest:
            continue  # refused on every backend (see above)
        group = (c.group or c.name.split("|")[0]).replace("_", " ")
        yes, no = by_group[group]
        known = engine.get(c.name)
        (yes if known is not None and known.supported else no).append(c.name.replace("|", " ").upper())
    baseline = {c.name for c in _all_commands()}
    newer: dict[str, list[str]] = defaultdict(list)  # Redis version -> its commands beyond 7.0
    for c in engine:  # beyond Redis 7.0: the documents (RedisJSON's JSON.*), Redis 7.4+
        if c.name not in baseline and c.supported:
            group = "json (documents)" if c.name.startswith("json.") else c.group or c.name
            by_group[group][0].append(c.name.upper())
            since = tuple(int(p) for p in c.since.split(".") if p.isdigit())
            if not c.name.startswith("json.") and since > (7, 0, 99):
                newer[c.since].append(c.name.replace("|", " ").upper())
    beyond = "; ".join(
        f"{', '.join(sorted(names))} (Redis {since})" for since, names in sorted(newer.items())
    )
    lines = [
        "Generated from the engine's command table (`kvgate.engine.command_table()`) by "
        "`python tools/gen_docs.py`.",
        "On `redis://` and `fakeredis://` every command allowed over REST runs (fakeredis: as far as",
        "fakeredis implements it; JSON.* only where the server has a JSON module, see Documents).",
        "On `sqlite://` and `dynamodb://`, kvgate's own engine runs these;",
        "any other command answers `ERR command '<name>' is not supported by the sqlite backend` (or",
        "`dynamodb backend`; in /multi-exec, the transaction is discarded with `EXECABORT`, as Redis",
        "does for a command refused while queueing).",
        "",
        f"The engine also runs commands newer than Redis 7.0: {beyond}. On `redis://` they pass",
        "through to the server: a Redis that has them runs them; an older one (the Redis 7.0 these",
        "tests run) answers its own `ERR unknown command '<name>', with args beginning with: ...`.",
        "",
        "| group | on SQLite and DynamoDB | not on SQLite and DynamoDB |",
        "|---|---|---|",
    ]
    for group, (yes, no) in sorted(by_group.items(), key=lambda item: (-len(item[1][0]), item[0])):
        lines.append(f"| {group} | {', '.join(sorted(yes)) or '—'} | {', '.join(sorted(no)) or '—'} |")
    return "\n".join(lines)


def _setting_row(s: Setting) -> str:
    default = s.default if s.default not in ([], None) else "—"
    flag = (
        "--" + s.name.replace("_", "-").removesuffix("s")
        if s.kind is list
        else "--" + s.name.replace("_", "-")
    )
    if s.kind is bool:
        flag = f"{flag}/--no-{flag[2:]}"
    cli = f"`{flag}`, `{s.env}`" if s.env else "config file only"
    return f"| `{s.name}` | `{default}` | {cli} | {s.help} |"


def settings_section() -> str:
    lines = [
        "Generated from `kvgate/config.py` by `python tools/gen_docs.py`.",
        "",
        "Server (`[server]` in the config file):",
        "",
        "| setting | default | option, environment | meaning |",
        "|---|---|---|---|",
        *(_setting_row(s) for s in SERVER_SETTINGS),
        "",
        "Each database (`[databases.<name>]` in the config file; options for the single database):",
        "",
        "| setting | default | option, environment | meaning |",
        "|---|---|---|---|",
        *(_setting_row(s) for s in DATABASE_SETTINGS),
    ]
    return "\n".join(lines)


SECTIONS = {
    "commands": commands_section,
    "backend-urls": backend_urls_section,
    "backends": backends_section,
    "settings": settings_section,
}


def render(text: str) -> str:
    for name, make in SECTIONS.items():
        start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
        head, found, rest = text.partition(start)
        if not found:
            raise SystemExit(f"README.md lacks the {start} marker")
        _, found, tail = rest.partition(end)
        if not found:
            raise SystemExit(f"README.md lacks the {end} marker")
        text = f"{head}{start}\n{make()}\n{end}{tail}"
    return text


def main() -> int:
    current = README.read_text()
    fresh = render(current)
    if "--check" in sys.argv:
        if fresh != current:
            print("README.md is out of date: run python tools/gen_docs.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
