"""Passwords and tokens stay out of what kvgate prints (issue 15, defect 5): a backend
URL's password in a configuration error, a token in a setting's error, an endpoint's
password in the DynamoDB backend's messages.  Request logging is tested with the HTTP
hardening (test_hardening_http.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvgate.adapters import redact_url
from kvgate.adapters.dynamodb import parse_url as dynamodb_url
from tests.support.servers import serve_fails

SECRET = "s3cret-Pa55"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://user:{SECRET}@host:notaport/0", "redis://user:***@host:notaport/0"),
        (f"rediss://:{SECRET}@host:notaport", "rediss://:***@host:notaport"),
        (f"mysql://user:{SECRET}@host/0", "mysql://user:***@host/0"),
        # an unescaped '/' in the password: read as host 'u', port 's3cret-Pa55' ...
        (f"redis://u:{SECRET}/x@h/0", "redis://u:***@h/0"),
        (f"redis://host:port/0?password={SECRET}", "redis://host:port/0?password=***"),
        (f"dynamodb://tbl?endpoint_url=ftp://u:{SECRET}@h", "invalid backend URL"),
    ],
)
def test_a_backend_url_in_a_config_error_never_shows_its_password(url: str, shown: str) -> None:
    """Before: the error printed the URL as given, password included."""
    message = serve_fails("--backend", url)
    assert shown in message
    assert SECRET not in message and SECRET[:4] not in message


def test_a_token_in_a_setting_error_is_not_shown(tmp_path: Path) -> None:
    """Before: ``setting 'tokens' = ['<the token>', 5]: expected a list of non-empty strings``."""
    conf = tmp_path / "kvgate.toml"
    conf.write_text(f'[databases.a]\ntokens = ["{SECRET}", 5]\nread_only_tokens = ["ro-{SECRET}", ""]\n')
    message = serve_fails("--config", str(conf))
    assert "setting 'tokens' = (hidden): expected a list of non-empty strings" in message
    assert SECRET not in message


def test_redact_url_hides_every_password_in_a_text() -> None:
    text = (
        f"at 'redis://a:{SECRET}@h1/0' and \"http://b:{SECRET}2@h2:8000/\" or redis://h3/0?pwd={SECRET}3&db=1"
    )
    assert (
        redact_url(text)
        == "at 'redis://a:***@h1/0' and \"http://b:***@h2:8000/\" or redis://h3/0?pwd=***&db=1"
    )
    assert redact_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"  # nothing to hide
    # a parser's error quoting a piece of a malformed URL's password
    assert redact_url(
        f"Port could not be cast to integer value as '{SECRET}'", f"redis://u:{SECRET}/x@h"
    ) == ("Port could not be cast to integer value as '***'")


def test_the_dynamodb_endpoint_is_shown_without_its_password() -> None:
    where = dynamodb_url(f"dynamodb://tbl?endpoint_url=http://key:{SECRET}@127.0.0.1:8000").where
    assert where == "http://key:***@127.0.0.1:8000"
