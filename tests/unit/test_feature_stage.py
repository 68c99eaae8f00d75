from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest

import streamsense as ss
from streamsense import features as F
from streamsense.brokers import EmbeddedBroker, MemoryBroker
from streamsense.brokers.log import LogBroker
from streamsense.errors import ConfigError
from streamsense.runtime.restore import Restorer
from streamsense.runtime.topology import Topology
from streamsense.runtime.worker import Worker, WorkerConfig
from streamsense.testing import ManualClock, drain_topic
from tests.apps.counter import Click, make_clicks
from tests.apps.windowed import FEATURES, build, clicks


def feed(broker: LogBroker, items: list[Click], app: ss.App) -> None:
    Worker(app, broker).ensure_topics()
    with broker.producer() as producer:
        for click in items:
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)


def shuffled_clicks(n: int) -> list[Click]:
    """Mostly in order, some out of order, a few late."""
    items = make_clicks(n, users=7)
    rng = np.random.default_rng(3)
    return [Click(c.user, c.ts - int(rng.choice([0, 0, 0, 1500, 4000])), c.amount) for c in items]


def outputs(broker: LogBroker, topic: str = "windowed.features") -> list[tuple[int, bytes | None]]:
    return [(r.partition, r.value) for r in drain_topic(broker, topic)]


def test_realtime_and_microbatch_give_identical_features_late_events_and_windows() -> None:
    results = []
    for config in (WorkerConfig(mode="realtime"), WorkerConfig(batch_size=37), WorkerConfig()):
        broker = MemoryBroker()
        app = build(allowed_lateness_ms=2000, idle_timeout_ms=None)
        feed(broker, shuffled_clicks(400), app)
        Worker(app, broker, config).run(until_caught_up=True)
        results.append(
            (outputs(broker), outputs(broker, "wclicks.late"), outputs(broker, "features.windows"))
        )
    assert results[0] == results[1] == results[2]
    features, late, windows = results[0]
    assert len(features) + len(late) == 400
    assert late and windows


def test_features_after_a_restart_equal_a_straight_run(tmp_path: Path) -> None:
    straight = MemoryBroker()
    app = build(allowed_lateness_ms=2000, idle_timeout_ms=None)
    items = shuffled_clicks(600)
    feed(straight, items, app)
    Worker(app, straight).run(until_caught_up=True)
    broker = EmbeddedBroker(tmp_path / "log.db")
    config = WorkerConfig(batch_size=50, snapshot_every_events=120)
    feed(broker, items[:250], build())
    Worker(build(allowed_lateness_ms=2000, idle_timeout_ms=None), broker, config).run(
        until_caught_up=True
    )
    feed(broker, items[250:], build())
    # A new worker (a restart) restores the state and continues.
    restarted = Worker(build(allowed_lateness_ms=2000, idle_timeout_ms=None), broker, config)
    restarted.run(until_caught_up=True)
    assert sorted(outputs(broker)) == sorted(outputs(straight))
    broker.close()


def test_replay_after_an_unclean_stop_rebuilds_state_without_writing_twice(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "log.db")
    items = shuffled_clicks(500)
    feed(broker, items, build())
    config = WorkerConfig(batch_size=40, snapshot_every_events=100)
    first = Worker(build(allowed_lateness_ms=2000, idle_timeout_ms=None), broker, config)
    first._restorer.state_due = lambda *a, **k: []  # type: ignore[method-assign]
    first.run(until_caught_up=True)  # committed offsets, but no state written at all
    second = Worker(build(allowed_lateness_ms=2000, idle_timeout_ms=None), broker, config)
    feed(broker, items[:100], build())  # the same clicks again, later in the log
    stats = second.run(until_caught_up=True)
    assert stats.replayed_events == 500 and stats.events == 100
    straight = MemoryBroker()
    feed(straight, items + items[:100], build())
    Worker(build(allowed_lateness_ms=2000, idle_timeout_ms=None), straight).run(
        until_caught_up=True
    )
    assert sorted(outputs(broker)) == sorted(outputs(straight))
    broker.close()


def test_idle_partitions_close_windows_by_the_injected_clock() -> None:
    clock = ManualClock(start_ms=1_600_000_000_000)
    stage = F.FeatureStage("f", FEATURES, idle_timeout_ms=5000, clock=clock)
    event = ss.Event("u", 1_600_000_001_000, Click("u", 1_600_000_001_000, 2.0), "wclicks", 0, 0, 0)
    stage.process_batch(0, [event], [event.payload])
    assert stage.on_idle(0, clock.now_ms()) == []
    clock.advance(60_000)
    closed = stage.on_idle(0, clock.now_ms())
    assert [msgspec.json.decode(r.value or b"")["feature"] for r in closed] == ["n_tumbling_30s"]


def test_tumbling_windows_emit_each_final_value_once() -> None:
    engine = F.FeatureEngine(FEATURES)
    times = np.arange(0, 100_000, 1000, dtype=np.int64)
    columns = {"user": np.array(["a", "b"] * 50), "amount": np.ones(100)}
    finals = []
    for lo in range(0, 100, 13):
        finals += engine.process(0, times[lo : lo + 13], columns_slice(columns, lo, lo + 13)).finals
    tumbling = [(f.key, f.start, f.value) for f in finals if f.feature == "n_tumbling_30s"]
    assert sorted(tumbling) == sorted(
        (user, start, 15.0) for user in ("a", "b") for start in (0, 30_000, 60_000)
    )


def columns_slice(columns: dict[str, np.ndarray], lo: int, hi: int) -> dict[str, np.ndarray]:
    return {k: v[lo:hi] for k, v in columns.items()}


class SumOfSquares:
    def create(self) -> float:
        return 0.0

    def update(self, acc: float, value: float) -> float:
        return acc + value * value

    def revert(self, acc: float, value: float) -> float:
        return acc - value * value

    def merge(self, left: float, right: float) -> float:
        return left + right

    def result(self, acc: float) -> float:
        return acc


def test_user_defined_aggregators_fold_the_same_windows() -> None:
    group = F.FeatureGroup(clicks, key="user")
    group.add("squares", F.custom(SumOfSquares(), "amount"), F.rolling("5s"))
    group.add("n", F.count(), F.rolling("5s"))
    engine = F.FeatureEngine(F.FeatureSet("udf", group.features))
    items = shuffled_clicks(200)
    times = np.array([c.ts for c in items], np.int64)
    columns = {
        "user": np.array([c.user for c in items]),
        "amount": np.array([c.amount for c in items]),
    }
    result = engine.process(0, times, columns)
    for i, click in enumerate(items):
        if result.late[i]:
            continue
        window = [
            c.amount
            for j, c in enumerate(items[: i + 1])
            if not result.late[j] and c.user == click.user and click.ts - 5000 < c.ts <= click.ts
        ]
        assert result.values[i, 0] == sum(a * a for a in window)
        assert result.values[i, 1] == len(window)


def test_state_stays_bounded_over_an_unbounded_stream() -> None:
    """Keys come and go for a simulated year; what the engine holds stays flat."""
    group = F.FeatureGroup(clicks, key="user", ttl="2d")
    group.add("n_1h", F.count(), F.rolling("1h"))
    group.add("last_3", F.max("amount"), F.last_n(3))
    group.add("session", F.count(), F.session("10m"))
    engine = F.FeatureEngine(F.FeatureSet("bounded", group.features))
    sizes = []
    for day in range(365):
        times = day * 86_400_000 + np.arange(0, 86_400_000, 86_400, dtype=np.int64)
        users = np.array([f"user-{day}-{i % 50}" for i in range(len(times))])
        engine.process(0, times, {"user": users, "amount": np.ones(len(times))})
        buffer = engine.partition(0).groups["user"].buffer
        sizes.append((buffer.live_events, len(buffer.slot_of), len(buffer.ptime)))
    assert max(s[0] for s in sizes[30:]) <= 2 * max(s[0] for s in sizes[:30])
    assert max(s[1] for s in sizes[30:]) <= 200  # keys of the last two days at most
    assert max(s[2] for s in sizes[30:]) <= 4 * max(s[2] for s in sizes[:30])


def test_the_workers_idle_check_runs_on_its_injected_clock() -> None:
    clock = ManualClock(start_ms=1_600_000_000_000)
    stage = F.FeatureStage("f", FEATURES, idle_timeout_ms=5000, clock=clock)
    app = ss.App("idle")
    app.flow(clicks).batch(stage).sink(ss.TopicSink("idle.out"))
    restorer = Restorer(Topology.of(app), MemoryBroker(), WorkerConfig(), clock)
    event = ss.Event("u", 1_600_000_001_000, Click("u", 1_600_000_001_000, 2.0), "wclicks", 0, 0, 0)
    stage.process_batch(0, [event], [event.payload])
    clock.advance(2_000)
    assert restorer.idle([0]) == {}  # 2 s quiet: under the idle timeout
    clock.advance(60_000)  # no real time passes: only the injected clock says it is idle
    [closed] = restorer.idle([0]).values()
    assert [msgspec.json.decode(r.value or b"")["feature"] for r in closed] == ["n_tumbling_30s"]


def test_features_kept_by_column_are_the_vectors_and_late_events_still_go_late() -> None:
    # vectors=False: payloads pass on (None for late ones) and the batch's features are one
    # matrix, a row per event that went on: the same numbers the Enriched vectors carry.
    items = shuffled_clicks(300)
    events = [ss.Event(str(c.user), c.ts, c, clicks.topic, 0, i, c.ts) for i, c in enumerate(items)]
    per_event = F.FeatureStage("f", FEATURES, allowed_lateness_ms=2000, feature_log=False)
    by_column = F.FeatureStage(
        "f", FEATURES, allowed_lateness_ms=2000, feature_log=False, vectors=False
    )
    for lo in range(0, len(items), 64):
        batch, payloads = events[lo : lo + 64], items[lo : lo + 64]
        enriched, late_a = per_event.process_batch(0, batch, list(payloads))
        passed, late_b = by_column.process_batch(0, batch, list(payloads))
        assert late_a == late_b
        assert passed == [None if e is None else e.payload for e in enriched]
        vectors = [list(e.features.values()) for e in enriched if e is not None]
        assert by_column.batch_columns(0).tolist() == vectors
    assert per_event.late_events == by_column.late_events > 0


def test_the_feature_log_needs_the_vectors() -> None:
    with pytest.raises(ConfigError, match="feature log"):
        F.FeatureStage("f", FEATURES, vectors=False)


def test_a_clean_stop_writes_the_state_changed_since_the_last_write(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "log.db")
    items = shuffled_clicks(300)
    feed(broker, items, build())
    # An interval the run never reaches: only the clean stop writes the state.
    config = WorkerConfig(batch_size=40, snapshot_every_events=10**9, snapshot_every_s=10**6)
    Worker(build(allowed_lateness_ms=2000, idle_timeout_ms=None), broker, config).run(
        until_caught_up=True
    )
    feed(broker, items[:50], build())
    again = Worker(build(allowed_lateness_ms=2000, idle_timeout_ms=None), broker, config)
    stats = again.run(until_caught_up=True)
    assert stats.replayed_events == 0 and stats.events == 50  # restored as of the stop
    straight = MemoryBroker()
    feed(straight, items + items[:50], build())
    Worker(build(allowed_lateness_ms=2000, idle_timeout_ms=None), straight).run(
        until_caught_up=True
    )
    assert sorted(outputs(broker)) == sorted(outputs(straight))
    broker.close()
