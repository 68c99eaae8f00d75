"""The feature store end to end on the embedded broker: online views, backfill, offline
history, point-in-time training sets, verify, and plan/apply."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pytest

import streamsense as ss
from streamsense import features as F
from streamsense.brokers import EmbeddedBroker
from streamsense.runtime.worker import Worker
from streamsense.store.backfill import backfill, history_table
from streamsense.store.memory_online import MemoryOnlineStore
from streamsense.store.offline import OfflineStore
from streamsense.store.project import apply, load_registry, plan
from streamsense.store.training import training_set, training_set_from_history
from streamsense.store.verify import verify
from streamsense.store.views import OnlineFeatures, OnlineView
from streamsense.testing import drain_topic
from tests.apps.counter import Click, make_clicks
from tests.apps.windowed import FEATURES, clicks, emit

MINUTE = 60_000


def run_pipeline(
    broker: EmbeddedBroker, items: list[Click], online: MemoryOnlineStore | None
) -> F.FeatureStage:
    stage = F.FeatureStage("features", FEATURES, idle_timeout_ms=None, online=online)
    app = ss.App("store-test")
    app.flow(clicks).batch(stage).stage("emit", emit).sink(ss.TopicSink("store-test.out"))
    worker = Worker(app, broker)
    worker.ensure_topics()
    with broker.producer() as producer:
        for click in items:
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
    worker.run(until_caught_up=True)
    return stage


def log_entries(broker: EmbeddedBroker) -> list[dict[str, object]]:
    return [
        msgspec.json.decode(r.value or b"") for r in drain_topic(broker, "features.feature-log")
    ]


def test_online_reads_evaluate_windows_at_request_time(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "b.db")
    online = MemoryOnlineStore()
    items = make_clicks(300, users=9)
    stage = run_pipeline(broker, items, online)
    engine = stage.engine
    plan = engine.plans["user"]
    view = OnlineView(engine.view_name("user"), plan, online)
    last = max(c.ts for c in items)
    users = sorted({c.user for c in items})
    for at in (last, last + 5_000, last + 10 * MINUTE):
        served = view.get(users, at)
        for user, row in zip(users, served, strict=True):
            expected = engine.read(user, at)
            assert row == {k: expected[k] for k in row}, (user, at)
    whole = OnlineFeatures(FEATURES, online)
    payloads = [Click(user, 0, 0.0) for user in users]
    assert whole.vectors(payloads, [last] * len(users)) == view.get(users, last)
    later = view.get(users, last + 10 * MINUTE)
    assert all(row["n_10s"] == 0 for row in later)  # a rolling count decays to 0
    assert view.get(["nobody"], last)[0]["n_10s"] == 0
    broker.close()


def test_backfill_writes_the_vectors_the_stream_served_and_resumes(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "b.db")
    items = make_clicks(2_000, users=13)
    run_pipeline(broker, items, None)
    served = {e["event_id"]: e["features"] for e in log_entries(broker)}
    offline = OfflineStore(tmp_path / "offline")
    online = MemoryOnlineStore()
    calls = {"n": 0}

    def crash_after_two_chunks(n: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backfill(
            FEATURES,
            broker,
            tmp_path,
            offline=offline,
            online=online,
            chunk=300,
            progress=crash_after_two_chunks,
        )
    result = backfill(FEATURES, broker, tmp_path, offline=offline, online=online, chunk=300)
    assert 0 < result.events < 2_000  # the rerun continued where the first run stopped
    history = offline.read(history_table(FEATURES)).to_pylist()
    assert len(history) == 2_000
    assert len({row["event_id"] for row in history}) == 2_000
    for row in history:
        assert {k: row[k] for k in served[row["event_id"]]} == served[row["event_id"]]
    broker.close()


def test_point_in_time_training_sets_see_nothing_from_the_future(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "b.db")
    items = make_clicks(1_500, users=11)
    run_pipeline(broker, items, None)
    start = items[0].ts
    rng = np.random.default_rng(5)
    label_times = np.sort(rng.integers(start, items[-1].ts + 30_000, 200))
    users = [f"user-{i}" for i in rng.integers(0, 11, 200)]
    labels = pa.table({"user": users, "ts": label_times, "label": rng.integers(0, 2, 200)})
    table = training_set(FEATURES, broker, labels, key_column="user", time_column="ts")
    for row in table.to_pylist():
        window = [
            c for c in items if c.user == row["user"] and row["ts"] - 10_000 < c.ts <= row["ts"]
        ]
        assert row["n_10s"] == len(window)
        assert row["sum_10s"] == pytest.approx(sum(c.amount for c in window))
    delayed = training_set(
        FEATURES,
        broker,
        labels,
        key_column="user",
        time_column="ts",
        label_delay_ms=60_000,
        as_of_ms=int(label_times[100]) + 60_000,
    )
    assert delayed.num_rows == int((label_times + 60_000 <= label_times[100] + 60_000).sum())
    broker.close()


def test_training_set_from_history_joins_each_events_own_vector(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "b.db")
    run_pipeline(broker, make_clicks(500, users=5), None)
    offline = OfflineStore(tmp_path / "offline")
    backfill(FEATURES, broker, tmp_path, offline=offline)
    served = log_entries(broker)
    labels = pa.table({"event_id": [e["event_id"] for e in served[:50]], "label": [1] * 50})
    joined = training_set_from_history(FEATURES, offline, labels).to_pylist()
    by_id = {e["event_id"]: e["features"] for e in served}
    assert len(joined) == 50
    for row in joined:
        assert {k: row[k] for k in by_id[row["event_id"]]} == by_id[row["event_id"]]
    broker.close()


def test_verify_passes_and_catches_a_changed_definition(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "b.db")
    run_pipeline(broker, make_clicks(800, users=7), None)
    report = verify(FEATURES, broker, "features.feature-log", sample=300)
    assert report.ok and report.sampled == 300
    changed = F.FeatureGroup(clicks, key="user")
    for feature in FEATURES.features:
        assert isinstance(feature, F.Feature)
        window = F.rolling("20s") if feature.name == "n_10s" else feature.window
        changed.add(feature.name, feature.aggregation, window)
    report = verify(
        F.FeatureSet("windowed", changed.features), broker, "features.feature-log", sample=300
    )
    assert not report.ok
    assert report.features["n_10s"].mismatched > 0
    assert report.features["sum_10s"].mismatched == 0
    broker.close()


def test_plan_and_apply_version_changed_definitions(tmp_path: Path) -> None:
    registry = tmp_path / "registry.json"
    first = plan([FEATURES], load_registry(registry))
    assert sorted(first.added) == sorted(f"windowed.{n}" for n in FEATURES.names)
    apply([FEATURES], registry)
    assert plan([FEATURES], load_registry(registry)).empty
    changed = F.FeatureGroup(clicks, key="user")
    changed.add("n_10s", F.count(), F.rolling("20s"))
    changes = apply([F.FeatureSet("windowed", changed.features)], registry)
    assert changes.changed == ["windowed.n_10s"]
    assert sorted(changes.removed) == sorted(
        f"windowed.{n}" for n in FEATURES.names if n != "n_10s"
    )
    assert load_registry(registry)["windowed.n_10s"]["version"] == 2


def test_an_events_own_features_from_the_online_store_equal_the_streams(tmp_path: Path) -> None:
    """Deciding on an event before the stream processed it: the store's windows plus the
    event itself give exactly the vector the stream later gives that event."""
    items = make_clicks(400, users=6)
    online = MemoryOnlineStore()
    before = EmbeddedBroker(tmp_path / "before.db")
    run_pipeline(before, items[:300], online)  # the store as of event 300
    after = EmbeddedBroker(tmp_path / "after.db")
    run_pipeline(after, items, None)  # the stream, event 300 included
    served = {e["event_id"]: e["features"] for e in log_entries(after)}
    ids = {
        (c.user, c.ts): f"wclicks/{r.partition}/{r.offset}"
        for r in drain_topic(after, "wclicks")
        for c in [msgspec.json.decode(r.value or b"", type=Click)]
    }
    click = items[300]
    got = OnlineFeatures(FEATURES, online).matrix([click], [click.ts], include_events=True)[0]
    assert (
        dict(zip(FEATURES.names, got.tolist(), strict=True)) == served[ids[(click.user, click.ts)]]
    )
    before.close()
    after.close()
