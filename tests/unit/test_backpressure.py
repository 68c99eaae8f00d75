"""Backpressure: a store or sink that is down pauses its partitions instead of crashing the
worker or dropping events; buffers stay bounded; lag returns to zero after the outage."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest

import streamsense as ss
from streamsense.brokers import EmbeddedBroker, MemoryBroker
from streamsense.brokers.base import Record, TopicPartition, Transaction
from streamsense.brokers.log import LogBroker
from streamsense.errors import BrokerUnavailable, ConfigError, RetryableError, StorageFull
from streamsense.runtime.intake import Intake
from streamsense.runtime.lag import group_lag
from streamsense.runtime.pauses import Backoff
from streamsense.runtime.worker import Worker, WorkerConfig
from streamsense.testing import ManualClock, drain_topic
from tests.apps.counter import Click, clicks, count, make_clicks

FAST = WorkerConfig(batch_size=10, poll_timeout_s=0.005, retry=Backoff(0.1, 2.0))


class Outage:
    """A dependency that is down between two instants of the injected clock."""

    def __init__(self, clock: ManualClock, down_at_call: int, down_for_s: float) -> None:
        self.clock = clock
        self.calls = 0
        self.failures = 0
        self.down_at_call = down_at_call
        self.down_for_s = down_for_s
        self.down_until: float | None = None

    def check(self) -> None:
        self.calls += 1
        if self.down_until is None and self.calls >= self.down_at_call:
            self.down_until = self.clock.monotonic() + self.down_for_s
        if self.down_until is not None and self.clock.monotonic() < self.down_until:
            self.failures += 1
            raise RetryableError("store unavailable")


def counter_app(outage: Outage) -> ss.App:
    def count_via_store(click: Click, ctx: ss.Context) -> dict[str, Any]:
        outage.check()  # e.g. an online-store write before the state changes
        return count(click, ctx)

    app = ss.App("counter")
    app.flow(clicks).stage("count", count_via_store).sink(ss.TopicSink("counter.counts"))
    return app


def feed(broker: LogBroker, app: ss.App, n: int) -> None:
    Worker(app, broker).ensure_topics()
    with broker.producer() as producer:
        for click in make_clicks(n):
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)


def assert_exactly_once(broker: LogBroker, n: int) -> None:
    counts = [msgspec.json.decode(r.value or b"") for r in drain_topic(broker, "counter.counts")]
    assert len(counts) == n
    assert len({c["source"] for c in counts}) == n
    by_user: dict[str, list[int]] = {}
    for c in counts:
        by_user.setdefault(c["user"], []).append(c["n"])
    # Each user's running count is 1, 2, 3...: no state change lost or applied twice.
    assert all(ns == list(range(1, len(ns) + 1)) for ns in by_user.values())


@pytest.mark.parametrize("kind", ["memory", "embedded"])
def test_a_stage_outage_pauses_retries_and_loses_or_repeats_nothing(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker: LogBroker = MemoryBroker() if kind == "memory" else EmbeddedBroker(tmp_path / "log.db")
    clock = ManualClock()
    outage = Outage(clock, down_at_call=57, down_for_s=10.0)
    app = counter_app(outage)
    feed(broker, app, 300)
    with caplog.at_level(logging.INFO, logger="streamsense.runtime"):
        stats = Worker(app, broker, FAST, clock=clock).run(until_caught_up=True)
    assert outage.failures >= 3  # it was retried, with backoff, through the whole outage
    assert stats.failures == outage.failures
    assert stats.pauses >= 1 and stats.paused_s >= 10.0
    assert "reloaded and resumed" in caplog.text
    assert_exactly_once(broker, 300)
    assert group_lag(broker, "counter", ["clicks"]).total == 0
    broker.close()


class FlakyCommits(MemoryBroker):
    """A broker whose commits fail for a while (the sink is down)."""

    def __init__(self, clock: ManualClock, fail_commit: int, down_for_s: float) -> None:
        super().__init__()
        self.clock = clock
        self.commits = 0
        self.refused = 0
        self.fail_commit = fail_commit
        self.down_for_s = down_for_s
        self.down_until: float | None = None

    def commit_transaction(self, txn: Transaction) -> None:
        if txn.group == "counter":
            self.commits += 1
            if self.down_until is None and self.commits >= self.fail_commit:
                self.down_until = self.clock.monotonic() + self.down_for_s
            if self.down_until is not None and self.clock.monotonic() < self.down_until:
                self.refused += 1
                raise BrokerUnavailable("sink down")
        super().commit_transaction(txn)


def test_a_sink_outage_longer_than_the_commit_retries_pauses_then_catches_up() -> None:
    clock = ManualClock()
    broker = FlakyCommits(clock, fail_commit=4, down_for_s=60.0)
    app = counter_app(Outage(clock, down_at_call=10**9, down_for_s=0))
    feed(broker, app, 200)
    stats = Worker(app, broker, FAST, clock=clock).run(until_caught_up=True)
    assert broker.refused > FAST.commit_attempts  # the outage outlasted the commit retries
    assert stats.failures >= 2 and stats.paused_s >= 30.0
    assert_exactly_once(broker, 200)
    assert group_lag(broker, "counter", ["clicks"]).total == 0


class FillingDisk(MemoryBroker):
    """A broker whose disk fills at the n-th commit of the pipeline and stays full until
    ``freed``: each commit from then on is refused whole (StorageFull)."""

    def __init__(self, fill_at_commit: int) -> None:
        super().__init__()
        self.commits = 0
        self.refused = 0
        self.fill_at_commit = fill_at_commit
        self.freed = False

    def commit_transaction(self, txn: Transaction) -> None:
        if txn.group == "counter":
            self.commits += 1
            if self.commits >= self.fill_at_commit and not self.freed:
                self.refused += 1
                raise StorageFull("disk full: cannot write log.db", where="log.db")
        super().commit_transaction(txn)


def test_a_full_disk_stops_the_worker_at_once_and_its_rerun_once_freed_loses_nothing() -> None:
    clock = ManualClock()
    broker = FillingDisk(fill_at_commit=4)
    app = counter_app(Outage(clock, down_at_call=10**9, down_for_s=0))
    feed(broker, app, 200)
    worker = Worker(app, broker, FAST, clock=clock)
    with pytest.raises(StorageFull):
        worker.run(until_caught_up=True)
    # Stopped at the first refusal: neither the commit retried nor the partitions paused
    # to retry (space seldom frees itself; a paused replay would wait without end).
    assert broker.refused == 1 and worker.stats.failures == 0
    assert 0 < group_lag(broker, "counter", ["clicks"]).total < 200

    broker.freed = True
    Worker(app, broker, FAST, clock=clock).run(until_caught_up=True)
    assert_exactly_once(broker, 200)
    assert group_lag(broker, "counter", ["clicks"]).total == 0


def test_a_fatal_stage_error_stops_the_worker_and_writes_nothing_uncommitted() -> None:
    broker = MemoryBroker()

    def broken(click: Click, ctx: ss.Context) -> object:
        if click.ts >= make_clicks(40)[-1].ts:
            raise ConfigError("a bug")
        return count(click, ctx)

    app = ss.App("counter")
    app.flow(clicks).stage("count", broken).sink(ss.TopicSink("counter.counts"))
    feed(broker, app, 60)
    with pytest.raises(ConfigError):
        Worker(app, broker, WorkerConfig(batch_size=1000)).run(until_caught_up=True)
    committed = len(drain_topic(broker, "counter.counts"))
    lag = group_lag(broker, "counter", ["clicks"]).total
    assert committed + lag == 60  # whatever was not committed is still waiting in the log


def test_buffers_never_exceed_their_bound_and_full_ones_pause_their_partition() -> None:
    broker = MemoryBroker()
    app = counter_app(Outage(ManualClock(), down_at_call=10**9, down_for_s=0))
    feed(broker, app, 500)
    config = WorkerConfig(batch_size=3, buffer_records=8, poll_timeout_s=0.005)
    stats = Worker(app, broker, config).run(until_caught_up=True)
    assert 4 <= stats.largest_buffer <= 8
    assert stats.pauses >= 1
    assert_exactly_once(broker, 500)


def test_intake_refuses_what_does_not_fit_so_the_consumer_reads_it_again() -> None:
    intake = Intake(4, {"clicks.priority": 0, "clicks": 1})
    normal = [Record("clicks", 0, i, 0, b"k", b"v") for i in range(6)]
    urgent = [Record("clicks.priority", 0, i, 0, b"k", b"v") for i in range(2)]
    refused = intake.add(normal + urgent)
    assert refused == {TopicPartition("clicks", 0): 4}
    assert intake.size(TopicPartition("clicks", 0)) == 4 and intake.largest == 4
    # The priority lane first, and alone: a backlog chunk does not delay it.
    assert [(r.topic, r.offset) for r in intake.take(3)] == [
        ("clicks.priority", 0),
        ("clicks.priority", 1),
    ]
    assert [(r.topic, r.offset) for r in intake.take(3)] == [("clicks", i) for i in range(3)]
    assert intake.head(TopicPartition("clicks", 0)) == 3 and intake.buffered == 1


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(0.1, 1.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
