"""The storage behind the brokers streamsense runs itself, and the Broker built on it.

A LogStore keeps topics, partitions, batches of records, committed offsets and group
membership. Memory and embedded (SQLite) implement it; LogBroker adds partitioning, batching
producers and group consumers once for both.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence

from streamsense.brokers.base import (
    OffsetReset,
    OutRecord,
    PendingBatches,
    PendingRecord,
    TopicConfig,
    TopicInfo,
    TopicPartition,
    Transaction,
)
from streamsense.brokers.consumer import LogConsumer
from streamsense.brokers.log_store import LogStore
from streamsense.brokers.partitioner import partition_for
from streamsense.brokers.producer import BatchingProducer
from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError


class LogBroker:
    """A Broker over a LogStore: Kafka-compatible keyed partitioning, batching producers,
    group consumers and transactional commits."""

    def __init__(self, store: LogStore, url: str, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.url = url
        self.store = store
        self.clock = clock
        self._partitions: dict[str, int] = {}
        self._round_robin = itertools.count()

    # -- topics ---------------------------------------------------------------------------
    def create_topic(self, name: str, config: TopicConfig, *, exist_ok: bool = False) -> None:
        if config.partitions < 1:
            raise ConfigError(f"topic {name!r} needs at least one partition")
        self.store.create_topic(name, config, exist_ok=exist_ok)

    def delete_topic(self, name: str) -> None:
        self.store.delete_topic(name)
        self._partitions.pop(name, None)

    def list_topics(self) -> list[str]:
        return self.store.list_topics()

    def describe_topic(self, name: str) -> TopicInfo:
        return self.store.describe_topic(name)

    def settled_end(self, tp: TopicPartition) -> int:
        # A transaction is one atomic write here: nothing is ever left open.
        return self.describe_topic(tp.topic).partitions[tp.partition].high

    def partition_count(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = self.store.describe_topic(topic).config.partitions
        return count

    # -- writing ----------------------------------------------------------------------------
    def resolve(self, record: OutRecord) -> OutRecord:
        """Fill in the partition (murmur2 of the key, or round robin) and the timestamp."""
        timestamp = self.clock.now_ms() if record.timestamp is None else record.timestamp
        return record._replace(partition=self._partition_of(record), timestamp=timestamp)

    def _partition_of(self, record: OutRecord) -> int:
        partition = record.partition
        count = self.partition_count(record.topic)
        if partition is None:
            if record.key is None:
                return next(self._round_robin) % count
            # murmur2 % 1 is 0: a topic of one partition needs no hash of the key
            return 0 if count == 1 else partition_for(record.key, count)
        if not 0 <= partition < count:
            raise ConfigError(f"topic {record.topic!r} has no partition {partition}")
        return partition

    def producer(self, *, batch_size: int = 10_000, linger_ms: float = 5.0) -> BatchingProducer:
        return BatchingProducer(self, batch_size=batch_size, linger_ms=linger_ms)

    def commit_transaction(self, txn: Transaction) -> None:
        # resolve() inlined: no new record and partition object per record (a replay
        # writes hundreds of thousands; issue #16 measured them)
        batches: PendingBatches = {}
        by_partition: dict[tuple[str, int], list[PendingRecord]] = {}
        for record in [*txn.records, *txn.after_offsets]:
            timestamp = self.clock.now_ms() if record.timestamp is None else record.timestamp
            where = (record.topic, self._partition_of(record))
            pending = by_partition.get(where)
            if pending is None:
                pending = by_partition[where] = batches[TopicPartition(*where)] = []
            pending.append((timestamp, record.key, record.value, record.headers))
        self.store.append(batches, txn)

    # -- reading ----------------------------------------------------------------------------
    def consumer(
        self,
        group: str | None = None,
        *,
        auto_offset_reset: OffsetReset = "earliest",
        session_timeout_ms: int = 10_000,
    ) -> LogConsumer:
        return LogConsumer(
            self,
            group,
            member_id=f"{group or 'anon'}-{uuid.uuid4().hex[:12]}",
            auto_offset_reset=auto_offset_reset,
            session_timeout_ms=session_timeout_ms,
        )

    def committed(
        self, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        return self.store.read_committed(group, partitions)

    def enforce_retention(self) -> int:
        return self.store.enforce_retention(self.clock.now_ms())

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> LogBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
