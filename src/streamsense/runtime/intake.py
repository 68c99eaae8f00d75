"""Bounded buffers between the consumer and the flows, read lane by lane.

Polled records wait here, one buffer per topic-partition, until the worker processes them.
A buffer holds at most ``capacity`` records: the worker pauses a partition whose buffer
reaches the high mark (its events then wait in the broker, where they are durable, and
nothing is dropped) and resumes it once the buffer is down to the low mark. A poll asks
for no more than the emptiest-allowed buffer can take; a record that still does not fit
(a broker that returns a paused partition's prefetched records) is refused, and the
worker seeks the partition back to it, so the bound holds whatever a poll returns.

Priority lanes: records are taken lane by lane, the priority lane first. While a backlog of
the normal lane keeps its buffers full, those partitions stay paused, so polls fetch the
priority lane's new records, and the next take processes them ahead of the backlog. Each
topic-partition is still taken in offset order, so committed offsets stay contiguous.

A repartition target's upstream topics (``merged``) are taken together per partition
number, in event-time order while ``ordered`` is set (runtime/merge.py), else as they come.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from streamsense.brokers.base import Record, TopicPartition
from streamsense.clock import SYSTEM_CLOCK
from streamsense.errors import ConfigError
from streamsense.runtime.merge import EventTimeMerge

NORMAL_LANE = 1


class Intake:
    def __init__(
        self,
        capacity: int,
        lanes: Mapping[str, int],
        merged: Mapping[str, tuple[str, ...]] | None = None,
        merge: EventTimeMerge | None = None,
    ) -> None:
        """``lanes`` ranks source topics: lower ranks are taken first. ``merged`` maps
        each topic read in event-time order to the topics it is merged with."""
        if capacity < 4:
            raise ConfigError("intake buffers need a capacity of at least 4 records")
        self.capacity = capacity
        self.high = capacity * 3 // 4  # pause at or above
        self.low = capacity // 4  # resume at or below
        self._lanes = lanes
        self._merged = merged or {}
        self.merge = merge or EventTimeMerge(1000, SYSTEM_CLOCK)
        self.ordered = True
        self._buffers: dict[TopicPartition, deque[Record]] = {}
        self._turn = 0
        self.buffered = 0
        self.largest = 0  # the most records any one buffer ever held

    def room(self, active: Iterable[TopicPartition]) -> int:
        """How many records a poll may fetch so that no active buffer overflows (a
        partition at the high mark is paused, so this is at least capacity / 4)."""
        return max(1, min((self.capacity - self.size(tp) for tp in active), default=1))

    def add(self, records: Sequence[Record]) -> dict[TopicPartition, int]:
        """Buffer ``records``; returns, per partition whose buffer was full, the offset of
        the first record refused (the caller seeks back to it)."""
        refused: dict[TopicPartition, int] = {}
        i, n = 0, len(records)
        while i < n:  # a poll returns runs of one partition's records: buffer run by run
            topic, partition = records[i].topic, records[i].partition
            end = i + 1
            while end < n and records[end].partition == partition and records[end].topic == topic:
                end += 1
            run, i = records[i:end], end
            tp = TopicPartition(topic, partition)
            if tp in refused:
                continue
            buffer = self._buffers.get(tp)
            if buffer is None:
                buffer = self._buffers[tp] = deque()
            room = self.capacity - len(buffer)
            if len(run) > room:
                refused[tp] = run[room].offset
                run = run[:room]
            buffer.extend(run)
            self.buffered += len(run)
            self.largest = max(self.largest, len(buffer))
        return refused

    def take(self, limit: int) -> list[Record]:
        """Up to ``limit`` records to process next, all from the first lane that has any
        (a priority record is not held up by a chunk of the backlog processed with it),
        rotating between the lane's partitions so none starves."""
        by_lane: dict[int, list[TopicPartition]] = {}
        for tp, buffer in self._buffers.items():
            if buffer:
                by_lane.setdefault(self._lanes.get(tp.topic, NORMAL_LANE), []).append(tp)
        if not by_lane:
            return []
        units = self._units(by_lane[min(by_lane)])
        self._turn += 1
        start = self._turn % len(units)
        out: list[Record] = []
        for unit in units[start:] + units[:start]:
            if len(out) >= limit:
                break
            if len(unit) > 1 and self.ordered:
                out.extend(self.merge.take(self._buffers, unit, limit - len(out)))
                continue
            for tp in unit:
                taken = self._buffers.get(tp)
                while taken and len(out) < limit:
                    out.append(taken.popleft())
        self.buffered -= len(out)
        return out

    def _units(self, tps: list[TopicPartition]) -> list[tuple[TopicPartition, ...]]:
        """What is taken as one: a plain topic-partition, or partition q of every topic
        of a merged group (co-partitioned: the worker owns them together)."""
        units: dict[tuple[TopicPartition, ...], None] = {}
        for tp in tps:
            topics = self._merged.get(tp.topic)
            unit = (
                (tp,) if topics is None else tuple(TopicPartition(t, tp.partition) for t in topics)
            )
            units[unit] = None
        return list(units)

    def backlogged(self) -> bool:
        """Some buffer is at its high mark: the worker is behind on that partition."""
        return any(len(buffer) >= self.high for buffer in self._buffers.values())

    def size(self, tp: TopicPartition) -> int:
        buffer = self._buffers.get(tp)
        return 0 if buffer is None else len(buffer)

    def head(self, tp: TopicPartition) -> int | None:
        """The offset of the next record to process for ``tp``, if one is buffered."""
        buffer = self._buffers.get(tp)
        return buffer[0].offset if buffer else None

    def clear(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget buffered records (the consumer is sought back before they are needed)."""
        partitions = list(partitions)
        self.merge.forget(partitions)
        for tp in partitions:
            buffer = self._buffers.pop(tp, None)
            if buffer:
                self.buffered -= len(buffer)
