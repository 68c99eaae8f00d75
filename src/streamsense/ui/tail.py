"""The newest records of a topic, read by offsets: a page never scans a whole topic, so its
cost depends on how many records it shows, not on how many the topic holds."""

from __future__ import annotations

import time

from streamsense.brokers.base import Broker, Record, TopicPartition

READ_LIMIT_S = 1.0  # a page waits no longer than this for a partition's tail


def tail(broker: Broker, topic: str, n: int) -> list[Record]:
    """Up to ``n`` newest records of ``topic`` over all its partitions, newest first (by
    the time they were written). Each partition gives at most ``n``."""
    info = broker.describe_topic(topic)
    records: list[Record] = []
    for part in info.partitions:
        start = max(part.low, part.high - n)
        if part.high > start:
            records += read_range(broker, TopicPartition(topic, part.partition), start, part.high)
    records.sort(key=lambda r: (r.timestamp, r.offset), reverse=True)
    return records[:n]


def read_range(broker: Broker, tp: TopicPartition, start: int, end: int) -> list[Record]:
    """The records of ``tp`` with offsets in [start, end), as many as come within the limit."""
    consumer = broker.consumer()
    got: list[Record] = []
    deadline = time.monotonic() + READ_LIMIT_S
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        while consumer.position(tp) < end and time.monotonic() < deadline:
            batch = consumer.poll(min(end - consumer.position(tp), 5_000), timeout=0.2)
            got += [r for r in batch if r.offset < end]
    finally:
        consumer.close()
    return got
