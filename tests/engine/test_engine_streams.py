"""Streams: kvgate's engine against a real Redis 7.0, reply for reply, on every store;
Redis 8.2's XDELEX, XACKDEL and reference policies from Redis's documentation."""

from __future__ import annotations

import re

from kvgate.engine import command_table
from kvgate.engine.stream_layout import rax_nodes
from tests.support.engine import Arg, EngineClient, Oracle, assert_same, comparable


def fill(n: int, key: str = "s", start: int = 1, value: str = "v") -> list[list[Arg]]:
    return [["XADD", key, f"{i}-1", "f", f"{value}{i}"] for i in range(start, start + n)]


def test_xadd_ids_and_their_errors(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["SET", "str", "x"],
            ["XADD", "str", "1-1", "f", "v"],
            ["XADD", "s", "0-0", "f", "v"],
            ["XADD", "s", "0", "f", "v"],
            ["XADD", "s", "0-*", "f", "v"],
            ["XADD", "s", "5-3", "f", "v", "g", "w"],
            ["XADD", "s", "5-3", "f", "v"],
            ["XADD", "s", "5-2", "f", "v"],
            ["XADD", "s", "4", "f", "v"],
            ["XADD", "s", "5-*", "f", "v"],
            ["XADD", "s", "5", "f", "v"],
            ["XADD", "s", "7-*", "f", "v"],
            ["XADD", "s", "18446744073709551615-18446744073709551614", "f", "v"],
            ["XADD", "s", "18446744073709551615-*", "f", "v"],
            ["XADD", "s", "*", "f", "v"],
            ["XADD", "s2", "18446744073709551615-18446744073709551615", "f", "v"],
            ["XADD", "s3", "1-18446744073709551615", "f", "v"],
            ["XADD", "s3", "1-*", "f", "v"],
            ["XADD", "s", "abc", "f", "v"],
            ["XADD", "s", "1-2-3", "f", "v"],
            ["XADD", "s", "-", "f", "v"],
            ["XADD", "s", "+", "f", "v"],
            ["XADD", "s", "-1", "f", "v"],
            ["XADD", "s", "18446744073709551616", "f", "v"],
            ["XADD", "t", "1- 2", "f", "v"],
            ["XADD", "t", "+3-1", "f", "v"],
            ["XADD", "t", "3-+2", "f", "v"],
            ["XADD", "t", "-04", "f", "v"],
            ["XADD", "t", "5 ", "f", "v"],
            ["XADD", "t", " ", "f", "v"],
            ["XRANGE", "t", "-", "+"],
            ["XADD", "s", "*", "f"],
            ["XADD", "s", "*", "f", "v", "g"],
            ["XADD", "s", "*"],
            ["XADD", "nope", "NOMKSTREAM", "*", "f", "v"],
            ["EXISTS", "nope"],
            ["XADD", "s", "NOMKSTREAM", "100-1", "f", "v"],
            ["XRANGE", "s", "-", "+"],
            ["XRANGE", "s3", "-", "+"],
            ["XLEN", "s"],
            ["XLEN", "missing"],
            ["XLEN", "str"],
            ["TYPE", "s"],
        ],
    )


def test_xadd_star_makes_a_time_id(engine: EngineClient) -> None:
    first = engine("XADD", "s", "*", "f", "v")
    second = engine("XADD", "s", "*", "f", "v")
    assert isinstance(first, bytes) and isinstance(second, bytes)
    assert re.fullmatch(rb"\d{13}-\d+", first)
    ms1, seq1 = map(int, first.split(b"-"))
    ms2, seq2 = map(int, second.split(b"-"))
    assert (ms2, seq2) > (ms1, seq1)


def test_ranges_with_exclusive_ends_and_count(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            *fill(5),
            ["XADD", "s", "3-2", "a", "1", "b", "2"],
            ["XADD", "s", "3-18446744073709551615", "x", ""],
            ["XRANGE", "s", "-", "+"],
            ["XRANGE", "s", "2", "3"],
            ["XRANGE", "s", "(2-1", "(4-1"],
            ["XRANGE", "s", "(3-2", "+"],
            ["XRANGE", "s", "(3-18446744073709551615", "+"],
            ["XRANGE", "s", "-", "(3-0"],
            ["XRANGE", "s", "(-", "+"],
            ["XRANGE", "s", "-", "(+"],
            ["XRANGE", "s", "(18446744073709551615-18446744073709551615", "+"],
            ["XRANGE", "s", "-", "(0-0"],
            ["XRANGE", "s", "-", "+", "COUNT", "2"],
            ["XRANGE", "s", "-", "+", "COUNT", "0"],
            ["XRANGE", "s", "-", "+", "COUNT", "-3"],
            ["XRANGE", "s", "-", "+", "COUNT"],
            ["XRANGE", "s", "-", "+", "COUNT", "x"],
            ["XRANGE", "s", "-", "+", "LIMIT", "1"],
            ["XRANGE", "s", "5", "1"],
            ["XRANGE", "s", "x", "+"],
            ["XRANGE", "missing", "-", "+"],
            ["XRANGE", "missing", "-", "+", "COUNT", "0"],
            ["XREVRANGE", "s", "+", "-"],
            ["XREVRANGE", "s", "+", "-", "COUNT", "3"],
            ["XREVRANGE", "s", "(4-1", "(2", "COUNT", "10"],
            ["XREVRANGE", "s", "3", "3"],
        ],
    )


def test_xdel_and_its_bookkeeping(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            *fill(6),
            ["XDEL", "s", "1-1", "3-1", "9-9", "3-1"],
            ["XDEL", "s", "bad"],
            ["XDEL", "missing", "bad"],
            ["XLEN", "s"],
            ["XRANGE", "s", "-", "+"],
            ["XINFO", "STREAM", "s"],
            ["XDEL", "s", "2-1", "4-1", "5-1", "6-1"],
            ["XLEN", "s"],
            ["EXISTS", "s"],
            ["XINFO", "STREAM", "s"],
            ["XADD", "s", "6-1", "f", "v"],
            ["XADD", "s", "7-1", "f", "v"],
            ["XINFO", "STREAM", "s"],
        ],
    )


def test_exact_trimming(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            *fill(10),
            ["XTRIM", "s", "MAXLEN", "7"],
            ["XTRIM", "s", "MAXLEN", "=", "5"],
            ["XTRIM", "s", "MINID", "7"],
            ["XTRIM", "s", "MINID", "=", "7-1"],
            ["XRANGE", "s", "-", "+"],
            ["XADD", "s", "MAXLEN", "2", "11-1", "f", "v"],
            ["XADD", "s", "MINID", "11", "12-1", "f", "v"],
            ["XRANGE", "s", "-", "+"],
            ["XINFO", "STREAM", "s"],
            ["XTRIM", "s", "MAXLEN", "0"],
            ["XINFO", "STREAM", "s"],
            ["XTRIM", "missing", "MAXLEN", "0"],
        ],
    )


def test_trim_argument_errors(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["XADD", "s", "1-1", "f", "v"],
            ["XTRIM", "s"],
            ["XTRIM", "s", "FOO"],
            ["XTRIM", "s", "MAXLEN"],
            ["XTRIM", "s", "MAXLEN", "-1"],
            ["XTRIM", "s", "MAXLEN", "x"],
            ["XTRIM", "s", "MAXLEN", "1", "MINID", "1"],
            ["XTRIM", "s", "MAXLEN", "1", "LIMIT", "10"],
            ["XTRIM", "s", "MAXLEN", "~", "1", "LIMIT", "-1"],
            ["XTRIM", "s", "MAXLEN", "~", "1", "LIMIT", "x"],
            ["XTRIM", "s", "LIMIT", "10"],
            ["XTRIM", "s", "MINID", "-"],
            ["XTRIM", "s", "MINID", "x"],
            ["XTRIM", "s", "MAXLEN", "~", "0", "LIMIT", "0"],
            ["XTRIM", "missing", "FOO"],
            ["XADD", "s", "MAXLEN", "1", "MINID", "1", "*", "f", "v"],
            ["XADD", "s", "LIMIT", "5", "*", "f", "v"],
            ["XADD", "s", "MAXLEN", "1", "LIMIT", "5", "*", "f", "v"],
            ["XADD", "s", "MAXLEN", "-2", "*", "f", "v"],
            ["XADD", "s", "MAXLEN", "*", "f", "v"],
            ["XADD", "s", "MAXLEN"],
            ["XRANGE", "s", "-", "+"],
        ],
    )


def test_approximate_trimming_removes_whole_nodes(oracle: Oracle, engine: EngineClient) -> None:
    """Nodes of 100 entries (small entries) or 4096 bytes (large ones), as Redis fills them."""
    big = "x" * 300
    assert_same(
        oracle,
        engine,
        [
            *fill(250),
            ["XINFO", "STREAM", "s"],
            ["XTRIM", "s", "MAXLEN", "~", "180"],
            ["XTRIM", "s", "MAXLEN", "~", "140"],
            ["XTRIM", "s", "MAXLEN", "~", "10", "LIMIT", "60"],
            ["XTRIM", "s", "MAXLEN", "~", "10", "LIMIT", "200"],
            ["XLEN", "s"],
            ["XINFO", "STREAM", "s"],
            *fill(40, "b", value=big),
            ["XINFO", "STREAM", "b"],
            ["XTRIM", "b", "MINID", "~", "20"],
            ["XLEN", "b"],
            ["XADD", "b", "MAXLEN", "~", "5", "100-1", "f", "v"],
            ["XLEN", "b"],
            ["XINFO", "STREAM", "b"],
            *[
                ["XADD", "m", f"{i}-1", *(["f", "1"] if i % 3 else ["g", "12345678901", "h", "-7"])]
                for i in range(1, 120)
            ],
            ["XDEL", "m", "5-1", "50-1"],
            ["XINFO", "STREAM", "m"],
            ["XTRIM", "m", "MINID", "~", "110"],
            ["XINFO", "STREAM", "m"],
        ],
    )


def test_radix_tree_node_counts_as_rax_counts_them() -> None:
    one = bytes(16)
    assert rax_nodes([]) == 1
    assert rax_nodes([one]) == 2
    assert rax_nodes([one, one[:15] + b"\x01"]) == 4  # head (15), fork, two leaves
    assert rax_nodes([one, one[:14] + b"\x01\x00"]) == 6  # and a one-byte node after each


def test_xread(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            *fill(4),
            *fill(2, "t"),
            ["SET", "str", "x"],
            ["XREAD", "STREAMS", "s", "0"],
            ["XREAD", "COUNT", "2", "STREAMS", "s", "t", "1-1", "0-0"],
            ["XREAD", "STREAMS", "s", "t", "$", "$"],
            ["XREAD", "STREAMS", "s", "missing", "4", "0"],
            ["XREAD", "STREAMS", "missing", "0"],
            ["XREAD", "STREAMS", "str", "0"],
            ["XREAD", "STREAMS", "s", "t", "0"],
            ["XREAD", "STREAMS", "s", ">"],
            ["XREAD", "STREAMS", "s", "-"],
            ["XREAD", "STREAMS", "s", "bad"],
            ["XREAD", "GROUP", "g", "c", "STREAMS", "s", "0"],
            ["XREAD", "NOACK", "STREAMS", "s", "0"],
            ["XREAD", "COUNT", "x", "STREAMS", "s", "0"],
            ["XREAD", "COUNT", "-1", "STREAMS", "s", "3"],
            ["XREAD", "s", "0"],
            ["XREAD", "FOO", "STREAMS", "s", "0"],
            ["XREAD", "STREAMS", "s", "(2-1"],
            ["EVAL", "return redis.pcall('XREAD', 'BLOCK', '0', 'STREAMS', KEYS[1], '0')", "1", "s"],
            [
                "EVAL",
                "return redis.pcall('xreadgroup', 'GROUP', 'g', 'c', 'BLOCK', 'x', 'STREAMS', KEYS[1], '>')",
                "1",
                "s",
            ],
            ["EVAL", "return redis.pcall('XREAD', 'COUNT', '1', 'STREAMS', KEYS[1], '3-1')", "1", "s"],
            [
                "EVAL",
                "redis.call('XADD', KEYS[1], '9-1', 'f', 'v'); return redis.call('XLEN', KEYS[1])",
                "1",
                "s",
            ],
            ["XDEL", "s", "4-1"],
            ["XREAD", "STREAMS", "s", "3-1"],
        ],
    )


def groups_setup(key: str = "s") -> list[list[Arg]]:
    return [*fill(5, key), ["XGROUP", "CREATE", key, "g", "0"]]


def test_xgroup_subcommands(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["SET", "str", "x"],
            ["XGROUP", "CREATE", "str", "g", "$"],
            ["XGROUP", "CREATE", "missing", "g", "$"],
            ["XGROUP", "CREATE", "made", "g", "$", "MKSTREAM"],
            ["XLEN", "made"],
            ["TYPE", "made"],
            *fill(3),
            ["XGROUP", "CREATE", "s", "g", "$"],
            ["XGROUP", "CREATE", "s", "g", "0"],
            ["XGROUP", "CREATE", "s", "h", "2-1", "ENTRIESREAD", "1"],
            ["XGROUP", "CREATE", "s", "i", "0", "ENTRIESREAD", "-2"],
            ["XGROUP", "CREATE", "s", "i", "0", "ENTRIESREAD", "x"],
            ["XGROUP", "CREATE", "s", "i", "0", "ENTRIESREAD"],
            ["XGROUP", "CREATE", "s", "i", "0", "FOO"],
            ["XGROUP", "CREATE", "s", "i", "bad"],
            ["XGROUP", "CREATE", "s", "i", "-"],
            ["XGROUP", "CREATECONSUMER", "s", "g", "c1"],
            ["XGROUP", "CREATECONSUMER", "s", "g", "c1"],
            ["XGROUP", "CREATECONSUMER", "s", "nog", "c1"],
            ["XGROUP", "CREATECONSUMER", "missing", "g", "c1"],
            ["XGROUP", "SETID", "s", "g", "1-1"],
            ["XGROUP", "SETID", "s", "g", "$", "ENTRIESREAD", "3"],
            ["XGROUP", "SETID", "s", "g", "-"],
            ["XGROUP", "SETID", "s", "nog", "0"],
            ["XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD"],
            ["XGROUP", "SETID", "s", "g", "0", "MKSTREAM"],
            ["XINFO", "GROUPS", "s"],
            ["XGROUP", "DELCONSUMER", "s", "g", "c1"],
            ["XGROUP", "DELCONSUMER", "s", "g", "c1"],
            ["XGROUP", "DELCONSUMER", "s", "nog", "c1"],
            ["XGROUP", "DESTROY", "s", "h"],
            ["XGROUP", "DESTROY", "s", "h"],
            ["XGROUP", "DESTROY", "missing", "h"],
            ["XINFO", "GROUPS", "s"],
        ],
    )


def test_xreadgroup_delivers_acks_and_reads_history(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            *groups_setup(),
            ["SET", "str", "x"],
            ["XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "s", ">"],
            ["XREADGROUP", "GROUP", "g", "bob", "COUNT", "1", "STREAMS", "s", ">"],
            ["XREADGROUP", "GROUP", "g", "carol", "NOACK", "COUNT", "1", "STREAMS", "s", ">"],
            ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"],
            ["XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "s", "1-1"],
            ["XREADGROUP", "GROUP", "g", "dave", "STREAMS", "s", "0"],
            ["XDEL", "s", "2-1"],
            ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"],
            ["XACK", "s", "g", "1-1", "2-1", "9-9"],
            ["XACK", "s", "g", "1-1"],
            ["XACK", "s", "nog", "1-1"],
            ["XACK", "missing", "g", "1-1"],
            ["XACK", "s", "g", "bad"],
            ["XACK", "str", "g", "1-1"],
            ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"],
            ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"],
            ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"],
            ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "$"],
            ["XREADGROUP", "GROUP", "nog", "alice", "STREAMS", "s", ">"],
            ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "missing", ">"],
            ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "str", ">"],
            ["XREADGROUP", "STREAMS", "s", ">"],
            ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s"],
            ["XPENDING", "s", "g"],
            ["XINFO", "GROUPS", "s"],
            ["XGROUP", "SETID", "s", "g", "0"],
            ["XREADGROUP", "GROUP", "g", "erin", "COUNT", "2", "STREAMS", "s", ">"],
            ["XPENDING", "s", "g"],
            ["XINFO", "GROUPS", "s"],
        ],
    )
    cmd = ["XPENDING", "s", "g", "-", "+", "10"]
    assert comparable(_masked_rows(oracle(*cmd))) == comparable(_masked_rows(engine(*cmd)))


def test_xpending_forms(oracle: Oracle, engine: EngineClient) -> None:
    setup = [
        *groups_setup(),
        ["XREADGROUP", "GROUP", "g", "alice", "COUNT", "3", "STREAMS", "s", ">"],
        ["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"],
    ]
    assert_same(oracle, engine, setup)
    assert_same(
        oracle,
        engine,
        [
            ["XPENDING", "s", "g"],
            ["XPENDING", "s", "nog"],
            ["XPENDING", "missing", "g"],
            ["XPENDING", "s", "g", "-", "+"],
            ["XPENDING", "s", "g", "-", "+", "x"],
            ["XPENDING", "s", "g", "-", "+", "0"],
            ["XPENDING", "s", "g", "IDLE", "x", "-", "+", "5"],
            ["XPENDING", "s", "g", "IDLE", "5", "-", "+"],
            ["XPENDING", "s", "g", "(5-1", "+", "5"],
            ["XPENDING", "s", "g", "-", "(0-0", "5"],
            ["XPENDING", "s", "g", "-", "+", "5", "nobody"],
            ["XPENDING", "s", "g", "IDLE", "100000", "-", "+", "5"],
        ],
    )
    for cmd in (
        ["XPENDING", "s", "g", "-", "+", "5", "bob", "extra"],
        ["XPENDING", "s", "g", "-", "+", "10"],
        ["XPENDING", "s", "g", "IDLE", "0", "2", "4", "2", "alice"],
    ):
        expected, actual = oracle(*cmd), engine(*cmd)
        assert comparable(_masked_rows(expected)) == comparable(_masked_rows(actual)), cmd
        assert all(0 <= row[2] < 5000 for row in actual)  # type: ignore[index,operator,union-attr]


def _masked_rows(reply: object) -> object:
    """XPENDING's rows with their idle times (clock-dependent) as a mark."""
    return [[*row[:2], "idle", row[3]] for row in reply]  # type: ignore[union-attr,index]


def test_xclaim_and_xautoclaim(oracle: Oracle, engine: EngineClient) -> None:
    setup = [
        *groups_setup(),
        ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"],
        ["XDEL", "s", "3-1"],
    ]
    assert_same(oracle, engine, setup)
    assert_same(
        oracle,
        engine,
        [
            ["XCLAIM", "s", "g", "bob", "0", "1-1", "2-1", "3-1", "9-9"],
            ["XCLAIM", "s", "g", "bob", "0", "4-1", "JUSTID"],
            ["XCLAIM", "s", "g", "bob", "3600000", "5-1"],
            ["XCLAIM", "s", "g", "carol", "0", "5-1", "RETRYCOUNT", "7", "JUSTID", "LASTID", "9-1"],
            ["XCLAIM", "s", "g", "carol", "0", "9-9", "FORCE"],
            ["XCLAIM", "s", "g", "carol", "0", "4-1", "5-1", "FORCE", "JUSTID"],
            ["XCLAIM", "s", "g", "bob", "x", "1-1"],
            ["XCLAIM", "s", "g", "bob", "0", "1-1", "IDLE", "x"],
            ["XCLAIM", "s", "g", "bob", "0", "1-1", "TIME", "x"],
            ["XCLAIM", "s", "g", "bob", "0", "1-1", "RETRYCOUNT", "x"],
            ["XCLAIM", "s", "g", "bob", "0", "1-1", "LASTID", "x"],
            ["XCLAIM", "s", "g", "bob", "0", "1-1", "BOGUS"],
            ["XCLAIM", "s", "g", "bob", "0", "bad"],
            ["XCLAIM", "s", "nog", "bob", "0", "1-1"],
            ["XCLAIM", "missing", "g", "bob", "0", "1-1"],
            ["XINFO", "GROUPS", "s"],
            ["XPENDING", "s", "g"],
            ["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "1"],
            ["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "2", "JUSTID"],
            ["XAUTOCLAIM", "s", "g", "dave", "3600000", "0"],
            ["XAUTOCLAIM", "s", "g", "dave", "0", "(1-1"],
            ["XAUTOCLAIM", "s", "g", "dave", "x", "0"],
            ["XAUTOCLAIM", "s", "g", "dave", "0", "bad"],
            ["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "0"],
            ["XAUTOCLAIM", "s", "g", "dave", "0", "0", "COUNT", "x"],
            ["XAUTOCLAIM", "s", "g", "dave", "0", "0", "BOGUS"],
            ["XAUTOCLAIM", "s", "nog", "dave", "0", "0"],
            ["XAUTOCLAIM", "missing", "g", "dave", "0", "0"],
            ["XPENDING", "s", "g"],
        ],
    )


def test_xautoclaim_reports_deleted_entries_and_stops_at_count(oracle: Oracle, engine: EngineClient) -> None:
    setup = [
        *groups_setup(),
        *fill(10, start=6),
        ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"],
        ["XDEL", "s", "2-1", "3-1", "9-1"],
    ]
    assert_same(
        oracle,
        engine,
        [
            *setup,
            ["XAUTOCLAIM", "s", "g", "bob", "0", "0", "COUNT", "3", "JUSTID"],
            ["XAUTOCLAIM", "s", "g", "bob", "0", "4-1", "COUNT", "4", "JUSTID"],
            ["XAUTOCLAIM", "s", "g", "bob", "0", "9-1", "COUNT", "10"],
            ["XPENDING", "s", "g"],
        ],
    )


def _untimed(reply: object) -> object:
    """XINFO's replies with idle and seen times (clock-dependent) as marks."""
    if isinstance(reply, list):
        out: list[object] = []
        for i, r in enumerate(reply):
            key = reply[i - 1] if i % 2 else None
            if key in (b"idle", b"seen-time"):
                out.append("time")
            else:
                out.append(_untimed(r))
        return out
    return reply


def test_xinfo_groups_consumers_and_full(oracle: Oracle, engine: EngineClient) -> None:
    setup = [
        *groups_setup(),
        ["XGROUP", "CREATE", "s", "h", "$"],
        ["XGROUP", "CREATE", "s", "late", "0", "ENTRIESREAD", "-1"],
        ["XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "s", ">"],
        ["XREADGROUP", "GROUP", "g", "bob", "COUNT", "1", "STREAMS", "s", ">"],
        ["XGROUP", "CREATECONSUMER", "s", "g", "idle"],
        ["XADD", "s", "6-1", "f", "v"],
        ["XDEL", "s", "4-1"],
        ["XREADGROUP", "GROUP", "late", "x", "COUNT", "1", "STREAMS", "s", ">"],
        ["SET", "str", "x"],
    ]
    assert_same(oracle, engine, setup)
    assert_same(
        oracle,
        engine,
        [
            ["XINFO", "GROUPS", "s"],
            ["XINFO", "STREAM", "s"],
            ["XINFO", "GROUPS", "missing"],
            ["XINFO", "GROUPS", "str"],
            ["XINFO", "CONSUMERS", "s", "nog"],
            ["XINFO", "CONSUMERS", "missing", "g"],
            ["XINFO", "STREAM", "s", "FULL", "x"],
            ["XINFO", "STREAM", "s", "FULL", "COUNT", "x"],
            ["XINFO", "STREAM", "s", "PARTIAL"],
            ["XINFO", "STREAM", "missing", "PARTIAL"],
            ["XINFO", "STREAM", "s", "FULL", "LIMIT", "1"],
            ["XINFO", "HELP"],
            ["XGROUP", "HELP"],
        ],
    )
    for cmd in (
        ["XINFO", "CONSUMERS", "s", "g"],
        ["XINFO", "STREAM", "s", "FULL"],
        ["XINFO", "STREAM", "s", "FULL", "COUNT", "1"],
        ["XINFO", "STREAM", "s", "FULL", "COUNT", "0"],
    ):
        expected, actual = oracle(*cmd), engine(*cmd)
        assert comparable(_untimed(_delivery_times(expected))) == comparable(
            _untimed(_delivery_times(actual))
        ), cmd


def _delivery_times(reply: object) -> object:
    """XINFO STREAM FULL's pending rows carry delivery times (ms since the epoch)."""
    if isinstance(reply, list):
        row = len(reply) in (3, 4) and isinstance(reply[0], bytes) and b"-" in reply[0]
        if row and all(isinstance(x, int) for x in reply[-2:]) and reply[-2] > 10**12:  # type: ignore[operator]
            return [*reply[:-2], "time", reply[-1]]
        return [_delivery_times(r) for r in reply]
    return reply


def test_xsetid(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            *fill(3),
            ["SET", "str", "x"],
            ["XSETID", "s", "2-1"],
            ["XSETID", "s", "3-1"],
            ["XSETID", "s", "10-1", "ENTRIESADDED", "2"],
            ["XSETID", "s", "10-1", "ENTRIESADDED", "-1"],
            ["XSETID", "s", "10-1", "ENTRIESADDED", "x"],
            ["XSETID", "s", "10-1", "MAXDELETEDID", "11-1"],
            ["XSETID", "s", "10-1", "MAXDELETEDID", "x"],
            ["XSETID", "s", "10-1", "ENTRIESADDED", "50", "MAXDELETEDID", "9-9"],
            ["XSETID", "s", "10-1", "FOO", "1"],
            ["XSETID", "s", "-"],
            ["XSETID", "missing", "1-1"],
            ["XSETID", "str", "1-1"],
            ["XINFO", "STREAM", "s"],
            ["XADD", "s", "10-1", "f", "v"],
            ["XADD", "s", "10-*", "f", "v"],
            ["XDEL", "s", "1-1", "2-1", "3-1", "10-2"],
            ["XSETID", "s", "0-1"],
            ["XINFO", "STREAM", "s"],
        ],
    )


def test_generic_key_commands_on_streams(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            *groups_setup(),
            ["XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "s", ">"],
            ["COPY", "s", "c"],
            ["XRANGE", "c", "-", "+"],
            ["XPENDING", "c", "g"],
            ["XADD", "c", "9-1", "f", "v"],
            ["XLEN", "s"],
            ["RENAME", "c", "r"],
            ["XINFO", "STREAM", "r"],
            ["EXPIRE", "r", "100"],
            ["TTL", "r"],
            ["TYPE", "r"],
            ["DEL", "r"],
            ["XLEN", "r"],
            ["LPUSH", "s", "x"],
            ["XADD", "l", "1-1", "f", "v"],
        ],
    )
    engine("XADD", "t", "1-1", "f", "v")
    engine("SET", "str", "x")
    cursor, names = engine("SCAN", "0", "TYPE", "stream")  # type: ignore[misc]
    assert cursor == b"0" and sorted(names) == [b"l", b"s", b"t"]  # type: ignore[arg-type]


# --- Redis 8.2 (no oracle here: Redis's documentation) ---------------------------------


def test_xdelex_policies_as_documented(engine: EngineClient) -> None:
    """The example of XDELEX's documentation, and each policy."""
    engine.table = command_table()
    engine("XADD", "s4", "1-1", "a", "1")
    assert engine("XGROUP", "CREATE", "s4", "grp", "0") == b"OK"
    engine("XREADGROUP", "GROUP", "grp", "cons1", "COUNT", "10", "STREAMS", "s4", ">")
    assert engine("XDELEX", "s4", "ACKED", "IDS", "1", "1-1") == [2]
    assert engine("XLEN", "s4") == 1
    assert engine("XACK", "s4", "grp", "1-1") == 1
    assert engine("XDELEX", "s4", "ACKED", "IDS", "1", "1-1") == [1]
    assert engine("XLEN", "s4") == 0
    for i in (1, 2, 3):
        engine("XADD", "s", f"{i}-1", "f", "v")
    engine("XGROUP", "CREATE", "s", "g", "0")
    engine("XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">")
    assert engine("XDELEX", "s", "IDS", "2", "1-1", "9-9") == [1, -1]
    assert engine("XPENDING", "s", "g")[0] == 3  # type: ignore[index]  # KEEPREF
    assert engine("XDELEX", "s", "DELREF", "IDS", "1", "2-1") == [1]
    assert engine("XPENDING", "s", "g", "-", "+", "10") != []
    assert [row[0] for row in engine("XPENDING", "s", "g", "-", "+", "10")] == [b"1-1", b"3-1"]  # type: ignore[union-attr,index]
    assert comparable(engine("XDELEX", "s", "IDS", "0", "1-1")) == (
        "error",
        "ERR Number of IDs must be a positive integer",
    )
    assert comparable(engine("XDELEX", "s", "IDS", "3", "1-1")) == (
        "error",
        "ERR The `numids` parameter must match the number of arguments",
    )
    assert comparable(engine("XDELEX", "s", "BOGUS", "IDS", "1", "1-1")) == ("error", "ERR syntax error")
    assert comparable(engine("XDELEX", "s", "IDS", "1", "bad")) == (
        "error",
        "ERR Invalid stream ID specified as stream command argument",
    )


def test_xackdel_acknowledges_and_deletes(engine: EngineClient) -> None:
    engine.table = command_table()
    for i in (1, 2, 3):
        engine("XADD", "s", f"{i}-1", "f", "v")
    engine("XGROUP", "CREATE", "s", "g1", "0")
    engine("XGROUP", "CREATE", "s", "g2", "0")
    engine("XREADGROUP", "GROUP", "g1", "c", "STREAMS", "s", ">")
    engine("XREADGROUP", "GROUP", "g2", "c", "STREAMS", "s", ">")
    assert engine("XACKDEL", "s", "g1", "ACKED", "IDS", "1", "1-1") == [2]  # g2 still has it
    assert engine("XLEN", "s") == 3
    assert engine("XACKDEL", "s", "g1", "IDS", "2", "2-1", "7-7") == [1, -1]
    assert engine("XLEN", "s") == 2
    assert engine("XACKDEL", "s", "g2", "DELREF", "IDS", "1", "3-1") == [1]
    assert engine("XPENDING", "s", "g1")[0] == 0  # type: ignore[index]
    assert engine("XRANGE", "s", "-", "+") == [[b"1-1", [b"f", b"v"]]]


def test_trim_policies_of_redis_8_2(engine: EngineClient) -> None:
    engine.table = command_table()
    for i in range(1, 6):
        engine("XADD", "s", f"{i}-1", "f", "v")
    engine("XGROUP", "CREATE", "s", "g", "0")
    engine("XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "s", ">")
    assert engine("XTRIM", "s", "MAXLEN", "0", "ACKED") == 0  # 1, 2 pending; 3.. undelivered
    engine("XACK", "s", "g", "1-1")
    assert engine("XTRIM", "s", "MAXLEN", "0", "ACKED") == 1
    assert engine("XTRIM", "s", "MINID", "3", "DELREF") == 1
    assert engine("XPENDING", "s", "g")[0] == 0  # type: ignore[index]
    assert engine("XADD", "s", "KEEPREF", "MAXLEN", "1", "9-1", "f", "v") == b"9-1"
    assert engine("XLEN", "s") == 1


def test_big_entries(engine: EngineClient) -> None:
    """An entry of 300 KB is kept on every store; on DynamoDB, one past its 400 KB item
    limit answers an error (and nothing is written)."""
    big = "x" * 300_000
    assert engine("XADD", "s", "1-1", "f", big) == b"1-1"
    assert engine("XRANGE", "s", "-", "+") == [[b"1-1", [b"f", big.encode()]]]
    reply = engine("XADD", "s", "2-1", "f", "y" * 500_000)
    if engine.name == "dynamodb":
        kind, text = comparable(reply)  # type: ignore[misc]
        assert kind == "error" and "too large for the dynamodb backend" in text
        assert engine("XLEN", "s") == 1
    else:
        assert reply == b"2-1"


def test_reads_over_several_streams_and_limited_trims(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            *fill(5),
            *fill(3, "t", start=10),
            ["XGROUP", "CREATE", "s", "g", "0"],
            ["XGROUP", "CREATE", "t", "g", "$"],
            ["XREADGROUP", "GROUP", "g", "c", "COUNT", "2", "STREAMS", "s", "t", ">", ">"],
            ["XADD", "t", "20-1", "f", "v"],
            ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "t", ">", ">"],
            ["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", "t", "0", "0"],
            ["XREAD", "COUNT", "1", "STREAMS", "s", "t", "s", "0", "0", "3"],
            *fill(300, "m"),
            ["XTRIM", "m", "MINID", "~", "260", "LIMIT", "100"],
            ["XTRIM", "m", "MINID", "~", "260", "LIMIT", "250"],
            ["XADD", "m", "MINID", "~", "290", "LIMIT", "10", "400-1", "f", "v"],
            ["XADD", "m", "MAXLEN", "=", "3", "401-1", "f", "v"],
            ["XINFO", "STREAM", "m"],
        ],
    )


def test_xclaim_idle_and_time_set_the_delivery_time(oracle: Oracle, engine: EngineClient) -> None:
    """Idle times differ by the instants the two servers ran at: compared within 2 s."""
    setup = [*groups_setup(), ["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", ">"]]
    assert_same(oracle, engine, setup)
    now_ms = int(oracle("TIME")[0]) * 1000  # type: ignore[index,arg-type]
    claims = [
        ["XCLAIM", "s", "g", "bob", "0", "1-1", "IDLE", "500000", "JUSTID"],
        ["XCLAIM", "s", "g", "bob", "0", "2-1", "TIME", str(now_ms - 300000), "JUSTID"],
        ["XCLAIM", "s", "g", "bob", "0", "3-1", "TIME", str(now_ms + 900000), "JUSTID"],
        ["XCLAIM", "s", "g", "bob", "400000", "1-1", "2-1", "3-1", "JUSTID"],
        ["XAUTOCLAIM", "s", "g", "carol", "250000", "0", "JUSTID"],
    ]
    assert_same(oracle, engine, claims)
    expected, actual = (
        oracle("XPENDING", "s", "g", "-", "+", "10"),
        engine("XPENDING", "s", "g", "-", "+", "10"),
    )
    assert _masked_rows(expected) == _masked_rows(actual)
    for want, got in zip(expected, actual, strict=True):  # type: ignore[arg-type]
        assert abs(want[2] - got[2]) < 2000, (want, got)  # type: ignore[index]
