"""Keyed state restored as of the committed offsets: at least once on Kafka writes the
changelog before the offsets, so a changelog can run ahead of what the group committed."""

from __future__ import annotations

from streamsense.brokers import MemoryBroker
from streamsense.brokers.base import TopicConfig, TopicPartition
from streamsense.runtime.state import StateStore

CHANGELOG = "app.emit.changelog"
SOURCE = TopicPartition("clicks", 0)


def write(broker: MemoryBroker, store: StateStore, offsets: dict[TopicPartition, int]) -> None:
    with broker.producer() as producer:
        for r in store.take_changes(offsets):
            producer.send(r.topic, r.value, r.key, partition=r.partition, headers=r.headers)


def test_a_changelog_ahead_of_the_committed_offsets_is_read_as_of_them() -> None:
    broker = MemoryBroker()
    # Not compacted here: Kafka compacts lazily (closed segments only), so the older values
    # are still there when a restore reads them; the memory broker would compact at once.
    broker.create_topic(CHANGELOG, TopicConfig(1))
    store = StateStore({"emit": CHANGELOG})
    store.state("emit", 0, "u").set(1)
    write(broker, store, {SOURCE: 5})  # committed below
    store.state("emit", 0, "u").set(2)
    store.state("emit", 0, "v").set(7)  # v has no committed value at all
    write(broker, store, {SOURCE: 9})  # written, but its offsets never committed

    restored = StateStore({"emit": CHANGELOG})
    assert restored.restore(broker, [0], {SOURCE: 5}) == 2
    assert restored.state("emit", 0, "u").get() == 1  # not 2: events 5..8 will run again
    assert restored.state("emit", 0, "v").get() == 7  # nothing older left: the newest
    restored.restore(broker, [0], {SOURCE: 9})
    assert restored.state("emit", 0, "u").get() == 2
    restored.restore(broker, [0], {SOURCE: None})  # nothing committed yet
    assert restored.state("emit", 0, "u").get() == 2  # only uncommitted values: newest
    restored.restore(broker, [0])  # no offsets given: every record counts, as before
    assert restored.state("emit", 0, "u").get() == 2
