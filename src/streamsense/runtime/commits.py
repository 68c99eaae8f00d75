"""The worker's commits, and what it does when work cannot commit.

A commit writes the pending outputs, state changes, due batch-stage state and consumed offsets as
one transaction. When it cannot happen, the uncommitted work of the partitions involved is
thrown away and redone from the last commit:

* fenced (another worker committed first): reload at once, the broker is fine;
* a retryable failure (a stage, sink or the commit itself: store down, timeout, broker
  busy): pause the partitions and reload them after a backoff; a reload that fails
  retryably backs off again. The partitions resume only once reloaded.

Reloading puts keyed state back to the changelog, batch stages back to their snapshot plus
a silent replay, and the consumer back to the committed offsets.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from streamsense.brokers.base import Broker, Consumer, OutRecord, TopicPartition, Transaction
from streamsense.clock import Clock
from streamsense.errors import FencedError, StreamsenseError
from streamsense.runtime.intake import Intake
from streamsense.runtime.pauses import PauseBook, RetryBook
from streamsense.runtime.restore import Restorer
from streamsense.runtime.state import StateStore

if TYPE_CHECKING:
    from streamsense.runtime.app import App
    from streamsense.runtime.worker import WorkerConfig, WorkerStats

log = logging.getLogger(__name__)


class Committer:
    """The commit and recovery half of the Worker (worker.py holds the loop)."""

    app: App
    broker: Broker
    config: WorkerConfig
    stats: WorkerStats
    _clock: Clock
    _consumer: Consumer | None
    _state: StateStore
    _restorer: Restorer
    _intake: Intake
    _pauses: PauseBook
    _retries: RetryBook
    _pending: dict[int, list[OutRecord]]
    _offsets: dict[TopicPartition, int]
    _committed: dict[TopicPartition, int | None]
    _events_in_batch: int

    def _source_partitions(self) -> list[TopicPartition]:
        raise NotImplementedError

    def next_offset(self, tp: TopicPartition) -> int:
        raise NotImplementedError

    # -- committing -------------------------------------------------------------------------
    def _commit(self, *, final: bool = False) -> None:
        if not self._offsets and not any(self._pending.values()):
            return
        offsets, self._offsets = self._offsets, {}
        pending, self._pending = self._pending, {}
        involved = {tp.partition for tp in offsets} | {p for p, rs in pending.items() if rs}
        records = [r for rs in pending.values() for r in rs] + self._state.take_changes(offsets)
        stage_state = []
        if self._consumer is not None:
            owned = set(self._consumer.assignment())
            stage_state = self._restorer.state_due(owned, self.next_offset, force=final)
        self._events_in_batch = 0
        txn = Transaction(
            self.app.group,
            offsets=offsets,
            records=records,
            expected={tp: self._committed.get(tp) for tp in offsets},
            consumer=self._consumer,
            # State written is as of these offsets: restoring it while they are not
            # committed would count the events in between twice.
            after_offsets=stage_state,
            # Before giving partitions up, the next owner must find every offset committed;
            # otherwise a lost offset commit only means events processed again.
            wait_for_offsets=final,
        )
        try:
            self._commit_with_retries(txn)
        except FencedError as error:
            log.warning("fenced, reloading partitions %s: %s", sorted(offsets), error)
            self.stats.fenced += 1
            self._reload_or_retry(involved)
            return
        except StreamsenseError as error:
            if not error.retryable:
                raise
            self._fail(involved, error)
            return
        self._committed.update(offsets)
        self._retries.succeeded(involved)
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
                self._clock.sleep(min(2.0, 0.05 * 2**attempt))

    # -- failing and retrying ---------------------------------------------------------------
    def _fail(self, partitions: set[int], error: StreamsenseError) -> None:
        """Throw away the uncommitted work of ``partitions`` (by number: partition p of
        every source shares p's state), pause them, and schedule their retry."""
        for p in partitions:
            self._pending.pop(p, None)
        for tp in [tp for tp in self._offsets if tp.partition in partitions]:
            del self._offsets[tp]
        # Stage state may hold half-done work: forget it now, reload it on retry.
        self._state.drop(partitions)
        self._restorer.drop(partitions)
        tps = self._owned(partitions)
        self._intake.clear(tps)
        if self._consumer is not None:
            self._pauses.hold(self._consumer, tps, "retry")
        delay = self._retries.failed(partitions)
        self.stats.failures += 1
        log.warning("partitions %s paused, retry in %.3f s: %s", sorted(partitions), delay, error)

    def _retry_due(self, consumer: Consumer) -> None:
        due = set(self._retries.due())
        if not due:
            return
        self._retries.retrying(due)
        try:
            self._reload(due)
        except StreamsenseError as error:
            if not error.retryable:
                raise
            delay = self._retries.failed(due)
            self.stats.failures += 1
            log.warning("reload of %s failed, retry in %.3f s: %s", sorted(due), delay, error)
            return
        self._pauses.release(consumer, self._owned(due), "retry")
        log.info("partitions %s reloaded and resumed", sorted(due))

    def _reload_or_retry(self, partitions: set[int]) -> None:
        """Reload at once; if that fails retryably (a fenced member whose broker is still
        coming back), pause the partitions and reload them after a backoff instead."""
        try:
            self._reload(partitions)
        except StreamsenseError as error:
            if not error.retryable:
                raise
            self._fail(partitions, error)

    def _reload(self, partitions: set[int]) -> None:
        """Forget uncommitted work on ``partitions``: state and position go back to what
        the group committed."""
        every = [tp for tp in self._source_partitions() if tp.partition in partitions]
        committed = self.broker.committed(self.app.group, every)
        self._state.restore(self.broker, partitions, committed)
        self._committed.update(committed)
        if self._consumer is not None:
            self._intake.clear(every)
            owned = set(self._consumer.assignment())
            for tp in every:
                done = committed[tp]
                if tp in owned:
                    self._consumer.seek(tp, self._log_start(tp) if done is None else done)
            self._restorer.restore(self._consumer, partitions, committed)

    def _log_start(self, tp: TopicPartition) -> int:
        return self.broker.describe_topic(tp.topic).partitions[tp.partition].low

    def _owned(self, partitions: set[int]) -> list[TopicPartition]:
        if self._consumer is None:
            return []
        return [tp for tp in self._consumer.assignment() if tp.partition in partitions]
