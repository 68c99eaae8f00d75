"""How Kafka consumer groups are configured (brokers/kafka_groups): the protocol chosen by
the broker URL, the settings each protocol accepts, and the group's session timeout."""

from __future__ import annotations

import pytest

from streamsense.brokers.kafka import KafkaBroker
from streamsense.brokers.kafka_groups import (
    group_settings,
    group_timeouts,
    heartbeat_interval_ms,
)
from streamsense.errors import ConfigError


def test_the_url_chooses_the_group_protocol_consumer_by_default() -> None:
    # No client connects before it is used: the broker object is made offline.
    assert KafkaBroker("127.0.0.1:1").group_protocol == "consumer"
    assert KafkaBroker("127.0.0.1:1?group_protocol=classic").group_protocol == "classic"
    with pytest.raises(ConfigError, match="group_protocol"):
        KafkaBroker("127.0.0.1:1?group_protocol=cooperative")


def test_the_consumer_protocol_gets_the_brokers_range_assignor_and_no_classic_settings() -> None:
    settings = group_settings("consumer", session_timeout_ms=6000, max_poll_interval_ms=300_000)
    assert settings["group.protocol"] == "consumer"
    assert settings["group.remote.assignor"] == "range"  # co-partitioned, sticky
    # librdkafka refuses these under the consumer protocol: the group's configs carry them.
    assert not {
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "partition.assignment.strategy",
    } & set(settings)
    classic = group_settings("classic", session_timeout_ms=6000, max_poll_interval_ms=300_000)
    assert classic["partition.assignment.strategy"] == "range"
    assert classic["session.timeout.ms"] == 6000


def test_the_heartbeat_is_a_tenth_of_the_session_within_bounds() -> None:
    assert heartbeat_interval_ms(6000) == 600
    assert heartbeat_interval_ms(500) == 100
    assert heartbeat_interval_ms(45_000) == 1000
    assert group_timeouts(6000) == {
        "consumer.session.timeout.ms": "6000",
        "consumer.heartbeat.interval.ms": "600",
    }
