"""The broker interface: topics of partitioned, offset-addressed logs, producers, consumers
in groups, and atomic commits of outputs with consumed offsets.

Lifecycle, documented once for every implementation (memory, embedded, kafka):

* ``create_topic`` makes a topic with N partitions; keyed records land on the partition
  Kafka's default partitioner picks (murmur2), unkeyed ones round-robin.
* ``producer()`` buffers records and writes them in batches; ``flush`` makes everything sent
  so far durable and visible. Records are ordered per partition in the order sent.
* ``consumer(group)`` reads; ``subscribe`` joins the group, which spreads the topics'
  partitions over the live members (a member that stops heartbeating loses them);
  ``assign`` takes partitions explicitly. ``poll`` returns records in offset order per
  partition, possibly fewer than are available (and, on Kafka, nothing with ``timeout=0``);
  ``on_revoke`` may name partitions that ``on_assign`` gives straight back. ``commit`` stores
  the next offset to read for the group. Offsets can have gaps (compaction, Kafka's
  transaction markers): read up to a partition's high watermark, not a count of records.
* ``commit_transaction`` writes output records and a group's offsets atomically: either all
  become visible or none (memory, embedded, Kafka exactly-once; Kafka's default at-least-once
  mode can write the outputs and then fail the offset commit). Fencing a stale worker: the
  self-hosted brokers check ``expected`` offsets and refuse with FencedError if the group's
  committed offset moved since the worker read it; Kafka fences by group generation.
* Compacted topics keep the latest record per key: state changelogs live there and are read
  back from the beginning to restore state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

import msgspec

Headers = tuple[tuple[str, bytes], ...]
OffsetReset = Literal["earliest", "latest"]


class TopicPartition(NamedTuple):
    topic: str
    partition: int


class Record(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One record read from a partition. ``timestamp`` is the producer's time in epoch
    milliseconds (when the record was ingested), not the event time inside the payload."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Headers = ()

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


# A record waiting in a producer for its offset: (timestamp, key, value, headers).
PendingRecord = tuple[int, bytes | None, bytes | None, Headers]
PendingBatches = dict[TopicPartition, list[PendingRecord]]


class OutRecord(NamedTuple):
    """A record to write. ``partition=None`` lets the partitioner choose."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    partition: int | None = None
    timestamp: int | None = None
    headers: Headers = ()


# The largest record (key + value + headers) streamsense writes to any broker: Kafka's
# defaults (a producer's message.max.bytes 1,000,000; a topic's max.message.bytes 1,048,588)
# less room for the record batch's own framing. Writers check it before they produce, so
# an oversized output is a dead letter and an oversized state entry is split, on every
# broker alike, instead of a failure that only Kafka would raise.
RECORD_LIMIT_BYTES = 1_000_000 - 4096


def record_size(record: OutRecord) -> int:
    headers = sum(len(name) + len(value) for name, value in record.headers)
    return len(record.key or b"") + len(record.value or b"") + headers


@dataclass(frozen=True)
class TopicConfig:
    """How a topic keeps its records. Retention applies per partition, as in Kafka."""

    partitions: int = 1
    retention_ms: int | None = None
    retention_bytes: int | None = None
    compacted: bool = False


@dataclass(frozen=True)
class PartitionInfo:
    partition: int
    low: int  # first offset still kept (log start offset)
    high: int  # next offset to be written (high watermark)


@dataclass(frozen=True)
class TopicInfo:
    name: str
    config: TopicConfig
    partitions: tuple[PartitionInfo, ...]

    @property
    def messages(self) -> int:
        return sum(p.high - p.low for p in self.partitions)


@dataclass
class Transaction:
    """Outputs and consumed offsets that must commit together (exactly once).

    ``offsets`` are the next offsets to consume for ``group``. ``expected`` maps partitions
    to the committed offset the worker started from; a mismatch means another worker
    committed in between, and the whole transaction is refused with FencedError.
    ``consumer`` is the group member that read the input: Kafka accepts offset commits only
    from a current member of the group (brokers that keep offsets themselves ignore it).
    ``after_offsets`` are records that must not be seen before the offsets are committed
    (snapshots of state as of those offsets): where records and offsets are one atomic
    write they are part of it; where they are not (Kafka at least once), they follow it.
    ``wait_for_offsets=False`` lets such a broker commit the offsets in the background: a
    crash may then lose the commit, and its events are processed again, as at least once
    allows (keyed state changes name the offsets they belong to, see runtime.state)."""

    group: str
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    records: list[OutRecord] = field(default_factory=list)
    expected: dict[TopicPartition, int | None] = field(default_factory=dict)
    consumer: Consumer | None = None
    after_offsets: list[OutRecord] = field(default_factory=list)
    wait_for_offsets: bool = True


RebalanceCallback = Callable[[list[TopicPartition]], None]


class Producer(Protocol):
    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        *,
        partition: int | None = None,
        timestamp: int | None = None,
        headers: Headers = (),
    ) -> None:
        """Buffer one record; it is written with the next batch."""
        ...

    def flush(self) -> None:
        """Write every buffered record; on return they are durable and visible."""
        ...

    def close(self) -> None: ...


class Consumer(Protocol):
    def subscribe(
        self,
        topics: Sequence[str],
        *,
        on_assign: RebalanceCallback | None = None,
        on_revoke: RebalanceCallback | None = None,
    ) -> None:
        """Join the consumer group for ``topics``; partitions are assigned on poll."""
        ...

    def assign(self, partitions: Sequence[TopicPartition]) -> None:
        """Read exactly these partitions, without group membership."""
        ...

    def assignment(self) -> list[TopicPartition]: ...

    def poll(self, max_records: int = 500, timeout: float = 0.0) -> list[Record]:
        """Up to ``max_records`` records, waiting at most ``timeout`` seconds for the first."""
        ...

    def seek(self, tp: TopicPartition, offset: int) -> None: ...

    def position(self, tp: TopicPartition) -> int:
        """The offset of the next record ``poll`` returns for ``tp``."""
        ...

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None:
        """Store next-offsets for the group (the current positions when omitted)."""
        ...

    def committed(
        self, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]: ...

    def pause(self, partitions: Sequence[TopicPartition]) -> None: ...

    def resume(self, partitions: Sequence[TopicPartition]) -> None: ...

    def close(self) -> None: ...


class Broker(Protocol):
    """A partitioned, durable log. See the module docstring for the lifecycle."""

    url: str

    def create_topic(self, name: str, config: TopicConfig, *, exist_ok: bool = False) -> None: ...

    def delete_topic(self, name: str) -> None: ...

    def list_topics(self) -> list[str]: ...

    def describe_topic(self, name: str) -> TopicInfo: ...

    def settled_end(self, tp: TopicPartition) -> int:
        """The end of ``tp`` once every transaction open on it now has ended (committed or
        aborted): reading up to it sees every record committed so far. Waits, bounded, for
        a crashed writer's transaction to be aborted (RetryableError if it is not); brokers
        whose transactions are atomic writes answer at once."""
        ...

    def producer(self, *, batch_size: int = 10_000, linger_ms: float = 5.0) -> Producer: ...

    def consumer(
        self,
        group: str | None = None,
        *,
        auto_offset_reset: OffsetReset = "earliest",
        session_timeout_ms: int = 10_000,
    ) -> Consumer: ...

    def commit_transaction(self, txn: Transaction) -> None:
        """Write ``txn.records`` and commit ``txn.offsets`` atomically (see Transaction)."""
        ...

    def committed(
        self, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]: ...

    def enforce_retention(self) -> int:
        """Delete records past their topic's retention; returns how many were removed."""
        ...

    def close(self) -> None: ...
