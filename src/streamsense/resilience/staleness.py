"""Last known values and how much to trust them.

When the feature store (or a model) is slow or down, a decision can still use the last value
seen for the key, marked degraded and weighted by ``confidence``: it halves every
``half_life_ms`` of staleness,

    confidence(age) = 0.5 ** (age / half_life)

so a value as old as one half-life counts half, two half-lives a quarter. Exponential decay
needs one parameter, never jumps, and composes: the confidence of a value that was already
discounted keeps decaying at the same rate. It never reaches 0, so a very stale value is
still better than nothing to a caller that has no other; callers that disagree set
``max_age_ms`` on the cache.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError

__all__ = ["LastKnownCache", "Stale", "confidence"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def confidence(age_ms: float, half_life_ms: float) -> float:
    """Trust in a value ``age_ms`` old, in (0, 1]: 1 when fresh, halved every half-life.

    A negative age (a value stamped in the future by a skewed clock) counts as fresh. The
    result is floored at the smallest positive float, so it stays > 0 even where
    ``0.5 ** x`` would underflow (beyond about 1,000 half-lives).
    """
    if half_life_ms <= 0:
        raise ConfigError(f"half_life_ms must be > 0, got {half_life_ms}")
    if age_ms <= 0:
        return 1.0
    decayed: float = 0.5 ** (age_ms / half_life_ms)
    return max(decayed, sys.float_info.min)


@dataclass(frozen=True)
class Stale(Generic[V]):
    """A cached value with its age (ms, by the cache's clock) and ``confidence`` of that age."""

    value: V
    age_ms: int
    confidence: float


class LastKnownCache(Generic[K, V]):
    """The last value stored per key, at most ``maxsize`` keys, least recently used evicted.

    ``get`` returns the value with its age and confidence penalty, or ``None`` if the key is
    unknown or, with ``max_age_ms``, too old to use. Thread-safe.
    """

    def __init__(
        self,
        maxsize: int,
        half_life_ms: float,
        *,
        max_age_ms: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if maxsize < 1:
            raise ConfigError(f"maxsize must be at least 1, got {maxsize}")
        confidence(0, half_life_ms)  # validates half_life_ms now rather than at the first get
        self.maxsize = maxsize
        self.half_life_ms = half_life_ms
        self.max_age_ms = max_age_ms
        self.clock = clock
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: K, value: V, *, at_ms: int | None = None) -> None:
        """Remember ``value`` for ``key`` as of ``at_ms`` (default: now). Pass the time the
        value was true (e.g. a feature's as-of time) when it is older than the write."""
        stored_at = self.clock.now_ms() if at_ms is None else at_ms
        with self._lock:
            self._entries[key] = (value, stored_at)
            self._entries.move_to_end(key)
            if len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def get(self, key: K) -> Stale[V] | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
        value, stored_at = entry
        age_ms = max(0, self.clock.now_ms() - stored_at)
        if self.max_age_ms is not None and age_ms > self.max_age_ms:
            return None
        return Stale(value, age_ms, confidence(age_ms, self.half_life_ms))

    def __len__(self) -> int:
        return len(self._entries)
