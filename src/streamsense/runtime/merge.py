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
        event-time order (markers included: they only move the upstreams' clocks).

        Each head's time is read once, and the chosen head's followers are taken in a run
        while they stay within the bound the other heads set (they do not change meanwhile)."""
        out: list[Record] = []
        if limit <= 0:
            return out
        key = tuple(group)
        self._take_markers(buffers, group, out)
        heads = {tp: _head_time(buffers[tp]) for tp in group if buffers.get(tp)}
        taken = False  # a head is taken even when markers filled ``out`` (they are no work)
        while heads and (len(out) < limit or not taken):
            taken = True
            first = min(heads, key=lambda tp: (heads[tp], group.index(tp)))
            bound = self._run_bound(first, heads, group)
            if bound < heads[first]:  # an upstream still counted may have older records
                if not self._waited_enough(key):
                    return out
                self._idle.update(
                    tp
                    for tp in group
                    if tp != first
                    and tp not in self._idle
                    and self._known(tp, heads) < heads[first]
                )
                bound = self._run_bound(first, heads, group)
            self._blocked_since.pop(key, None)
            buffer = buffers[first]
            self._take_run(buffer, first, bound, out, limit)
            if buffer:
                heads[first] = _head_time(buffer)
            else:
                del heads[first]
        if not heads:
            # Nothing waits: a later wait starts its bound afresh.
            self._blocked_since.pop(key, None)
        return out

    def _run_bound(
        self,
        first: TopicPartition,
        heads: Mapping[TopicPartition, int],
        group: Sequence[TopicPartition],
    ) -> int:
        """The latest event time ``first`` may go on to: its records come before every other
        head (ties to the earlier upstream) and no later than what each upstream still
        counted is known to have reached. Below the head's own time: an upstream lags."""
        index = group.index(first)
        bound = 2**62
        for i, tp in enumerate(group):
            if tp == first:
                continue
            head = heads.get(tp)
            if head is not None:
                bound = min(bound, head if index < i else head - 1)
            if tp not in self._idle:
                bound = min(bound, self._known(tp, heads))
        return bound

    def _take_run(
        self,
        buffer: deque[Record],
        tp: TopicPartition,
        bound: int,
        out: list[Record],
        limit: int,
    ) -> None:
        """The chosen head (always: markers taken before it may have filled ``out``), then
        its followers up to ``bound`` (markers move the clock)."""
        head = buffer.popleft()
        out.append(head)
        reached = max(self._reached.get(tp, _NOTHING), _time_or_nothing(head))
        while buffer and len(out) < limit:
            time_ms = _time_or_nothing(buffer[0])
            if time_ms > bound and not is_marker(buffer[0]):
                break
            out.append(buffer.popleft())
            reached = max(reached, time_ms)
        self._reached[tp] = reached

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
    return _time_or_nothing(buffer[0])


def _time_or_nothing(record: Record) -> int:
    time_ms = record_time(record)
    return _NOTHING if time_ms is None else time_ms
