"""Client calls that get no answer (the broker frozen with SIGSTOP: connections stay open,
nothing is answered) return within their limits, and the client they were made on is
closed once the call returns, never left open (brokers/kafka_calls)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest

from streamsense.brokers import TopicConfig, TopicPartition
from streamsense.brokers.kafka import KafkaBroker
from streamsense.brokers.kafka_calls import GRACE_S
from streamsense.errors import BrokerUnavailable, FatalError
from tests.chaos.kafka_node import KafkaNode

pytestmark = [pytest.mark.kafka, pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(240)]
LIMIT_S = 1.0
# The call's own limit, the grace kafka_calls allows librdkafka, and a margin for a loaded machine.
BOUND_S = LIMIT_S + GRACE_S + 2.0
THAWED_S = 120.0  # librdkafka's requests time out after 60 s (socket.timeout.ms)


def _closed(call: Callable[[], object]) -> bool:
    try:
        call()
    except RuntimeError:  # confluent-kafka: "Consumer closed", "Producer has been closed"
        return True
    return False


def test_a_commit_that_gets_no_answer_gives_up_and_closes_its_consumer(
    chaos_kafka: KafkaNode,
) -> None:
    broker = KafkaBroker(chaos_kafka.bootstrap)
    topic, group = f"stuck-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, TopicConfig(partitions=1))
    consumer = broker.consumer(group, session_timeout_ms=6000)
    consumer.subscribe([topic])
    deadline = time.monotonic() + 60
    while not consumer.assignment():
        assert time.monotonic() < deadline, "never assigned"
        consumer.poll(1, timeout=0.1)
    consumer.commit_timeout_s = LIMIT_S
    with chaos_kafka.frozen():
        started = time.monotonic()
        with pytest.raises(FatalError, match="restart the worker"):
            consumer.commit({TopicPartition(topic, 0): 0})
        assert time.monotonic() - started < BOUND_S
        reaper = consumer.reaper
        assert reaper is not None and reaper.is_alive()  # the commit still waits
        assert consumer.assignment() == []
    reaper.join(THAWED_S)
    assert not reaper.is_alive() and _closed(consumer.client.assignment)
    broker.close()


def test_flush_and_close_that_get_no_answer_return_within_their_limits(
    chaos_kafka: KafkaNode,
) -> None:
    broker = KafkaBroker(chaos_kafka.bootstrap)
    topic, group = f"stuck-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, TopicConfig(partitions=1))
    producer = broker.producer()
    producer.send(topic, b"before")
    producer.flush()
    consumer = broker.consumer(group, session_timeout_ms=6000)
    consumer.subscribe([topic])
    deadline = time.monotonic() + 60
    while not consumer.assignment():
        assert time.monotonic() < deadline, "never assigned"
        consumer.poll(1, timeout=0.1)
    producer.flush_timeout_s = producer.close_timeout_s = consumer.close_timeout_s = LIMIT_S
    with chaos_kafka.frozen():
        producer.send(topic, b"during")
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="undelivered"):
            producer.flush()
        assert time.monotonic() - started < BOUND_S
        started = time.monotonic()
        consumer.close()  # leaving the group gets no answer
        assert time.monotonic() - started < BOUND_S
        started = time.monotonic()
        producer.close(flush=False)
        assert time.monotonic() - started < BOUND_S
    # Whichever close went on in the background has finished once the broker answers.
    for reaper in (consumer.reaper, producer.reaper):
        if reaper is not None:
            reaper.join(THAWED_S)
            assert not reaper.is_alive()
    assert _closed(consumer.client.assignment) and _closed(lambda: producer.client.flush(0))
    broker.close()
