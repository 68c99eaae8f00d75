"""Taking a repartition target's records in event-time order (runtime/repartition.py).

Partition q of the U upstream topics feeds one flow. The next record taken is the buffered
head with the smallest event time, and only once every other upstream topic shows it has
nothing older to come: its own buffered head is not older, or a marker (or a record already
taken) says its writer got that far. Otherwise the group waits, its partitions still
polled; records of other partitions go on meanwhile.

The wait is bounded (``wait_ms`` on the injected clock): an upstream that sends nothing (a
quiet partition, a writer that is down) would hold the others back for ever. Past the
bound the head is taken, and the upstream topics it waited for count as idle until they
show something again. That bound is the latency the order can cost; a backlog, where every
upstream has records buffered, does not wait at all.

Each topic-partition is still taken in offset order, so committed offsets stay contiguous
and a restart needs nothing but them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

from streamsense.brokers.base import Record, TopicPartition
from streamsense.clock import Clock
from streamsense.runtime.repartition import is_marker, record_time

_NOTHING = -(2**62)


class EventTimeMerge:
    def __init__(self, wait_ms: int, clock: Clock) -> None:
        self.wait_ms = wait_ms
        self._clock = clock
        self._reached: dict[TopicPartition, int] = {}  # how far each upstream is known to be
        self._blocked_since: dict[tuple[TopicPartition, ...], float] = {}
        self._idle: set[TopicPartition] = set()
        self.waits = 0  # times the bound ran out (an upstream seen as idle)

    def take(
        self,
        buffers: Mapping[TopicPartition, deque[Record]],
        group: Sequence[TopicPartition],
        limit: int,
    ) -> list[Record]:
        """Up to ``limit`` records of ``group`` (partition q of every upstream topic), in
        event-time order (markers included: they only move the upstreams' clocks)."""
        out: list[Record] = []
        while len(out) < limit:
            self._take_markers(buffers, group, out)
            heads = {tp: _head_time(buffers[tp]) for tp in group if buffers.get(tp)}
            if not heads:
                # Nothing waits: a later wait starts its bound afresh.
                self._blocked_since.pop(tuple(group), None)
                break
            first = min(heads, key=lambda tp: (heads[tp], group.index(tp)))
            lagging = [
                tp
                for tp in group
                if tp != first and tp not in self._idle and self._known(tp, heads) < heads[first]
            ]
            if lagging and not self._waited_enough(tuple(group)):
                break
            self._idle.update(lagging)
            self._blocked_since.pop(tuple(group), None)
            record = buffers[first].popleft()
            out.append(record)
            self._reached[first] = max(heads[first], self._reached.get(first, _NOTHING))
        return out

    def _take_markers(
        self,
        buffers: Mapping[TopicPartition, deque[Record]],
        group: Sequence[TopicPartition],
        out: list[Record],
    ) -> None:
        for tp in group:
            buffer = buffers.get(tp)
            if buffer:
                self._idle.discard(tp)  # it shows something again
            while buffer and is_marker(buffer[0]):
                marker = buffer.popleft()
                out.append(marker)
                clock = record_time(marker)
                if clock is not None:
                    self._reached[tp] = max(clock, self._reached.get(tp, _NOTHING))

    def _known(self, tp: TopicPartition, heads: Mapping[TopicPartition, int]) -> int:
        """The event time ``tp``'s upstream is known to have reached."""
        return max(heads.get(tp, _NOTHING), self._reached.get(tp, _NOTHING))

    def _waited_enough(self, group: tuple[TopicPartition, ...]) -> bool:
        now = self._clock.monotonic()
        since = self._blocked_since.setdefault(group, now)
        if (now - since) * 1000 < self.wait_ms:
            return False
        self.waits += 1
        return True

    def forget(self, partitions: Sequence[TopicPartition]) -> None:
        """Partitions given up or reloaded: what was known of them no longer holds."""
        for tp in partitions:
            self._reached.pop(tp, None)
            self._idle.discard(tp)
        gone = set(partitions)
        for group in [g for g in self._blocked_since if gone.intersection(g)]:
            del self._blocked_since[group]


def _head_time(buffer: deque[Record]) -> int:
    time_ms = record_time(buffer[0])
    return _NOTHING if time_ms is None else time_ms
