"""Reading a whole topic back, for exports and summaries: every record in offset order,
partition by partition, in chunks (one consumer per partition, closed when done)."""

from __future__ import annotations

from collections.abc import Iterator

from streamsense.brokers.base import Broker, Record, TopicPartition


def topic_chunks(broker: Broker, topic: str, *, chunk: int = 50_000) -> Iterator[list[Record]]:
    """Every record of ``topic`` as it stands now; nothing when the topic does not exist."""
    if topic not in set(broker.list_topics()):
        return
    for part in broker.describe_topic(topic).partitions:
        tp = TopicPartition(topic, part.partition)
        consumer = broker.consumer()
        try:
            consumer.assign([tp])
            consumer.seek(tp, part.low)
            while consumer.position(tp) < part.high:
                got = consumer.poll(chunk, timeout=1.0)
                if not got:
                    break
                yield got
        finally:
            consumer.close()
