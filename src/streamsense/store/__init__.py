"""The online store: per feature view and entity key, the latest state blob (see
``streamsense.store.online`` for the semantics every implementation keeps).

``open_online_store(url)`` picks the implementation from a URL:

* ``memory://``                in this process only (tests)
* ``sqlite:///path/to/online.db`` (or a plain path) the default, one embedded SQLite file
  (``sqlite://:memory:`` for a private in-memory database)
* ``redis://host:port/db``     a Redis server (also ``rediss://`` and ``unix://``)
"""

from __future__ import annotations

from pathlib import Path

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError
from streamsense.store.memory_online import MemoryOnlineStore
from streamsense.store.online import OnlineRow, OnlineStore
from streamsense.store.sqlite_online import SqliteOnlineStore

__all__ = [
    "MemoryOnlineStore",
    "OnlineRow",
    "OnlineStore",
    "SqliteOnlineStore",
    "open_online_store",
]


def open_online_store(url: str, *, clock: Clock = SYSTEM_CLOCK) -> OnlineStore:
    """Open the online store a URL names (see the module docstring)."""
    if url.startswith("memory://"):
        return MemoryOnlineStore(clock=clock)
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        if not path:
            raise ConfigError(f"online store URL {url!r} names no file: use sqlite:///PATH")
        return SqliteOnlineStore(path, clock=clock)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from streamsense.extras import require

        require("redis", "redis")
        from streamsense.store.redis_online import RedisOnlineStore

        return RedisOnlineStore(url, clock=clock)
    if "://" in url:
        raise ConfigError(
            f"unknown online store URL {url!r}: use memory://, sqlite:///PATH"
            " or redis://HOST:PORT/DB"
        )
    return SqliteOnlineStore(Path(url), clock=clock)
