"""Online store implementations under the one contract suite: memory, SQLite and Redis.

The Redis server is real: started once per session by scripts/redis.sh (which installs
redis-server with apt-get if it is missing) on a free port of 127.0.0.1, without
persistence, and stopped at the end if this session started it. If it cannot start, the
Redis tests fail (never skip): a green run always means Redis was exercised. Each Redis
store of a test gets a key prefix of its own, so tests never see each other's rows.

A test module imports the fixtures (``*_fixture``) and asks for them by their names:
``online_backend`` (every store), ``shared_online_backend`` (the stores that other handles
and processes share: SQLite, Redis) and ``redis_url``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.store import MemoryOnlineStore, OnlineStore, SqliteOnlineStore
from streamsense.store.redis_online import RedisOnlineStore
from tests.script_server import ScriptServer

SHARED_STORES = ["sqlite", pytest.param("redis", marks=pytest.mark.redis)]
STORES = ["memory", *SHARED_STORES]


# The first start on a fresh machine installs redis-server through apt-get.
REDIS = ScriptServer("redis.sh", start_timeout_s=600, stop_timeout_s=30)


@pytest.fixture(scope="session", name="redis_url")
def redis_url_fixture() -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of the test Redis server."""
    yield f"redis://{REDIS.acquire()}/0"
    REDIS.release()


@dataclass
class OnlineBackend:
    name: str
    url: str  # where a second handle (or another process) finds the same rows
    make: Callable[..., OnlineStore]  # make(clock=None): a new handle on the same rows
    prefix: str = ""  # Redis: this test's key prefix
    opened: list[OnlineStore] = field(default_factory=list)

    def raw_ttl_ms(self, view: str, key: str) -> int:
        """Redis's own expiry of the row, as PTTL says: milliseconds left, -1 for none, -2
        when the key is gone (its expiry ran)."""
        assert self.name == "redis"
        store = self.opened[0]
        assert isinstance(store, RedisOnlineStore)
        client = redis.Redis.from_url(store.url)
        try:
            return int(client.pttl(f"{store.prefix}{view}:{key}"))
        finally:
            client.close()


@pytest.fixture(params=STORES, name="online_backend")
def online_backend_fixture(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[OnlineBackend]:
    yield from _backend(request, tmp_path)


@pytest.fixture(params=SHARED_STORES, name="shared_online_backend")
def shared_online_backend_fixture(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[OnlineBackend]:
    """The stores whose rows other handles and processes see (not memory)."""
    yield from _backend(request, tmp_path)


def _backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OnlineBackend]:
    name: str = request.param
    prefix = f"sstest-{uuid.uuid4().hex[:12]}:"
    if name == "redis":
        url = request.getfixturevalue("redis_url")
    elif name == "sqlite":
        url = f"sqlite://{tmp_path / 'online.db'}"
    else:
        url = "memory://"
    backend: OnlineBackend

    def make(clock: Clock | None = None) -> OnlineStore:
        clock = clock or SYSTEM_CLOCK
        store: OnlineStore
        if name == "memory":
            store = MemoryOnlineStore(clock=clock)
        elif name == "sqlite":
            store = SqliteOnlineStore(tmp_path / "online.db", clock=clock)
        else:
            store = RedisOnlineStore(url, prefix=prefix, clock=clock)
        backend.opened.append(store)
        return store

    backend = OnlineBackend(name, url, make, prefix)
    yield backend
    if name == "redis":  # leave nothing behind on the shared server
        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            for start in range(0, len(keys), 1000):
                client.delete(*keys[start : start + 1000])
        finally:
            client.close()
    for store in backend.opened:
        store.close()
