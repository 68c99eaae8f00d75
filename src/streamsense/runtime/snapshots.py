"""Snapshots of batch-stage state, kept in a compacted topic per stage (one record per
partition), written with the commit of the offsets they match (atomically, or right after
it where the broker cannot: Kafka at least once)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from streamsense.brokers.base import Broker, OutRecord, TopicPartition
from streamsense.runtime.partition_read import read_partition

_KEY = b"snapshot"


class Snapshot(msgspec.Struct, frozen=True):
    offsets: dict[str, int]  # source topic -> next offset the state has seen
    state: bytes


def snapshot_record(topic: str, partition: int, snapshot: Snapshot) -> OutRecord:
    return OutRecord(topic, msgspec.msgpack.encode(snapshot), _KEY, partition=partition)


def read_snapshot(
    broker: Broker,
    topic: str,
    partition: int,
    committed: Mapping[TopicPartition, int] | None = None,
) -> Snapshot | None:
    """The partition's latest snapshot, or with ``committed``, the latest one taken at
    offsets the group has committed: a later one holds events that will be processed again.
    Snapshots follow their offsets' commit, so that is the latest one but for snapshots
    written by earlier versions."""
    chosen: Snapshot | None = None
    for record in read_partition(broker, TopicPartition(topic, partition), batch=1000):
        if record.key != _KEY or record.value is None:
            continue
        snapshot = msgspec.msgpack.decode(record.value, type=Snapshot)
        if committed is None or _covered(snapshot, partition, committed):
            chosen = snapshot
    return chosen


def _covered(snapshot: Snapshot, partition: int, committed: Mapping[TopicPartition, int]) -> bool:
    for source, offset in snapshot.offsets.items():
        done = committed.get(TopicPartition(source, partition))
        if done is None or offset > done:
            return False
    return True
