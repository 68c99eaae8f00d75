"""Consumer lag: how far a group's committed offsets are behind each partition's end.

Works on every Broker through ``describe_topic`` (log start and high watermark) and
``committed`` (the group's next offset to read). Lag is counted in offsets, as Kafka's own
tools do: on Kafka, transaction markers take offsets too, so a group that has read every
record of a transactional topic may still show a lag of a few markers until it commits past
them. A partition without a committed offset lags by everything still kept (the group
starts at the log start), and so does one whose committed offset fell behind retention.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from streamsense.brokers.base import Broker, TopicPartition


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None  # the group's next offset to read; None: nothing committed
    low: int  # log start offset
    high: int  # high watermark (next offset to be written)

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    @property
    def lag(self) -> int:
        start = self.low if self.committed is None else max(self.committed, self.low)
        return max(0, self.high - start)


@dataclass(frozen=True)
class GroupLag:
    group: str
    partitions: tuple[PartitionLag, ...]

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions)

    def by_topic(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for p in self.partitions:
            totals[p.topic] = totals.get(p.topic, 0) + p.lag
        return totals


def group_lag(broker: Broker, group: str, topics: Iterable[str]) -> GroupLag:
    """Per-partition lag of ``group`` on ``topics`` (every partition of each)."""
    infos = [broker.describe_topic(topic) for topic in topics]
    partitions = [TopicPartition(info.name, p.partition) for info in infos for p in info.partitions]
    committed = broker.committed(group, partitions) if partitions else {}
    lags = [
        PartitionLag(
            info.name,
            p.partition,
            committed.get(TopicPartition(info.name, p.partition)),
            p.low,
            p.high,
        )
        for info in infos
        for p in info.partitions
    ]
    return GroupLag(group, tuple(lags))


def consumed_topics(broker: Broker, group: str, topics: Sequence[str] | None = None) -> list[str]:
    """The topics (of ``topics``, default every topic) where ``group`` committed an offset."""
    candidates = list(broker.list_topics()) if topics is None else list(topics)
    partitions = [
        TopicPartition(name, p.partition)
        for name in candidates
        for p in broker.describe_topic(name).partitions
    ]
    committed = broker.committed(group, partitions) if partitions else {}
    return sorted({tp.topic for tp, offset in committed.items() if offset is not None})
