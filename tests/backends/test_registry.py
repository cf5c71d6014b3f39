"""The backend registry is the one home of backend knowledge: URLs, options, defaults,
help, docs and the tests' parametrization all come from it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kvgate.adapters import REGISTRY, BackendURLError, check_url, entry_for, open_backend
from kvgate.config import ConfigError, from_options
from tests.support.backends import BACKEND_URLS


def test_the_tests_can_make_every_registered_backend() -> None:
    assert set(BACKEND_URLS) == {e.name for e in REGISTRY}


def test_backend_url_fixture_makes_the_backend_it_names(
    request: pytest.FixtureRequest, backend_url: str
) -> None:
    assert entry_for(backend_url).name == request.node.callspec.params["backend_url"]


@pytest.mark.parametrize("entry", REGISTRY, ids=lambda e: e.name)
def test_entry_names_a_backend_class_of_its_kind(entry: object) -> None:
    from kvgate.adapters import BackendEntry

    assert isinstance(entry, BackendEntry)
    cls = entry.backend_class()
    assert cls.kind == entry.name
    for scheme in entry.schemes:
        assert entry_for(f"{scheme}://x") is entry


def test_serve_help_names_every_backend() -> None:
    """``kvgate serve --help`` once forgot dynamodb://: the help now reads the registry."""
    out = subprocess.run(
        [sys.executable, "-m", "kvgate", "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    flat = " ".join(out.split())
    for entry in REGISTRY:
        for scheme in entry.schemes:
            assert f"{scheme}://" in flat, scheme


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://localhost/x", "unsupported backend URL 'mysql://localhost/x': expected one of"),
        ("sqlite://host/x.db", "a sqlite URL has no host"),
        ("sqlite:///x.db?synchronous=sometimes", "synchronous must be NORMAL or FULL"),
        ("sqlite:///x.db?busy_timeout_ms=soon", "busy_timeout_ms must be a whole number"),
        (
            "sqlite:///x.db?journal=wal",
            "unknown sqlite URL option(s): journal (known: busy_timeout_ms, synchronous)",
        ),
        ("dynamodb://t", "a DynamoDB URL names its table"),
        ("dynamodb://table?color=red", "unknown dynamodb URL option(s): color (known: region, endpoint_url)"),
        ("fakeredis:///db7x", "a fakeredis database is a number from 0 to 15"),
        ("redis://localhost:notaport/0", "invalid backend URL"),
    ],
)
def test_bad_urls_are_one_clear_line(url: str, message: str) -> None:
    with pytest.raises(BackendURLError, match=None) as caught:
        check_url(url)
    assert message in str(caught.value)
    with pytest.raises(ConfigError) as config_error:
        from_options({"backend": url})
    assert message in str(config_error.value)


def test_url_options_take_their_defaults_from_the_registry() -> None:
    from kvgate.adapters.sqlite import parse_url

    sqlite = entry_for("sqlite://")
    where = parse_url("sqlite:///x.db")
    assert where.busy_timeout_ms == int(sqlite.read_options("")["busy_timeout_ms"] or 0)
    assert where.synchronous == sqlite.read_options("")["synchronous"] == "NORMAL"
    assert parse_url("sqlite:///x.db?synchronous=full&busy_timeout_ms=250").synchronous == "FULL"


def test_pool_size_defaults_per_backend_come_from_the_registry() -> None:
    for url, entry_name in [
        ("redis://127.0.0.1:1/0", "redis"),
        ("dynamodb://kvgate-table?region=x", "dynamodb"),
    ]:
        backend = open_backend(url)
        assert backend.settings.pool_size == entry_for(url).default_pool_size, entry_name
    config = from_options({"backend": "redis://127.0.0.1:1/0", "pool_size": 9})
    assert open_backend(config.databases[0].backend, config.databases[0].backend_settings).pool_size == 9


def test_in_process_backends_refuse_several_workers() -> None:
    in_process = [e for e in REGISTRY if e.in_process]
    assert in_process
    for entry in in_process:
        with pytest.raises(ConfigError, match="cannot be served by several workers"):
            from_options({"backend": f"{entry.schemes[0]}://", "workers": 2, "port": 8399})


def test_a_redis_only_gateway_never_loads_the_engine() -> None:
    code = (
        "import sys; from kvgate.app import Gateway; from kvgate.adapters import open_backend;"
        "open_backend('redis://127.0.0.1:1/0');"
        "print(sorted(m for m in sys.modules if m.startswith(('lupa', 'kvgate.engine'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
