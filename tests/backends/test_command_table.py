"""The command table against the real Redis it was generated from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import hiredis
import pytest

from kvgate.commands import TABLE_PATH, CommandTable, Context, default_table
from kvgate.errors import ReplyError
from tests.support.servers import RedisServer

ROOT = Path(__file__).resolve().parents[2]


def redis_version(server: RedisServer) -> str:
    info = server.command("INFO", "server")
    assert isinstance(info, bytes)
    return next(
        line.split(":", 1)[1] for line in info.decode().splitlines() if line.startswith("redis_version:")
    )


def test_committed_table_is_what_the_generator_makes(redis_server: RedisServer) -> None:
    table = json.loads(TABLE_PATH.read_text())
    if table["generated_from"] != f"redis {redis_version(redis_server)}":
        pytest.skip(f"table was generated from {table['generated_from']}; this Redis differs")
    out = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_command_table.py"), redis_server.url],
        capture_output=True,
        check=True,
    )
    assert json.loads(out.stdout) == table, "regenerate: python tools/gen_command_table.py <url>"


def test_every_redis_command_is_in_the_table(redis_server: RedisServer) -> None:
    names = redis_server.command("COMMAND", "LIST")
    assert isinstance(names, list)
    table = default_table()
    for name in names:
        assert table.get(name.decode()) is not None, name


KEY_CASES = [
    ["GET", "k"],
    ["MSET", "a", "1", "b", "2", "c", "3"],
    ["MGET", "a", "b", "c"],
    ["EVAL", "return 1", "2", "k1", "k2", "arg"],
    ["ZUNIONSTORE", "dest", "2", "z1", "z2", "WEIGHTS", "1", "2"],
    ["XREAD", "COUNT", "2", "STREAMS", "s1", "s2", "0", "0"],
    ["LMOVE", "src", "dst", "LEFT", "RIGHT"],
    ["BITOP", "AND", "dest", "k1", "k2"],
    ["LMPOP", "2", "l1", "l2", "LEFT"],
    ["SINTERCARD", "2", "s1", "s2", "LIMIT", "1"],
    ["GEORADIUS", "g", "0", "0", "1", "km", "STORE", "out"],
    ["OBJECT", "ENCODING", "k"],
    ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", ">"],
]
# Not covered: key specs Redis marks "incomplete" / "unknown" (SORT ... STORE, MIGRATE ...
# KEYS), for which Redis runs command-specific code; kvgate does not need them yet.


@pytest.mark.parametrize("args", KEY_CASES, ids=lambda a: a[0])
def test_key_extraction_matches_command_getkeys(redis_server: RedisServer, args: list[str]) -> None:
    expected = redis_server.command("COMMAND", "GETKEYS", *args)
    cmd = default_table().lookup([a.encode() for a in args])
    found = cmd.keys([a.encode() for a in args])
    assert sorted(found) == sorted(expected)  # type: ignore[arg-type]


BAD = [
    ["FOO"],
    ["FOO", "bar", "baz"],
    ["FoO", "x" * 200],
    ["GET"],
    ["GET", "a", "b"],
    ["SET", "k"],
    ["CONFIG"],
    ["CONFIG", "Nope"],
    ["CONFIG", "GET"],
    ["OBJECT", "x"],
    ["XINFO", "STREAM"],
    ["EVAL"],
    ["get\r\nx"],
]


@pytest.mark.parametrize("args", BAD, ids=lambda a: " ".join(a)[:20])
def test_validation_errors_are_redis_texts(redis_server: RedisServer, args: list[str]) -> None:
    expected = redis_server.command(*args)
    assert isinstance(expected, hiredis.ReplyError)
    with pytest.raises(ReplyError) as caught:
        default_table().lookup([a.encode() for a in args])
    assert str(caught.value) == str(expected)


def test_policy_reads_the_flags() -> None:
    table = default_table()
    get, set_, eval_, multi = (table.get(n) for n in ("get", "set", "eval", "multi"))
    assert get and set_ and eval_ and multi
    assert get.readonly_token and not set_.readonly_token and not eval_.readonly_token
    assert not multi.allowed_in(Context.REST) and not multi.allowed_in(Context.TRANSACTION)
    for command in table:
        if "blocking" in command.flags and command.refused_option is None:
            assert not command.rest, command.name
        if "write" in command.flags:
            assert not command.readonly_token, command.name


def test_table_loads_from_any_path(tmp_path: Path) -> None:
    raw = json.loads(TABLE_PATH.read_text())
    raw["commands"] = {"ping": raw["commands"]["ping"]}
    (tmp_path / "t.json").write_text(json.dumps(raw))
    table = CommandTable.load(tmp_path / "t.json")
    assert len(table) == 1
    with pytest.raises(ReplyError, match="unknown command 'GET'"):
        table.lookup([b"GET", b"k"])
