"""How the tests make an empty database of each registered backend (the ``backend_url``
fixture); a test checks that every entry of the backend registry has a maker here."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.cluster import cluster_for
from tests.support.servers import RedisServer


def _sqlite_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/kvgate.db"


def _redis_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    server: RedisServer = request.getfixturevalue("redis_server")
    server.commands([["FLUSHALL"], ["SCRIPT", "FLUSH"]])
    return server.url


def _redis_cluster_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    cluster = cluster_for(request.config)
    cluster.flush()
    return cluster.url()


def _dynamodb_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return request.getfixturevalue("dynamodb_local").clean_table()


def _fakeredis_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "fakeredis://"


BACKEND_URLS: dict[str, Callable[[pytest.FixtureRequest, Path], str]] = {
    "sqlite": _sqlite_url,
    "redis": _redis_url,
    "rediscluster": _redis_cluster_url,
    "dynamodb": _dynamodb_url,
    "fakeredis": _fakeredis_url,
}
