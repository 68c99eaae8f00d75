"""The worker loop: poll into bounded buffers, run each partition's records through its
flow (priority lane first), commit outputs, state changes and offsets together.

``realtime`` commits after every event (lowest latency); ``microbatch`` commits up to
``batch_size`` events or every ``batch_ms`` (highest throughput), and at once after
priority-lane events. Both run the same code in offset order per topic-partition, so they
write the same outputs.

Failures. InvalidEvent from decoding or a stage sends the event to the dead letters. A
retryable error (a store, model or sink down, a timeout; also a commit that keeps failing)
discards the partition's uncommitted work (state back to the changelog, batch stages to
their state changelog + replay, the consumer back to the committed offsets), pauses it and
retries it after an exponential backoff: its events wait in the broker, none is dropped,
and outputs stay exactly once because they commit only with the offsets. A fatal error (a
bug, bad configuration) stops the worker: nothing uncommitted is written, and a restart
resumes from the committed offsets once the cause is fixed; dead-lettering instead would
quietly empty the stream into the dead letters. A full or failing disk or store
(``StorageFault``: the embedded log, the online store's SQLite file, a Redis at its
maxmemory) stops it the same way, though retryable: a rerun once space is freed resumes
(commits.py says why it does not pause and retry).
"""

from __future__ import annotations

import logging
import threading
import time
from itertools import groupby
from operator import attrgetter

from streamsense.brokers.base import Broker, Consumer, Record, TopicPartition
from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import StreamsenseError
from streamsense.runtime.app import App
from streamsense.runtime.commits import Committer, stops_worker
from streamsense.runtime.config import Mode, WorkerConfig, WorkerStats
from streamsense.runtime.flows import run_flow
from streamsense.runtime.intake import NORMAL_LANE, Intake
from streamsense.runtime.load import LoadMonitor
from streamsense.runtime.merge import EventTimeMerge
from streamsense.runtime.pauses import PauseBook, RetryBook
from streamsense.runtime.progress import Progress
from streamsense.runtime.restore import Restorer
from streamsense.runtime.state import StateStore
from streamsense.runtime.topology import Topology

_TOPIC_PARTITION = attrgetter("topic", "partition")
_TOPIC, _OFFSET = attrgetter("topic"), attrgetter("offset")

__all__ = ["Mode", "Worker", "WorkerConfig", "WorkerStats"]

log = logging.getLogger(__name__)


class Worker:
    """Runs an App against a broker: one member of the app's consumer group."""

    def __init__(
        self,
        app: App,
        broker: Broker,
        config: WorkerConfig | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.app = app
        self.broker = broker
        self.config = config or WorkerConfig()
        self.stats = WorkerStats()
        self.load = LoadMonitor(self.config.shedding, clock)
        self.topology = topology = Topology.of(app)
        self._clock = clock
        self._state = StateStore(topology.changelogs)
        self._restorer = Restorer(topology, broker, self.config, clock)
        merge = EventTimeMerge(self.config.order_wait_ms, clock)
        self._intake = Intake(
            self.config.buffer_capacity,
            topology.lanes,
            topology.merged,
            merge,
            max_bytes=self.config.buffer_bytes,
        )
        self._pauses = PauseBook(clock)
        self._retries = RetryBook(self.config.retry, clock)
        self._progress = Progress(broker, self._intake, self._retries)
        self._committer = Committer(
            broker,
            topology,
            self.config,
            clock,
            self.stats,
            progress=self._progress,
            state=self._state,
            restorer=self._restorer,
            intake=self._intake,
            pauses=self._pauses,
            retries=self._retries,
        )
        self._order_by_lag = False
        self._last_order_check = 0.0
        self._polled = 0  # records the last poll returned
        self._last_caught_up_check = 0.0
        self._stop = threading.Event()

    def ensure_topics(self) -> None:
        for name, config in self.topology.topic_configs.items():
            self.broker.create_topic(name, config, exist_ok=True)

    def stop(self) -> None:
        """Ask the loop to finish: it commits what it processed and leaves the group."""
        self._stop.set()

    # -- the loop ---------------------------------------------------------------------------
    def run(self, *, until_caught_up: bool = False, own_all: bool = False) -> WorkerStats:
        """Process events until ``stop()`` (or, with ``until_caught_up``, until every source
        partition is read to its end). ``own_all`` takes every partition without joining
        the group (replays): members that died without leaving cannot hold a share of it,
        and fencing still stops a concurrent worker from committing the same offsets."""
        self.ensure_topics()
        order = self.config.order
        self._intake.ordered = order == "always" or (order == "auto" and until_caught_up)
        self._order_by_lag = order == "auto" and not until_caught_up
        consumer = self.broker.consumer(
            self.topology.group, session_timeout_ms=self.config.session_timeout_ms
        )
        self._progress.consumer = consumer
        if own_all:
            everything = self.topology.source_partitions(self.broker)
            consumer.assign(everything)
            self._on_assign(everything)
        else:
            consumer.subscribe(
                list(self.topology.sources), on_assign=self._on_assign, on_revoke=self._on_revoke
            )
        try:
            self._loop(consumer, until_caught_up)
            self._committer.commit(final=True)
        finally:
            self._let_go(consumer.assignment())
            consumer.close()
            self._progress.consumer = None
            self._sync_stats()
        return self.stats

    def _loop(self, consumer: Consumer, until_caught_up: bool) -> None:
        realtime = self.config.mode == "realtime"
        batch_started: float | None = None
        while not self._stop.is_set():
            self._committer.retry_due(consumer)
            polled = self._poll(consumer)
            wanted = (
                1 if realtime else max(1, self.config.batch_size - self._progress.events_in_batch)
            )
            chunk = self._intake.take(wanted)
            urgent = False
            if chunk:
                urgent = self._process(chunk)
                if batch_started is None:
                    batch_started = time.monotonic()
            elif not polled:
                self._add_idle(consumer)
            self._pause_full_buffers(consumer)
            self._measure_load(consumer)
            self._choose_order()
            due = batch_started is not None and self._batch_due(batch_started)
            if realtime or not chunk or due or urgent:
                self._committer.commit()
                batch_started = None
            self._sync_stats()
            if until_caught_up and not chunk and self._check_caught_up(consumer):
                return

    def _wanted(self, realtime: bool) -> int:
        """How many records the next take may bring: the rest of the micro-batch."""
        return 1 if realtime else max(1, self.config.batch_size - self._progress.events_in_batch)

    def _poll(self, consumer: Consumer) -> int:
        """Fetch what the buffers have room for; returns how many records came."""
        active = [tp for tp in consumer.assignment() if not self._pauses.paused(tp)]
        idle = not self._intake.buffered and not self._polled
        waiting = idle and bool(self._retries.waiting)
        if waiting:  # nothing to do but retries: wait for them on the injected clock
            self._clock.sleep(min(self._retries.next_in(), self.config.poll_timeout_s))
        timeout = self.config.poll_timeout_s if idle and not waiting else 0.0
        # The poll also keeps the group membership alive while everything is paused.
        records = consumer.poll(self._intake.room(active), timeout=timeout)
        self._polled = len(records)
        if self._retries.waiting:  # a broker may hand out records of a paused partition
            records = [r for r in records if not self._retries.is_waiting(r.partition)]
        for tp, offset in self._intake.add(records).items():
            consumer.seek(tp, offset)  # refused for lack of room: read again later
        return len(records)

    def _pause_full_buffers(self, consumer: Consumer) -> None:
        for tp in consumer.assignment():
            if self._intake.full(tp):
                self._pauses.hold(consumer, [tp], "full")
            elif self._intake.drained(tp):
                self._pauses.release(consumer, [tp], "full")

    def _batch_due(self, started: float) -> bool:
        if self._progress.events_in_batch >= self.config.batch_size:
            return True
        return (time.monotonic() - started) * 1000 >= self.config.batch_ms

    def _add_idle(self, consumer: Consumer) -> None:
        numbers = {tp.partition for tp in consumer.assignment()} - self._retries.waiting
        for p, records in self._restorer.idle(numbers).items():
            self._progress.add(p, records)

    def _sync_stats(self) -> None:
        self.stats.pauses = self._pauses.pauses
        self.stats.paused_s = self._pauses.paused_s
        self.stats.largest_buffer = self._intake.largest
        self.stats.largest_buffer_bytes = self._intake.largest_bytes
        self.stats.shed_changes = self.load.changes
        self.stats.order_waits = self._intake.merge.waits

    # -- lag and load -----------------------------------------------------------------------
    def _measure_load(self, consumer: Consumer) -> None:
        if not self.load.due():
            return
        try:
            self.load.observe(self._progress.own_lag())
        except StreamsenseError as error:
            if not error.retryable:
                raise
            log.info("lag not measured (%s); shedding state kept", error)

    def _choose_order(self) -> None:
        """Live, a repartition target is read in event-time order while this worker is
        behind (a catch-up), and as it comes once it keeps up (no wait for the order).
        Behind: a buffer filled to its high mark (at once, no broker call) or a lag above
        ``order_lag``; caught up: a lag of at most a hundredth of it, so the end of a
        catch-up is still taken in order."""
        if not self._order_by_lag or not self.topology.merged:
            return
        if not self._intake.ordered and self._intake.backlogged():
            self._intake.ordered = True
            return
        now = time.monotonic()
        if now - self._last_order_check < 1:
            return
        self._last_order_check = now
        try:
            lag = self._progress.own_lag()
        except StreamsenseError as error:
            if not error.retryable:
                raise
            return
        if lag > self.config.order_lag:
            self._intake.ordered = True
        elif lag <= self.config.order_lag // 100:
            self._intake.ordered = False

    def _check_caught_up(self, consumer: Consumer) -> bool:
        # Asking the broker costs round trips (Kafka): at most a few times a second.
        now = time.monotonic()
        if now - self._last_caught_up_check < 0.2:
            return False
        self._last_caught_up_check = now
        return not self._retries.waiting and self._caught_up(consumer)

    def _caught_up(self, consumer: Consumer) -> bool:
        """Every source partition is read to its end: by this worker for the partitions it
        owns, by the group's commits for the others."""
        owned = set(consumer.assignment())
        others = [tp for tp in self.topology.source_partitions(self.broker) if tp not in owned]
        committed = self.broker.committed(self.topology.group, others) if others else {}
        for topic in self.topology.sources:
            for part in self.broker.describe_topic(topic).partitions:
                tp = TopicPartition(topic, part.partition)
                done = self._progress.next_offset(tp) if tp in owned else committed.get(tp)
                if (part.low if done is None else done) < part.high:
                    return False
        return True

    # -- processing -------------------------------------------------------------------------
    def _process(self, records: list[Record]) -> bool:
        """Run ``records`` through their flows; True when some came from a priority lane.
        Records go in the order taken, per flow and partition number (one keyed state):
        a repartition target's upstream topics are taken in event-time order together."""
        groups: dict[tuple[int, int], list[Record]] = {}
        # A take comes in runs of one topic-partition: grouped run by run (C-level loops).
        for (topic, partition), run in groupby(records, _TOPIC_PARTITION):
            flow = id(self.topology.sources[topic])
            groups.setdefault((flow, partition), []).extend(run)
        urgent = False
        for (_, partition), batch in groups.items():
            if self._retries.is_waiting(partition):
                continue  # failed earlier in this chunk: redone after its reload
            try:
                self._process_partition(partition, batch)
            except StreamsenseError as error:
                if stops_worker(error):
                    raise
                self._committer.fail({partition}, error)
                continue
            if self.topology.lanes.get(batch[0].topic, NORMAL_LANE) < NORMAL_LANE:
                urgent = True
                self.stats.priority_events += len(batch)
        return urgent

    def _process_partition(self, partition: int, batch: list[Record]) -> None:
        replay, live = self._restorer.split(batch)
        flow = self.topology.sources[batch[0].topic]
        if replay:
            run_flow(flow, self._state, partition, replay, restoring=True, load=self.load)
            self.stats.replayed_events += len(replay)
        if live:
            outcome = run_flow(flow, self._state, partition, live, restoring=False, load=self.load)
            self._progress.add(partition, outcome.records)
            # Offset order within each topic-partition: the last record of each topic counts.
            last = dict(zip(map(_TOPIC, live), map(_OFFSET, live), strict=True))
            for topic, offset in last.items():
                self._progress.offsets[TopicPartition(topic, partition)] = offset + 1
            self._progress.events_in_batch += len(live)
            self._restorer.count(partition, len(live))
            self._record(outcome.events, outcome.outputs, outcome.dead_letters)

    def _record(self, events: int, outputs: int, dead_letters: dict[str, int]) -> None:
        self.stats.events += events
        self.stats.outputs += outputs
        for reason, n in dead_letters.items():
            self.stats.dead_letters += n
            self.stats.dead_letter_reasons[reason] = (
                self.stats.dead_letter_reasons.get(reason, 0) + n
            )

    # -- rebalances -------------------------------------------------------------------------
    # Rebalances hand over only the partitions that move (Kafka's consumer protocol, and
    # the self-hosted brokers), or all of them (Kafka's classic protocol): the others keep
    # their state, buffers and positions and are processed on between the callbacks.
    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        consumer = self._progress.consumer
        gained = set(partitions)
        held = {
            tp.partition for tp in (consumer.assignment() if consumer else []) if tp not in gained
        }
        numbers = {tp.partition for tp in partitions}
        try:
            if numbers & held:
                # Partition p of another topic joins a p this worker already processes
                # (co-partitioned topics handed over apart): p's state must be read again
                # with every topic's offsets, so commit p's work and reload all of it.
                self._committer.commit(final=True, giving_up=numbers & held)
                self._committer.reload(numbers & held)
            fresh = numbers - held
            chosen = [tp for tp in partitions if tp.partition in fresh]
            committed = self.broker.committed(self.topology.group, chosen)
            self._progress.committed.update(committed)
            self._intake.clear(chosen)
            self.stats.restored_keys += self._state.restore(self.broker, fresh, committed)
            if consumer is not None:
                self.stats.restored_keys += self._restorer.restore(consumer, fresh, committed)
        except StreamsenseError as error:
            if stops_worker(error):
                raise
            # Offsets or state held back (a crashed worker's transaction not yet aborted,
            # a broker coming back): keep the partitions paused and load them later.
            self._committer.fail(numbers, error)
            return
        log.info("assigned %s", partitions)

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        consumer = self._progress.consumer
        given = set(partitions)
        kept = {
            tp.partition for tp in (consumer.assignment() if consumer else []) if tp not in given
        }
        # Partition p of every source moves as one (co-partitioning), so its state goes
        # too; a p still read from another topic keeps it.
        gone = {tp.partition for tp in partitions} - kept
        # Everything processed so far commits (one transaction); the state of the
        # partitions given up is written whatever its interval, for their next owner.
        self._committer.commit(final=True, giving_up=gone)
        self._state.drop(gone)
        self._restorer.drop(gone)
        self._let_go(partitions)
        for tp in partitions:
            self._progress.committed.pop(tp, None)
        log.info("revoked %s", partitions)

    def _let_go(self, partitions: list[TopicPartition]) -> None:
        self._intake.clear(partitions)
        self._pauses.forget(partitions)
        self._retries.forget({tp.partition for tp in partitions})
