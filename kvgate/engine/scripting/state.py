"""One database's scripting in this process.

Script bodies live in the store, shared by every process on it.  What lives here is only
this process's part, kept per database so that two databases of one process share
nothing: their limits, their Lua runtimes, and the scripts their read-only units saw.

* Runtimes: one per thread, created on first use and reused.  The SQLite backend runs
  EVAL on its writer thread and EVAL_RO on its reader threads (never on the event loop),
  and a runtime must not be entered by two threads at once.  A runtime keeps its compiled
  scripts by SHA1 (a bounded LRU).  The limits object is shared: every runtime reads it
  at each script.
* Unsaved scripts: a unit that may not write (EVAL_RO on a read-only connection) cannot
  store the body it saw; it is kept here (under a lock: several reader threads may add
  to it) until a writing unit stores it, so that EVALSHA finds it as in Redis.

The store owns its :class:`Scripting` and hands it to every unit as ``t.scripting``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from kvgate.engine.scripting.sandbox import Limits, LuaSandbox
from kvgate.engine.storage import Txn


class Scripting:
    def __init__(self, limits: Limits | None = None, unsaved_max: int = 1000) -> None:
        #: Change them for this database; runtimes apply them from their next script.
        self.limits = limits if limits is not None else Limits()
        self._local = threading.local()
        self._unsaved: OrderedDict[bytes, bytes] = OrderedDict()
        self._unsaved_max = unsaved_max
        self._lock = threading.Lock()

    def sandbox(self) -> LuaSandbox:
        """This thread's runtime for this database, created on first use."""
        box: LuaSandbox | None = getattr(self._local, "sandbox", None)
        if box is None:
            box = self._local.sandbox = LuaSandbox(self.limits)
        return box

    # --- the script store, with what read-only units could not store ----------------

    def remember(self, t: Txn, sha: bytes, body: bytes) -> None:
        if t.writable:
            t.script_put(sha, body)
            return
        with self._lock:
            self._unsaved[sha] = body
            while len(self._unsaved) > self._unsaved_max:
                self._unsaved.popitem(last=False)

    def lookup(self, t: Txn, sha: bytes) -> bytes | None:
        body = t.script_get(sha)
        if body is not None:
            return body
        with self._lock:
            body = self._unsaved.get(sha)
            if body is not None and t.writable:
                del self._unsaved[sha]
        if body is not None and t.writable:
            t.script_put(sha, body)
        return body

    def forget_all(self, t: Txn) -> None:
        t.script_flush()
        with self._lock:
            self._unsaved.clear()
