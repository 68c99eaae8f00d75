"""A fenced commit reloads the partitions from the committed state; when that reload fails
retryably (the member was dropped while its broker restarted, and the broker is not quite
back), the worker pauses the partitions and reloads them later instead of exiting."""

from __future__ import annotations

from collections.abc import Sequence

from streamsense.brokers import MemoryBroker
from streamsense.brokers.base import TopicPartition, Transaction
from streamsense.errors import BrokerUnavailable, FencedError
from streamsense.runtime.lag import group_lag
from streamsense.runtime.worker import Worker
from streamsense.testing import ManualClock
from tests.unit.test_backpressure import FAST, Outage, assert_exactly_once, counter_app, feed


class FencedWhileUnreachable(MemoryBroker):
    """Refuses the ``fence_commit``-th commit as fenced, then cannot answer the next
    ``unreachable`` reads of committed offsets."""

    def __init__(self, fence_commit: int, unreachable: int) -> None:
        super().__init__()
        self.commits = 0
        self.fence_commit = fence_commit
        self.unreachable = unreachable
        self.refused_reads = 0
        self.fenced = False

    def commit_transaction(self, txn: Transaction) -> None:
        if txn.group == "counter":
            self.commits += 1
            if self.commits == self.fence_commit:
                self.fenced = True
                raise FencedError("the member was dropped from the group")
        super().commit_transaction(txn)

    def committed(
        self, group: str, partitions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        if self.fenced and self.refused_reads < self.unreachable:
            self.refused_reads += 1
            raise BrokerUnavailable("reading committed offsets: timed out")
        return super().committed(group, partitions)


def test_a_reload_after_fencing_that_fails_retryably_backs_off_and_catches_up() -> None:
    clock = ManualClock()
    broker = FencedWhileUnreachable(fence_commit=3, unreachable=3)
    app = counter_app(Outage(clock, down_at_call=10**9, down_for_s=0))
    feed(broker, app, 200)
    stats = Worker(app, broker, FAST, clock=clock).run(until_caught_up=True)
    assert stats.fenced == 1
    assert broker.refused_reads == 3 and stats.failures >= 1  # paused, retried later
    assert_exactly_once(broker, 200)
    assert group_lag(broker, "counter", ["clicks"]).total == 0
