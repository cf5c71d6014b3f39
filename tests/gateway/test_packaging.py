"""What an install ships and needs: the console's files as package data (a non-editable
install has them), and the default backend without the optional extras."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_console_files_are_package_data() -> None:
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["kvgate"]
    static = ROOT / "kvgate" / "console" / "static"
    files = [p.relative_to(ROOT / "kvgate").as_posix() for p in static.iterdir()]
    assert {"console/static/index.html", "console/static/console.js", "console/static/console.css"} <= set(
        files
    )
    for file in files:
        assert any(fnmatch.fnmatch(file, pattern) for pattern in patterns), file
    assert (ROOT / "kvgate" / "console" / "__init__.py").exists()  # a package: found by packages.find


BLOCKED = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("aiobotocore", "botocore", "fakeredis"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
import asyncio
from kvgate.app import Gateway
from kvgate.config import ConfigError, from_options
import kvgate.cli, kvgate.server, kvgate.console
async def main(url):
    gateway = Gateway(from_options({"backend": url, "tokens": ("t",)}))
    await gateway.start()
    (_, database), = gateway.databases
    print(await database.run_one([b"SET", b"k", b"v"], database.authenticate("t")))
    await gateway.close()
asyncio.run(main(sys.argv[1]))
for url in ("dynamodb://table?region=x", "fakeredis://"):
    try:
        from_options({"backend": url})
    except ConfigError as exc:
        print(exc)
"""


def test_the_default_backend_runs_without_the_extras(tmp_path: Path) -> None:
    """Without aiobotocore and fakeredis (the [dynamodb] and [fakeredis] extras)
    SQLite serves; asking for those backends is one clear configuration error."""
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED, f"sqlite:///{tmp_path}/k.db"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "b'OK'"
    assert "pip install 'kvgate[dynamodb]'" in lines[1]
    assert "pip install 'kvgate[fakeredis]'" in lines[2]
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert any(d.startswith("kvgate[dynamodb,fakeredis]") for d in extras["test"])
    assert not any(d.startswith(("aiobotocore", "fakeredis")) for d in PYPROJECT["project"]["dependencies"])
