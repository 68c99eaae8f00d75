"""Public fakes for users' tests and ours: a manual clock, the in-memory broker, and helpers
to feed and drain topics without a running pipeline."""

from __future__ import annotations

import threading
import time

from streamsense.brokers.base import Broker, Record, TopicPartition
from streamsense.brokers.memory import MemoryBroker

__all__ = ["ManualClock", "MemoryBroker", "drain_topic"]


class ManualClock:
    """A clock that moves only when told to. ``sleep`` advances it instead of waiting."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self._now_ms = start_ms
        self._monotonic = 0.0
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        return self._now_ms

    def monotonic(self) -> float:
        return self._monotonic

    def sleep(self, seconds: float) -> None:
        self.advance(seconds * 1000.0)

    def advance(self, ms: float) -> None:
        with self._lock:
            self._now_ms += int(ms)
            self._monotonic += ms / 1000.0

    def set(self, now_ms: int) -> None:
        with self._lock:
            self._monotonic += max(0, now_ms - self._now_ms) / 1000.0
            self._now_ms = now_ms


def drain_topic(broker: Broker, topic: str, *, timeout: float = 60.0) -> list[Record]:
    """Every record currently in ``topic``, partition by partition, in offset order."""
    info = broker.describe_topic(topic)
    consumer = broker.consumer()
    try:
        tps = [TopicPartition(topic, p.partition) for p in info.partitions]
        consumer.assign(tps)
        highs = {TopicPartition(topic, p.partition): p.high for p in info.partitions}
        records: list[Record] = []
        # Offsets may have gaps (compaction, transaction markers): stop at the high watermarks.
        # A remote broker may answer a fetch slowly under load, so empty polls are retried.
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < highs[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: could not read up to {highs} in {timeout} s")
            records.extend(consumer.poll(10_000, timeout=0.5))
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()
