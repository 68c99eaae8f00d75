"""Batch-stage state across restarts and rebalances.

A worker that gains partition p loads each batch stage's latest snapshot for p, seeks the
stage's source back to the snapshot's offsets, and replays the events between the snapshot
and the committed offsets with outputs suppressed: the state is then exactly what it was at
the commit, and nothing is written twice. Snapshots are taken every so many events or
seconds, and at clean shutdown, inside ordinary commits.

A flow fed by two lane topics (a stream with a priority lane) has both in its snapshots'
offsets, and replays both from there. Across the two topics the replay order can differ
from the order they were first processed in (each topic keeps its offset order); the
feature engine keeps each key's events ordered by event time, so only an event arriving at
the lateness boundary can be classified differently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from streamsense.brokers.base import Broker, Consumer, OutRecord, Record, TopicPartition
from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.runtime.app import App
from streamsense.runtime.snapshots import Snapshot, read_snapshot, snapshot_record

if TYPE_CHECKING:
    from streamsense.runtime.worker import WorkerConfig

IDLE_CHECK_S = 1.0


class Restorer:
    def __init__(
        self, app: App, broker: Broker, config: WorkerConfig, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._app = app
        self._clock = clock  # snapshot intervals and idle window closing run on it
        self._broker = broker
        self._config = config
        self._stages = app.batch_stages()
        # Which source topics (lanes included) feed each batch stage: its snapshot records
        # their offsets.
        self._sources = {
            name: [t for t, f in app.sources().items() if stage in f.stages]
            for name, stage in self._stages.items()
        }
        self._replay_until: dict[TopicPartition, int] = {}
        self._since_snapshot: dict[int, int] = {}
        self._last_snapshot = self._clock.monotonic()
        self._last_idle_check = 0.0

    def restore(
        self,
        consumer: Consumer,
        partitions: set[int],
        committed: Mapping[TopicPartition, int | None],
    ) -> None:
        for name, stage in self._stages.items():
            for p in sorted(partitions):
                sources = [TopicPartition(topic, p) for topic in self._sources[name]]
                # Where nothing is committed yet, the consumer starts at the log start.
                floor = {tp: self._committed_or_start(tp, committed) for tp in sources}
                snapshot = read_snapshot(self._broker, self._app.snapshot_topic(name), p, floor)
                stage.restore(p, None if snapshot is None else snapshot.state)
                for tp in sources:
                    done = committed.get(tp)
                    if done is None:
                        continue  # nothing processed yet: no state to rebuild
                    start = self._replay_start(tp, snapshot)
                    if start < done:
                        consumer.seek(tp, start)
                        self._replay_until[tp] = done
        self._since_snapshot.update({p: 0 for p in partitions})

    def _committed_or_start(
        self, tp: TopicPartition, committed: Mapping[TopicPartition, int | None]
    ) -> int:
        done = committed.get(tp)
        return self._log_start(tp) if done is None else done

    def _replay_start(self, tp: TopicPartition, snapshot: Snapshot | None) -> int:
        if snapshot is not None and tp.topic in snapshot.offsets:
            return snapshot.offsets[tp.topic]
        return self._log_start(tp)

    def _log_start(self, tp: TopicPartition) -> int:
        return self._broker.describe_topic(tp.topic).partitions[tp.partition].low

    def split(self, tp: TopicPartition, records: list[Record]) -> tuple[list[Record], list[Record]]:
        """The records to replay silently (before the committed offset) and the live ones."""
        until = self._replay_until.get(tp)
        if until is None:
            return [], records
        replay = [r for r in records if r.offset < until]
        live = records[len(replay) :]
        if live or (replay and replay[-1].offset + 1 >= until):
            del self._replay_until[tp]
        return replay, live

    def count(self, partition: int, events: int) -> None:
        self._since_snapshot[partition] = self._since_snapshot.get(partition, 0) + events

    def snapshots_due(
        self,
        owned: set[TopicPartition],
        position: Callable[[TopicPartition], int],
        *,
        force: bool = False,
    ) -> list[OutRecord]:
        """Snapshot records for the partitions due. ``position`` gives the next offset the
        state has seen (records the worker buffered but has not processed do not count)."""
        if not self._stages:
            return []
        elapsed = self._clock.monotonic() - self._last_snapshot >= self._config.snapshot_every_s
        due = [
            p
            for p, n in self._since_snapshot.items()
            if n > 0 and (force or elapsed or n >= self._config.snapshot_every_events)
        ]
        records = []
        for p in due:
            for name, stage in self._stages.items():
                offsets = {
                    t: position(TopicPartition(t, p))
                    for t in self._sources[name]
                    if TopicPartition(t, p) in owned
                }
                snapshot = Snapshot(offsets, stage.snapshot(p))
                records.append(snapshot_record(self._app.snapshot_topic(name), p, snapshot))
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
