"""Priority lanes: high-priority events live in their own topic and overtake a backlog."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

import streamsense as ss
from streamsense import features as F
from streamsense.brokers import EmbeddedBroker, MemoryBroker, TopicPartition
from streamsense.brokers.log import LogBroker
from streamsense.errors import ConfigError
from streamsense.runtime.batch_state import read_state
from streamsense.runtime.ingest import ingest_file
from streamsense.runtime.lag import group_lag
from streamsense.runtime.worker import Worker, WorkerConfig
from streamsense.store.backfill import backfill
from streamsense.testing import drain_topic
from tests.apps.counter import Click, count, make_clicks

URGENT_AMOUNT = 999.0


def urgent(click: Click) -> bool:
    return click.amount >= URGENT_AMOUNT


def lane_stream(*, lanes: bool = True) -> ss.Stream[Click]:
    return ss.Stream(
        "clicks", Click, key="user", time="ts", partitions=3, priority=urgent if lanes else None
    )


def test_the_priority_function_routes_to_a_copartitioned_lane_topic(tmp_path: Path) -> None:
    stream = lane_stream()
    normal, high = Click("u1", 1, 1.0), Click("u1", 2, URGENT_AMOUNT)
    assert stream.to_record(normal).topic == "clicks"
    assert stream.to_record(high).topic == "clicks.priority"
    assert stream.topic_configs()["clicks.priority"] == stream.topic_configs()["clicks"]
    app = ss.App("lanes")
    app.flow(stream).stage("count", count).sink(ss.TopicSink("lanes.out"))
    assert app.lane_ranks() == {"clicks": 1, "clicks.priority": 0}
    # File ingest routes row by row; a row that does not parse stays in the normal lane.
    broker = MemoryBroker()
    Worker(app, broker).ensure_topics()
    path = tmp_path / "clicks.jsonl"
    lines = [msgspec.json.encode(c) for c in (normal, high, normal)] + [b"{broken"]
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert ingest_file(broker, stream, path) == 4
    assert len(drain_topic(broker, "clicks")) == 3
    [moved] = drain_topic(broker, "clicks.priority")
    assert moved.value == lines[1]
    # Same key, same partition number in both lanes (so it meets the same keyed state).
    first = next(r for r in drain_topic(broker, "clicks") if r.value == lines[0])
    assert moved.partition == first.partition


def run_with_a_late_urgent_event(
    broker: LogBroker, *, lanes: bool, backlog: int, urgent_after: int
) -> tuple[list[str], ss.WorkerStats]:
    """A backlog of ordinary clicks; while the worker drains it, an urgent click arrives.
    Returns the order the worker processed the events in."""
    stream = lane_stream(lanes=lanes)
    order: list[str] = []
    producer = broker.producer()

    def observe(click: Click, ctx: ss.Context) -> dict[str, Any]:
        order.append("urgent" if urgent(click) else "normal")
        if len(order) == urgent_after:  # the urgent event is produced mid-drain
            out = stream.to_record(Click("user-3", click.ts, URGENT_AMOUNT))
            producer.send(out.topic, out.value, out.key)
            producer.flush()
        return count(click, ctx)

    app = ss.App("lanes")
    app.flow(stream).stage("count", observe).sink(ss.TopicSink("lanes.out"))
    Worker(app, broker).ensure_topics()
    with broker.producer() as feed:
        for click in make_clicks(backlog):
            out = stream.to_record(click)
            feed.send(out.topic, out.value, out.key)
    config = WorkerConfig(batch_size=20, poll_timeout_s=0.005)
    stats = Worker(app, broker, config).run(until_caught_up=True)
    producer.close()
    return order, stats


@pytest.mark.parametrize("kind", ["memory", "embedded"])
def test_an_urgent_event_overtakes_the_backlog(kind: str, tmp_path: Path) -> None:
    broker: LogBroker = MemoryBroker() if kind == "memory" else EmbeddedBroker(tmp_path / "l.db")
    order, stats = run_with_a_late_urgent_event(broker, lanes=True, backlog=3000, urgent_after=100)
    position = order.index("urgent")
    # Behind it at most what was buffered when it arrived: 3 partitions x 40 records.
    assert 100 <= position <= 100 + 3 * 40 + 20
    assert stats.priority_events == 1 and stats.events == 3001
    outputs = drain_topic(broker, "lanes.out")
    assert len({dict(r.headers)["source"] for r in outputs}) == len(outputs) == 3001
    assert group_lag(broker, "lanes", ["clicks", "clicks.priority"]).total == 0
    broker.close()


def test_without_lanes_the_same_event_waits_for_the_whole_backlog() -> None:
    order, _ = run_with_a_late_urgent_event(
        MemoryBroker(), lanes=False, backlog=3000, urgent_after=100
    )
    assert order.index("urgent") == 3000


def feature_app(stream: ss.Stream[Click]) -> ss.App:
    group = F.FeatureGroup(stream, key="user")
    group.add("n_10s", F.count(), F.rolling("10s"))
    group.add("sum_1m", F.sum("amount"), F.rolling("1m"))
    features = F.FeatureSet("lanes", group.features)
    stage = F.FeatureStage("features", features, allowed_lateness_ms=60_000, idle_timeout_ms=None)

    def emit(value: F.Enriched, ctx: ss.Context) -> dict[str, Any]:
        return {"user": ctx.key, "ts": ctx.event_time, **value.features}

    app = ss.App("lanes")
    app.flow(stream).batch(stage).stage("emit", emit).sink(ss.TopicSink("lanes.features"))
    return app


def produce(broker: LogBroker, stream: ss.Stream[Click], clicks: list[Click]) -> None:
    with broker.producer() as producer:
        for click in clicks:
            out = stream.to_record(click)
            producer.send(out.topic, out.value, out.key)


def features_by_event(broker: LogBroker) -> dict[tuple[str, int], Any]:
    rows = [msgspec.json.decode(r.value or b"") for r in drain_topic(broker, "lanes.features")]
    return {(row.pop("user"), row.pop("ts")): row for row in rows}


def test_batch_stage_state_restores_across_both_lanes(tmp_path: Path) -> None:
    """Part one goes to both lanes (the priority lane is read first and runs ahead in event
    time); a restarted worker restores state holding both lanes' offsets, replays both,
    and computes part two exactly as a plain single-topic run does. Nothing of the
    overtaken backlog is late: only the base topic moves the watermark."""
    clicks = make_clicks(600, users=5)
    # A backlog, then newer events of which every other one is urgent.
    first = clicks[:250] + [
        Click(c.user, c.ts, URGENT_AMOUNT if i % 2 else c.amount)
        for i, c in enumerate(clicks[250:300])
    ]
    plain = ss.Stream("clicks", Click, key="user", time="ts", partitions=3)
    straight = MemoryBroker()
    Worker(feature_app(plain), straight).ensure_topics()
    produce(straight, plain, first + clicks[300:])
    Worker(feature_app(plain), straight).run(until_caught_up=True)

    stream = lane_stream()
    broker = EmbeddedBroker(tmp_path / "log.db")
    config = WorkerConfig(batch_size=30, snapshot_every_events=50)
    Worker(feature_app(stream), broker).ensure_topics()
    produce(broker, stream, first)
    stopped = Worker(feature_app(stream), broker, config)
    # It stops as a crash right after its last commit would, without the clean stop's state
    # write: the state is as of earlier offsets, and the restart replays both lanes from there.
    stopped._restorer.unwritten = lambda *_: False  # type: ignore[method-assign]
    stopped.run(until_caught_up=True)
    everything = {
        TopicPartition(t, p): 10**9 for t in ("clicks", "clicks.priority") for p in range(3)
    }
    states = [read_state(broker, "lanes.features.state-changelog", p, everything) for p in range(3)]
    offsets = [set(s.offsets) for s in states if s is not None]
    assert offsets and all(o == {"clicks", "clicks.priority"} for o in offsets)
    produce(broker, stream, clicks[300:])
    stats = Worker(feature_app(stream), broker, config).run(until_caught_up=True)
    assert stats.events == 300 and stats.replayed_events > 0
    assert drain_topic(broker, "clicks.late") == []
    lanes, expected = features_by_event(broker), features_by_event(straight)
    assert len(lanes) == len(expected) == 600
    second = {(c.user, c.ts) for c in clicks[300:]}
    assert {k: lanes[k] for k in second} == {k: expected[k] for k in second}
    broker.close()


def test_replays_of_one_log_refuse_a_stream_with_a_priority_lane(tmp_path: Path) -> None:
    group = F.FeatureGroup(lane_stream(), key="user")
    group.add("n_10s", F.count(), F.rolling("10s"))
    broker = MemoryBroker()
    with pytest.raises(ConfigError, match="priority lane") as refused:
        backfill(F.FeatureSet("lanes", group.features), broker, tmp_path)
    assert not refused.value.retryable
