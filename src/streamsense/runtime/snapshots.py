"""Snapshots of batch-stage state, kept in a compacted topic per stage (one record per
partition) and committed in the same transaction as the outputs and offsets they match."""

from __future__ import annotations

import msgspec

from streamsense.brokers.base import Broker, OutRecord, TopicPartition

_KEY = b"snapshot"


class Snapshot(msgspec.Struct, frozen=True):
    offsets: dict[str, int]  # source topic -> next offset the state has seen
    state: bytes


def snapshot_record(topic: str, partition: int, snapshot: Snapshot) -> OutRecord:
    return OutRecord(topic, msgspec.msgpack.encode(snapshot), _KEY, partition=partition)


def read_snapshot(broker: Broker, topic: str, partition: int) -> Snapshot | None:
    tp = TopicPartition(topic, partition)
    high = broker.describe_topic(topic).partitions[partition].high
    consumer = broker.consumer()
    latest: bytes | None = None
    try:
        consumer.assign([tp])
        while consumer.position(tp) < high:
            records = consumer.poll(1000, timeout=1.0)
            if not records:
                break
            for record in records:
                if record.key == _KEY:
                    latest = record.value
    finally:
        consumer.close()
    return None if latest is None else msgspec.msgpack.decode(latest, type=Snapshot)
