"""Batch-stage state in its changelog: one record per key, written only for the keys that
changed, split into parts when large, read back as of the committed offsets."""

from __future__ import annotations

import numpy as np

from streamsense.brokers import MemoryBroker, TopicConfig, TopicPartition, Transaction
from streamsense.brokers.base import RECORD_LIMIT_BYTES, record_size
from streamsense.runtime.batch_state import META_KEY, read_state, state_records

TOPIC = "flow.features.state-changelog"
SOURCE = TopicPartition("clicks", 0)


def write(
    broker: MemoryBroker,
    offset: int,
    entries: list[tuple[bytes, bytes | None]],
    multipart: dict[bytes, int],
    part_bytes: int = 1 << 18,
) -> None:
    records = state_records(
        TOPIC, 0, {"clicks": offset}, f"at {offset}".encode(), entries, multipart, part_bytes
    )
    broker.commit_transaction(Transaction("g", after_offsets=records))


def test_latest_entries_and_the_latest_meta_within_the_committed_offsets() -> None:
    broker = MemoryBroker()
    broker.create_topic(TOPIC, TopicConfig(partitions=1))
    multipart: dict[bytes, int] = {}
    write(broker, 10, [(b"a", b"a1"), (b"b", b"b1")], multipart)
    write(broker, 20, [(b"a", b"a2"), (b"c", b"c1")], multipart)  # b unchanged: not written
    write(broker, 30, [(b"c", None)], multipart)  # offsets never committed
    state = read_state(broker, TOPIC, 0, {SOURCE: 25})
    assert state is not None and state.meta == b"at 20" and state.offsets == {"clicks": 20}
    # Entries are the latest of every key: the stage drops what its meta has not seen.
    assert dict(state.entries) == {b"a": b"a2", b"b": b"b1"}
    assert read_state(broker, TOPIC, 0, {SOURCE: 5}) is None
    assert read_state(broker, TOPIC, 0, {}) is None  # its source was never committed


def test_large_entries_are_split_and_joined_and_stale_parts_removed() -> None:
    broker = MemoryBroker()
    broker.create_topic(TOPIC, TopicConfig(partitions=1, compacted=True))
    big = np.arange(100_000, dtype=np.int64).tobytes()  # 800 kB: four parts of 256 kB
    multipart: dict[bytes, int] = {}
    write(broker, 10, [(b"big", big), (b"small", b"s")], multipart)
    assert multipart == {b"big": 4}
    records = state_records(TOPIC, 0, {"clicks": 11}, b"m", [(b"big", big[:300_000])], multipart)
    assert all(record_size(r) < RECORD_LIMIT_BYTES // 3 for r in records)
    assert [r.value is None for r in records] == [False, False, True, True, False]
    assert records[-1].key == META_KEY
    broker.commit_transaction(Transaction("g", after_offsets=records))
    state = read_state(broker, TOPIC, 0, {SOURCE: 11})
    assert state is not None and dict(state.entries) == {b"big": big[:300_000], b"small": b"s"}
    assert state.multipart == {b"big": 2}
    write(broker, 12, [(b"big", None)], multipart)
    state = read_state(broker, TOPIC, 0, {SOURCE: 12})
    assert state is not None and dict(state.entries) == {b"small": b"s"}


def test_parts_of_two_writes_are_not_mixed() -> None:
    """A write cut short after an entry's first part (at least once on Kafka) leaves parts
    of two writes: the state cannot be rebuilt from them, and the read says so."""
    broker = MemoryBroker()
    broker.create_topic(TOPIC, TopicConfig(partitions=1))
    write(broker, 10, [(b"k", b"x" * 30)], {}, part_bytes=10)
    cut = state_records(TOPIC, 0, {"clicks": 20}, b"m", [(b"k", b"y" * 30)], {}, 10)
    broker.commit_transaction(Transaction("g", after_offsets=cut[:1]))
    assert read_state(broker, TOPIC, 0, {SOURCE: 20}) is None
    broker.commit_transaction(Transaction("g", after_offsets=cut[1:]))  # the retry
    state = read_state(broker, TOPIC, 0, {SOURCE: 20})
    assert state is not None and dict(state.entries) == {b"k": b"y" * 30}
