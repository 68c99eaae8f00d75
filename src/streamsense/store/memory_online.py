"""The in-process online store (a dict), for tests and single-process demos.

Also holds what the three online stores share: view-name and TTL checks, so every store
accepts and refuses the same arguments.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError
from streamsense.store.online import OnlineRow, ViewKeys


def check_view(view: str) -> None:
    """View names are non-empty and free of ``:`` (the Redis store's key separator)."""
    if not view or ":" in view:
        raise ConfigError(f"invalid view name {view!r}: must be non-empty, without ':'")


def expiry_ms(clock: Clock, ttl_ms: int | None) -> int | None:
    """When a row written now with ``ttl_ms`` expires (epoch ms on ``clock``); None: never."""
    if ttl_ms is None:
        return None
    if ttl_ms <= 0:
        raise ConfigError(f"ttl_ms must be positive (or None for no expiry), got {ttl_ms}")
    return clock.now_ms() + ttl_ms


class MemoryOnlineStore:
    """Rows in a dict keyed by (view, key); expired rows are dropped when met or purged."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.url = "memory://"
        self._clock = clock
        # (view, key) -> (event_time, expires_ms or None, blob)
        self._rows: dict[tuple[str, str], tuple[int, int | None, bytes]] = {}
        self._lock = threading.Lock()

    def write(self, view: str, rows: Sequence[OnlineRow], *, ttl_ms: int | None = None) -> int:
        check_view(view)
        expires = expiry_ms(self._clock, ttl_ms)
        now = self._clock.now_ms()
        changed = 0
        with self._lock:
            stored = self._rows
            for key, event_time, blob in rows:
                old = stored.get((view, key))
                if old is None or event_time >= old[0] or (old[1] is not None and old[1] <= now):
                    stored[(view, key)] = (event_time, expires, bytes(blob))
                    changed += 1
        return changed

    def read(self, view: str, keys: Sequence[str]) -> list[OnlineRow | None]:
        check_view(view)
        now = self._clock.now_ms()
        out: list[OnlineRow | None] = []
        with self._lock:
            stored = self._rows
            for key in keys:
                row = stored.get((view, key))
                if row is None or (row[1] is not None and row[1] <= now):
                    out.append(None)
                else:
                    out.append(OnlineRow(key, row[0], row[2]))
        return out

    def read_blobs(self, requests: Sequence[ViewKeys]) -> list[list[bytes | None]]:
        for view, _ in requests:
            check_view(view)
        now = self._clock.now_ms()
        out: list[list[bytes | None]] = []
        with self._lock:
            for view, keys in requests:
                found: list[bytes | None] = []
                for key in keys:
                    row = self._rows.get((view, key))
                    expired = row is None or (row[1] is not None and row[1] <= now)
                    found.append(None if row is None or expired else row[2])
                out.append(found)
        return out

    def delete(self, view: str, keys: Sequence[str]) -> None:
        check_view(view)
        with self._lock:
            for key in keys:
                self._rows.pop((view, key), None)

    def purge_expired(self) -> int:
        now = self._clock.now_ms()
        with self._lock:
            expired = [k for k, (_, exp, _) in self._rows.items() if exp is not None and exp <= now]
            for k in expired:
                del self._rows[k]
        return len(expired)

    def close(self) -> None:
        with self._lock:
            self._rows.clear()
