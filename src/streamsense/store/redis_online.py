"""The online store on a Redis server (one server, or a primary with replicas).

Layout, no hashes: one string per row, key ``{prefix}{view}:{key}`` (view names carry no
``:``, so keys of different views never collide), value a 16-byte header then the blob:

    event_time  int64 big-endian   the row's event time (epoch ms)
    expires_ms  int64 big-endian   when it expires on the store's clock (0: never)
    blob        the rest

Last-write-wins must compare and set atomically, so writes go through a small Lua script
(EVALSHA): per row it reads the stored header (GETRANGE 0 15, never the blob), keeps the
newer event time (an expired row counts as absent) and SETs with PX = the TTL. All rows of
a write are a few EVALSHA calls (<= 256 rows each) sent in one pipeline: one round trip.
A read is one MGET (GET for one key), also of several views' keys at once (``read_blobs``).
Redis drops a row itself ``ttl_ms`` after the write by its own wall clock; reads also hide
rows past ``expires_ms`` by the injected clock, so the store honours a test's ManualClock
like the others.

A decision waits on the reads, so the client fails fast: a stopped server refuses the
connection at once, a hung one is given up after ``socket_timeout`` (connecting after
``connect_timeout``), and either raises ``RetryableError`` for the caller's breaker and
fallback to act on. The client does not back off and retry by itself (that would hide the
failure from the breaker for seconds); it makes one immediate second attempt on a fresh
connection, which is what a pooled connection broken by a server restart needs: the store
reconnects by itself once the server is back. A server at its ``maxmemory`` under
``noeviction`` refuses writes with OOM (reads still work): ``StorageFull``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, OutOfMemoryError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.disk_faults import RERUN
from streamsense.errors import RetryableError, StorageFull
from streamsense.store.memory_online import check_view, expiry_ms
from streamsense.store.online import OnlineRow, ViewKeys

_HEADER = struct.Struct(">qq")
_HEAD = _HEADER.size
# Rows per EVALSHA call and bytes per call: a script blocks the server while it runs.
SCRIPT_ROWS = 256
SCRIPT_BYTES = 1 << 20
# Keys per SCAN step and per purge call.
SCAN_COUNT = 1000

# ARGV: now, then per row i: event_time (3i-1), ttl_ms or 0 (3i), value (3i+1).
_WRITE_LUA = """
local now = tonumber(ARGV[1])
local changed = 0
for i = 1, #KEYS do
  local event_time = tonumber(ARGV[3 * i - 1])
  local ttl = tonumber(ARGV[3 * i])
  local head = redis.call('GETRANGE', KEYS[i], 0, 15)
  local take = true
  if #head == 16 then
    local old_time, old_expires = struct.unpack('>i8>i8', head)
    take = event_time >= old_time or (old_expires > 0 and old_expires <= now)
  end
  if take then
    if ttl > 0 then
      redis.call('SET', KEYS[i], ARGV[3 * i + 1], 'PX', ttl)
    else
      redis.call('SET', KEYS[i], ARGV[3 * i + 1])
    end
    changed = changed + 1
  end
end
return changed
"""

# ARGV: now. Deletes the KEYS whose header says they expired by then.
_PURGE_LUA = """
local now = tonumber(ARGV[1])
local removed = 0
for i = 1, #KEYS do
  local head = redis.call('GETRANGE', KEYS[i], 0, 15)
  if #head == 16 then
    local _, expires = struct.unpack('>i8>i8', head)
    if expires > 0 and expires <= now then
      redis.call('DEL', KEYS[i])
      removed = removed + 1
    end
  end
end
return removed
"""


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


@contextmanager
def _store_errors(url: str) -> Iterator[None]:
    """A server down or hung: RetryableError (the worker pauses and retries, a reader's
    breaker and fallback act). A server at its ``maxmemory`` that evicts nothing refuses
    writes with OOM: StorageFull (the worker stops; that seldom clears by itself)."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as error:
        raise RetryableError(f"online store {url} unavailable: {error}") from error
    except OutOfMemoryError as error:
        raise StorageFull(
            f"online store {url} refuses writes (OOM {error}): it is at its maxmemory and"
            f" evicts nothing; free memory or raise maxmemory there and {RERUN}",
            where=url,
        ) from error


class RedisOnlineStore:
    """Online rows in Redis. ``url``: ``redis://host:port/db`` (also rediss://, unix://)."""

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        clock: Clock = SYSTEM_CLOCK,
        prefix: str = "ss:",
        socket_timeout: float = 1.0,
        connect_timeout: float = 0.25,
        client: redis.Redis | None = None,
    ) -> None:
        self.url = url
        self._clock = clock
        self.prefix = prefix
        self._client: redis.Redis = client or redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            retry=Retry(NoBackoff(), 1),
        )
        # Reads call the client's command dispatch directly (its typed wrappers add a layer).
        self._execute: Callable[..., Any] = self._client.execute_command
        self._write_sha = _sha(_WRITE_LUA)
        self._purge_sha = _sha(_PURGE_LUA)
        with _store_errors(url):
            self._load_scripts()

    def _load_scripts(self) -> None:
        self._client.script_load(_WRITE_LUA)
        self._client.script_load(_PURGE_LUA)

    def _key(self, view: str) -> Callable[[str], str]:
        base = f"{self.prefix}{view}:"
        return base.__add__

    # -- writes -----------------------------------------------------------------------------
    def write(self, view: str, rows: Sequence[OnlineRow], *, ttl_ms: int | None = None) -> int:
        check_view(view)
        expiry_ms(self._clock, ttl_ms)  # validates ttl_ms
        if not rows:
            return 0
        now = self._clock.now_ms()
        ttl = ttl_ms or 0
        expires = now + ttl if ttl else 0
        key_of = self._key(view)
        calls: list[list[Any]] = []
        keys: list[str] = []
        argv: list[Any] = [now]
        size = 0
        for key, event_time, blob in rows:
            keys.append(key_of(key))
            argv += (event_time, ttl, _HEADER.pack(event_time, expires) + blob)
            size += len(blob) + _HEAD
            if len(keys) >= SCRIPT_ROWS or size >= SCRIPT_BYTES:
                calls.append([len(keys), *keys, *argv])
                keys, argv, size = [], [now], 0
        if keys:
            calls.append([len(keys), *keys, *argv])
        with _store_errors(self.url):
            return sum(self._run_scripts(self._write_sha, calls))

    def _run_scripts(self, sha: str, calls: list[list[Any]]) -> list[int]:
        """EVALSHA each call in one pipeline; reload the script and redo the calls that met
        NOSCRIPT (a restarted or flushed server), which had not run."""
        pipe = self._client.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(sha, *call)
        results: list[Any] = pipe.execute(raise_on_error=False)
        missing = [i for i, r in enumerate(results) if isinstance(r, NoScriptError)]
        if missing:
            self._load_scripts()
            pipe = self._client.pipeline(transaction=False)
            for i in missing:
                pipe.evalsha(sha, *calls[i])
            for i, result in zip(missing, pipe.execute(raise_on_error=False), strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return [int(r) for r in results]

    def delete(self, view: str, keys: Sequence[str]) -> None:
        check_view(view)
        if not keys:
            return
        key_of = self._key(view)
        with _store_errors(self.url):
            self._client.delete(*[key_of(key) for key in keys])

    def purge_expired(self) -> int:
        """Redis drops expired rows by itself; this also drops rows expired on the injected
        clock (a SCAN over this store's prefix, so it costs a pass over its keys)."""
        now = self._clock.now_ms()
        removed = 0
        with _store_errors(self.url):
            batch: list[Any] = []
            match = _glob_escape(self.prefix) + "*"
            for key in self._client.scan_iter(match=match, count=SCAN_COUNT):
                batch.append(key)
                if len(batch) >= SCAN_COUNT:
                    removed += sum(self._run_scripts(self._purge_sha, [[len(batch), *batch, now]]))
                    batch = []
            if batch:
                removed += sum(self._run_scripts(self._purge_sha, [[len(batch), *batch, now]]))
        return removed

    # -- reads ------------------------------------------------------------------------------
    def read(self, view: str, keys: Sequence[str]) -> list[OnlineRow | None]:
        check_view(view)
        if not keys:
            return []
        key_of = self._key(view)
        with _store_errors(self.url):
            if len(keys) == 1:
                values: list[bytes | None] = [self._execute("GET", key_of(keys[0]))]
            else:
                values = self._execute("MGET", *map(key_of, keys))
        now = self._clock.now_ms()
        unpack = _HEADER.unpack_from
        out: list[OnlineRow | None] = []
        for key, value in zip(keys, values, strict=True):
            if value is None:
                out.append(None)
                continue
            event_time, expires = unpack(value)
            if expires and expires <= now:
                out.append(None)
            else:
                out.append(OnlineRow(key, event_time, value[_HEAD:]))
        return out

    def read_blobs(self, requests: Sequence[ViewKeys]) -> list[list[bytes | None]]:
        """Every view's keys in one MGET (one GET for a single key): one round trip."""
        names: list[str] = []
        for view, keys in requests:
            check_view(view)
            names += map(self._key(view), keys)
        if not names:
            return [[] for _ in requests]
        with _store_errors(self.url):
            if len(names) == 1:
                values: list[bytes | None] = [self._execute("GET", names[0])]
            else:
                values = self._execute("MGET", *names)
        now = self._clock.now_ms()
        unpack = _HEADER.unpack_from
        blobs: list[bytes | None] = []
        for value in values:
            expired = value is None or 0 < unpack(value)[1] <= now
            blobs.append(None if value is None or expired else value[_HEAD:])
        out, start = [], 0
        for _, keys in requests:
            out.append(blobs[start : start + len(keys)])
            start += len(keys)
        return out

    def close(self) -> None:
        self._client.close()
