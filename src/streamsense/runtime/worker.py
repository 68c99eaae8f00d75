"""The worker loop: poll, run each partition's records through its flow, commit outputs,
state changes and offsets together.

``realtime`` commits after every event (lowest latency); ``microbatch`` commits up to
``batch_size`` events or every ``batch_ms`` (highest throughput). Both run the same code in
offset order per partition, so they write the same outputs.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Literal

from streamsense.brokers.base import (
    Broker,
    Consumer,
    OutRecord,
    Record,
    TopicPartition,
    Transaction,
)
from streamsense.errors import FencedError, StreamsenseError
from streamsense.runtime.app import App
from streamsense.runtime.flows import run_flow
from streamsense.runtime.restore import Restorer
from streamsense.runtime.state import StateStore

log = logging.getLogger(__name__)

Mode = Literal["realtime", "microbatch"]


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker batches, commits and snapshots."""

    mode: Mode = "microbatch"
    batch_size: int = 1000
    batch_ms: int = 100
    poll_timeout_s: float = 0.05
    session_timeout_ms: int = 10_000
    commit_attempts: int = 5
    snapshot_every_events: int = 200_000
    snapshot_every_s: float = 30.0


@dataclass
class WorkerStats:
    events: int = 0
    dead_letters: int = 0
    outputs: int = 0
    commits: int = 0
    fenced: int = 0
    restored_keys: int = 0
    replayed_events: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)


class Worker:
    """Runs an App against a broker: one member of the app's consumer group."""

    def __init__(self, app: App, broker: Broker, config: WorkerConfig | None = None) -> None:
        self.app = app
        self.broker = broker
        self.config = config or WorkerConfig()
        self.stats = WorkerStats()
        self._state = StateStore({s: app.changelog_topic(s) for s in app.stage_names()})
        self._restorer = Restorer(app, broker, self.config)
        self._pending: list[OutRecord] = []
        self._offsets: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int | None] = {}
        self._events_in_batch = 0
        self._last_caught_up_check = 0.0
        self._stop = threading.Event()
        self._consumer: Consumer | None = None

    def ensure_topics(self) -> None:
        for name, config in self.app.topic_configs().items():
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
        consumer = self.broker.consumer(
            self.app.group, session_timeout_ms=self.config.session_timeout_ms
        )
        self._consumer = consumer
        if own_all:
            everything = self._source_partitions()
            consumer.assign(everything)
            self._on_assign(everything)
        else:
            consumer.subscribe(
                list(self.app.flows), on_assign=self._on_assign, on_revoke=self._on_revoke
            )
        try:
            self._loop(consumer, until_caught_up)
            self._commit(final=True)
        finally:
            consumer.close()
            self._consumer = None
        return self.stats

    def _source_partitions(self) -> list[TopicPartition]:
        return [
            TopicPartition(topic, p)
            for topic in self.app.flows
            for p in range(self.broker.describe_topic(topic).config.partitions)
        ]

    def _loop(self, consumer: Consumer, until_caught_up: bool) -> None:
        realtime = self.config.mode == "realtime"
        batch_started: float | None = None
        while not self._stop.is_set():
            limit = 1 if realtime else self.config.batch_size - self._events_in_batch
            records = consumer.poll(limit, timeout=self.config.poll_timeout_s)
            if records:
                self._process(records)
                if batch_started is None:
                    batch_started = time.monotonic()
            else:
                self._pending.extend(self._restorer.idle(consumer.assignment()))
            due = batch_started is not None and self._batch_due(batch_started)
            if realtime or not records or due:
                self._commit()
                batch_started = None
            if until_caught_up and not records and self._check_caught_up(consumer):
                return

    def _batch_due(self, started: float) -> bool:
        if self._events_in_batch >= self.config.batch_size:
            return True
        return (time.monotonic() - started) * 1000 >= self.config.batch_ms

    def _check_caught_up(self, consumer: Consumer) -> bool:
        # Asking the broker costs round trips (Kafka): at most a few times a second.
        now = time.monotonic()
        if now - self._last_caught_up_check < 0.2:
            return False
        self._last_caught_up_check = now
        return self._caught_up(consumer)

    def _caught_up(self, consumer: Consumer) -> bool:
        """Every source partition is read to its end: by this worker for the partitions it
        owns, by the group's commits for the others."""
        owned = set(consumer.assignment())
        others = [tp for tp in self._source_partitions() if tp not in owned]
        committed = self.broker.committed(self.app.group, others) if others else {}
        for topic in self.app.flows:
            for part in self.broker.describe_topic(topic).partitions:
                tp = TopicPartition(topic, part.partition)
                done = consumer.position(tp) if tp in owned else committed.get(tp)
                if (part.low if done is None else done) < part.high:
                    return False
        return True

    # -- processing -------------------------------------------------------------------------
    def _process(self, records: list[Record]) -> None:
        by_partition: dict[TopicPartition, list[Record]] = {}
        for record in records:
            by_partition.setdefault(TopicPartition(record.topic, record.partition), []).append(
                record
            )
        for tp, batch in by_partition.items():
            replay, live = self._restorer.split(tp, batch)
            flow = self.app.flows[tp.topic]
            if replay:
                run_flow(flow, self._state, tp.partition, replay, restoring=True)
                self.stats.replayed_events += len(replay)
            if live:
                outcome = run_flow(flow, self._state, tp.partition, live, restoring=False)
                self._pending.extend(outcome.records)
                self._offsets[tp] = live[-1].offset + 1
                self._events_in_batch += len(live)
                self._restorer.count(tp.partition, len(live))
                self._record(outcome.events, outcome.outputs, outcome.dead_letters)

    def _record(self, events: int, outputs: int, dead_letters: dict[str, int]) -> None:
        self.stats.events += events
        self.stats.outputs += outputs
        for reason, n in dead_letters.items():
            self.stats.dead_letters += n
            self.stats.dead_letter_reasons[reason] = (
                self.stats.dead_letter_reasons.get(reason, 0) + n
            )

    # -- committing -------------------------------------------------------------------------
    def _commit(self, *, final: bool = False) -> None:
        if not self._offsets and not self._pending:
            return
        offsets, self._offsets = self._offsets, {}
        records = self._pending + self._state.take_changes()
        if self._consumer is not None:
            records += self._restorer.snapshots_due(self._consumer, force=final)
        self._pending = []
        self._events_in_batch = 0
        txn = Transaction(
            self.app.group,
            offsets=offsets,
            records=records,
            expected={tp: self._committed.get(tp) for tp in offsets},
            consumer=self._consumer,
        )
        try:
            self._commit_with_retries(txn)
        except FencedError as error:
            log.warning("fenced, reloading partitions %s: %s", sorted(offsets), error)
            self.stats.fenced += 1
            self._reload(list(offsets))
            return
        self._committed.update(offsets)
        self.stats.commits += 1

    def _commit_with_retries(self, txn: Transaction) -> None:
        # A failed commit wrote nothing, so the very same transaction can be tried again.
        for attempt in range(1, self.config.commit_attempts + 1):
            try:
                self.broker.commit_transaction(txn)
                return
            except StreamsenseError as error:
                if not error.retryable or attempt == self.config.commit_attempts:
                    raise
                log.warning("commit failed (attempt %d), retrying: %s", attempt, error)
                time.sleep(min(2.0, 0.05 * 2**attempt))

    def _reload(self, partitions: list[TopicPartition]) -> None:
        """Forget uncommitted work on ``partitions``: state and position go back to what
        the group committed."""
        numbers = {tp.partition for tp in partitions}
        self._state.restore(self.broker, numbers)
        every = [tp for tp in self._source_partitions() if tp.partition in numbers]
        committed = self.broker.committed(self.app.group, every)
        self._committed.update(committed)
        if self._consumer is not None:
            for tp in every:
                if tp in self._consumer.assignment():
                    self._consumer.seek(tp, committed[tp] or 0)
            self._restorer.restore(self._consumer, numbers, committed)

    # -- rebalances -------------------------------------------------------------------------
    def _on_assign(self, partitions: list[TopicPartition]) -> None:
        committed = self.broker.committed(self.app.group, partitions)
        self._committed.update(committed)
        numbers = {tp.partition for tp in partitions}
        self.stats.restored_keys += self._state.restore(self.broker, numbers)
        if self._consumer is not None:
            self._restorer.restore(self._consumer, numbers, committed)
        log.info("assigned %s", partitions)

    def _on_revoke(self, partitions: list[TopicPartition]) -> None:
        self._commit(final=True)
        # Partition p of every source moves as one (co-partitioning), so its state goes too.
        numbers = {tp.partition for tp in partitions}
        self._state.drop(numbers)
        self._restorer.drop(numbers)
        for tp in partitions:
            self._committed.pop(tp, None)
        log.info("revoked %s", partitions)
