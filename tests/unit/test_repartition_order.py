"""A repartition keeps event-time order: payments keyed by terminal (4 partitions) re-keyed
by customer reach the customer flow in time order when processed as a backlog, however
the terminal partitions interleaved; as they come, they would not."""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import pytest

import streamsense as ss
from streamsense.brokers import MemoryBroker
from streamsense.errors import ConfigError
from streamsense.runtime.worker import Worker, WorkerConfig
from streamsense.testing import drain_topic


class Payment(ss.Schema):
    terminal: int
    customer: int
    ts: int


payments = ss.Stream("payments", Payment, key="terminal", time="ts", partitions=4)
by_customer = ss.Stream(
    "payments-by-customer", Payment, key="customer", time="ts", partitions=4, upstream_partitions=4
)


def seen(payment: Payment, ctx: ss.Context) -> dict[str, Any]:
    """Each customer's payments with the time of the one seen just before."""
    before = ctx.state.get(-1)
    ctx.state.set(payment.ts)
    return {"customer": payment.customer, "ts": payment.ts, "before": before}


def build() -> ss.App:
    app = ss.App("orders")
    app.flow(payments).sink(ss.Repartition(by_customer))
    app.flow(by_customer).stage("seen", seen).sink(ss.TopicSink("orders.seen"))
    return app


def backlog(n: int = 3000) -> list[Payment]:
    # Terminals spread over the partitions; a customer pays at many terminals.
    return [Payment(terminal=i % 23, customer=i % 7, ts=1_000_000 + i * 10) for i in range(n)]


def run(order: Literal["auto", "always", "never"]) -> tuple[list[dict[str, Any]], Worker]:
    app, broker = build(), MemoryBroker()
    Worker(app, broker).ensure_topics()
    with broker.producer() as producer:
        for payment in backlog():
            record = payments.to_record(payment)
            producer.send(record.topic, record.value, record.key)
    worker = Worker(app, broker, WorkerConfig(batch_size=200, order=order))
    worker.run(until_caught_up=True)
    return [msgspec.json.decode(r.value or b"") for r in drain_topic(broker, "orders.seen")], worker


def out_of_order(rows: list[dict[str, Any]]) -> int:
    return sum(1 for row in rows if row["before"] > row["ts"])


def test_a_backlog_reaches_the_repartition_target_in_event_time_order() -> None:
    rows, worker = run("auto")  # a replay to the end: ordered
    assert len(rows) == 3000 and out_of_order(rows) == 0
    assert worker.stats.events == 2 * 3000  # markers are not events


def test_as_they_come_the_same_backlog_is_out_of_order() -> None:
    rows, _ = run("never")
    assert len(rows) == 3000 and out_of_order(rows) > 0


def test_a_repartition_target_is_declared_as_one() -> None:
    with pytest.raises(ConfigError, match="not declared as a repartition target"):
        ss.Repartition(payments)
    with pytest.raises(ConfigError, match="written by its repartition"):
        by_customer.to_record(Payment(1, 2, 3))


def test_a_silent_upstream_holds_the_order_back_only_for_the_bounded_wait() -> None:
    from collections import deque

    from streamsense.brokers import Record, TopicPartition
    from streamsense.runtime.merge import EventTimeMerge
    from streamsense.testing import ManualClock

    def record(tp: TopicPartition, offset: int, header: str, ms: int) -> Record:
        value = None if header == "ss-clock" else b"{}"
        return Record(tp.topic, tp.partition, offset, 0, None, value, ((header, str(ms).encode()),))

    a, b = TopicPartition("t.from.0", 0), TopicPartition("t.from.1", 0)
    clock = ManualClock()
    merge = EventTimeMerge(wait_ms=500, clock=clock)
    buffers = {a: deque([record(a, 0, "ss-time", 10), record(a, 1, "ss-time", 20)]), b: deque()}
    assert merge.take(buffers, [a, b], 10) == []  # b may still send something older
    clock.advance(400)
    assert merge.take(buffers, [a, b], 10) == []
    clock.advance(200)
    assert [r.offset for r in merge.take(buffers, [a, b], 10)] == [0, 1]  # b is idle now
    assert merge.waits == 1
    buffers[a].append(record(a, 2, "ss-time", 40))
    buffers[b].append(record(b, 0, "ss-clock", 30))  # b reached 30: 40 must wait again
    taken = merge.take(buffers, [a, b], 10)
    assert [(r.topic, r.offset) for r in taken] == [("t.from.1", 0)]
    buffers[b].append(record(b, 1, "ss-time", 35))
    taken = merge.take(buffers, [a, b], 10)
    assert [(r.topic, r.offset) for r in taken] == [("t.from.1", 1)]  # 35 before 40
    buffers[b].append(record(b, 2, "ss-clock", 50))
    assert [(r.topic, r.offset) for r in merge.take(buffers, [a, b], 10)] == [
        ("t.from.1", 2),
        ("t.from.0", 2),
    ]


def test_the_bound_counts_from_when_a_record_started_waiting() -> None:
    """A group that had nothing to take for a while must not find its bound already
    spent when records come again."""
    from collections import deque

    from streamsense.brokers import Record, TopicPartition
    from streamsense.runtime.merge import EventTimeMerge
    from streamsense.testing import ManualClock

    a, b = TopicPartition("t.from.0", 0), TopicPartition("t.from.1", 0)
    clock = ManualClock()
    merge = EventTimeMerge(wait_ms=500, clock=clock)
    first = Record(a.topic, 0, 0, 0, None, b"{}", (("ss-time", b"10"),))
    buffers = {a: deque([first]), b: deque()}
    assert merge.take(buffers, [a, b], 10) == []  # waits for b
    buffers[a].clear()  # (the partition was reloaded: nothing buffered for a while)
    assert merge.take(buffers, [a, b], 10) == []
    clock.advance(5000)
    buffers[a].append(first)
    assert merge.take(buffers, [a, b], 10) == []  # a fresh wait, not one spent long ago
    clock.advance(600)
    assert merge.take(buffers, [a, b], 10) == [first]
