"""Offsets handed to the background writer: merged while a store runs, stored in order, and
``wait`` returns only once everything handed over is stored."""

from __future__ import annotations

import threading

from streamsense.brokers.base import TopicPartition
from streamsense.brokers.pulsar_commits import BackgroundOffsets

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


def test_offsets_handed_over_during_a_store_are_merged_and_stored_once() -> None:
    stored: list[tuple[str, dict[TopicPartition, int]]] = []
    started, release = threading.Event(), threading.Event()

    def store(group: str, offsets: dict[TopicPartition, int]) -> None:
        started.set()
        assert release.wait(10)
        stored.append((group, dict(offsets)))

    writer = BackgroundOffsets(store)
    writer.submit("g", {A: 1})
    assert started.wait(10)  # the first store is running
    writer.submit("g", {A: 2, B: 5})
    writer.submit("g", {A: 3})
    release.set()
    writer.wait()
    assert stored == [("g", {A: 1}), ("g", {A: 3, B: 5})]


def test_a_failed_store_is_logged_and_the_writer_goes_on() -> None:
    from streamsense.errors import BrokerUnavailable

    stored: list[dict[TopicPartition, int]] = []

    def store(group: str, offsets: dict[TopicPartition, int]) -> None:
        if offsets.get(A) == 1:
            raise BrokerUnavailable("admin API down")
        stored.append(dict(offsets))

    writer = BackgroundOffsets(store)
    writer.submit("g", {A: 1})
    writer.wait()
    writer.submit("g", {A: 2})
    writer.wait()
    assert stored == [{A: 2}]
