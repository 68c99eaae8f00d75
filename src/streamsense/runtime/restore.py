"""Batch-stage state across restarts and rebalances.

A worker that gains partition p reads each batch stage's state changelog for p (one entry
per key, batch_state.py), seeks the stage's source back to the offsets of the state it
read, and replays the events between them and the committed offsets with outputs
suppressed: the state is then exactly what it was at the commit, and nothing is written
twice. State is written every so many events or seconds, and at clean shutdown, inside
ordinary commits, for the keys that changed since the last write.

A flow fed by two lane topics (a stream with a priority lane) has both in its state's
offsets, and replays both from there. Across the two topics the replay order can differ
from the order they were first processed in (each topic keeps its offset order); the
feature engine keeps each key's events ordered by event time, so only an event arriving at
the lateness boundary can be classified differently.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

from streamsense.brokers.base import Broker, Consumer, OutRecord, Record, TopicPartition
from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.runtime.batch_state import StoredState, read_state, state_records
from streamsense.runtime.config import WorkerConfig
from streamsense.runtime.partition_read import log_start
from streamsense.runtime.topology import Topology

IDLE_CHECK_S = 1.0


class Restorer:
    def __init__(
        self, topology: Topology, broker: Broker, config: WorkerConfig, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._topology = topology
        self._clock = clock  # state-write intervals and idle window closing run on it
        self._broker = broker
        self._config = config
        self._stages = topology.batch_stages
        # Which source topics (lanes included) feed each batch stage: its state records
        # their offsets.
        self._sources = topology.stage_sources
        self._replay_until: dict[TopicPartition, int] = {}
        # Per (stage, partition): keys whose entry was written in several parts.
        self._multipart: dict[tuple[str, int], dict[bytes, int]] = {}
        self._since_snapshot: dict[int, int] = {}
        self._last_snapshot = self._clock.monotonic()
        self._last_idle_check = 0.0

    def restore(
        self,
        consumer: Consumer,
        partitions: set[int],
        committed: Mapping[TopicPartition, int | None],
    ) -> int:
        """Load the partitions' batch-stage state; returns how many keys were loaded."""
        loaded = 0
        for name, stage in self._stages.items():
            for p in sorted(partitions):
                sources = [TopicPartition(topic, p) for topic in self._sources[name]]
                # Where nothing is committed yet, the consumer starts at the log start.
                floor = {tp: self._committed_or_start(tp, committed) for tp in sources}
                stored = read_state(self._broker, self._topology.state_topics[name], p, floor)
                if stored is None:
                    loaded += stage.restore(p, None, ())
                else:
                    loaded += stage.restore(p, stored.meta, stored.entries)
                    stored.entries.clear()  # the stage holds them now; free the bytes
                self._multipart[(name, p)] = {} if stored is None else stored.multipart
                for tp in sources:
                    done = committed.get(tp)
                    if done is None:
                        continue  # nothing processed yet: no state to rebuild
                    start = self._replay_start(tp, stored)
                    if start < done:
                        consumer.seek(tp, start)
                        self._replay_until[tp] = done
        self._since_snapshot.update({p: 0 for p in partitions})
        return loaded

    def _committed_or_start(
        self, tp: TopicPartition, committed: Mapping[TopicPartition, int | None]
    ) -> int:
        done = committed.get(tp)
        return log_start(self._broker, tp) if done is None else done

    def _replay_start(self, tp: TopicPartition, stored: StoredState | None) -> int:
        if stored is not None and tp.topic in stored.offsets:
            return stored.offsets[tp.topic]
        return log_start(self._broker, tp)

    def split(self, records: list[Record]) -> tuple[list[Record], list[Record]]:
        """The records to replay silently (before the committed offset of their
        topic-partition) and the live ones, each in the order given."""
        if not self._replay_until:
            return [], records
        replay, live = [], []
        ended: set[TopicPartition] = set()
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            until = self._replay_until.get(tp)
            if until is not None and record.offset < until:
                replay.append(record)
                if record.offset + 1 >= until:
                    ended.add(tp)
            else:
                live.append(record)
                if until is not None:
                    ended.add(tp)
        for tp in ended:
            self._replay_until.pop(tp, None)
        return replay, live

    def unwritten(self, partitions: set[int] | None = None) -> bool:
        """Whether the batch-stage state of any of ``partitions`` (None: any partition)
        changed since its last write."""
        return bool(self._stages) and any(
            n > 0 for p, n in self._since_snapshot.items() if partitions is None or p in partitions
        )

    def count(self, partition: int, events: int) -> None:
        self._since_snapshot[partition] = self._since_snapshot.get(partition, 0) + events

    def state_due(
        self,
        owned: set[TopicPartition],
        position: Callable[[TopicPartition], int],
        *,
        forced: Collection[int] = (),
    ) -> list[OutRecord]:
        """State changelog records for the partitions due: the keys changed since their
        last write. ``position`` gives the next offset the state has seen (records the
        worker buffered but has not processed do not count)."""
        if not self._stages:
            return []
        elapsed = self._clock.monotonic() - self._last_snapshot >= self._config.snapshot_every_s
        due = [
            p
            for p, n in self._since_snapshot.items()
            if n > 0 and (p in forced or elapsed or n >= self._config.snapshot_every_events)
        ]
        records = []
        for p in due:
            for name, stage in self._stages.items():
                offsets = {
                    t: position(TopicPartition(t, p))
                    for t in self._sources[name]
                    if TopicPartition(t, p) in owned
                }
                meta, entries = stage.state_changes(p)
                multipart = self._multipart.setdefault((name, p), {})
                topic = self._topology.state_topics[name]
                records.extend(state_records(topic, p, offsets, meta, entries, multipart))
            self._since_snapshot[p] = 0
        if elapsed:
            self._last_snapshot = self._clock.monotonic()
        return records

    def idle(self, partitions: Iterable[int]) -> dict[int, list[OutRecord]]:
        """Give batch stages a chance to close windows on quiet partitions; the records
        per partition (they commit, or are discarded, with that partition's work)."""
        now = self._clock.monotonic()
        if not self._stages or now - self._last_idle_check < IDLE_CHECK_S:
            return {}
        self._last_idle_check = now
        wall_ms = self._clock.now_ms()
        records: dict[int, list[OutRecord]] = {}
        for stage in self._stages.values():
            for p in sorted(set(partitions)):
                closed = stage.on_idle(p, wall_ms)
                if closed:
                    records.setdefault(p, []).extend(closed)
        return records

    def drop(self, partitions: set[int]) -> None:
        for stage in self._stages.values():
            for p in partitions:
                stage.drop(p)
        for tp in [tp for tp in self._replay_until if tp.partition in partitions]:
            del self._replay_until[tp]
        for p in partitions:
            self._since_snapshot.pop(p, None)
        for key in [k for k in self._multipart if k[1] in partitions]:
            del self._multipart[key]
