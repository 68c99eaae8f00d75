"""A group's session timeout under KIP-848's consumer protocol is a group config on the
broker, set when a worker subscribes (brokers/kafka_groups). The test broker allows
sessions from 1 s (scripts/kafka/server.properties.in); one below that is refused, and the
group keeps the broker's own with a warning instead of failing the worker."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType  # type: ignore[attr-defined]

from streamsense.brokers import TopicConfig
from streamsense.brokers.kafka import KafkaBroker
from streamsense.brokers.kafka_groups import configure_group

pytestmark = pytest.mark.kafka


def _group_config(bootstrap: str, group: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.GROUP, group)
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept until the answer came
    entries = admin.describe_configs([resource])[resource].result()
    return {name: entry.value for name, entry in entries.items()}


def test_a_subscriber_sets_its_groups_session_timeout(kafka_bootstrap: str) -> None:
    broker = KafkaBroker(kafka_bootstrap)
    topic, group = f"t-{uuid.uuid4().hex[:8]}", f"g-{uuid.uuid4().hex[:8]}"
    broker.create_topic(topic, TopicConfig(partitions=1))
    consumer = broker.consumer(group, session_timeout_ms=7000)
    consumer.subscribe([topic])
    config = _group_config(kafka_bootstrap, group)
    assert config["consumer.session.timeout.ms"] == "7000"
    assert config["consumer.heartbeat.interval.ms"] == "700"
    consumer.close()
    broker.close()


def test_a_session_timeout_below_the_brokers_floor_keeps_the_brokers_own(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    broker = KafkaBroker(kafka_bootstrap)
    group = f"g-{uuid.uuid4().hex[:8]}"
    assert configure_group(broker._admin, group, 500) is False
    assert "keeps the broker's session timeout" in caplog.text
    assert _group_config(kafka_bootstrap, group)["consumer.session.timeout.ms"] != "500"
    broker.close()
