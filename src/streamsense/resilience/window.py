"""The circuit breaker's sliding window: outcomes in buckets, by count or by time, with
running totals so a rate costs O(1)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace


@dataclass
class Totals:
    """Running sums over a window, kept so that a rate costs O(1), not a scan."""

    calls: int = 0
    failures: int = 0
    slow: int = 0

    def add(self, other: Totals, sign: int = 1) -> None:
        self.calls += sign * other.calls
        self.failures += sign * other.failures
        self.slow += sign * other.slow


class SlidingWindow:
    """Outcomes in buckets with running totals. By count: a bucket per call, the last ``size``
    kept. By time: a bucket per second, those of the last ``size`` seconds (this one included)
    kept."""

    def __init__(self, size: int, *, by_time: bool) -> None:
        self._size = size
        self._by_time = by_time
        self._buckets: deque[tuple[int, Totals]] = deque()
        self._totals = Totals()

    def record(self, now_s: int, *, failed: bool, slow: bool) -> None:
        if not self._by_time or not self._buckets or self._buckets[-1][0] != now_s:
            self._buckets.append((now_s, Totals()))
        call = Totals(1, int(failed), int(slow))
        self._buckets[-1][1].add(call)
        self._totals.add(call)
        self._evict(now_s)

    def totals(self, now_s: int) -> Totals:
        self._evict(now_s)
        return replace(self._totals)

    def _evict(self, now_s: int) -> None:
        while self._buckets and (
            self._buckets[0][0] <= now_s - self._size
            if self._by_time
            else len(self._buckets) > self._size
        ):
            self._totals.add(self._buckets.popleft()[1], -1)
