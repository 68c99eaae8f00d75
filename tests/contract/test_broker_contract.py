"""One contract for every broker: memory, embedded (and Kafka in tests/integration)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from streamsense.brokers import OutRecord, TopicConfig, TopicPartition, Transaction, partition_for
from streamsense.brokers.log import LogBroker
from streamsense.errors import ConfigError, FencedError, TopicNotFound
from streamsense.testing import ManualClock, drain_topic

BrokerFactory = Callable[..., LogBroker]


def test_topics_are_created_listed_described_and_deleted(broker: LogBroker) -> None:
    broker.create_topic("a", TopicConfig(partitions=3))
    broker.create_topic("b", TopicConfig(partitions=1, retention_ms=1000))
    assert {"a", "b"} <= set(broker.list_topics())
    info = broker.describe_topic("a")
    assert info.config.partitions == 3
    assert [(p.partition, p.low, p.high) for p in info.partitions] == [(0, 0, 0), (1, 0, 0), (2, 0, 0)]
    with pytest.raises(ConfigError):
        broker.create_topic("a", TopicConfig(partitions=3))
    broker.create_topic("a", TopicConfig(partitions=3), exist_ok=True)
    broker.delete_topic("b")
    assert "b" not in broker.list_topics()
    with pytest.raises(TopicNotFound):
        broker.describe_topic("b")


def test_unknown_topic_is_a_clear_error(broker: LogBroker) -> None:
    producer = broker.producer()
    with pytest.raises(TopicNotFound):
        producer.send("nope", b"x")


def test_keys_land_where_kafkas_partitioner_puts_them_in_send_order(broker: LogBroker) -> None:
    broker.create_topic("t", TopicConfig(partitions=6))
    producer = broker.producer()
    keys = [f"customer-{i % 37}".encode() for i in range(500)]
    for i, key in enumerate(keys):
        producer.send("t", str(i).encode(), key)
    producer.flush()
    records = drain_topic(broker, "t")
    assert len(records) == 500
    for record in records:
        assert record.partition == partition_for(record.key or b"", 6)
    for p in range(6):
        in_partition = [r for r in records if r.partition == p]
        assert [r.offset for r in in_partition] == list(range(len(in_partition)))
        values = [int(r.value or b"") for r in in_partition]
        assert values == sorted(values)  # send order is kept within a partition


def test_unkeyed_records_spread_over_partitions(broker: LogBroker) -> None:
    broker.create_topic("t", TopicConfig(partitions=3))
    with broker.producer() as producer:
        for i in range(30):
            producer.send("t", str(i).encode())
    counts = [p.high for p in broker.describe_topic("t").partitions]
    assert sum(counts) == 30 and all(c > 0 for c in counts)


def test_records_keep_value_key_timestamp_and_headers(broker: LogBroker) -> None:
    broker.create_topic("t", TopicConfig(partitions=1))
    with broker.producer() as producer:
        producer.send("t", b"v", b"k", timestamp=1234, headers=(("h", b"1"),))
        producer.send("t", None, b"k2", partition=0, timestamp=5)
    first, second = drain_topic(broker, "t")
    assert (first.value, first.key, first.timestamp, first.headers) == (b"v", b"k", 1234, (("h", b"1"),))
    assert (second.value, second.key, second.offset) == (None, b"k2", 1)


def test_sending_to_a_missing_partition_fails(broker: LogBroker) -> None:
    broker.create_topic("t", TopicConfig(partitions=2))
    with pytest.raises(ConfigError):
        broker.producer().send("t", b"x", partition=2)


def test_seek_position_and_poll_limits(broker: LogBroker) -> None:
    broker.create_topic("t", TopicConfig(partitions=1))
    with broker.producer(batch_size=7) as producer:  # several stored batches
        for i in range(50):
            producer.send("t", str(i).encode(), partition=0)
    tp = TopicPartition("t", 0)
    consumer = broker.consumer()
    consumer.assign([tp])
    assert [int(r.value or b"") for r in consumer.poll(10)] == list(range(10))
    assert consumer.position(tp) == 10
    consumer.seek(tp, 33)
    assert [r.offset for r in consumer.poll(5)] == [33, 34, 35, 36, 37]
    consumer.seek(tp, 3)
    rest = consumer.poll(1000)
    assert [r.offset for r in rest] == list(range(3, 50))
    assert consumer.poll(10) == []
    consumer.close()


def test_group_offsets_are_committed_and_resumed(broker: LogBroker) -> None:
    broker.create_topic("t", TopicConfig(partitions=2))
    with broker.producer() as producer:
        for i in range(20):
            producer.send("t", b"x", partition=i % 2)
    tps = [TopicPartition("t", 0), TopicPartition("t", 1)]
    first = broker.consumer("g")
    first.assign(tps)
    assert len(first.poll(12)) == 12
    first.commit()
    committed = first.committed(tps)
    assert sum(v or 0 for v in committed.values()) == 12
    first.close()
    second = broker.consumer("g")
    second.assign(tps)
    assert len(second.poll(100)) == 8
    assert broker.committed("g", tps) == committed
    second.close()


def test_latest_reset_skips_history(broker: LogBroker) -> None:
    broker.create_topic("t", TopicConfig(partitions=1))
    with broker.producer() as producer:
        producer.send("t", b"old")
    consumer = broker.consumer("g", auto_offset_reset="latest")
    consumer.assign([TopicPartition("t", 0)])
    with broker.producer() as producer:
        producer.send("t", b"new")
    assert [r.value for r in consumer.poll(10)] == [b"new"]


def test_subscribers_of_one_group_share_partitions_and_take_over(make_broker: BrokerFactory) -> None:
    clock = ManualClock()
    one, two = make_broker(clock), make_broker(clock)
    one.create_topic("t", TopicConfig(partitions=4))
    a = one.consumer("g", session_timeout_ms=1000)
    b = two.consumer("g", session_timeout_ms=1000)
    a.subscribe(["t"])
    b.subscribe(["t"])
    clock.advance(1000)  # next heartbeat: both see both members
    a.poll(1)
    b.poll(1)
    assert sorted(a.assignment() + b.assignment()) == [TopicPartition("t", p) for p in range(4)]
    assert len(a.assignment()) == 2
    b.close()  # leaving hands its partitions over at the next heartbeat
    clock.advance(1000)
    a.poll(1)
    assert len(a.assignment()) == 4


def test_a_silent_member_expires_and_rebalance_callbacks_fire(make_broker: BrokerFactory) -> None:
    clock = ManualClock()
    one, two = make_broker(clock), make_broker(clock)
    one.create_topic("t", TopicConfig(partitions=2))
    events: list[tuple[str, list[TopicPartition]]] = []
    a = one.consumer("g", session_timeout_ms=1000)
    a.subscribe(
        ["t"],
        on_assign=lambda tps: events.append(("assign", tps)),
        on_revoke=lambda tps: events.append(("revoke", tps)),
    )
    b = two.consumer("g", session_timeout_ms=1000)
    b.subscribe(["t"])  # never polls again: it dies silently
    clock.advance(400)
    a.poll(1)
    assert len(a.assignment()) == 1
    clock.advance(2000)  # b's lease ran out
    a.poll(1)
    assert len(a.assignment()) == 2
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "assign" and "revoke" in kinds and kinds[-1] == "assign"


def test_transaction_writes_outputs_and_offsets_together(broker: LogBroker) -> None:
    broker.create_topic("in", TopicConfig(partitions=1))
    broker.create_topic("out", TopicConfig(partitions=2))
    tp = TopicPartition("in", 0)
    txn = Transaction(
        group="g",
        offsets={tp: 5},
        records=[OutRecord("out", b"a", b"k1"), OutRecord("out", b"b", b"k2")],
        expected={tp: None},
    )
    broker.commit_transaction(txn)
    assert broker.committed("g", [tp]) == {tp: 5}
    assert sorted(r.value or b"" for r in drain_topic(broker, "out")) == [b"a", b"b"]


def test_a_stale_transaction_is_fenced_and_writes_nothing(broker: LogBroker) -> None:
    broker.create_topic("in", TopicConfig(partitions=1))
    broker.create_topic("out", TopicConfig(partitions=1))
    tp = TopicPartition("in", 0)
    broker.commit_transaction(Transaction("g", {tp: 5}, [OutRecord("out", b"first")], {tp: None}))
    stale = Transaction("g", {tp: 5}, [OutRecord("out", b"again")], {tp: None})
    with pytest.raises(FencedError):
        broker.commit_transaction(stale)
    assert [r.value for r in drain_topic(broker, "out")] == [b"first"]
    assert broker.committed("g", [tp]) == {tp: 5}


def test_compacted_topic_keeps_the_latest_value_per_key(broker: LogBroker) -> None:
    broker.create_topic("state", TopicConfig(partitions=1, compacted=True))
    with broker.producer() as producer:
        producer.send("state", b"1", b"a", partition=0)
        producer.send("state", b"1", b"b", partition=0)
        producer.send("state", b"2", b"a", partition=0)
        producer.send("state", None, b"b", partition=0)  # tombstone
        producer.send("state", b"1", b"c", partition=0)
    records = drain_topic(broker, "state")
    assert [(r.key, r.value) for r in records] == [(b"a", b"2"), (b"c", b"1")]
    assert [r.offset for r in records] == [2, 4]


def test_retention_by_age_removes_the_oldest_records(make_broker: BrokerFactory) -> None:
    clock = ManualClock(start_ms=1_000_000)
    broker = make_broker(clock)
    broker.create_topic("t", TopicConfig(partitions=1, retention_ms=60_000))
    with broker.producer() as producer:
        producer.send("t", b"old", partition=0)
    clock.advance(120_000)
    with broker.producer() as producer:
        producer.send("t", b"new", partition=0)
    assert broker.enforce_retention() == 1
    info = broker.describe_topic("t").partitions[0]
    assert (info.low, info.high) == (1, 2)
    assert [r.value for r in drain_topic(broker, "t")] == [b"new"]
    consumer = broker.consumer("fresh")
    consumer.assign([TopicPartition("t", 0)])
    assert [r.offset for r in consumer.poll(10)] == [1]


def test_retention_by_size_keeps_the_newest_records(broker: LogBroker) -> None:
    broker.create_topic("t", TopicConfig(partitions=1, retention_bytes=2500))
    for i in range(10):
        with broker.producer() as producer:  # one stored batch per flush
            producer.send("t", bytes([i]) * 1000, partition=0)
    broker.enforce_retention()
    kept = drain_topic(broker, "t")
    assert 1 <= len(kept) <= 3
    assert kept[-1].offset == 9


def test_paused_partitions_are_not_returned_until_resumed(broker: LogBroker) -> None:
    broker.create_topic("t", TopicConfig(partitions=2))
    with broker.producer() as producer:
        for i in range(10):
            producer.send("t", b"x", partition=i % 2)
    tp0, tp1 = TopicPartition("t", 0), TopicPartition("t", 1)
    consumer = broker.consumer()
    consumer.assign([tp0, tp1])
    consumer.pause([tp0])
    assert {r.partition for r in consumer.poll(100)} == {1}
    consumer.resume([tp0])
    assert {r.partition for r in consumer.poll(100)} == {0}


def test_poll_waits_for_records_from_another_thread(broker: LogBroker) -> None:
    broker.create_topic("t", TopicConfig(partitions=1))
    consumer = broker.consumer()
    consumer.assign([TopicPartition("t", 0)])

    def produce_later() -> None:
        time.sleep(0.05)
        with broker.producer() as producer:
            producer.send("t", b"late")

    thread = threading.Thread(target=produce_later)
    thread.start()
    records = consumer.poll(10, timeout=5.0)
    thread.join()
    assert [r.value for r in records] == [b"late"]


def test_producer_flushes_by_itself_after_linger(broker: LogBroker) -> None:
    broker.create_topic("t", TopicConfig(partitions=1))
    producer = broker.producer(linger_ms=5)
    producer.send("t", b"x")
    consumer = broker.consumer()
    consumer.assign([TopicPartition("t", 0)])
    assert [r.value for r in consumer.poll(10, timeout=5.0)] == [b"x"]
    producer.close()
