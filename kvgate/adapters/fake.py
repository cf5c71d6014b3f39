"""fakeredis adapter (``fakeredis://``): Redis semantics in process memory, no server.

For local development and tests.  Data lives as long as the process; one process only.
Commands are fed to fakeredis as RESP through its in-memory socket, so they take the same
path as on a real server (parsing, MULTI/EXEC queueing) and error texts keep their prefix.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlsplit

import fakeredis
import redis
from fakeredis._helpers import SimpleString
from fakeredis._socket._fakesocket import FakeSocket  # no public raw-socket API
from fakeredis.model import BaseModel

from kvgate import error_texts
from kvgate.adapters import resp
from kvgate.adapters.base import Backend, BackendSettings, Health, Subscription
from kvgate.adapters.json_commands import json_command_entries
from kvgate.adapters.redis_pubsub import RedisSubscription
from kvgate.commands import CommandTable, default_table
from kvgate.errors import BackendUnavailable, ReplyError
from kvgate.protocol import Args, Reply


def _with_prefix(text: str) -> str:
    """Redis error replies always start with an upper-case code; a few fakeredis texts lack
    one (``numkeys should be greater than 0``), and Redis itself would say ``ERR``."""
    code = text.split(" ", 1)[0]
    return text if code.isupper() and code.isalpha() else error_texts.err(text)


class _RawSocket(FakeSocket):
    """Keeps error replies as full texts (fakeredis would strip ``ERR`` the redis-py way)."""

    def _decode_error(self, error: Any) -> ReplyError:  # type: ignore[override]
        return ReplyError(_with_prefix(str(error.value)))

    @staticmethod
    def _key_value_type(key: Any) -> SimpleString:
        """TYPE and SCAN TYPE: fakeredis keeps a document as the bare Python value and has
        no type name for it (TYPE fails on an object, says ``list`` for an array): a
        document is any value that is not bytes, a list of bytes or a model."""
        value = key.value
        if isinstance(value, list) and value and all(isinstance(v, bytes) for v in value):
            return SimpleString(b"list")
        if value is not None and not isinstance(value, bytes | list | BaseModel):
            return SimpleString(DOCUMENT_TYPE)
        if isinstance(value, list):
            return SimpleString(DOCUMENT_TYPE)  # an empty list is a document: Redis drops empty lists
        return FakeSocket._key_value_type(key)


#: Redis's type name of a document (RedisJSON's).
DOCUMENT_TYPE = b"ReJSON-RL"


@cache
def _commands() -> CommandTable:
    """Redis 7.0's commands and RedisJSON's (fakeredis[json] runs JSON.*)."""
    return default_table().merged(json_command_entries(), "JSON.* (fakeredis[json])")


class FakeRedisBackend(Backend):
    kind = "fakeredis"
    knows_shebang = False

    def __init__(self, url: str = "fakeredis://", settings: BackendSettings | None = None) -> None:
        super().__init__(url, settings)
        self.db = self.parse_url(url)
        self.server = fakeredis.FakeServer(version=(7, 0))
        self._socket: _RawSocket | None = self._new_socket()
        # fakeredis lets SELECT inside a script switch the connection (Redis 7 does not):
        # every round trip ends by selecting this database again.
        self._reselect = resp.encode([b"SELECT", str(self.db).encode()])
        self._pubsub_client: fakeredis.FakeAsyncRedis | None = None

    @classmethod
    def parse_url(cls, url: str) -> int:
        """The database number: ``fakeredis://`` (0) or ``fakeredis:///<db>``."""
        parts = urlsplit(url)
        if parts.netloc or parts.query:
            raise ValueError("a fakeredis URL has no host or options: fakeredis:// or fakeredis:///<db>")
        path = parts.path.strip("/")
        if path and not (path.isdigit() and int(path) < 16):
            raise ValueError(f"a fakeredis database is a number from 0 to 15, not {path!r}")
        return int(path) if path else 0

    @property
    def commands(self) -> CommandTable:
        return _commands()

    def _new_socket(self) -> _RawSocket:
        return _RawSocket(self.server, self.db, client_class=redis.Redis)

    async def close(self) -> None:
        self._socket = None
        if self._pubsub_client is not None:
            await self._pubsub_client.aclose()

    def _roundtrip(self, payload: bytes, expected: int) -> list[Reply]:
        sock = self._socket
        if sock is None or sock.responses is None:
            raise BackendUnavailable(error_texts.BACKEND_CLOSED)
        try:
            sock.sendall(payload + self._reselect)
            replies: list[Reply] = [sock.responses.get_nowait() for _ in range(expected + 1)]
        except Exception as exc:
            # fakeredis can wedge its parser (e.g. CLIENT REPLY OFF from a script): the data
            # lives in the server object, so a fresh connection loses nothing.
            self._socket = self._new_socket()
            raise BackendUnavailable(error_texts.fakeredis_failed(type(exc).__name__)) from None
        return replies[:-1]

    async def execute(self, commands: list[Args]) -> list[Reply]:
        return self.reply_budget().admit_all(self._roundtrip(resp.encode_many(commands), len(commands)))

    async def transaction(self, commands: list[Args]) -> list[Reply]:
        replies = self._roundtrip(resp.encode_transaction(commands), len(commands) + 2)
        return self.reply_budget().whole(resp.exec_replies(replies))

    def health(self) -> Health:
        return Health(ok=self._socket is not None, detail="in-memory")

    def subscription(self) -> Subscription:
        if self._pubsub_client is None:
            self._pubsub_client = fakeredis.FakeAsyncRedis(server=self.server, db=self.db)
        return RedisSubscription(self._pubsub_client.pubsub())
