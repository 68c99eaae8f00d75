"""Snapshots of batch-stage state, kept in a compacted topic per stage (one record per
partition) and committed in the same transaction as the outputs and offsets they match."""

from __future__ import annotations

import msgspec

from streamsense.brokers.base import Broker, OutRecord, TopicPartition
from streamsense.runtime.partition_read import read_partition

_KEY = b"snapshot"


class Snapshot(msgspec.Struct, frozen=True):
    offsets: dict[str, int]  # source topic -> next offset the state has seen
    state: bytes


def snapshot_record(topic: str, partition: int, snapshot: Snapshot) -> OutRecord:
    return OutRecord(topic, msgspec.msgpack.encode(snapshot), _KEY, partition=partition)


def read_snapshot(broker: Broker, topic: str, partition: int) -> Snapshot | None:
    latest: bytes | None = None
    for record in read_partition(broker, TopicPartition(topic, partition), batch=1000):
        if record.key == _KEY:
            latest = record.value
    return None if latest is None else msgspec.msgpack.decode(latest, type=Snapshot)
