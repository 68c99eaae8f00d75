"""Bounded buffers between the consumer and the flows, read lane by lane.

Polled records wait here, one buffer per topic-partition, until the worker processes them.
A buffer holds at most ``capacity`` records and, when ``max_bytes`` is set, at most that
many bytes of values (at least one record, whatever its size): records may be up
to the broker's record limit, so a count alone would let a stream of large events hold
gigabytes (issue #21). The worker pauses a partition whose buffer is ``full`` (the high
mark of either bound, or a record refused for its bytes; its events then wait in the
broker, where they are durable, and nothing is dropped) and resumes it once the buffer is
``drained`` to the low marks. A poll asks for no more than the emptiest-allowed buffer can
take; a record that still does not fit (a broker that returns a paused partition's
prefetched records, or too many bytes) is refused, and the worker seeks the partition back
to it, so the bounds hold whatever a poll returns.

Priority lanes: records are taken lane by lane, the priority lane first. While a backlog of
the normal lane keeps its buffers full, those partitions stay paused, so polls fetch the
priority lane's new records, and the next take processes them ahead of the backlog. Each
topic-partition is still taken in offset order, so committed offsets stay contiguous.

A repartition target's upstream topics (``merged``) are taken together per partition
number, in event-time order while ``ordered`` is set (runtime/merge.py), else as they come.
"""

from __future__ import annotations

import itertools
import operator
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
        max_bytes: int | None = None,
    ) -> None:
        """``lanes`` ranks source topics: lower ranks are taken first. ``merged`` maps
        each topic read in event-time order to the topics it is merged with."""
        if capacity < 4:
            raise ConfigError("intake buffers need a capacity of at least 4 records")
        self.capacity = capacity
        self.high = capacity * 3 // 4  # pause at or above
        self.low = capacity // 4  # resume at or below
        self.max_bytes = max_bytes
        self._bytes: dict[TopicPartition, int] = {}
        self._short: set[TopicPartition] = set()  # refused a record for its bytes
        self.largest_bytes = 0
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
            if self.max_bytes is not None:
                room = min(room, self._byte_room(tp, run, not buffer))
            if len(run) > room:
                refused[tp] = run[room].offset
                run = run[:room]
            buffer.extend(run)
            self.buffered += len(run)
            self.largest = max(self.largest, len(buffer))
        return refused

    def _byte_room(self, tp: TopicPartition, run: Sequence[Record], empty: bool) -> int:
        """How many of ``run`` fit in ``tp``'s byte budget (one at least, into an empty
        buffer); counts them in."""
        assert self.max_bytes is not None
        held = self._bytes.get(tp, 0)
        fits, total = len(run), _bytes_of(run)
        if held + total > self.max_bytes:  # the rare case: find where it stops
            running = itertools.accumulate(map(_bytes_of, zip(run)), initial=held)
            fits = next(i for i, total in enumerate(running) if total > self.max_bytes) - 1
            fits = max(fits, 1 if empty else 0)
            total = _bytes_of(run[:fits])
            self._short.add(tp)
        held += total
        self._bytes[tp] = held
        self.largest_bytes = max(self.largest_bytes, held)
        return fits

    def full(self, tp: TopicPartition) -> bool:
        """At a high mark, or short of bytes for what came: pause the partition."""
        if self.size(tp) >= self.high or tp in self._short:
            return True
        return self.max_bytes is not None and self._bytes.get(tp, 0) >= self.max_bytes * 3 // 4

    def drained(self, tp: TopicPartition) -> bool:
        """Down to the low marks: resume the partition."""
        if self.size(tp) > self.low or tp in self._short:
            return False
        return self.max_bytes is None or self._bytes.get(tp, 0) <= self.max_bytes // 4

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
                merged = self.merge.take(self._buffers, unit, limit - len(out))
                self._count_out(merged)
                out.extend(merged)
                continue
            for tp in unit:
                taken = self._buffers.get(tp)
                first = len(out)
                while taken and len(out) < limit:
                    out.append(taken.popleft())
                if len(out) > first and self.max_bytes is not None:
                    self._bytes[tp] -= _bytes_of(out[first:])
                    self._short.discard(tp)
        self.buffered -= len(out)
        return out

    def _count_out(self, records: Sequence[Record]) -> None:
        """Takes the bytes of merged ``records`` off their buffers (in runs of one
        topic-partition: a run at a time)."""
        if self.max_bytes is None:
            return
        for (topic, partition), run in itertools.groupby(records, _partition_of):
            tp = TopicPartition(topic, partition)
            self._bytes[tp] -= _bytes_of(run)
            self._short.discard(tp)

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
        """Some buffer is full: the worker is behind on that partition."""
        return any(self.full(tp) for tp in self._buffers)

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
            self._bytes.pop(tp, None)
            self._short.discard(tp)
            if buffer:
                self.buffered -= len(buffer)


_VALUE = operator.attrgetter("value")


def _bytes_of(records: Iterable[Record]) -> int:
    """The value bytes of ``records`` (keys are small beside them), summed in C."""
    return sum(map(len, filter(None, map(_VALUE, records))))


def _partition_of(record: Record) -> tuple[str, int]:
    return record.topic, record.partition
