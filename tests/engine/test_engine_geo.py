"""Geo commands of kvgate's engine against a real Redis 7.0, reply for reply.

Geo keys are sorted sets, so each test also reads them back with ZRANGE ... WITHSCORES:
the scores (52-bit geohashes) must be Redis's own.  Replies without ASC/DESC are compared
in order too: the engine visits the nine cells around a search's centre in Redis's order.
"""

from __future__ import annotations

import random

from tests.support.engine import Arg, EngineClient, Oracle, assert_same

#: The examples of Redis's documentation (geoadd.md, georadius.md, geosearch.md...).
SICILY = ["GEOADD", "Sicily", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"]
BOX = ["FROMLONLAT", "15", "37", "BYBOX", "400", "400", "km"]
MORE = ["GEOADD", "Sicily", "12.758489", "38.788135", "edge1", "17.241510", "38.788135", "edge2"]


def test_documentation_examples(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            SICILY,
            ["ZRANGE", "Sicily", "0", "-1", "WITHSCORES"],
            ["GEODIST", "Sicily", "Palermo", "Catania"],
            ["GEODIST", "Sicily", "Palermo", "Catania", "km"],
            ["GEODIST", "Sicily", "Palermo", "Catania", "MI"],
            ["GEODIST", "Sicily", "Palermo", "Catania", "ft"],
            ["GEODIST", "Sicily", "Palermo", "Catania", "m"],
            ["GEODIST", "Sicily", "Foo", "Bar"],
            ["GEODIST", "Sicily", "Palermo", "Palermo"],
            ["GEOHASH", "Sicily", "Palermo", "Catania", "nope"],
            ["GEOPOS", "Sicily", "Palermo", "Catania", "NonExisting"],
            ["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHDIST"],
            ["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHCOORD"],
            ["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHDIST", "WITHCOORD"],
            ["GEORADIUS", "Sicily", "15", "37", "200", "km", "WITHHASH", "WITHDIST", "WITHCOORD", "DESC"],
            ["GEORADIUS_RO", "Sicily", "15", "37", "100", "km"],
            ["GEOADD", "Sicily", "13.583333", "37.316667", "Agrigento"],
            ["GEORADIUSBYMEMBER", "Sicily", "Agrigento", "100", "km"],
            ["GEORADIUSBYMEMBER_RO", "Sicily", "Agrigento", "100", "km", "WITHDIST", "ASC"],
            MORE,
            ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "ASC"],
            ["GEOSEARCH", "Sicily", *BOX, "ASC", "WITHCOORD", "WITHDIST"],
            ["GEOSEARCH", "Sicily", *BOX],
            ["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "300", "km", "WITHHASH"],
            ["GEOSEARCHSTORE", "key1", "Sicily", *BOX, "ASC", "COUNT", "3"],
            ["ZRANGE", "key1", "0", "-1", "WITHSCORES"],
            ["GEOSEARCHSTORE", "key2", "Sicily", *BOX, "ASC", "COUNT", "3", "STOREDIST"],
            ["ZRANGE", "key2", "0", "-1", "WITHSCORES"],
            ["GEOSEARCH", "key1", "FROMLONLAT", "15", "37", "BYRADIUS", "200", "km", "WITHCOORD"],
            ["TYPE", "Sicily"],
        ],
    )


def test_geoadd_options_and_errors(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["SET", "str", "v"],
            SICILY,
            ["GEOADD", "Sicily", "NX", "13", "38", "Palermo", "14", "37", "new"],
            ["GEOADD", "Sicily", "XX", "CH", "13", "38", "Palermo", "14", "37", "other"],
            ["GEOADD", "Sicily", "CH", "13", "38", "Palermo", "15.087269", "37.502669", "Catania"],
            ["GEOADD", "Sicily", "ch", "xx", "ch", "1", "2", "Palermo"],
            ["ZRANGE", "Sicily", "0", "-1", "WITHSCORES"],
            ["GEOADD", "Sicily", "NX", "XX", "13", "38", "a"],
            ["GEOADD", "Sicily", "13", "38", "a", "14"],
            ["GEOADD", "Sicily", "13", "38"],
            ["GEOADD", "Sicily", "ch", "ch", "ch"],
            ["GEOADD", "Sicily", "GT", "13", "38", "a"],
            ["GEOADD", "Sicily", "abc", "38", "a"],
            ["GEOADD", "Sicily", "13", "nan", "a"],
            ["GEOADD", "Sicily", " 13", "38", "a"],
            ["GEOADD", "Sicily", "180.000001", "38", "a"],
            ["GEOADD", "Sicily", "-181", "38", "a"],
            ["GEOADD", "Sicily", "13", "85.05112879", "a"],
            ["GEOADD", "Sicily", "13", "-90", "a"],
            ["GEOADD", "Sicily", "1e300", "inf", "a"],
            ["GEOADD", "Sicily", "13", "38", "ok", "200", "10", "bad"],  # nothing added
            ["GEOADD", "str", "13", "38", "a"],
            ["GEOADD", "str", "13", "99", "a"],  # the coordinates are checked first
            ["GEOADD", "edges", "180", "85.05112878", "ne", "-180", "-85.05112878", "sw", "0", "0", "zero"],
            ["GEOADD", "edges", "-0", "-0", "negzero", "179.99999999", "-85.05112877", "x"],
            ["ZRANGE", "edges", "0", "-1", "WITHSCORES"],
            ["GEOPOS", "edges", "ne", "sw", "zero", "negzero", "x"],
            ["GEOHASH", "edges", "ne", "sw", "zero", "negzero", "x"],
            ["GEODIST", "edges", "ne", "sw", "km"],
            ["ZCARD", "Sicily"],
        ],
    )


def test_reads_of_missing_keys_members_and_other_types(oracle: Oracle, engine: EngineClient) -> None:
    assert_same(
        oracle,
        engine,
        [
            ["SET", "str", "v"],
            [
                "ZADD",
                "z",
                "0",
                "zero",
                "-5",
                "neg",
                "1e20",
                "huge",
                "4503599627370496",
                "over52",
                "3.7",
                "frac",
            ],
            SICILY,
            ["GEOPOS", "missing", "a", "b"],
            ["GEOHASH", "missing", "a"],
            ["GEODIST", "missing", "a", "b"],
            ["GEODIST", "missing", "a", "b", "km"],
            ["GEODIST", "missing", "a", "b", "parsecs"],
            ["GEODIST", "Sicily", "Palermo", "Catania", "km", "extra"],
            ["GEODIST", "Sicily", "Palermo", "Catania", "yards"],
            ["GEODIST", "Sicily", "Palermo", "nope", "km"],
            ["GEOPOS", "str", "a"],
            ["GEOHASH", "str", "a"],
            ["GEODIST", "str", "a", "b"],
            ["GEODIST", "str", "a", "b", "parsecs"],  # the unit is checked first
            # scores that GEOADD never writes decode as Redis decodes them
            ["GEOPOS", "z", "zero", "neg", "huge", "over52", "frac"],
            ["GEOHASH", "z", "zero", "neg", "huge", "over52", "frac"],
            ["GEODIST", "z", "zero", "over52"],
            ["GEORADIUS", "z", "0", "0", "20000", "km", "WITHCOORD", "WITHHASH"],
        ],
    )


def test_search_errors_in_redis_order(oracle: Oracle, engine: EngineClient) -> None:
    base = ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37"]
    radius = ["GEORADIUS", "Sicily", "15", "37", "200", "km"]
    assert_same(
        oracle,
        engine,
        [
            ["SET", "str", "v"],
            SICILY,
            ["GEORADIUS", "str", "15", "99", "-1", "km"],  # WRONGTYPE before anything
            ["GEORADIUS", "Sicily", "15", "99", "-1", "km"],
            ["GEORADIUS", "Sicily", "x", "37", "-1", "km"],
            ["GEORADIUS", "Sicily", "15", "37", "x", "km"],
            ["GEORADIUS", "Sicily", "15", "37", "-1", "x"],
            ["GEORADIUS", "Sicily", "15", "37", "1", "x"],
            ["GEORADIUS", "Sicily", "15", "37", "inf", "km", "ASC"],
            ["GEORADIUS", "Sicily", "15", "37", "1e-320", "km"],
            [*radius, "COUNT"],
            [*radius, "COUNT", "0"],
            [*radius, "COUNT", "-3"],
            [*radius, "COUNT", "x"],
            [*radius, "COUNT", "1", "ANY", "WITHDIST"],
            [*radius, "ANY"],
            [*radius, "STORE"],
            [*radius, "STORE", "dst", "WITHDIST"],
            [*radius, "WITHHASH", "STOREDIST", "dst"],
            [*radius, "WITHCOORD", "STORE", "dst", "COUNT", "0"],  # COUNT first
            [*radius, "FROMMEMBER", "Palermo"],
            [*radius, "BYRADIUS", "1", "km"],
            ["GEORADIUS_RO", "Sicily", "15", "37", "200", "km", "STORE", "dst"],
            ["GEORADIUSBYMEMBER_RO", "Sicily", "Palermo", "200", "km", "STOREDIST", "dst"],
            ["GEORADIUSBYMEMBER", "Sicily", "nope", "x", "km"],
            ["GEORADIUSBYMEMBER", "Sicily", "Palermo", "x", "km"],
            ["GEORADIUSBYMEMBER", "missing", "nope", "x", "km", "WITHDIST"],  # no key: no parsing
            ["GEORADIUSBYMEMBER", "missing", "nope", "x", "km", "STORE", "dst"],
            ["GEORADIUSBYMEMBER", "missing", "nope", "x", "km", "BOGUS"],
            ["GEOSEARCH", "Sicily", "BYRADIUS", "1", "km"],
            ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37"],
            ["geosearch", "Sicily", "FROMLONLAT", "15", "37", "WITHDIST"],
            ["GeoSearch", "Sicily", "BYBOX", "1", "1", "km"],
            ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "37", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km"],
            ["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km"],
            ["GEOSEARCH", "Sicily", "FROMMEMBER", "nope", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km"],
            ["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"],
            ["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYRADIUS", "1", "km", "BYBOX", "1", "1", "km"],
            ["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "1", "1", "km", "BYRADIUS", "1", "km"],
            [*base, "BYBOX", "x", "y", "km"],
            [*base, "BYBOX", "1", "y", "km"],
            [*base, "BYBOX", "-1", "y", "km"],
            [*base, "BYBOX", "-1", "1", "km"],
            [*base, "BYBOX", "1", "-1", "x"],
            [*base, "BYBOX", "1", "1", "x"],
            [*base, "BYBOX", "1", "1"],
            [*base, "BYRADIUS", "1"],
            [*base, "BYRADIUS", "1", "km", "STORE", "dst"],
            [*base, "BYRADIUS", "1", "km", "STOREDIST"],
            [*base, "BYRADIUS", "1", "km", "ANY"],
            [*base, "FROMLONLAT", "15"],
            [*base[:3], "15", "100", "BYRADIUS", "1", "km"],
            ["GEOSEARCH", "Sicily", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"],
            ["GEOSEARCH", "missing", "FROMMEMBER", "nope", "BYRADIUS", "1", "km"],
            ["GEOSEARCH", "missing", "FROMMEMBER", "nope"],
            ["GEOSEARCH", "missing", "FROMLONLAT", "15", "100", "BYRADIUS", "1", "km"],
            ["GEOSEARCH", "str", "FROMMEMBER", "nope"],
            ["GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km", "WITHDIST"],
            [
                "GEOSEARCHSTORE",
                "dst",
                "Sicily",
                "FROMLONLAT",
                "15",
                "37",
                "BYRADIUS",
                "1",
                "km",
                "STORE",
                "x",
            ],
            ["GEOSEARCHSTORE", "dst", "str", "FROMLONLAT", "15", "37", "BYRADIUS", "1", "km"],
            ["GEOSEARCHSTORE", "dst", "Sicily", "BYRADIUS", "1", "km"],
            ["GEOSEARCHSTORE", "dst", "Sicily", "FROMLONLAT", "15", "37"],
            ["EXISTS", "dst"],
        ],
    )


def test_store_replaces_drops_and_keeps_ttl_rules(oracle: Oracle, engine: EngineClient) -> None:
    around = ["FROMLONLAT", "15", "37", "BYRADIUS", "200", "km"]
    assert_same(
        oracle,
        engine,
        [
            SICILY,
            MORE,
            ["SET", "dst", "string", "EX", "1000"],
            ["GEORADIUS", "Sicily", "15", "37", "200", "km", "STORE", "dst"],
            ["TYPE", "dst"],
            ["TTL", "dst"],
            ["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            ["GEORADIUS", "Sicily", "15", "37", "200", "km", "STOREDIST", "dst", "DESC", "COUNT", "1"],
            ["ZRANGE", "dst", "0", "-1", "WITHSCORES"],
            ["GEORADIUSBYMEMBER", "Sicily", "Palermo", "10", "mi", "STORE", "dst", "STOREDIST", "d2"],
            ["ZRANGE", "d2", "0", "-1", "WITHSCORES"],
            ["EXISTS", "dst"],
            ["GEORADIUS", "Sicily", "0", "0", "1", "m", "STORE", "d2"],  # nothing: deleted
            ["EXISTS", "d2"],
            ["GEOSEARCHSTORE", "d3", "Sicily", *around, "STOREDIST", "COUNT", "2", "ANY"],
            ["ZRANGE", "d3", "0", "-1", "WITHSCORES"],
            ["GEOSEARCHSTORE", "d3", "missing", *around],
            ["EXISTS", "d3"],
            ["GEORADIUSBYMEMBER", "missing", "x", "1", "km", "STORE", "Sicily"],  # deletes it
            ["EXISTS", "Sicily"],
            MORE,
            ["GEOSEARCHSTORE", "Sicily", "Sicily", *around, "STOREDIST"],  # onto itself
            ["ZRANGE", "Sicily", "0", "-1", "WITHSCORES"],
        ],
    )


def test_units_any_and_orders(oracle: Oracle, engine: EngineClient) -> None:
    cmds: list[list[Arg]] = [SICILY, MORE, ["GEOADD", "Sicily", "13.583333", "37.316667", "Agrigento"]]
    for unit in ("m", "KM", "mi", "Ft"):
        for tail in ([], ["ASC"], ["DESC"], ["COUNT", "2"], ["COUNT", "2", "DESC"], ["COUNT", "1", "ANY"]):
            cmds.append(
                ["GEOSEARCH", "Sicily", "FROMMEMBER", "Catania", "BYRADIUS", "300", unit, "WITHDIST", *tail]
            )
            cmds.append(["GEORADIUS", "Sicily", "14", "38", "250", unit, "WITHDIST", "WITHHASH", *tail])
        cmds.append(
            ["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "38", "BYBOX", "500", "300", unit, "WITHCOORD"]
        )
    cmds.append(["GEOSEARCH", "Sicily", "FROMLONLAT", "15", "38", "BYRADIUS", "0", "km"])
    cmds.append(["GEOSEARCH", "Sicily", "FROMMEMBER", "Palermo", "BYBOX", "0", "0", "km", "WITHDIST"])
    cmds.append(["GEORADIUS", "Sicily", "15", "37", "200", "km", "DESC", "ASC", "COUNT", "9", "COUNT", "2"])
    assert_same(oracle, engine, cmds)


def test_lua_scripts_call_geo_commands(oracle: Oracle, engine: EngineClient) -> None:
    script = (
        "redis.call('GEOADD', KEYS[1], ARGV[1], ARGV[2], 'a', 15.087269, 37.502669, 'b') "
        "return {redis.call('GEODIST', KEYS[1], 'a', 'b', 'km'), "
        "redis.call('GEOSEARCH', KEYS[1], 'FROMMEMBER', 'a', 'BYRADIUS', 200, 'km', 'WITHCOORD', 'ASC'), "
        "redis.call('GEOPOS', KEYS[1], 'a', 'nope')}"
    )
    assert_same(
        oracle,
        engine,
        [
            ["EVAL", script, 1, "g", "13.361389", "38.115556"],
            ["EVAL", script, 1, "g", "13.361389", "91"],
            ["ZRANGE", "g", "0", "-1", "WITHSCORES"],
        ],
    )


def test_count_orders_ties_as_redis_partial_sort(oracle: Oracle, engine: EngineClient) -> None:
    """Members at the same spot are at the same distance: with COUNT below the number found,
    Redis's partial quicksort (not stable) decides their order, past 40 of them too."""
    rng = random.Random(7)
    cmds: list[list[Arg]] = []
    for n in (5, 9, 30, 45, 70) if engine.name != "dynamodb" else (9, 45):
        spots = [(rng.uniform(10, 10.01), rng.uniform(10, 10.01)) for _ in range(3)]
        add: list[Arg] = ["GEOADD", f"ties{n}"]
        for i in range(n):
            lon, lat = rng.choice(spots)
            add += [f"{lon:.6f}", f"{lat:.6f}", f"m{i:02d}"]
        cmds.append(add)
        for count in sorted({1, 2, n // 3, n // 2, n - 1}):
            for order in ("ASC", "DESC"):
                cmds.append(
                    [
                        "GEOSEARCH",
                        f"ties{n}",
                        "FROMLONLAT",
                        10,
                        10,
                        "BYRADIUS",
                        50,
                        "km",
                        "COUNT",
                        count,
                        order,
                    ]
                )
        cmds.append(["GEORADIUS", f"ties{n}", 10, 10, 50, "km", "COUNT", n // 2, "WITHDIST"])
        cmds.append(["GEORADIUS", f"ties{n}", 10, 10, 50, "km", "COUNT", n // 2, "STORE", "st"])
        cmds.append(["ZRANGE", "st", 0, -1])
    assert_same(oracle, engine, cmds)


# --- randomized ------------------------------------------------------------------------


def _coordinate(rng: random.Random) -> tuple[float, float]:
    """Anywhere, with the edges (poles, the antimeridian, the equator) drawn often."""
    kind = rng.random()
    lon = rng.uniform(-180, 180)
    lat = rng.uniform(-85.05112878, 85.05112878)
    if kind < 0.15:
        lat = rng.choice((1, -1)) * rng.uniform(75, 85.05112878)
    elif kind < 0.3:
        lon = rng.choice((1, -1)) * rng.uniform(170, 180)
    elif kind < 0.35:
        lat = rng.uniform(-1, 1)
    return round(lon, rng.choice((2, 4, 6, 9))), round(lat, rng.choice((2, 4, 6, 9)))


def _distance(rng: random.Random) -> str:
    return f"{10 ** rng.uniform(2, 7.3):.{rng.choice((0, 1, 3))}f}"


def _random_commands(rng: random.Random, points: int, searches: int) -> list[list[Arg]]:
    cmds: list[list[Arg]] = []
    centres = [_coordinate(rng) for _ in range(8)]
    add: list[Arg] = ["GEOADD", "g"]
    for i in range(points):
        if rng.random() < 0.5:  # a cluster around a future centre: small searches find something
            lon, lat = rng.choice(centres)
            lon = max(-180.0, min(180.0, lon + rng.gauss(0, 0.5)))
            lat = max(-85.05, min(85.05, lat + rng.gauss(0, 0.5)))
            lon, lat = round(lon, 6), round(lat, 6)
        else:
            lon, lat = _coordinate(rng)
        add += [lon, lat, f"m{i}"]
    cmds.append(add)
    cmds.append(["ZRANGE", "g", "0", "-1", "WITHSCORES"])
    members = [f"m{i}" for i in range(points)]
    cmds.append(["GEOPOS", "g", *rng.sample(members, 10), "nope"])
    cmds.append(["GEOHASH", "g", *rng.sample(members, 10), "nope"])
    for _ in range(10):
        cmds.append(["GEODIST", "g", *rng.sample(members, 2), rng.choice(("m", "km", "mi", "ft"))])
    for n in range(searches):
        unit = rng.choice(("m", "km", "mi", "ft"))
        lon, lat = rng.choice(centres) if rng.random() < 0.7 else _coordinate(rng)
        scale = {"m": 1, "km": 1000, "mi": 1609.34, "ft": 0.3048}[unit]
        size = [f"{float(_distance(rng)) / scale:.3f}"]
        if rng.random() < 0.5:
            by: list[Arg] = ["BYRADIUS", *size, unit]
        else:
            by = ["BYBOX", *size, f"{float(_distance(rng)) / scale:.3f}", unit]
        options: list[Arg] = [o for o in ("WITHCOORD", "WITHDIST", "WITHHASH") if rng.random() < 0.4]
        options += rng.choice(([], ["ASC"], ["DESC"]))
        if rng.random() < 0.4:
            options += ["COUNT", rng.randint(1, 6), *(["ANY"] if rng.random() < 0.3 else [])]
        member = rng.choice(members)
        if n % 3 == 0:
            frm: list[Arg] = ["FROMMEMBER", member]
        else:
            frm = ["FROMLONLAT", lon, lat]
        cmds.append(["GEOSEARCH", "g", *frm, *by, *options])
        if by[0] == "BYRADIUS" and n % 4 == 1:
            cmds.append(["GEORADIUS", "g", lon, lat, *by[1:], *options])
            cmds.append(["GEORADIUSBYMEMBER_RO", "g", member, *by[1:], *options])
        if n % 5 == 2:
            plain = [o for o in options if not str(o).startswith("WITH")]
            cmds.append(["GEOSEARCHSTORE", "dst", "g", *frm, *by, *plain, *(["STOREDIST"] * (n % 2))])
            cmds.append(["ZRANGE", "dst", "0", "-1", "WITHSCORES"])
    return cmds


def test_randomized_against_redis(oracle: Oracle, engine: EngineClient) -> None:
    """Seeded: random points worldwide (clusters, poles, the antimeridian), random circles
    and boxes in every unit, every option.  DynamoDB Local is slow: fewer rounds there."""
    rounds = 3 if engine.name == "dynamodb" else 20
    for seed in range(rounds):
        rng = random.Random(seed)
        oracle("DEL", "g", "dst")
        engine("DEL", "g", "dst")
        assert_same(oracle, engine, _random_commands(rng, points=rng.choice((40, 150)), searches=60))
