"""Why partitions are paused, and when failed partitions are tried again.

A partition can be paused for several reasons at once (its intake buffer is full, it is
waiting to retry after a failure): ``PauseBook`` pauses it in the consumer when the first
reason appears and resumes it when the last one goes, and counts pauses and time paused.
``RetryBook`` schedules the retries of partitions whose work failed with a retryable error
(a store or sink down, a timeout), with exponential backoff, capped, on the injected clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from streamsense.brokers.base import Consumer, TopicPartition
from streamsense.clock import Clock


class PauseBook:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._reasons: dict[TopicPartition, set[str]] = {}
        self._since: dict[TopicPartition, float] = {}
        self.pauses = 0
        self.paused_s = 0.0

    def paused(self, tp: TopicPartition) -> bool:
        return tp in self._reasons

    def hold(self, consumer: Consumer, partitions: Iterable[TopicPartition], reason: str) -> None:
        newly = []
        for tp in partitions:
            reasons = self._reasons.setdefault(tp, set())
            if not reasons:
                newly.append(tp)
                self._since[tp] = self._clock.monotonic()
            reasons.add(reason)
        if newly:
            consumer.pause(newly)
            self.pauses += len(newly)

    def release(
        self, consumer: Consumer, partitions: Iterable[TopicPartition], reason: str
    ) -> None:
        freed = []
        for tp in partitions:
            reasons = self._reasons.get(tp)
            if reasons is None or reason not in reasons:
                continue
            reasons.discard(reason)
            if not reasons:
                freed.append(tp)
                self._forget(tp)
        if freed:
            consumer.resume(freed)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions this worker no longer owns (the consumer forgot them too)."""
        for tp in partitions:
            if tp in self._reasons:
                self._forget(tp)

    def _forget(self, tp: TopicPartition) -> None:
        del self._reasons[tp]
        self.paused_s += self._clock.monotonic() - self._since.pop(tp)


@dataclass(frozen=True)
class Backoff:
    """The wait before retry n (n = 1, 2, ...) is min(max_s, first_s · 2^(n-1))."""

    first_s: float = 0.05
    max_s: float = 5.0

    def delay(self, attempt: int) -> float:
        return min(self.max_s, self.first_s * 2.0 ** min(attempt - 1, 60))


class RetryBook:
    """Partitions (by number: partition p of every source moves as one) waiting to retry."""

    def __init__(self, backoff: Backoff, clock: Clock) -> None:
        self._backoff = backoff
        self._clock = clock
        self._attempts: dict[int, int] = {}  # failures since the partition last committed
        self._due: dict[int, float] = {}

    @property
    def waiting(self) -> set[int]:
        return set(self._due)

    def is_waiting(self, partition: int) -> bool:
        return partition in self._due

    def failed(self, partitions: Iterable[int]) -> float:
        """Schedule a retry; returns the longest wait chosen."""
        longest = 0.0
        for p in partitions:
            attempt = self._attempts[p] = self._attempts.get(p, 0) + 1
            delay = self._backoff.delay(attempt)
            self._due[p] = self._clock.monotonic() + delay
            longest = max(longest, delay)
        return longest

    def due(self) -> list[int]:
        now = self._clock.monotonic()
        return sorted(p for p, at in self._due.items() if at <= now)

    def next_in(self) -> float:
        """Seconds until the next retry is due (0 when none waits)."""
        if not self._due:
            return 0.0
        return max(0.0, min(self._due.values()) - self._clock.monotonic())

    def retrying(self, partitions: Iterable[int]) -> None:
        """The partitions are being tried again (their failure count stays until a commit)."""
        for p in partitions:
            self._due.pop(p, None)

    def succeeded(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._attempts.pop(p, None)

    def forget(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self._attempts.pop(p, None)
            self._due.pop(p, None)
