"""Retention on Pulsar, record by record, as the other brokers apply it.

Pulsar itself deletes whole ledgers, and only data that every subscription has
acknowledged, so it cannot drop the one record a retention limit asks for. streamsense does
it the way Kafka's DeleteRecords does: ``enforce_retention`` moves a partition's log start
offset (a property of the topic, ``streamsense.low.N``) past the records outside the limit;
describe_topic, readers and lag all start there. The topic also gets Pulsar's own retention
policy, so the broker frees the storage of whole ledgers below it in its own time.

The same rule as the memory broker (brokers.memory.outside_retention): age by record
timestamp, size by key plus value bytes, compacted topics are never trimmed."""

from __future__ import annotations

import time
from collections.abc import Iterator

from streamsense.brokers.base import Record, TopicConfig, TopicPartition
from streamsense.brokers.memory import outside_retention
from streamsense.brokers.pulsar_host import PulsarHost
from streamsense.errors import RetryableError

LOW_PROPERTY = "streamsense.low."
READ_TIMEOUT_S = 60.0
# Retention longer than this (~68 years) is "forever" in Pulsar's policy (see native_retention).
NATIVE_MINUTES_MAX = (2**31 - 1) // 60


def low_property(partition: int) -> str:
    return f"{LOW_PROPERTY}{partition}"


def native_retention(config: TopicConfig) -> dict[str, int] | None:
    """Pulsar's retention policy for a topic (minutes and MB, rounded up), or None."""
    if config.compacted or (config.retention_ms is None and config.retention_bytes is None):
        return None
    minutes = -1 if config.retention_ms is None else -(-config.retention_ms // 60_000)
    if minutes > NATIVE_MINUTES_MAX:
        minutes = -1  # the broker checks minutes * 60 as a Java int: past it, keep forever
    megabytes = -1 if config.retention_bytes is None else -(-config.retention_bytes // (1 << 20))
    return {"retentionTimeInMinutes": minutes, "retentionSizeInMB": megabytes}


def enforce(broker: PulsarHost, topic: str, config: TopicConfig, now_ms: int) -> int:
    """Move each partition's start past the records outside retention; how many were."""
    if config.compacted or (config.retention_ms is None and config.retention_bytes is None):
        return 0
    removed = 0
    moved: dict[str, str] = {}
    for partition in range(config.partitions):
        tp = TopicPartition(topic, partition)
        bounds = broker.bounds(tp)
        records = _deciding(broker, tp, bounds.low, bounds.high, config, now_ms)
        drop = outside_retention(records, config, now_ms)
        if drop:
            removed += drop
            new_low = records[drop].offset if drop < len(records) else bounds.high
            moved[low_property(partition)] = str(new_low)
    if moved:
        broker.admin.set_properties(topic, moved)
    return removed


def _deciding(
    broker: PulsarHost, tp: TopicPartition, low: int, high: int, config: TopicConfig, now: int
) -> list[Record]:
    """The records retention is decided on, oldest first: all of them when size counts, and
    the partition's stored bytes (an upper bound of its records' sizes) exceed the limit;
    else, for age, those up to the first one young enough to keep."""
    by_size = config.retention_bytes is not None and (
        int(broker.admin.internal_stats(tp.topic, tp.partition).get("totalSize", 0))
        > config.retention_bytes
    )
    if not by_size and config.retention_ms is None:
        return []
    cutoff = None if by_size or config.retention_ms is None else now - config.retention_ms
    records: list[Record] = []
    for batch in _batches(broker, tp, low, high):
        records.extend(batch)
        if cutoff is not None and any(r.timestamp >= cutoff for r in batch):
            break
    return records


def _batches(broker: PulsarHost, tp: TopicPartition, low: int, high: int) -> Iterator[list[Record]]:
    if low >= high:
        return
    consumer = broker.consumer()
    deadline = time.monotonic() + READ_TIMEOUT_S
    try:
        consumer.assign([tp])
        consumer.seek(tp, low)
        while consumer.position(tp) < high:
            if time.monotonic() > deadline:
                raise RetryableError(f"{tp}: could not read {low}..{high} for retention")
            yield [r for r in consumer.poll(10_000, timeout=1.0) if r.offset < high]
    finally:
        consumer.close()
