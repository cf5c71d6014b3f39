"""Regenerate the generated sections of README.md from the command table and settings.

Usage:  python tools/gen_docs.py          (rewrites README.md in place)
        python tools/gen_docs.py --check  (exit 1 if README.md is out of date)
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kvgate.commands import Command, default_table  # noqa: E402
from kvgate.config import DATABASE_SETTINGS, SERVER_SETTINGS, Setting  # noqa: E402

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


def _setting_row(s: Setting) -> str:
    default = s.default if s.default not in ([], None) else "—"
    flag = (
        "--" + s.name.replace("_", "-").removesuffix("s")
        if s.kind is list
        else "--" + s.name.replace("_", "-")
    )
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


SECTIONS = {"commands": commands_section, "settings": settings_section}


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
