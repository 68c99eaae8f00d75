"""Reading one partition of a broker's log to its end: how restores read keyed-state
changelogs, batch-stage state and ingest cursors.

The end is the broker's ``settled_end``, not the end read_committed readers see at once. On
Kafka a transaction a crashed writer left open holds those readers back at its first
record, and records the partition's next owner committed after it stay out of sight until
Kafka aborts it. Stopping there restored a state older than the group's committed offsets
(a user's sequence number went back from 407 to 145 in the scale-out test).

An empty poll is no proof of the end either (a slow first fetch returns nothing too), so
the read goes on until it reaches the end, and fails retryably if it makes no progress for
``STALL_S``: a partial read must never pass for the whole log.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from streamsense.brokers.base import Broker, Record, TopicPartition
from streamsense.errors import BrokerUnavailable

STALL_S = 30.0


def read_partition(broker: Broker, tp: TopicPartition, *, batch: int = 10_000) -> Iterator[Record]:
    """Every record of ``tp`` from its log start to its settled end, in offset order."""
    end = broker.settled_end(tp)
    consumer = broker.consumer()
    try:
        consumer.assign([tp])
        last_progress = time.monotonic()
        while consumer.position(tp) < end:
            records = consumer.poll(batch, timeout=1.0)
            if records:
                last_progress = time.monotonic()
                yield from records
            elif time.monotonic() - last_progress > STALL_S:
                raise BrokerUnavailable(
                    f"reading {tp.topic}[{tp.partition}] stalled at offset "
                    f"{consumer.position(tp)} of {end}"
                )
    finally:
        consumer.close()


def log_start(broker: Broker, tp: TopicPartition) -> int:
    """The first offset ``tp`` still keeps."""
    return broker.describe_topic(tp.topic).partitions[tp.partition].low
