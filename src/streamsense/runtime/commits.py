"""The worker's commits, and what it does when work cannot commit.

A commit writes the pending outputs, state changes, due batch-stage state and consumed offsets as
one transaction. When it cannot happen, the uncommitted work of the partitions involved is
thrown away and redone from the last commit:

* fenced (another worker committed first): reload at once, the broker is fine;
* a retryable failure (a stage, sink or the commit itself: store down, timeout, broker
  busy): pause the partitions and reload them after a backoff; a reload that fails
  retryably backs off again. The partitions resume only once reloaded;
* a full or failing disk or store (``StorageFault``): stop the worker at once, the
  transaction rolled back whole. Retrying helps once space is freed, which seldom
  happens by itself: paused, a replay would wait without end; stopped, the command says
  where and why, and its rerun (or a supervisor's restart) resumes from the last commit.

Reloading puts keyed state back to the changelog, batch stages back to their snapshot plus
a silent replay, and the consumer back to the committed offsets.
"""

from __future__ import annotations

import logging

from streamsense.brokers.base import Broker, Consumer, Transaction
from streamsense.clock import Clock
from streamsense.errors import FencedError, StorageFault, StreamsenseError
from streamsense.runtime.config import WorkerConfig, WorkerStats
from streamsense.runtime.intake import Intake
from streamsense.runtime.partition_read import log_start
from streamsense.runtime.pauses import PauseBook, RetryBook
from streamsense.runtime.progress import Progress
from streamsense.runtime.restore import Restorer
from streamsense.runtime.state import StateStore
from streamsense.runtime.topology import Topology

log = logging.getLogger(__name__)


def stops_worker(error: StreamsenseError) -> bool:
    """The errors a worker stops on rather than pausing and retrying: fatal ones, and a
    full or failing disk or store."""
    return not error.retryable or isinstance(error, StorageFault)


class Committer:
    """Commits a worker's progress, and throws away and redoes what cannot commit."""

    def __init__(
        self,
        broker: Broker,
        topology: Topology,
        config: WorkerConfig,
        clock: Clock,
        stats: WorkerStats,
        *,
        progress: Progress,
        state: StateStore,
        restorer: Restorer,
        intake: Intake,
        pauses: PauseBook,
        retries: RetryBook,
    ) -> None:
        self._broker = broker
        self._topology = topology
        self._config = config
        self._clock = clock
        self._stats = stats
        self._progress = progress
        self._state = state
        self._restorer = restorer
        self._intake = intake
        self._pauses = pauses
        self._retries = retries

    # -- committing -------------------------------------------------------------------------
    def commit(self, *, final: bool = False, giving_up: set[int] | None = None) -> None:
        """Commit what was processed. ``final``: partitions are about to be given up (or
        the worker stops), so offsets are confirmed before this returns, and the batch-stage
        state of ``giving_up`` (partition numbers) is written whatever its interval (all
        owned partitions' if None)."""
        progress = self._progress
        idle = not progress.offsets and not any(progress.pending.values())
        # A clean stop still writes batch-stage state changed since its last write: a
        # replay shorter than the state interval left none, and the next run or a server
        # loading the state had to replay the whole log (issue #16).
        if idle and not (final and self._restorer.unwritten(giving_up)):
            return
        offsets, pending = progress.take()
        involved = {tp.partition for tp in offsets} | {p for p, rs in pending.items() if rs}
        records = [r for rs in pending.values() for r in rs] + self._state.take_changes(offsets)
        stage_state = []
        consumer = progress.consumer
        if consumer is not None:
            owned = set(consumer.assignment())
            forced: set[int] = set()
            if final:
                forced = {tp.partition for tp in owned} if giving_up is None else giving_up
            stage_state = self._restorer.state_due(owned, progress.next_offset, forced=forced)
        txn = Transaction(
            self._topology.group,
            offsets=offsets,
            records=records,
            expected={tp: progress.committed.get(tp) for tp in offsets},
            consumer=consumer,
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
            self._stats.fenced += 1
            self._reload_or_retry(involved)
            return
        except StreamsenseError as error:
            if stops_worker(error):
                raise
            self.fail(involved, error)
            return
        progress.committed.update(offsets)
        self._retries.succeeded(involved)
        self._stats.commits += 1

    def _commit_with_retries(self, txn: Transaction) -> None:
        # A failed commit wrote nothing, so the very same transaction can be tried again.
        for attempt in range(1, self._config.commit_attempts + 1):
            try:
                self._broker.commit_transaction(txn)
                return
            except StreamsenseError as error:
                if stops_worker(error) or attempt == self._config.commit_attempts:
                    raise
                log.warning("commit failed (attempt %d), retrying: %s", attempt, error)
                self._clock.sleep(min(2.0, 0.05 * 2**attempt))

    # -- failing and retrying ---------------------------------------------------------------
    def fail(self, partitions: set[int], error: StreamsenseError) -> None:
        """Throw away the uncommitted work of ``partitions`` (by number: partition p of
        every source shares p's state), pause them, and schedule their retry."""
        self._progress.discard(partitions)
        # Stage state may hold half-done work: forget it now, reload it on retry.
        self._state.drop(partitions)
        self._restorer.drop(partitions)
        tps = self._progress.owned(partitions)
        self._intake.clear(tps)
        if self._progress.consumer is not None:
            self._pauses.hold(self._progress.consumer, tps, "retry")
        delay = self._retries.failed(partitions)
        self._stats.failures += 1
        log.warning("partitions %s paused, retry in %.3f s: %s", sorted(partitions), delay, error)

    def retry_due(self, consumer: Consumer) -> None:
        due = set(self._retries.due())
        if not due:
            return
        self._retries.retrying(due)
        try:
            self.reload(due)
        except StreamsenseError as error:
            if stops_worker(error):
                raise
            delay = self._retries.failed(due)
            self._stats.failures += 1
            log.warning("reload of %s failed, retry in %.3f s: %s", sorted(due), delay, error)
            return
        self._pauses.release(consumer, self._progress.owned(due), "retry")
        log.info("partitions %s reloaded and resumed", sorted(due))

    def _reload_or_retry(self, partitions: set[int]) -> None:
        """Reload at once; if that fails retryably (a fenced member whose broker is still
        coming back), pause the partitions and reload them after a backoff instead."""
        try:
            self.reload(partitions)
        except StreamsenseError as error:
            if stops_worker(error):
                raise
            self.fail(partitions, error)

    def reload(self, partitions: set[int]) -> None:
        """Forget uncommitted work on ``partitions``: state and position go back to what
        the group committed."""
        every = [
            tp
            for tp in self._topology.source_partitions(self._broker)
            if tp.partition in partitions
        ]
        committed = self._broker.committed(self._topology.group, every)
        self._state.restore(self._broker, partitions, committed)
        self._progress.committed.update(committed)
        consumer = self._progress.consumer
        if consumer is not None:
            self._intake.clear(every)
            owned = set(consumer.assignment())
            for tp in every:
                done = committed[tp]
                if tp in owned:
                    consumer.seek(tp, log_start(self._broker, tp) if done is None else done)
            self._restorer.restore(consumer, partitions, committed)
