"""Where a worker stands in its partitions: what it processed since the last commit
(outputs per source partition number, next offsets per topic-partition), what the group
has committed, and the next offset it will process of each partition it owns."""

from __future__ import annotations

from streamsense.brokers.base import Broker, Consumer, OutRecord, TopicPartition
from streamsense.runtime.intake import Intake
from streamsense.runtime.pauses import RetryBook


class Progress:
    def __init__(self, broker: Broker, intake: Intake, retries: RetryBook) -> None:
        self._broker = broker
        self._intake = intake
        self._retries = retries
        self.consumer: Consumer | None = None  # while the worker runs
        self.pending: dict[int, list[OutRecord]] = {}  # by source partition number
        self.offsets: dict[TopicPartition, int] = {}  # next offset to commit
        self.committed: dict[TopicPartition, int | None] = {}  # as the group has it
        self.events_in_batch = 0

    def add(self, partition: int, records: list[OutRecord]) -> None:
        self.pending.setdefault(partition, []).extend(records)

    def take(self) -> tuple[dict[TopicPartition, int], dict[int, list[OutRecord]]]:
        """The offsets and outputs to commit now; the next batch starts empty."""
        offsets, self.offsets = self.offsets, {}
        pending, self.pending = self.pending, {}
        self.events_in_batch = 0
        return offsets, pending

    def discard(self, partitions: set[int]) -> None:
        """Forget the uncommitted work of ``partitions`` (by number)."""
        for p in partitions:
            self.pending.pop(p, None)
        for tp in [tp for tp in self.offsets if tp.partition in partitions]:
            del self.offsets[tp]

    def owned(self, partitions: set[int]) -> list[TopicPartition]:
        if self.consumer is None:
            return []
        return [tp for tp in self.consumer.assignment() if tp.partition in partitions]

    def next_offset(self, tp: TopicPartition) -> int:
        """The next offset this worker will process for an assigned ``tp``."""
        assert self.consumer is not None
        if self._retries.is_waiting(tp.partition):
            done = self.committed.get(tp)
            return self.consumer.position(tp) if done is None else done
        head = self._intake.head(tp)
        return self.consumer.position(tp) if head is None else head

    def own_lag(self) -> int:
        """Records between what this worker processed and the end of its partitions."""
        assert self.consumer is not None
        assigned = self.consumer.assignment()
        highs = {}
        for topic in {tp.topic for tp in assigned}:
            for part in self._broker.describe_topic(topic).partitions:
                highs[TopicPartition(topic, part.partition)] = part.high
        return sum(max(0, highs[tp] - self.next_offset(tp)) for tp in assigned)
