"""Brokers: the durable, partitioned logs that carry events between stages.

``open_broker(url)`` picks the implementation from a URL:

* ``memory://``                  in this process only (tests)
* ``embedded:///path/to/log.db`` (or a plain path) the default, one SQLite file
* ``kafka://host:port[,host:port]`` Apache Kafka (and Redpanda, which speaks its protocol)
* ``pulsar://host:port[?admin=http://host:port]`` Apache Pulsar
"""

from __future__ import annotations

from pathlib import Path

from streamsense.brokers.base import (
    Broker,
    Consumer,
    OutRecord,
    PartitionInfo,
    Producer,
    Record,
    TopicConfig,
    TopicInfo,
    TopicPartition,
    Transaction,
)
from streamsense.brokers.embedded import EmbeddedBroker
from streamsense.brokers.memory import MemoryBroker
from streamsense.brokers.partitioner import murmur2, partition_for
from streamsense.brokers.topic_chunks import topic_chunks
from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError

__all__ = [
    "Broker",
    "Consumer",
    "EmbeddedBroker",
    "MemoryBroker",
    "OutRecord",
    "PartitionInfo",
    "Producer",
    "Record",
    "TopicConfig",
    "TopicInfo",
    "TopicPartition",
    "Transaction",
    "murmur2",
    "open_broker",
    "partition_for",
    "topic_chunks",
]


def open_broker(url: str, *, clock: Clock = SYSTEM_CLOCK) -> Broker:
    """Open the broker a URL names (see the module docstring)."""
    if url.startswith("memory://"):
        return MemoryBroker(clock=clock)
    if url.startswith("kafka://"):
        from streamsense.extras import require

        require("confluent_kafka", "kafka")
        from streamsense.brokers.kafka import KafkaBroker

        return KafkaBroker(url.removeprefix("kafka://"), clock=clock)
    if url.startswith("pulsar://"):
        from streamsense.extras import require

        require("pulsar", "pulsar")
        from streamsense.brokers.pulsar import PulsarBroker

        return PulsarBroker(url.removeprefix("pulsar://"), clock=clock)
    if url.startswith("embedded://"):
        return EmbeddedBroker(url.removeprefix("embedded://"), clock=clock)
    if "://" in url:
        raise ConfigError(
            f"unknown broker URL {url!r}: use memory://, embedded://PATH, kafka://HOST:PORT "
            "or pulsar://HOST:PORT"
        )
    return EmbeddedBroker(Path(url), clock=clock)
