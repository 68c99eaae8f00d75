"""A restore uses the latest snapshot taken at offsets the group has committed: one taken
later holds events that will be processed again, and restoring it would count them twice."""

from __future__ import annotations

from streamsense.brokers import MemoryBroker, TopicConfig, TopicPartition, Transaction
from streamsense.runtime.snapshots import Snapshot, read_snapshot, snapshot_record

TOPIC = "flow.features.snapshots"


def write(broker: MemoryBroker, offsets: dict[str, int], state: bytes) -> None:
    record = snapshot_record(TOPIC, 0, Snapshot(offsets, state))
    broker.commit_transaction(Transaction("g", after_offsets=[record]))


def test_the_latest_snapshot_within_the_committed_offsets_is_chosen() -> None:
    broker = MemoryBroker()
    broker.create_topic(TOPIC, TopicConfig(partitions=1))
    write(broker, {"clicks": 10, "clicks.priority": 0}, b"at 10")
    write(broker, {"clicks": 20, "clicks.priority": 3}, b"at 20")
    write(broker, {"clicks": 30, "clicks.priority": 3}, b"at 30")  # offsets never committed
    committed = {TopicPartition("clicks", 0): 25, TopicPartition("clicks.priority", 0): 3}
    chosen = read_snapshot(broker, TOPIC, 0, committed)
    assert chosen is not None and chosen.state == b"at 20"
    latest = read_snapshot(broker, TOPIC, 0)
    assert latest is not None and latest.state == b"at 30"
    lane_behind = {TopicPartition("clicks", 0): 25, TopicPartition("clicks.priority", 0): 2}
    chosen = read_snapshot(broker, TOPIC, 0, lane_behind)
    assert chosen is not None and chosen.state == b"at 10"


def test_without_a_snapshot_within_the_committed_offsets_there_is_none() -> None:
    broker = MemoryBroker()
    broker.create_topic(TOPIC, TopicConfig(partitions=1, compacted=True))
    write(broker, {"clicks": 10}, b"at 10")
    write(broker, {"clicks": 30}, b"at 30")  # compaction leaves only this one
    assert read_snapshot(broker, TOPIC, 0, {TopicPartition("clicks", 0): 25}) is None
    assert read_snapshot(broker, TOPIC, 0, {}) is None  # its source was never committed
    latest = read_snapshot(broker, TOPIC, 0)
    assert latest is not None and latest.state == b"at 30"
