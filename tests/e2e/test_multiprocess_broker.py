"""Several processes share one embedded broker file at once: producers writing the same
topic concurrently and two consumers of one group splitting it."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from streamsense.brokers import EmbeddedBroker, TopicConfig, TopicPartition
from streamsense.testing import drain_topic

PER_PRODUCER = 5_000


def _produce(path: str, producer_id: int) -> None:
    broker = EmbeddedBroker(path)
    with broker.producer(batch_size=200) as producer:
        for i in range(PER_PRODUCER):
            producer.send("shared", f"{producer_id}:{i}".encode(), f"k{i % 31}".encode())
    broker.close()


def _consume(path: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    broker = EmbeddedBroker(path)
    consumer = broker.consumer("readers", session_timeout_ms=3_000)
    consumer.subscribe(["shared"])
    seen = []
    idle = 0
    while idle < 30:
        records = consumer.poll(1000, timeout=0.1)
        idle = 0 if records else idle + 1
        seen.extend((r.partition, r.offset) for r in records)
        consumer.commit()
    consumer.close()
    results.put(seen)


def test_concurrent_producers_and_a_group_of_consumer_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "broker.db")
    broker = EmbeddedBroker(path)
    broker.create_topic("shared", TopicConfig(partitions=4))
    context = multiprocessing.get_context("spawn")
    producers = [context.Process(target=_produce, args=(path, n)) for n in range(3)]
    for process in producers:
        process.start()
    for process in producers:
        process.join(timeout=120)
        assert process.exitcode == 0
    records = drain_topic(broker, "shared")
    assert len(records) == 3 * PER_PRODUCER
    for p in range(4):
        offsets = [r.offset for r in records if r.partition == p]
        assert offsets == list(range(len(offsets)))  # no gap, no duplicate offset
    for producer_id in range(3):
        for p in range(4):
            mine = [
                int((r.value or b"").split(b":")[1])
                for r in records
                if r.partition == p and (r.value or b"").startswith(f"{producer_id}:".encode())
            ]
            assert mine == sorted(mine)  # each producer's order holds within a partition
    results = context.Queue()
    consumers = [context.Process(target=_consume, args=(path, results)) for _ in range(2)]
    for process in consumers:
        process.start()
    seen = results.get(timeout=120) + results.get(timeout=120)
    for process in consumers:
        process.join(timeout=60)
    # Plain consumers are at least once: a rebalance may hand over a partition between a
    # poll and its commit, so a record can be seen twice, but none is missed.
    assert set(seen) == {(r.partition, r.offset) for r in records}
    tps = [TopicPartition("shared", p) for p in range(4)]
    assert sum(v or 0 for v in broker.committed("readers", tps).values()) == 3 * PER_PRODUCER
    broker.close()
