"""The JSON.* command facts, for backends that are not kvgate's engine: fakeredis serves them
(``fakeredis[json]``) and a Redis without a JSON module refuses them by name.

They are the entries kvgate's engine declares in ``kvgate/engine/commands.json`` (RedisJSON
2.8's own COMMAND INFO), read from the file rather than through ``kvgate.engine``, so that a
gateway with only Redis backends never loads the engine (nor Lua).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

FACTS = Path(__file__).resolve().parent.parent / "engine" / "commands.json"


@cache
def json_command_entries() -> dict[str, dict[str, Any]]:
    declared = json.loads(FACTS.read_text())["commands"]
    return {name: facts for name, facts in declared.items() if name.startswith("json.")}
