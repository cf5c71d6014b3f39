"""Fixtures for the browser tests: Debian's Chromium driven by Playwright for Python.

Playwright's own browser download cannot work here, so the tests launch the system
Chromium (``apt-get install chromium``) through its executable path.  ``.ci/run`` installs
both; without them these tests skip, saying which is missing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("KVGATE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
#: Where screenshots go (gitignored); printed by the tests that write there.
ARTIFACTS = Path(os.environ.get("KVGATE_ARTIFACTS") or Path(tempfile.gettempdir()) / "kvgate-artifacts")


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One Chromium for the browser tests, stopped when they end: Playwright's sync API
    keeps an asyncio loop running in this thread while it is open, and the async tests
    after these (pytest-asyncio) cannot start their own loops beside it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; .ci/run installs it)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium; .ci/run installs it)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots in {ARTIFACTS}")
    return ARTIFACTS
