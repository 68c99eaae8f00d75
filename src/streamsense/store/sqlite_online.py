"""The default online store: one SQLite file, embedded in the serving process.

One table keyed by (view, key), WITHOUT ROWID so a read is one primary-key b-tree descent
with the row stored in the leaf. WAL mode lets any number of reader processes run while
one writer commits. A write is one transaction of UPSERTs whose WHERE clause keeps the
newest event time (last write wins, an expired row counts as absent); a read of many keys
is one ``SELECT ... key IN (...)`` per 900 keys; ``read_blobs`` reads several views' keys
with one statement (a UNION ALL of such SELECTs). Statements are prepared once per shape
and kept in the connection's statement cache.

Latency: a read takes the connection lock, runs one cached statement and builds the
result; see BENCHMARKS (bench/online_store_bench.py) for p50/p99 of 1 and 100 keys.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from functools import cache
from pathlib import Path

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.disk_faults import disk_faults, write_transaction
from streamsense.errors import ConfigError, RetryableError
from streamsense.store.memory_online import check_view, expiry_ms
from streamsense.store.online import OnlineRow, ViewKeys

# Keys per SELECT/DELETE: below SQLite's historical limit of 999 bound parameters.
CHUNK = 900
# A page large enough that a ~2 KB state blob lives in its b-tree leaf rather than in an
# overflow page (a WITHOUT ROWID leaf holds up to about a quarter of a page inline).
PAGE_SIZE = 16384

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS online (
    view TEXT NOT NULL,
    key TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    expires_ms INTEGER,
    blob BLOB NOT NULL,
    PRIMARY KEY (view, key)
) WITHOUT ROWID""",
    # Only rows with a TTL are indexed: purge_expired reads just the expired ones.
    "CREATE INDEX IF NOT EXISTS online_expiry ON online (expires_ms) WHERE expires_ms IS NOT NULL",
)

_UPSERT = (
    "INSERT INTO online (view, key, event_time, expires_ms, blob) VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (view, key) DO UPDATE SET"
    " event_time = excluded.event_time, expires_ms = excluded.expires_ms, blob = excluded.blob"
    " WHERE excluded.event_time >= online.event_time"
    " OR (online.expires_ms IS NOT NULL AND online.expires_ms <= ?6)"
)
_LIVE = "(expires_ms IS NULL OR expires_ms > ?)"
_READ_ONE = "SELECT event_time, expires_ms, blob FROM online WHERE view = ? AND key = ?"
_DELETE_ONE = "DELETE FROM online WHERE view = ? AND key = ?"
_PURGE = "DELETE FROM online WHERE expires_ms IS NOT NULL AND expires_ms <= ?"


@cache
def _read_many(n: int) -> str:
    marks = ",".join("?" * n)
    return (
        f"SELECT key, event_time, expires_ms, blob FROM online WHERE view = ? AND key IN ({marks})"
    )


@cache
def _read_views(counts: tuple[int, ...]) -> str:
    """One statement for several views' keys: a UNION ALL of one indexed IN per view, each
    row tagged with its request's index (expired rows are left out by SQLite)."""
    parts = [
        f"SELECT {i}, key, blob FROM online WHERE view = ? AND key IN ({','.join('?' * n)})"
        f" AND {_LIVE}"
        for i, n in enumerate(counts)
    ]
    return " UNION ALL ".join(parts)


class SqliteOnlineStore:
    """Online rows in one SQLite file (``:memory:`` for a private in-memory database)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        synchronous: str = "NORMAL",
        busy_timeout_ms: int = 60_000,
    ) -> None:
        self._clock = clock
        if str(path) == ":memory:":
            self.path = ":memory:"
        else:
            self.path = str(Path(path).resolve())
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.url = f"sqlite://{self.path}"
        # Every read shape (1..CHUNK keys) is one cached prepared statement.
        self._conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=busy_timeout_ms / 1000,
            cached_statements=CHUNK + 64,
        )
        self._lock = threading.RLock()
        self._closed = False
        try:
            with self._lock, disk_faults(self.path):
                self._prepare(synchronous, busy_timeout_ms)
        except BaseException:
            self._conn.close()
            raise

    def _prepare(self, synchronous: str, busy_timeout_ms: int) -> None:
        if synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigError(f"invalid synchronous mode {synchronous!r}")
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # only takes effect on a new file
        # WAL: readers in other processes never wait for the writer. NORMAL sync survives a
        # process crash (an OS crash may lose the last commits, which replays rewrite).
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA cache_size=-65536")  # 64 MiB of page cache
        conn.execute("PRAGMA mmap_size=1073741824")  # reads map the file: no read() calls
        conn.execute("PRAGMA temp_store=MEMORY")
        with write_transaction(conn, self.path, self._busy):
            for statement in _SCHEMA:
                conn.execute(statement)

    # -- writes -----------------------------------------------------------------------------
    def write(self, view: str, rows: Sequence[OnlineRow], *, ttl_ms: int | None = None) -> int:
        check_view(view)
        expires = expiry_ms(self._clock, ttl_ms)
        if not rows:
            return 0
        now = self._clock.now_ms()
        params = [(view, key, event_time, expires, blob, now) for key, event_time, blob in rows]
        with self._lock, self._write() as conn:
            return conn.executemany(_UPSERT, params).rowcount

    def delete(self, view: str, keys: Sequence[str]) -> None:
        check_view(view)
        if not keys:
            return
        with self._lock, self._write() as conn:
            conn.executemany(_DELETE_ONE, [(view, key) for key in keys])

    def purge_expired(self) -> int:
        now = self._clock.now_ms()
        with self._lock, self._write() as conn:
            return int(conn.execute(_PURGE, (now,)).rowcount)

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A write transaction; IMMEDIATE takes the write lock up front (writers in other
        processes wait up to busy_timeout_ms). A full or failing disk rolls it back whole
        and raises StorageFull / StorageFault naming the file: the worker's offsets never
        commit past rows the store does not hold."""
        return write_transaction(self._conn, self.path, self._busy)

    def _busy(self, error: sqlite3.OperationalError) -> RetryableError:
        return RetryableError(f"online store {self.path} busy: {error}")

    # -- reads ------------------------------------------------------------------------------
    def read(self, view: str, keys: Sequence[str]) -> list[OnlineRow | None]:
        check_view(view)
        n = len(keys)
        if n == 1:
            return [self._read_one(view, keys[0])]
        if n == 0:
            return []
        now = self._clock.now_ms()
        found: dict[str, OnlineRow] = {}
        with self._lock:
            conn = self._conn
            if n <= CHUNK:
                fetched = conn.execute(_read_many(n), (view, *keys)).fetchall()
            else:
                with self._snapshot():  # every chunk sees the same snapshot
                    fetched = []
                    for start in range(0, n, CHUNK):
                        chunk = keys[start : start + CHUNK]
                        sql = _read_many(len(chunk))
                        fetched += conn.execute(sql, (view, *chunk)).fetchall()
        for key, event_time, expires, blob in fetched:
            if expires is None or expires > now:
                found[key] = OnlineRow(key, event_time, blob)
        get = found.get
        return [get(key) for key in keys]

    def read_blobs(self, requests: Sequence[ViewKeys]) -> list[list[bytes | None]]:
        for view, _ in requests:
            check_view(view)
        asked = [(i, view, keys) for i, (view, keys) in enumerate(requests) if keys]
        if sum(len(keys) + 2 for _, _, keys in asked) > CHUNK:
            with self._lock, self._snapshot():
                rows = [self.read(view, keys) for view, keys in requests]
            return [[None if r is None else r.blob for r in got] for got in rows]
        found: list[dict[str, bytes]] = [{} for _ in requests]
        if asked:
            now = self._clock.now_ms()
            params: list[object] = []
            for _, view, keys in asked:
                params += [view, *keys, now]
            sql = _read_views(tuple(len(keys) for _, _, keys in asked))
            with self._lock:
                fetched = self._conn.execute(sql, params).fetchall()
            for tag, key, blob in fetched:
                found[asked[tag][0]][key] = blob
        return [
            [by_key.get(key) for key in keys]
            for by_key, (_, keys) in zip(found, requests, strict=True)
        ]

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction around several statements (they all see one snapshot);
        nested use joins the outer one. Call with the lock held."""
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def _read_one(self, view: str, key: str) -> OnlineRow | None:
        with self._lock:
            row = self._conn.execute(_READ_ONE, (view, key)).fetchone()
        if row is None:
            return None
        event_time, expires, blob = row
        if expires is not None and expires <= self._clock.now_ms():
            return None
        return OnlineRow(key, event_time, blob)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA optimize")
            self._conn.close()
