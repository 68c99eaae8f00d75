"""streamsense on Kafka next to other Kafka clients: an outside producer's keys land where
streamsense expects them, and a streamsense app runs on Kafka as it does in memory."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import pytest
from confluent_kafka import KafkaError, Message, Producer

import streamsense as ss
from streamsense.brokers import TopicConfig, TopicPartition, partition_for
from streamsense.brokers.base import Broker
from streamsense.brokers.kafka import KafkaBroker
from streamsense.runtime.worker import Worker, WorkerConfig
from streamsense.testing import drain_topic
from tests.apps.counter import Click, count, make_clicks

Names = Callable[[str], str]
pytestmark = pytest.mark.kafka


def test_an_outside_producers_keys_land_on_streamsenses_partitions(
    kafka: KafkaBroker, kafka_bootstrap: str, unique: Names
) -> None:
    topic = unique("payments")
    kafka.create_topic(topic, TopicConfig(partitions=7))
    # A plain client with the Java-compatible default partitioner, no streamsense code.
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": "murmur2_random"})
    landed: list[tuple[bytes, int]] = []
    failed: list[KafkaError] = []

    def delivered(error: KafkaError | None, message: Message) -> None:
        if error is not None:
            failed.append(error)
        else:
            landed.append((message.key() or b"", message.partition() or 0))

    sent = {}
    for i in range(300):
        key = f"card-{i % 53}".encode()
        value = msgspec.json.encode({"card": key.decode(), "amount": i, "ts": 1_700_000_000 + i})
        sent[value] = key
        producer.produce(topic, value, key, on_delivery=delivered)
    assert producer.flush(30) == 0 and not failed
    assert len(landed) == 300
    assert all(partition == partition_for(key, 7) for key, partition in landed)
    records = drain_topic(kafka, topic)
    assert {r.value: r.key for r in records} == sent
    assert all(r.partition == partition_for(r.key or b"", 7) for r in records)


def counter_app(unique: Names) -> tuple[ss.App, ss.Stream[Click]]:
    """tests/apps/counter.py under names of its own (the broker is shared)."""
    clicks = ss.Stream(unique("clicks"), Click, key="user", time="ts", partitions=3, max_bytes=2048)
    app = ss.App(unique("counter"))
    app.flow(clicks).stage("count", count).sink(ss.TopicSink(f"{app.name}.counts"))
    return app, clicks


def feed(broker: Broker, app: ss.App, clicks: ss.Stream[Click], n: int, start: int = 0) -> None:
    Worker(app, broker).ensure_topics()
    producer = broker.producer()
    for click in make_clicks(start + n)[start:]:
        out = clicks.to_record(click)
        producer.send(out.topic, out.value, out.key)
    producer.close()


def counts(broker: Broker, app: ss.App) -> list[dict[str, object]]:
    return [msgspec.json.decode(r.value or b"") for r in drain_topic(broker, f"{app.name}.counts")]


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_the_counter_app_runs_on_kafka_as_in_memory(
    kafka_bootstrap: str, unique: Names, exactly_once: bool
) -> None:
    broker = KafkaBroker(kafka_bootstrap, exactly_once=exactly_once)
    app, clicks = counter_app(unique)
    feed(broker, app, clicks, 100)
    stats = Worker(app, broker, WorkerConfig(batch_size=40)).run(until_caught_up=True)
    assert (stats.events, stats.outputs, stats.dead_letters) == (100, 100, 0)
    outputs = counts(broker, app)
    by_user: dict[object, list[object]] = {}
    for out in outputs:
        by_user.setdefault(out["user"], []).append(out["n"])
    assert all(ns == list(range(1, len(ns) + 1)) for ns in by_user.values())
    assert len(outputs) == 100
    sources = [TopicPartition(clicks.topic, p) for p in range(3)]
    assert sum(v or 0 for v in broker.committed(app.group, sources).values()) == 100
    broker.close()


def test_a_restarted_worker_resumes_offsets_and_restores_state_from_kafka(
    kafka: KafkaBroker, unique: Names
) -> None:
    app, clicks = counter_app(unique)
    feed(kafka, app, clicks, 50)
    Worker(app, kafka, WorkerConfig(batch_size=8)).run(until_caught_up=True)
    feed(kafka, app, clicks, 50, start=50)
    stats = Worker(app, kafka).run(until_caught_up=True)  # a new worker, same group
    assert stats.events == 50
    assert stats.restored_keys == 17  # read back from the compacted changelog
    outputs = counts(kafka, app)
    assert len(outputs) == 100
    assert len({c["source"] for c in outputs}) == 100
    last = {c["user"]: c["n"] for c in outputs}
    assert sum(last.values()) == 100  # the counts continued across the restart
