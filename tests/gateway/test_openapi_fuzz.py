"""openapi.yaml fuzzed by schemathesis against a real ``kvgate serve``, on SQLite and on Redis.

Every operation of the spec gets schemathesis's three phases (its examples, the coverage
phase's edge cases and invalid inputs, and random fuzzing) and every check schemathesis
has: no 5xx, statuses, headers and bodies as documented, invalid data refused, valid data
accepted, undeclared methods answered 405 with a matching ``Allow``, auth enforced. What
the spec cannot say (a failed command answers 400 to valid data; a stream is read up to
its first event) is in ``schemathesis.toml``, which ``schemathesis run`` reads too.

Bounded and deterministic by default: a few fuzzed examples per operation, derandomized.
For a longer run, ``KVGATE_FUZZ_EXAMPLES=500``; ``KVGATE_FUZZ_SEED=<n>`` explores other
inputs (random from that seed instead of derandomized).
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from kvgate import error_texts
from tests.support.api import RO, RW
from tests.support.servers import KvgateServer, RedisServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = int(os.environ.get("KVGATE_FUZZ_EXAMPLES", "10"))
SEED = os.environ.get("KVGATE_FUZZ_SEED")
AUTH = {"Authorization": f"Bearer {RW}"}
#: What every refusal of a request's shape starts with ("ERR invalid request body: ...").
MALFORMED = error_texts.BODY_EMPTY.partition(":")[0]


def fuzz_config() -> SchemathesisConfig:
    settings: dict[str, Any] = tomllib.loads((ROOT / "schemathesis.toml").read_text())
    settings["generation"] = {
        "max-examples": EXAMPLES,
        "deterministic": SEED is None,  # derandomized: the same cases on every run
        "database": "none",  # nothing remembered between runs, nothing written
    }
    settings["seed"] = int(SEED or 15)
    settings["request-timeout"] = 10
    # Timing only (a loaded machine generates slowly), never a finding about the spec.
    settings["suppress-health-check"] = ["too_slow"]
    return SchemathesisConfig.from_dict(settings)


schema = schemathesis.openapi.from_path(ROOT / "openapi.yaml", config=fuzz_config())


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def kvgate_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """``kvgate serve`` on a fresh SQLite file, or on a throw-away redis-server of its own
    (so that the random commands never touch the session's shared one)."""
    redis: RedisServer | None = None
    backend = "sqlite:///kvgate.db"
    if request.param == "redis":
        redis = RedisServer().start()
        backend = redis.url
    # A stream the client has left is released at the stream's next poll, up to a second
    # later, so a fast fuzzer can have more than max_subscriptions (100) streams open on
    # the server at once though it holds one at a time: room for them, no 503 by timing.
    server = KvgateServer(
        "--backend", backend, "--token", RW, "--read-only-token", RO, "--max-subscriptions", "5000"
    ).start()
    try:
        yield server.url
    finally:
        server.stop()
        output = server.output()
        server.close()
        if redis is not None:
            redis.close()
    # A bug answers 500 (not_a_server_error sees it) and logs a traceback: none either.
    assert "Traceback" not in output, output[-3000:]


def valid_data_is_never_called_malformed(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 400 to a schema-valid request must be a failed command (schemathesis.toml lets 400
    through for that), never kvgate saying the request itself is malformed: then the spec
    and kvgate's request parsing disagree."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code != 400:
        return None
    try:
        error = json.loads(response.content).get("error", "")
    except (ValueError, AttributeError):
        return None  # HEAD, or not an error body: the schema checks judge those
    assert not error.startswith(MALFORMED), f"schema-valid request refused as malformed: {error}"
    return None


@schema.parametrize()
def test_every_reply_keeps_the_contract(case: Any, kvgate_url: str) -> None:
    case.call_and_validate(
        base_url=kvgate_url, headers=AUTH, additional_checks=[valid_data_is_never_called_malformed]
    )
