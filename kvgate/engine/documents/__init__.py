"""Documents: the JSON.* commands (RedisJSON 2.8) on kvgate's engine.

* :mod:`.values`: JSON read and written as RedisJSON does (serde_json's errors, ryu's
  numbers, the INDENT/NEWLINE/SPACE formatter).
* :mod:`.paths`: JSONPath and legacy paths, parsed and evaluated as RedisJSON does.
* :mod:`.commands`: the commands, registered with the engine.
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

from kvgate.engine.documents import commands  # noqa: F401  (registers the handlers)


@cache
def command_entries() -> dict[str, dict[str, Any]]:
    """The JSON.* command facts the engine declares (RedisJSON 2.8's COMMAND INFO, in
    ``kvgate/engine/commands.json``): the fakeredis backend serves them, and a Redis
    without a JSON module refuses them by name."""
    declared = json.loads(files("kvgate.engine").joinpath("commands.json").read_text())["commands"]
    return {name: facts for name, facts in declared.items() if name.startswith("json.")}
