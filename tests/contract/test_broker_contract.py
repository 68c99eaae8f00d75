"""One contract for every broker: memory, embedded, Kafka and Pulsar (see conftest.Backend for
how the tests wait on a real broker, and for the points Kafka and Pulsar show differently)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from streamsense.brokers import OutRecord, TopicConfig, TopicPartition, Transaction, partition_for
from streamsense.brokers.base import Broker, Consumer, Record
from streamsense.errors import ConfigError, FencedError, TopicNotFound
from streamsense.runtime.partition_read import read_partition
from streamsense.testing import ManualClock, drain_topic
from tests.contract.conftest import SETTLE_TIMEOUT_S, Backend

BrokerFactory = Callable[..., Broker]
Names = Callable[[str], str]


def poll_exactly(consumer: Consumer, n: int, timeout: float = 10.0) -> list[Record]:
    """Poll until ``n`` records came, each poll asking for at most the rest. A broker may
    return fewer per poll than asked (Kafka returns what it has prefetched)."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    while len(records) < n and time.monotonic() < deadline:
        records.extend(consumer.poll(n - len(records), timeout=0.2))
    return records


def test_topics_are_created_listed_described_and_deleted(broker: Broker, unique: Names) -> None:
    a, b = unique("a"), unique("b")
    broker.create_topic(a, TopicConfig(partitions=3))
    broker.create_topic(b, TopicConfig(partitions=1, retention_ms=1000))
    assert {a, b} <= set(broker.list_topics())
    info = broker.describe_topic(a)
    assert info.config == TopicConfig(partitions=3)
    assert [(p.partition, p.low, p.high) for p in info.partitions] == [
        (0, 0, 0),
        (1, 0, 0),
        (2, 0, 0),
    ]
    assert broker.describe_topic(b).config == TopicConfig(partitions=1, retention_ms=1000)
    with pytest.raises(ConfigError):
        broker.create_topic(a, TopicConfig(partitions=3))
    broker.create_topic(a, TopicConfig(partitions=3), exist_ok=True)
    broker.delete_topic(b)
    assert b not in broker.list_topics()
    with pytest.raises(TopicNotFound):
        broker.describe_topic(b)


def test_unknown_topic_is_a_clear_error(broker: Broker, unique: Names) -> None:
    producer = broker.producer()
    with pytest.raises(TopicNotFound):
        producer.send(unique("nope"), b"x")


def test_keys_land_where_kafkas_partitioner_puts_them_in_send_order(
    broker: Broker, unique: Names
) -> None:
    t = unique("t")
    broker.create_topic(t, TopicConfig(partitions=6))
    producer = broker.producer()
    keys = [f"customer-{i % 37}".encode() for i in range(500)]
    for i, key in enumerate(keys):
        producer.send(t, str(i).encode(), key)
    producer.flush()
    records = drain_topic(broker, t)
    assert len(records) == 500
    for record in records:
        assert record.partition == partition_for(record.key or b"", 6)
    for p in range(6):
        in_partition = [r for r in records if r.partition == p]
        assert [r.offset for r in in_partition] == list(range(len(in_partition)))
        values = [int(r.value or b"") for r in in_partition]
        assert values == sorted(values)  # send order is kept within a partition


def test_unkeyed_records_spread_over_partitions(broker: Broker, unique: Names) -> None:
    t = unique("t")
    broker.create_topic(t, TopicConfig(partitions=3))
    producer = broker.producer()
    for i in range(30):
        producer.send(t, str(i).encode())
    producer.close()
    counts = [p.high for p in broker.describe_topic(t).partitions]
    assert sum(counts) == 30 and all(c > 0 for c in counts)


def test_records_keep_value_key_timestamp_and_headers(broker: Broker, unique: Names) -> None:
    t = unique("t")
    broker.create_topic(t, TopicConfig(partitions=1))
    producer = broker.producer()
    producer.send(t, b"v", b"k", timestamp=1234, headers=(("h", b"1"),))
    producer.send(t, None, b"k2", partition=0, timestamp=5)
    producer.close()
    first, second = drain_topic(broker, t)
    assert (first.value, first.key, first.timestamp, first.headers) == (
        b"v",
        b"k",
        1234,
        (("h", b"1"),),
    )
    assert (second.value, second.key, second.offset) == (None, b"k2", 1)


def test_binary_empty_and_missing_keys_and_values_come_back_as_sent(
    broker: Broker, unique: Names
) -> None:
    """Keys and values are bytes: any byte, the empty string and None are three things
    (Pulsar's string keys and properties carry them through the codec in pulsar_codec)."""
    t = unique("t")
    broker.create_topic(t, TopicConfig(partitions=1))
    cases = [(b"\x00\xff\x80k", b"\x00\x01"), (b"", b""), (None, None), (b"k", b""), (b"", None)]
    headers = (("a", b"\xff"), ("a", b""), ("b", b"2"))
    producer = broker.producer()
    for key, value in cases:
        producer.send(t, value, key, partition=0, headers=headers)
    producer.close()
    got = [(r.key, r.value, r.headers) for r in drain_topic(broker, t)]
    assert got == [(key, value, headers) for key, value in cases]


def test_sending_to_a_missing_partition_fails(broker: Broker, unique: Names) -> None:
    t = unique("t")
    broker.create_topic(t, TopicConfig(partitions=2))
    with pytest.raises(ConfigError):
        broker.producer().send(t, b"x", partition=2)


def test_seek_position_and_poll_limits(broker: Broker, unique: Names) -> None:
    t = unique("t")
    broker.create_topic(t, TopicConfig(partitions=1))
    producer = broker.producer(batch_size=7)  # several stored batches
    for i in range(50):
        producer.send(t, str(i).encode(), partition=0)
    producer.close()
    tp = TopicPartition(t, 0)
    consumer = broker.consumer()
    consumer.assign([tp])
    assert consumer.position(tp) == 0
    assert [int(r.value or b"") for r in poll_exactly(consumer, 10)] == list(range(10))
    assert consumer.position(tp) == 10
    consumer.seek(tp, 33)
    assert consumer.position(tp) == 33
    assert [r.offset for r in poll_exactly(consumer, 5)] == [33, 34, 35, 36, 37]
    consumer.seek(tp, 3)
    assert [r.offset for r in poll_exactly(consumer, 47)] == list(range(3, 50))
    assert consumer.poll(10, timeout=0.2) == []
    assert consumer.position(tp) == 50
    consumer.close()


def test_group_offsets_are_committed_and_resumed(broker: Broker, unique: Names) -> None:
    t, g = unique("t"), unique("g")
    broker.create_topic(t, TopicConfig(partitions=2))
    producer = broker.producer()
    for i in range(20):
        producer.send(t, b"x", partition=i % 2)
    producer.close()
    tps = [TopicPartition(t, 0), TopicPartition(t, 1)]
    first = broker.consumer(g)
    first.assign(tps)
    assert len(poll_exactly(first, 12)) == 12
    first.commit()
    committed = first.committed(tps)
    assert sum(v or 0 for v in committed.values()) == 12
    first.close()
    second = broker.consumer(g)
    second.assign(tps)
    assert len(poll_exactly(second, 8)) == 8
    assert second.poll(100, timeout=0.2) == []
    assert broker.committed(g, tps) == committed
    second.close()


def test_latest_reset_skips_history(broker: Broker, unique: Names) -> None:
    t = unique("t")
    broker.create_topic(t, TopicConfig(partitions=1))
    producer = broker.producer()
    producer.send(t, b"old")
    producer.flush()
    consumer = broker.consumer(unique("g"), auto_offset_reset="latest")
    consumer.assign([TopicPartition(t, 0)])
    producer.send(t, b"new")
    producer.close()
    assert [r.value for r in poll_exactly(consumer, 1)] == [b"new"]
    consumer.close()


def test_subscribers_of_one_group_share_partitions_and_take_over(
    backend: Backend, make_broker: BrokerFactory, clock: ManualClock, unique: Names
) -> None:
    one, two = make_broker(clock), make_broker(clock)
    t, g = unique("t"), unique("g")
    one.create_topic(t, TopicConfig(partitions=4))
    a = one.consumer(g, session_timeout_ms=backend.session_timeout_ms)
    b = two.consumer(g, session_timeout_ms=backend.session_timeout_ms)
    a.subscribe([t])
    b.subscribe([t])
    backend.settle(clock, [a, b], lambda: len(a.assignment()) == len(b.assignment()) == 2)
    assert sorted(a.assignment() + b.assignment()) == [TopicPartition(t, p) for p in range(4)]
    b.close()  # leaving hands its partitions over
    backend.settle(clock, [a], lambda: len(a.assignment()) == 4)
    a.close()


def test_a_silent_member_expires_and_rebalance_callbacks_fire(
    backend: Backend, make_broker: BrokerFactory, clock: ManualClock, unique: Names
) -> None:
    one = make_broker(clock)
    t, g = unique("t"), unique("g")
    one.create_topic(t, TopicConfig(partitions=2))
    events: list[tuple[str, list[TopicPartition]]] = []
    a = one.consumer(g, session_timeout_ms=backend.session_timeout_ms)
    a.subscribe(
        [t],
        on_assign=lambda tps: events.append(("assign", tps)),
        on_revoke=lambda tps: events.append(("revoke", tps)),
    )
    backend.settle(clock, [a], lambda: len(a.assignment()) == 2)
    silent = backend.silent_member(clock, g, t)
    backend.settle(clock, [a], lambda: len(a.assignment()) == 1)
    silent.die()  # stops heartbeating without leaving: its session runs out
    backend.settle(clock, [a], lambda: len(a.assignment()) == 2)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "assign" and "revoke" in kinds and kinds[-1] == "assign"
    a.close()


def test_a_rebalance_moves_only_the_partitions_that_change_hands(
    backend: Backend, make_broker: BrokerFactory, clock: ManualClock, unique: Names
) -> None:
    """A member joining or leaving moves only the partitions that change owner: those that
    stay are never revoked and keep their position (nothing is read again), and callbacks
    name only what moves (Kafka: KIP-848's consumer protocol)."""
    one, two = make_broker(clock), make_broker(clock)
    t, g = unique("t"), unique("g")
    one.create_topic(t, TopicConfig(partitions=4))
    every = {TopicPartition(t, p) for p in range(4)}
    revoked: list[set[TopicPartition]] = []
    assigned: list[set[TopicPartition]] = []
    a = one.consumer(g, session_timeout_ms=backend.session_timeout_ms)
    a.subscribe(
        [t],
        on_assign=lambda tps: assigned.append(set(tps)),
        on_revoke=lambda tps: revoked.append(set(tps)),
    )
    backend.settle(clock, [a], lambda: len(a.assignment()) == 4)
    producer = one.producer()
    for p in range(4):
        for value in (b"0", b"1"):
            producer.send(t, value, partition=p)
    producer.flush()
    assert len(poll_exactly(a, 8)) == 8  # read, not committed
    b = two.consumer(g, session_timeout_ms=backend.session_timeout_ms)
    b.subscribe([t])
    again = poll_until(
        backend, clock, [a, b], lambda: len(a.assignment()) == 2 == len(b.assignment())
    )
    kept = set(a.assignment())
    assert revoked == [every - kept] and assigned == [every]
    assert [r for r in again if TopicPartition(r.topic, r.partition) in kept] == []
    for p in range(4):
        producer.send(t, b"2", partition=p)
    producer.close()
    # The partitions a kept read on from where they were: the new record only.
    fresh = poll_exactly(a, 2)
    assert sorted((r.partition, r.offset) for r in fresh) == sorted(
        (tp.partition, 2) for tp in kept
    )
    b.close()
    poll_until(backend, clock, [a], lambda: len(a.assignment()) == 4)
    assert revoked == [every - kept] and assigned == [every, every - kept]
    a.close()


def poll_until(
    backend: Backend, clock: ManualClock, consumers: list[Consumer], done: Callable[[], bool]
) -> list[Record]:
    """Like Backend.settle, but records may come: returns them."""
    records: list[Record] = []
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not done():
        assert time.monotonic() < deadline, f"{backend.name}: group did not settle"
        if backend.manual_clock:
            clock.advance(backend.session_timeout_ms / 4)
        for consumer in consumers:
            records.extend(consumer.poll(10, timeout=0.0 if backend.manual_clock else 0.05))
    return records


def test_transaction_writes_outputs_and_offsets_together(broker: Broker, unique: Names) -> None:
    source, out, g = unique("in"), unique("out"), unique("g")
    broker.create_topic(source, TopicConfig(partitions=1))
    broker.create_topic(out, TopicConfig(partitions=2))
    tp = TopicPartition(source, 0)
    txn = Transaction(
        group=g,
        offsets={tp: 5},
        records=[OutRecord(out, b"a", b"k1"), OutRecord(out, b"b", b"k2")],
        expected={tp: None},
    )
    broker.commit_transaction(txn)
    assert broker.committed(g, [tp]) == {tp: 5}
    assert sorted(r.value or b"" for r in drain_topic(broker, out)) == [b"a", b"b"]


def test_a_stale_transaction_is_fenced(backend: Backend, broker: Broker, unique: Names) -> None:
    """A commit that started from offsets another commit has since moved is refused. The
    self-hosted brokers check ``Transaction.expected`` atomically and write nothing. Kafka
    cannot: it ignores ``expected`` and fences by the group generation instead."""
    source, out, g = unique("in"), unique("out"), unique("g")
    broker.create_topic(source, TopicConfig(partitions=1))
    broker.create_topic(out, TopicConfig(partitions=1))
    tp = TopicPartition(source, 0)
    broker.commit_transaction(Transaction(g, {tp: 5}, [OutRecord(out, b"first")], {tp: None}))
    stale = Transaction(g, {tp: 5}, [OutRecord(out, b"again")], {tp: None})
    if backend.checks_expected_offsets:
        with pytest.raises(FencedError):
            broker.commit_transaction(stale)
        assert [r.value for r in drain_topic(broker, out)] == [b"first"]
    else:
        assert_kafka_fences_by_generation(backend, broker, stale, source)
        # At least once writes the outputs before the offsets: the refused commit's output
        # exists, to be replayed and deduplicated by its source coordinates downstream.
        assert [r.value for r in drain_topic(broker, out)] == [b"first", b"again", b"again"]
    assert broker.committed(g, [tp]) == {tp: 5}


def assert_kafka_fences_by_generation(
    backend: Backend, broker: Broker, stale: Transaction, source: str
) -> None:
    """Kafka's side of the stale-commit contract (kafka_txn): ``expected`` is not checked, so
    while the group has no member the stale commit goes through; once a member holds the
    partition, a commit from outside the group's current generation is refused."""
    broker.commit_transaction(stale)
    holder = broker.consumer(stale.group, session_timeout_ms=backend.session_timeout_ms)
    holder.subscribe([source])
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while not holder.assignment():
        assert time.monotonic() < deadline, "the member was never given the partition"
        holder.poll(1, timeout=0.1)
    with pytest.raises(FencedError):
        broker.commit_transaction(stale)
    holder.close()


def test_compacted_topic_keeps_the_latest_value_per_key(
    backend: Backend, broker: Broker, unique: Names
) -> None:
    state = unique("state")
    broker.create_topic(state, TopicConfig(partitions=1, compacted=True))
    assert broker.describe_topic(state).config.compacted
    producer = broker.producer()
    producer.send(state, b"1", b"a", partition=0)
    producer.send(state, b"1", b"b", partition=0)
    producer.send(state, b"2", b"a", partition=0)
    producer.send(state, None, b"b", partition=0)  # tombstone
    producer.send(state, b"1", b"c", partition=0)
    producer.close()
    records = drain_topic(broker, state)
    latest: dict[bytes | None, bytes | None] = {}
    for record in records:  # how state restore reads a changelog back
        latest[record.key] = record.value
    assert {k: v for k, v in latest.items() if v is not None} == {b"a": b"2", b"c": b"1"}
    if backend.compacts_on_write:
        assert [(r.key, r.value) for r in records] == [(b"a", b"2"), (b"c", b"1")]
        assert [r.offset for r in records] == [2, 4]


def test_retention_by_age_removes_the_oldest_records(
    backend: Backend, make_broker: BrokerFactory, unique: Names
) -> None:
    now = time.time_ns() // 1_000_000
    broker = make_broker(ManualClock(start_ms=now))
    t = unique("t")
    broker.create_topic(t, TopicConfig(partitions=1, retention_ms=60_000))
    producer = broker.producer()
    producer.send(t, b"old", partition=0, timestamp=now - 120_000)
    producer.flush()
    producer.send(t, b"new", partition=0, timestamp=now)
    producer.close()
    removed = backend.apply_retention(broker, t, lambda p: p.low > 0)
    if backend.manual_clock:
        assert removed == 1
    elif backend.retention_on_call:
        assert removed >= 1  # Pulsar: a shared broker, so other tests' topics count too
    else:
        assert removed == 0  # Kafka removes them itself
    info = broker.describe_topic(t).partitions[0]
    assert (info.low, info.high) == (1, 2)
    assert [r.value for r in drain_topic(broker, t)] == [b"new"]
    consumer = broker.consumer(unique("fresh"))
    consumer.assign([TopicPartition(t, 0)])
    assert [r.offset for r in poll_exactly(consumer, 1)] == [1]
    consumer.close()


def test_retention_by_size_keeps_the_newest_records(
    backend: Backend, broker: Broker, unique: Names
) -> None:
    t = unique("t")
    size, limit = 600_000, 2_500_000
    broker.create_topic(t, TopicConfig(partitions=1, retention_bytes=limit))
    for i in range(10):
        producer = broker.producer()  # one stored batch per flush
        producer.send(t, bytes([i]) * size, partition=0)
        producer.close()
    bound = limit + backend.retention_slack_bytes
    # Kafka's cleaner may delete in several passes: wait until the size is within bounds.
    backend.apply_retention(broker, t, lambda p: p.low > 0 and (p.high - p.low) * size <= bound)
    kept = drain_topic(broker, t)
    assert kept[-1].offset == 9 and kept[0].offset > 0
    kept_bytes = len(kept) * size
    assert limit - size < kept_bytes <= limit + backend.retention_slack_bytes


def test_paused_partitions_are_not_returned_until_resumed(broker: Broker, unique: Names) -> None:
    t = unique("t")
    broker.create_topic(t, TopicConfig(partitions=2))
    producer = broker.producer()
    for i in range(10):
        producer.send(t, b"x", partition=i % 2)
    producer.close()
    tp0, tp1 = TopicPartition(t, 0), TopicPartition(t, 1)
    consumer = broker.consumer()
    consumer.assign([tp0, tp1])
    consumer.pause([tp0])
    assert {r.partition for r in poll_exactly(consumer, 5)} == {1}
    assert consumer.poll(100, timeout=0.2) == []
    consumer.resume([tp0])
    assert {r.partition for r in poll_exactly(consumer, 5)} == {0}
    consumer.close()


def test_poll_waits_for_records_from_another_thread(broker: Broker, unique: Names) -> None:
    t = unique("t")
    broker.create_topic(t, TopicConfig(partitions=1))
    consumer = broker.consumer()
    consumer.assign([TopicPartition(t, 0)])

    def produce_later() -> None:
        time.sleep(0.05)
        producer = broker.producer()
        producer.send(t, b"late")
        producer.close()

    thread = threading.Thread(target=produce_later)
    thread.start()
    records = consumer.poll(10, timeout=5.0)
    thread.join()
    assert [r.value for r in records] == [b"late"]
    consumer.close()


def test_producer_flushes_by_itself_after_linger(broker: Broker, unique: Names) -> None:
    t = unique("t")
    broker.create_topic(t, TopicConfig(partitions=1))
    producer = broker.producer(linger_ms=5)
    producer.send(t, b"x")
    consumer = broker.consumer()
    consumer.assign([TopicPartition(t, 0)])
    assert [r.value for r in consumer.poll(10, timeout=5.0)] == [b"x"]
    producer.close()
    consumer.close()


def test_settled_end_is_the_end_once_nothing_is_open(broker: Broker, unique: Names) -> None:
    t = unique("t")
    broker.create_topic(t, TopicConfig(partitions=2))
    producer = broker.producer()
    for i in range(7):
        producer.send(t, str(i).encode(), partition=1)
    producer.flush()
    broker.commit_transaction(Transaction(unique("g"), records=[OutRecord(t, b"x", None, 1)]))
    info = broker.describe_topic(t)
    assert broker.settled_end(TopicPartition(t, 0)) == info.partitions[0].high == 0
    assert broker.settled_end(TopicPartition(t, 1)) == info.partitions[1].high
    values = [r.value for r in read_partition(broker, TopicPartition(t, 1))]
    assert values == [str(i).encode() for i in range(7)] + [b"x"]
