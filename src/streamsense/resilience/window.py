"""The circuit breaker's sliding window: outcomes in buckets, by count or by time, with
running totals so a rate costs O(1)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass
class Totals:
    """Running sums over a window, kept so that a rate costs O(1), not a scan."""

    calls: int = 0
    failures: int = 0
    slow: int = 0


class SlidingWindow:
    """Outcomes in buckets with running totals. By count: a bucket per call, the last ``size``
    kept. By time: a bucket per second, those of the last ``size`` seconds (this one included)
    kept. Buckets are [second, calls, failures, slow] lists: a breaker records every call,
    so this path allocates as little as it can."""

    def __init__(self, size: int, *, by_time: bool) -> None:
        self._size = size
        self._by_time = by_time
        self._buckets: deque[list[int]] = deque()
        self._totals = Totals()

    def record(self, now_s: int, *, failed: bool, slow: bool) -> None:
        buckets = self._buckets
        if not self._by_time or not buckets or buckets[-1][0] != now_s:
            buckets.append([now_s, 0, 0, 0])
        bucket, totals = buckets[-1], self._totals
        bucket[1] += 1
        totals.calls += 1
        if failed:
            bucket[2] += 1
            totals.failures += 1
        if slow:
            bucket[3] += 1
            totals.slow += 1
        self._evict(now_s)

    def totals(self, now_s: int) -> Totals:
        self._evict(now_s)
        kept = self._totals
        return Totals(kept.calls, kept.failures, kept.slow)

    def _evict(self, now_s: int) -> None:
        buckets, totals = self._buckets, self._totals
        while buckets and (
            buckets[0][0] <= now_s - self._size if self._by_time else len(buckets) > self._size
        ):
            _, calls, failures, slow = buckets.popleft()
            totals.calls -= calls
            totals.failures -= failures
            totals.slow -= slow
