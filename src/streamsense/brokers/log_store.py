"""What the brokers streamsense runs itself are made of: a LogStore keeps topics,
partitions, batches of records, committed offsets and group membership (memory and
embedded implement it), and a LogHost is what the shared producers and consumers need of
the broker built on one (brokers/log.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from streamsense.brokers.base import (
    PendingBatches,
    Record,
    TopicConfig,
    TopicInfo,
    TopicPartition,
    Transaction,
)
from streamsense.brokers.groups import MembershipStore
from streamsense.clock import Clock


class LogStore(MembershipStore, Protocol):
    def create_topic(self, name: str, config: TopicConfig, *, exist_ok: bool) -> None: ...

    def delete_topic(self, name: str) -> None: ...

    def list_topics(self) -> list[str]: ...

    def describe_topic(self, name: str) -> TopicInfo: ...

    def append(self, batches: PendingBatches, txn: Transaction | None = None) -> None:
        """Write each partition's records in order, and, with ``txn``, commit its offsets
        in the same atomic step (after checking ``txn.expected``)."""
        ...

    def fetch(self, tp: TopicPartition, offset: int, max_records: int) -> list[Record]:
        """Records of ``tp`` with offset >= ``offset``, in order, at most ``max_records``
        (a store may return whole batches beyond it; callers trim)."""
        ...

    def wait_for_data(self, timeout: float) -> None:
        """Block until new records may have arrived, or ``timeout`` seconds passed."""
        ...

    def read_committed(
        self, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]: ...

    def write_committed(self, group: str, offsets: dict[TopicPartition, int]) -> None: ...

    def enforce_retention(self, now_ms: int) -> int: ...

    def close(self) -> None: ...


class LogHost(Protocol):
    """The broker a LogConsumer or BatchingProducer belongs to."""

    store: LogStore
    clock: Clock

    def partition_count(self, topic: str) -> int: ...
