"""Kafka's side of the commit contract: exactly-once transactions, and fencing of stale
workers by the consumer group (Kafka cannot check ``Transaction.expected``), plus errors."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient

from streamsense.brokers import OutRecord, TopicConfig, TopicPartition, Transaction, open_broker
from streamsense.brokers.base import Broker, Consumer
from streamsense.brokers.kafka import KafkaBroker
from streamsense.brokers.kafka_common import to_error
from streamsense.errors import (
    BrokerUnavailable,
    ConfigError,
    FatalError,
    FencedError,
    StreamsenseError,
    TopicNotFound,
)
from streamsense.runtime.partition_read import read_partition

Names = Callable[[str], str]
pytestmark = pytest.mark.kafka


def committed_values(broker: Broker, topic: str) -> list[bytes | None]:
    """Every record a read_committed reader sees in ``topic`` (transaction markers take
    offsets too, so the watermarks do not count records here)."""
    consumer = broker.consumer()
    consumer.assign([TopicPartition(topic, 0)])
    values = []
    while batch := consumer.poll(1000, timeout=1.0):
        values.extend(r.value for r in batch)
    consumer.close()
    return values


def test_exactly_once_writes_outputs_and_offsets_in_one_transaction(
    kafka_bootstrap: str, unique: Names
) -> None:
    broker = KafkaBroker(kafka_bootstrap, exactly_once=True)
    source, out, group = unique("in"), unique("out"), unique("g")
    broker.create_topic(source, TopicConfig(partitions=1))
    broker.create_topic(out, TopicConfig(partitions=1))
    tp = TopicPartition(source, 0)
    broker.commit_transaction(Transaction(group, {tp: 5}, [OutRecord(out, b"a", b"k")]))
    broker.commit_transaction(Transaction(group, {tp: 9}, [OutRecord(out, b"b", b"k")]))
    assert broker.committed(group, [tp]) == {tp: 9}
    assert committed_values(broker, out) == [b"a", b"b"]
    # Kafka's own topics exist (transactions and groups were used) but are not listed.
    internal = {"__consumer_offsets", "__transaction_state"}
    assert internal <= set(AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics().topics)
    assert not internal & set(broker.list_topics())
    broker.close()


def test_a_failed_transaction_is_aborted_and_the_next_one_commits(
    kafka_bootstrap: str, unique: Names
) -> None:
    broker = KafkaBroker(kafka_bootstrap, exactly_once=True)
    source, out, group = unique("in"), unique("out"), unique("g")
    broker.create_topic(source, TopicConfig(partitions=1))
    broker.create_topic(out, TopicConfig(partitions=1))
    tp = TopicPartition(source, 0)
    bad = [OutRecord(out, b"lost"), OutRecord(out, b"x", partition=3)]  # no partition 3
    with pytest.raises(ConfigError):
        broker.commit_transaction(Transaction(group, {tp: 5}, bad))
    assert broker.committed(group, [tp]) == {tp: None}
    broker.commit_transaction(Transaction(group, {tp: 2}, [OutRecord(out, b"kept")]))
    assert committed_values(broker, out) == [b"kept"]
    assert broker.committed(group, [tp]) == {tp: 2}
    broker.close()


def test_a_newer_producer_with_the_same_transactional_id_fences_the_older(
    kafka_bootstrap: str, unique: Names
) -> None:
    txn_id, out = unique("worker"), unique("out")
    old = KafkaBroker(kafka_bootstrap, exactly_once=True, transactional_id=txn_id)
    old.create_topic(out, TopicConfig(partitions=1))
    old.commit_transaction(Transaction(unique("g"), records=[OutRecord(out, b"old")]))
    new = open_broker(f"kafka://{kafka_bootstrap}?exactly_once=true&transactional_id={txn_id}")
    new.commit_transaction(Transaction(unique("g"), records=[OutRecord(out, b"new")]))
    with pytest.raises(FencedError):
        old.commit_transaction(Transaction(unique("g"), records=[OutRecord(out, b"zombie")]))
    assert committed_values(new, out) == [b"old", b"new"]
    old.close()
    new.close()


def open_transaction(bootstrap: str, txn_id: str, topic: str) -> Producer:
    """A writer that crashed inside a transaction: its record is written, never decided."""
    zombie = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id})
    zombie.init_transactions(30)
    zombie.begin_transaction()
    zombie.produce(topic, b"undecided", b"k", partition=0)
    zombie.flush(30)
    return zombie


def test_a_restore_reads_past_a_crashed_writers_open_transaction(
    kafka_bootstrap: str, unique: Names
) -> None:
    """Records committed after a transaction left open are part of the state. A reader
    stopping where read_committed readers are held (the open transaction's first record)
    would miss them; reading waits until the transaction is decided."""
    topic, zombie_id = unique("changelog"), unique("crashed")
    broker = KafkaBroker(kafka_bootstrap, exactly_once=True)
    broker.create_topic(topic, TopicConfig(partitions=1, compacted=True))
    zombie = open_transaction(kafka_bootstrap, zombie_id, topic)
    broker.commit_transaction(Transaction(unique("g"), records=[OutRecord(topic, b"v", b"k")]))
    tp = TopicPartition(topic, 0)
    assert broker.describe_topic(topic).partitions[0].high == 0  # held at the open one
    aborted = threading.Event()

    def successor() -> None:  # the crashed writer's successor (same id) aborts it
        time.sleep(1.0)
        aborted.set()
        heir = KafkaBroker(kafka_bootstrap, exactly_once=True, transactional_id=zombie_id)
        heir.consumer(unique("g")).close()
        heir.close()

    threading.Thread(target=successor, daemon=True).start()
    values = [r.value for r in read_partition(broker, tp)]
    assert aborted.is_set()  # it waited for the decision rather than stop at offset 0
    assert values == [b"v"]
    del zombie
    broker.close()


def test_a_worker_joining_its_group_aborts_its_predecessors_open_transaction(
    kafka_bootstrap: str, unique: Names
) -> None:
    """Under exactly once, making a group member initialises the transactional producer
    first, so the crashed predecessor's transaction (same id) no longer holds anything."""
    topic, txn_id = unique("out"), unique("worker")
    admin = KafkaBroker(kafka_bootstrap)
    admin.create_topic(topic, TopicConfig(partitions=1))
    zombie = open_transaction(kafka_bootstrap, txn_id, topic)
    successor = KafkaBroker(kafka_bootstrap, exactly_once=True, transactional_id=txn_id)
    assert admin.describe_topic(topic).partitions[0].high == 0
    consumer = successor.consumer(unique("g"))
    # The abort marker follows the record: nothing is open any more.
    tp = TopicPartition(topic, 0)
    assert admin.describe_topic(topic).partitions[0].high == admin.settled_end(tp) == 2
    assert [r.value for r in read_partition(admin, tp)] == []
    consumer.close()
    del zombie
    successor.close()
    admin.close()


def poll_until(consumers: list[Consumer], done: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the group did not settle"
        for consumer in consumers:
            consumer.poll(1, timeout=0.1)


def test_a_member_that_lost_its_partitions_cannot_commit(
    kafka_bootstrap: str, unique: Names
) -> None:
    """A stuck worker (no poll for max_poll_interval_ms) is dropped from the group; its
    late commit is refused in both modes, and its exactly-once outputs never appear."""
    at_least_once = KafkaBroker(kafka_bootstrap)
    exactly_once = KafkaBroker(kafka_bootstrap, exactly_once=True)
    source, out, group = unique("in"), unique("out"), unique("g")
    at_least_once.create_topic(source, TopicConfig(partitions=2))
    at_least_once.create_topic(out, TopicConfig(partitions=1))
    stuck = at_least_once.consumer(group, session_timeout_ms=6000, max_poll_interval_ms=6000)
    stuck.subscribe([source])
    poll_until([stuck], lambda: len(stuck.assignment()) == 2)
    survivor = KafkaBroker(kafka_bootstrap).consumer(group, session_timeout_ms=6000)
    survivor.subscribe([source])
    # Only the survivor polls: the stuck member misses the rebalance and is dropped.
    poll_until([survivor], lambda: len(survivor.assignment()) == 2)
    tp = TopicPartition(source, 0)
    for broker, value in ((at_least_once, b"at-least-once"), (exactly_once, b"exactly-once")):
        snapshot = [OutRecord(out, b"snapshot")]  # may not outlive a refused commit
        late = Transaction(group, {tp: 1}, [OutRecord(out, value)], consumer=stuck)
        late.after_offsets = snapshot
        with pytest.raises(FencedError):
            broker.commit_transaction(late)
    # Without a member, offsets of an active group are refused too.
    for broker in (at_least_once, exactly_once):
        with pytest.raises(FencedError):
            broker.commit_transaction(Transaction(group, {tp: 1}))
    assert at_least_once.committed(group, [tp]) == {tp: None}
    # At least once wrote its outputs before the refused commit (they are replayed and
    # deduplicated downstream), but not what follows the offsets; the aborted
    # transaction's outputs are never visible.
    assert committed_values(at_least_once, out) == [b"at-least-once"]
    survivor.close()
    for broker in (at_least_once, exactly_once):
        broker.close()


def test_a_failed_delivery_fails_flush_with_a_streamsense_error(
    kafka_bootstrap: str, unique: Names
) -> None:
    # The client lets a 2 MB record through; the broker (1 MB limit) refuses it.
    broker = KafkaBroker(kafka_bootstrap, config={"message.max.bytes": 4_000_000})
    topic = unique("t")
    broker.create_topic(topic, TopicConfig(partitions=1))
    producer = broker.producer()
    producer.send(topic, b"x" * 2_000_000)
    with pytest.raises(StreamsenseError) as raised:
        producer.flush()
    assert not raised.value.retryable
    producer.send(topic, b"fine")
    producer.flush()  # the failure was reported once
    broker.close()


def test_url_options_and_librdkafka_errors_map_to_streamsense_errors(
    kafka_bootstrap: str,
) -> None:
    broker = open_broker(f"kafka://{kafka_bootstrap}?exactly_once=true")
    assert isinstance(broker, KafkaBroker) and broker.exactly_once
    broker.close()
    with pytest.raises(ConfigError):
        open_broker(f"kafka://{kafka_bootstrap}?exactly_once=maybe")
    with pytest.raises(ConfigError):
        open_broker(f"kafka://{kafka_bootstrap}?acks=0")
    with pytest.raises(ConfigError):
        open_broker(f"kafka://{kafka_bootstrap}?exactly_once=true&transaction_timeout_ms=10")
    assert KafkaBroker(kafka_bootstrap).enforce_retention() == 0
    expected = {
        KafkaError._FENCED: FencedError,
        KafkaError.PRODUCER_FENCED: FencedError,
        KafkaError.ILLEGAL_GENERATION: FencedError,
        KafkaError.UNKNOWN_TOPIC_OR_PART: TopicNotFound,
        KafkaError.INVALID_PARTITIONS: ConfigError,
        KafkaError._ALL_BROKERS_DOWN: BrokerUnavailable,
        KafkaError._MSG_TIMED_OUT: BrokerUnavailable,
        KafkaError.MSG_SIZE_TOO_LARGE: FatalError,
    }
    for code, kind in expected.items():
        error = to_error(KafkaError(code), "testing")
        assert type(error) is kind, (code, error)
        assert error.retryable == (kind is BrokerUnavailable)
