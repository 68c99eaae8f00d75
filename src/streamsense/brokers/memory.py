"""An in-process LogStore: fast, exact, and gone when the process ends. For tests."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from streamsense.brokers.base import (
    PartitionInfo,
    PendingBatches,
    PendingRecord,
    Record,
    TopicConfig,
    TopicInfo,
    TopicPartition,
    Transaction,
)
from streamsense.brokers.log import LogBroker
from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError, FencedError, TopicNotFound


@dataclass
class _Partition:
    records: list[Record] = field(default_factory=list)
    next_offset: int = 0
    # Compacted topics keep the latest record per key.
    latest: dict[bytes | None, Record] = field(default_factory=dict)

    @property
    def low(self) -> int:
        return self.records[0].offset if self.records else self.next_offset


@dataclass
class _Topic:
    config: TopicConfig
    partitions: list[_Partition]


class MemoryLog:
    def __init__(self) -> None:
        self._topics: dict[str, _Topic] = {}
        self._committed: dict[tuple[str, TopicPartition], int] = {}
        self._members: dict[str, dict[str, int]] = {}
        self._changed = threading.Condition()
        self._version = 0

    # -- topics -----------------------------------------------------------------------------
    def create_topic(self, name: str, config: TopicConfig, *, exist_ok: bool) -> None:
        with self._changed:
            if name in self._topics:
                if exist_ok:
                    return
                raise ConfigError(f"topic {name!r} already exists")
            parts = [_Partition() for _ in range(config.partitions)]
            self._topics[name] = _Topic(config, parts)

    def delete_topic(self, name: str) -> None:
        with self._changed:
            self._topic(name)
            del self._topics[name]

    def list_topics(self) -> list[str]:
        return sorted(self._topics)

    def describe_topic(self, name: str) -> TopicInfo:
        topic = self._topic(name)
        parts = tuple(
            PartitionInfo(i, p.low, p.next_offset) for i, p in enumerate(topic.partitions)
        )
        return TopicInfo(name, topic.config, parts)

    def _topic(self, name: str) -> _Topic:
        try:
            return self._topics[name]
        except KeyError:
            raise TopicNotFound(f"topic {name!r} does not exist") from None

    # -- data -------------------------------------------------------------------------------
    def append(self, batches: PendingBatches, txn: Transaction | None = None) -> None:
        with self._changed:
            if txn is not None:
                self._check_expected(txn)
            for tp in batches:
                self._topic(tp.topic)  # all or nothing: check every topic first
            for tp, pending in batches.items():
                for item in pending:
                    self._append_one(tp, item)
            if txn is not None:
                for tp, offset in txn.offsets.items():
                    self._committed[(txn.group, tp)] = offset
            self._version += 1
            self._changed.notify_all()

    def _check_expected(self, txn: Transaction) -> None:
        for tp, expected in txn.expected.items():
            actual = self._committed.get((txn.group, tp))
            if actual != expected:
                raise FencedError(
                    f"group {txn.group!r} {tp}: committed offset is {actual}, expected {expected}"
                )

    def _append_one(self, tp: TopicPartition, item: PendingRecord) -> None:
        topic = self._topic(tp.topic)
        part = topic.partitions[tp.partition]
        timestamp, key, value, headers = item
        record = Record(tp.topic, tp.partition, part.next_offset, timestamp, key, value, headers)
        part.next_offset += 1
        if topic.config.compacted:
            part.latest.pop(key, None)
            if value is not None:
                part.latest[key] = record
            part.records = list(part.latest.values())
        else:
            part.records.append(record)

    def fetch(self, tp: TopicPartition, offset: int, max_records: int) -> list[Record]:
        records = self._topic(tp.topic).partitions[tp.partition].records
        start = _first_at_or_after(records, offset)
        return records[start : start + max_records]

    def wait_for_data(self, timeout: float) -> None:
        with self._changed:
            version = self._version
            self._changed.wait_for(lambda: self._version != version, timeout)

    # -- groups -----------------------------------------------------------------------------
    def read_committed(
        self, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        return {tp: self._committed.get((group, tp)) for tp in partitions}

    def write_committed(self, group: str, offsets: dict[TopicPartition, int]) -> None:
        with self._changed:
            for tp, offset in offsets.items():
                self._committed[(group, tp)] = offset

    def heartbeat(self, group: str, member: str, now_ms: int, session_timeout_ms: int) -> list[str]:
        with self._changed:
            members = self._members.setdefault(group, {})
            members[member] = now_ms + session_timeout_ms
            for name in [m for m, expires in members.items() if expires < now_ms]:
                del members[name]
            return sorted(members)

    def leave(self, group: str, member: str) -> None:
        with self._changed:
            self._members.get(group, {}).pop(member, None)

    # -- retention --------------------------------------------------------------------------
    def enforce_retention(self, now_ms: int) -> int:
        removed = 0
        with self._changed:
            for topic in self._topics.values():
                for part in topic.partitions:
                    keep = outside_retention(part.records, topic.config, now_ms)
                    removed += keep
                    del part.records[:keep]
        return removed

    def close(self) -> None:
        pass


def _first_at_or_after(records: list[Record], offset: int) -> int:
    lo, hi = 0, len(records)
    while lo < hi:
        mid = (lo + hi) // 2
        if records[mid].offset < offset:
            lo = mid + 1
        else:
            hi = mid
    return lo


def outside_retention(records: list[Record], config: TopicConfig, now_ms: int) -> int:
    """How many of the oldest records fall outside the topic's retention: by record
    timestamp for age, by key plus value bytes for size; compacted topics keep everything.
    (The Pulsar broker applies the same rule, see pulsar_retention.)"""
    if config.compacted or not records:
        return 0
    drop = 0
    if config.retention_ms is not None:
        cutoff = now_ms - config.retention_ms
        while drop < len(records) and records[drop].timestamp < cutoff:
            drop += 1
    if config.retention_bytes is not None:
        size = sum(_size(r) for r in records[drop:])
        while drop < len(records) and size > config.retention_bytes:
            size -= _size(records[drop])
            drop += 1
    return drop


def _size(record: Record) -> int:
    return len(record.value or b"") + len(record.key or b"")


class MemoryBroker(LogBroker):
    """A broker that lives in this process only (tests, notebooks)."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__(MemoryLog(), "memory://", clock=clock)
