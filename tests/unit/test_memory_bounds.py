"""Memory bounds of issue #21: large events wait in the broker, not in the worker (intake
buffers hold at most ``buffer_bytes`` a partition), and late events, however many, cost
one output record each and nothing the engine keeps."""

from __future__ import annotations

import msgspec
import numpy as np

import streamsense as ss
from streamsense import features as F
from streamsense.brokers import MemoryBroker
from streamsense.brokers.base import Record, TopicPartition
from streamsense.runtime.intake import Intake
from streamsense.runtime.worker import Worker, WorkerConfig
from streamsense.testing import drain_topic
from tests.apps.windowed import clicks as windowed_clicks

TP = TopicPartition("big", 0)


def records(n: int, size: int, start: int = 0) -> list[Record]:
    return [Record("big", 0, start + i, 0, b"k", b"x" * size) for i in range(n)]


def test_a_buffer_holds_no_more_bytes_than_its_budget_and_pauses_when_short() -> None:
    intake = Intake(1000, {"big": 1}, max_bytes=1000)
    refused = intake.add(records(10, 300))
    assert refused == {TP: 3} and intake.size(TP) == 3 and intake.largest_bytes == 900
    assert intake.full(TP) and not intake.drained(TP)  # short: the partition pauses
    intake.take(2)
    assert not intake.full(TP) and not intake.drained(TP)  # 300 bytes: over the low mark
    intake.take(1)
    assert intake.drained(TP)


def test_one_record_larger_than_the_budget_still_goes_through_alone() -> None:
    intake = Intake(1000, {"big": 1}, max_bytes=1000)
    assert intake.add(records(2, 5000)) == {TP: 1}
    assert [r.offset for r in intake.take(10)] == [0]
    assert intake.add(records(1, 5000, start=1)) == {} and intake.take(10)[0].offset == 1


class Blob(ss.Schema):
    user: str
    ts: int
    body: str


blobs = ss.Stream("blobs", Blob, key="user", time="ts", partitions=2, max_bytes=64 * 1024)


def test_a_worker_reading_large_events_holds_at_most_its_byte_budget() -> None:
    app = ss.App("blobs")
    app.flow(blobs).stage("size", lambda b, ctx: {"n": len(b.body)}).sink(
        ss.TopicSink("blobs.sizes")
    )
    broker = MemoryBroker()
    Worker(app, broker).ensure_topics()
    with broker.producer() as producer:
        for i in range(200):  # 10 MB in all: the count bound alone (2,000) holds it all
            out = blobs.to_record(Blob(f"u{i % 5}", i, "x" * 50_000))
            producer.send(out.topic, out.value, out.key)
    config = WorkerConfig(batch_size=1000, buffer_bytes=400_000, poll_timeout_s=0.005)
    stats = Worker(app, broker, config).run(until_caught_up=True)
    assert stats.largest_buffer_bytes <= 400_000
    assert stats.largest_buffer <= 8  # 50 KB events: the bytes bound them, not the count
    sizes = [msgspec.json.decode(r.value or b"")["n"] for r in drain_topic(broker, "blobs.sizes")]
    assert sizes == [50_000] * 200  # every one processed, once


def test_a_flood_of_late_events_leaves_the_engine_as_it_was() -> None:
    group = F.FeatureGroup(windowed_clicks, key="user")
    group.add("n_1h", F.count(), F.rolling("1h"))
    engine = F.FeatureEngine(F.FeatureSet("late", group.features))
    now = 1_700_000_000_000
    times = now + np.arange(100, dtype=np.int64)
    engine.process(0, times, {"user": np.array(["u"] * 100), "amount": np.ones(100)})
    buffer = engine.partition(0).groups["user"].buffer
    held = (buffer.live_events, len(buffer.slot_of))
    for batch in range(20):  # 100,000 events from a day before, each for a new key
        late = np.full(5_000, now - 86_400_000, np.int64)
        users = np.array([f"late-{batch}-{i}" for i in range(5_000)])
        result = engine.process(0, late, {"user": users, "amount": np.ones(5_000)})
        assert bool(result.late.all())
    assert (buffer.live_events, len(buffer.slot_of)) == held
