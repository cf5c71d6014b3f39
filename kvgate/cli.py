"""``kvgate`` command line.

click rather than argparse: it reads each option from its ``KVGATE_*`` environment
variable, validates types with clear messages and gives subcommands for free, which is
what ``serve`` (and later admin commands) need.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from kvgate import __version__
from kvgate.adapters import entry_for, redact_url
from kvgate.config import DATABASE_SETTINGS, SERVER_SETTINGS, Config, ConfigError, from_options, load_file

_HELP = {s.name: s for s in (*SERVER_SETTINGS, *DATABASE_SETTINGS)}


def _opt(name: str, *flags: str, **kwargs: Any) -> Any:
    setting = _HELP[name]
    return click.option(
        *flags,
        name,
        envvar=setting.env,
        show_envvar=True,
        default=None,
        help=f"{setting.help} [default: {setting.default!r}]"
        if setting.default not in ([], None)
        else setting.help,
        **kwargs,
    )


@click.group()
@click.version_option(__version__, prog_name="kvgate")
def main() -> None:
    """kvgate: the Upstash Redis REST protocol in front of your own data store."""


@main.command()
@click.option(
    "--config",
    "config_path",
    envvar="KVGATE_CONFIG",
    show_envvar=True,
    default=None,
    help="TOML file naming several databases, each under its own base path.",
)
@_opt("host", "--host")
@_opt("port", "--port", type=int)
@_opt("workers", "--workers", type=int)
@_opt("max_body_bytes", "--max-body-bytes", type=int)
@_opt("shutdown_timeout", "--shutdown-timeout", type=float)
@_opt("max_batch_commands", "--max-batch-commands", type=int)
@_opt("header_timeout", "--header-timeout", type=float)
@_opt("body_timeout", "--body-timeout", type=float)
@_opt("keepalive_timeout", "--keepalive-timeout", type=float)
@_opt("max_connections", "--max-connections", type=int)
@_opt("log_level", "--log-level")
@_opt("log_format", "--log-format", type=click.Choice(["text", "json"], case_sensitive=False))
@_opt("access_log", "--access-log/--no-access-log")
@_opt("console", "--console/--no-console")
@_opt("certfile", "--certfile")
@_opt("keyfile", "--keyfile")
@_opt("state_dir", "--state-dir")
@_opt("backend", "--backend")
@_opt("tokens", "--token", multiple=True)
@_opt("read_only_tokens", "--read-only-token", multiple=True)
@_opt("pool_size", "--pool-size", type=int)
@_opt("max_inflight", "--max-inflight", type=int)
@_opt("timeout", "--timeout", type=float)
@_opt("max_subscriptions", "--max-subscriptions", type=int)
@_opt("max_reply_bytes", "--max-reply-bytes", type=int)
@_opt("cors_origins", "--cors-origin", multiple=True)
def serve(config_path: str | None, **options: Any) -> None:
    """Serve the REST API (one database from options, or many from --config)."""
    try:
        config = build_config(config_path, options)
    except ConfigError as exc:
        click.echo(f"kvgate: config error: {exc}", err=True)
        sys.exit(2)
    from kvgate.tokens import with_persistent_tokens

    try:
        config, lines = with_persistent_tokens(config)
    except ConfigError as exc:
        click.echo(f"kvgate: config error: {exc}", err=True)
        sys.exit(2)
    for line in lines:  # a token is shown once, when it is generated
        click.echo(f"kvgate: {line}", err=True)
    for db in config.databases:
        entry = entry_for(db.backend)
        if entry.in_process:
            click.echo(
                f"kvgate: database {db.name!r} uses {entry.name}:// - in memory, lost when kvgate stops",
                err=True,
            )
    from kvgate.server import run

    sys.exit(run(config))


def build_config(config_path: str | None, options: dict[str, Any]) -> Config:
    server_names = {s.name for s in SERVER_SETTINGS}
    if config_path:
        db_options = sorted(k for k, v in options.items() if k not in server_names and v not in (None, ()))
        if db_options:
            raise ConfigError(
                f"--config names the databases; do not combine it with --{db_options[0].replace('_', '-')}"
            )
        return load_file(
            config_path, {k: v for k, v in options.items() if k in server_names and v is not None}
        )
    return from_options(options)


@main.group()
def dynamodb() -> None:
    """Manage the DynamoDB table behind a dynamodb:// backend."""


@dynamodb.command("create-table")
@click.argument("url")
def create_table(url: str) -> None:
    """Create the table of URL (dynamodb://<table>?region=..&endpoint_url=..): one binary
    partition key 'pk', on-demand billing, TTL on the attribute 'ttl'.  Credentials come
    from the standard AWS chain.  Does nothing to a table that already exists."""
    import asyncio

    import botocore.exceptions

    from kvgate.adapters.dynamodb import create_table as create

    try:
        message = asyncio.run(create(url))
    except ValueError as exc:
        raise click.UsageError(redact_url(str(exc), url)) from None
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, OSError) as exc:
        click.echo(f"kvgate: cannot create the table: {redact_url(str(exc), url)}", err=True)
        sys.exit(1)
    click.echo(message)
