"""Documents: the JSON.* commands (RedisJSON 2.8) on kvgate's engine.

* :mod:`.values`: JSON read and written as RedisJSON does (serde_json's errors, ryu's
  numbers, the INDENT/NEWLINE/SPACE formatter).
* :mod:`.paths`: JSONPath and legacy paths, parsed and evaluated as RedisJSON does.
* :mod:`.commands`: the commands, registered with the engine.
"""

from kvgate.engine.documents import commands  # noqa: F401  (registers the handlers)
