"""The operator UI's view models, auth and actions over the in-memory broker (no browser:
tests/e2e/test_ui_browser.py drives one), and every page rendered through the web app."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec
import numpy as np
import pytest
from fastapi.testclient import TestClient

import streamsense as ss
from streamsense.brokers.base import Record, TopicPartition
from streamsense.errors import InvalidEvent
from streamsense.monitoring.profile import build_profile
from streamsense.monitoring.reference import save_reference
from streamsense.serving.registry import ModelRegistry
from streamsense.testing import MemoryBroker, drain_topic
from streamsense.ui import UiContext, ui_context
from streamsense.ui.actions import ActionError, perform
from streamsense.ui.auth import COOKIE, UiAuth
from streamsense.ui.decision_stats import BUCKET_MS, DecisionStats
from streamsense.ui.live_drift import LiveDrift
from streamsense.ui.pages import features, overview, streams
from streamsense.ui.sampler import Sample, Sampler
from streamsense.ui.series import rate
from streamsense.ui.tail import tail
from streamsense.ui.web import create_ui
from tests.apps.shop.app import app as shop_app
from tests.apps.shop.app import orders

ORDER = b'{"order_id": 1, "user": "u1", "ts": 1000, "amount": 5.0}'


def decision(action: str, tier: str, total_ms: float, degraded: bool = False) -> bytes:
    return msgspec.json.encode(
        {"event_id": "e", "key": "k", "score": 0.5, "action": action, "tier": tier,
         "degraded": degraded, "degraded_reasons": ["heavy_shed"] if degraded else [],
         "latency_ms": {"light": total_ms / 2, "total": total_ms}, "features": {"n": 1}}
    )  # fmt: skip


def shop(broker: MemoryBroker) -> UiContext:
    for topic, config in shop_app.topic_configs().items():
        broker.create_topic(topic, config, exist_ok=True)
    return ui_context(broker, name="shop", app=shop_app)


def send(broker: MemoryBroker, topic: str, values: list[bytes], key: bytes = b"u1") -> None:
    producer = broker.producer()
    for value in values:
        producer.send(topic, value, key)
    producer.flush()


def test_tail_reads_the_newest_records_by_offset() -> None:
    broker = MemoryBroker()
    broker.create_topic("t", ss.TopicConfig(partitions=1))
    send(broker, "t", [str(i).encode() for i in range(10_000)])
    newest = tail(broker, "t", 5)
    assert [r.offset for r in newest] == [9999, 9998, 9997, 9996, 9995]
    assert tail(broker, "t", 0) == []


def test_flows_and_topics_come_from_the_app_contract() -> None:
    context = shop(MemoryBroker())
    (first, *_) = context.flows()
    assert first.source == "shop.orders"
    assert first.stages == (("tag-order", "function"),)
    assert first.sinks == (("TopicSink", ("shop.keyed",)),)
    assert context.dead_letter_topics()[0] == "shop.orders.dead-letters"
    assert context.alerts_topics() == []


def test_decision_topics_are_the_sinks_holding_decision_records() -> None:
    broker = MemoryBroker()
    app = ss.App("d")
    app.flow(orders).sink(ss.TopicSink("d.out")).sink(ss.TopicSink("d.other"))
    for topic, config in app.topic_configs().items():
        broker.create_topic(topic, config)
    send(broker, "d.out", [decision("allow", "light", 1.0)])
    send(broker, "d.other", [b'{"action": "allow"}'])
    assert ui_context(broker, name="d", app=app).decision_topics() == ["d.out"]


def test_overview_counts_produced_processed_and_dead_letters() -> None:
    broker = MemoryBroker()
    context = shop(broker)
    send(broker, "shop.orders", [ORDER] * 7)
    send(broker, "shop.orders.dead-letters", [b"bad"])
    (written,) = [p for p in broker.describe_topic("shop.orders").partitions if p.high]
    broker.consumer("shop").commit({TopicPartition("shop.orders", written.partition): 3})
    view = overview.overview(context, Sampler(context))
    (orders_flow, *_) = view.flows
    assert (orders_flow.produced, orders_flow.consumed, orders_flow.waiting) == (7, 3, 4)
    assert orders_flow.dead_letters == 1
    assert view.produced == 7


def test_rate_is_the_growth_per_second_over_the_newest_samples() -> None:
    tp = TopicPartition("t", 0)
    samples = [Sample(float(t), {tp: 10 * t}, {tp: 5 * t}) for t in range(30)]
    assert rate(samples, lambda s: s.highs[tp]) == pytest.approx(10.0)
    assert rate(samples[:1], lambda s: s.highs[tp]) is None


def test_the_sampler_follows_decisions_as_they_arrive() -> None:
    broker = MemoryBroker()
    broker.create_topic("shop.decisions", ss.TopicConfig(2))
    context = shop(broker)
    context.serving = None
    context._decision_topics = ["shop.decisions"]
    sampler = Sampler(context)
    send(broker, "shop.decisions", [decision("allow", "light", 2.0)] * 3)
    sampler.sample_once()
    send(broker, "shop.decisions", [decision("block", "heavy", 8.0, degraded=True)])
    sampler.sample_once()
    stats = sampler.decisions
    assert stats.seen == 4 and stats.degraded == 1 and stats.reasons == {"heavy_shed": 1}
    assert stats.percentiles()["heavy"][:2] == (8.0, 8.0)
    assert stats.recent[0]["action"] == "block"


def test_decision_series_fill_quiet_buckets_with_zeros() -> None:
    stats = DecisionStats()
    records = [
        Record("d", 0, i, at, None, decision(action, "light", 1.0))
        for i, (at, action) in enumerate([(0, "allow"), (0, "block"), (3 * BUCKET_MS, "allow")])
    ]
    stats.fold(records)
    names, columns = stats.series("actions")
    assert names == ["allow", "block"]
    assert columns[0] == [0.0, 5.0, 10.0, 15.0]
    assert columns[1] == [0.2, 0.0, 0.0, 0.2] and columns[2] == [0.2, 0.0, 0.0, 0.0]


def test_browsing_decodes_records_and_dead_letters_keep_their_reasons() -> None:
    broker = MemoryBroker()
    context = shop(broker)
    send(broker, "shop.orders", [ORDER])
    (shown,) = streams.browse(context, "shop.orders", 10)
    assert msgspec.json.decode(shown.value)["order_id"] == 1
    record = drain_topic(broker, "shop.orders")[0]
    letter = orders.dead_letter(record, InvalidEvent("amount is not a number", field="amount"))
    producer = broker.producer()
    producer.send(letter.topic, letter.value, letter.key, headers=letter.headers)
    producer.flush()
    letters = streams.dead_letters(context)["shop.orders.dead-letters"]
    assert letters[0].headers["reason"] == "amount is not a number"
    assert streams.source_of(letters[0]) == TopicPartition("shop.orders", record.partition)
    assert streams.browse(context, "no-such-topic", 5) == []


def test_feature_lookup_says_what_is_wrong() -> None:
    context = shop(MemoryBroker())
    assert "not an ISO 8601" in features.lookup(context, "v", "k", "yesterday").error
    assert "no feature view" in features.lookup(context, "v", "k", "").error


def test_sessions_are_signed_expire_and_bind_the_form_token() -> None:
    auth = UiAuth("secret")
    session = auth.new_session(now_s=1_000)
    assert auth.session_ok(session, now_s=1_001)
    assert not auth.session_ok(session, now_s=1_000 + auth.session_s + 1)
    expires, _, signature = session.partition(".")
    assert not auth.session_ok(f"{int(expires) + 99}.{signature}", now_s=1_001)
    assert not UiAuth("another").session_ok(session, now_s=1_001)
    assert auth.csrf_ok(session, auth.csrf_token(session))
    assert not auth.csrf_ok(auth.new_session(now_s=5), auth.csrf_token(session))
    assert auth.bearer_ok("Bearer secret") and not auth.bearer_ok("Bearer nope")
    assert UiAuth(None).allowed("", "")


def test_actions_promote_roll_back_reset_and_replay(tmp_path: Path) -> None:
    broker = MemoryBroker()
    context = shop(broker)
    artifact = tmp_path / "m.pkl"
    artifact.write_bytes(b"not run")
    context.registry = registry = ModelRegistry(tmp_path / "models")
    for _ in range(2):
        registry.register("m", artifact, "pickle", ["x"])
    perform(context, "promote", {"model": "m", "alias": "production", "version": "1"}, "test")
    perform(context, "promote", {"model": "m", "alias": "production", "version": "2"}, "test")
    perform(context, "rollback", {"model": "m", "alias": "production"}, "test")
    assert registry.aliases("m") == {"production": 1}
    with pytest.raises(ActionError, match="missing version"):
        perform(context, "promote", {"model": "m", "alias": "production"}, "test")
    with pytest.raises(ActionError, match="no breaker"):
        perform(context, "reset-breaker", {"breaker": "x"}, "test")
    send(broker, "shop.orders", [ORDER])
    record = drain_topic(broker, "shop.orders")[0]
    letter = orders.dead_letter(record, InvalidEvent("bad", field="amount"))
    producer = broker.producer()
    producer.send(letter.topic, letter.value, letter.key, headers=letter.headers)
    producer.flush()
    done = perform(context, "replay-dead-letters", {"topic": letter.topic, "count": "5"}, "t")
    assert done.startswith("1 dead letters") and len(drain_topic(broker, "shop.orders")) == 2


@pytest.mark.parametrize("with_app", [True, False])
def test_every_page_renders_and_the_wall_holds(with_app: bool) -> None:
    broker = MemoryBroker()
    context = shop(broker) if with_app else ui_context(broker, name="bare")
    context.api_key = "k"
    if with_app:
        send(broker, "shop.orders", [ORDER] * 3)
    client = TestClient(create_ui(context, root="/"), base_url="https://testserver")
    assert client.get("/overview", follow_redirects=False).status_code == 303
    assert client.get("/api/chart/lag").status_code == 401
    headers = {"authorization": "Bearer k"}
    for page in ("overview", "streams", "decisions", "features", "models"):
        for path in (f"/{page}", f"/{page}/live"):
            if path in ("/features/live",):
                continue
            started = time.perf_counter()
            answer = client.get(path, headers=headers)
            assert answer.status_code == 200, (path, answer.text[:500])
            assert time.perf_counter() - started < 5
    assert client.get("/streams?topic=shop.orders&n=2", headers=headers).status_code == 200
    for chart in ("throughput", "lag", "actions", "tiers", "degraded", "drift", "live-drift"):
        assert set(client.get(f"/api/chart/{chart}", headers=headers).json()) == {
            "names", "columns", "unit"
        }  # fmt: skip
    logged = client.post("/login", data={"key": "k", "next": "/streams"}, follow_redirects=False)
    assert logged.status_code == 303 and COOKIE in logged.cookies
    assert client.get("/overview/live").status_code == 200  # the cookie alone


def test_live_drift_compares_new_decisions_with_the_production_reference(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(1)
    registry = ModelRegistry(tmp_path / "models")
    artifact = tmp_path / "m.pkl"
    artifact.write_bytes(b"not run")
    registry.register("m", artifact, "pickle", ["amount", "count"])
    registry.set_alias("m", "production", 1)
    columns = {"amount": rng.normal(50, 10, 5000), "count": rng.poisson(3, 5000).astype(float)}
    save_reference(registry, "m", "production", build_profile(columns, np.arange(5000)))
    drift = LiveDrift(registry)
    shifted = [
        {"score": 0.1, "features": {"amount": float(a) * 2.5, "count": float(c)}}
        for a, c in zip(rng.normal(50, 10, 1000), rng.poisson(3, 1000), strict=True)
    ]
    drift.observe(shifted, now_s=0.0)
    now = drift.current()
    assert drift.model == "m v1" and len(drift.points) >= 4
    assert now["amount"] > 1.0 and now["count"] < 0.1
    assert LiveDrift(None).current() == {}
    followed = LiveDrift(registry)
    records = [
        Record("d", 0, i, 0, None, msgspec.json.encode({"action": "allow", "tier": "t", **d}))
        for i, d in enumerate(shifted * 2)
    ]
    followed.follow(records, now_s=0.0)  # 2,000 new: only the newest 500 are decoded
    assert len(followed.rows) == 500 and followed.current()["amount"] > 1.0


def test_features_page_verifies_served_vectors(tmp_path: Path) -> None:
    from streamsense.brokers import EmbeddedBroker
    from streamsense.runtime.worker import Worker
    from tests.apps.counter import make_clicks
    from tests.apps.windowed import FEATURES, clicks, emit

    broker = EmbeddedBroker(tmp_path / "b.db")
    app = ss.App("ui-features")
    stage = ss.features.FeatureStage("features", FEATURES, idle_timeout_ms=None)
    app.flow(clicks).batch(stage).stage("emit", emit).sink(ss.TopicSink("ui-features.out"))
    worker = Worker(app, broker)
    worker.ensure_topics()
    with broker.producer() as producer:
        for click in make_clicks(300, users=5):
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
    worker.run(until_caught_up=True)
    context = ui_context(broker, name="ui-features", app=app)
    (shown,) = features.feature_stages(context)
    assert shown.features == FEATURES.names and shown.newest_served_ms is not None
    report, why = features.verify_stage(context, "features")
    assert why == "" and report is not None and report.ok and report.sampled == 200
    assert "not a feature stage" in features.verify_stage(context, "emit")[1]
    ui = create_ui(context, root="/")
    page = TestClient(ui).get("/features?verify=features")
    ui.state.sampler.close()  # before the broker it reads
    assert "200 served vectors checked" in page.text
    broker.close()


def test_the_login_page_warns_over_plain_http_from_another_host() -> None:
    context = ui_context(MemoryBroker(), name="bare", api_key="k")
    ui = create_ui(context, root="/")
    remote = TestClient(ui, base_url="http://ops.example").get("/login").text
    local = TestClient(ui, base_url="http://127.0.0.1").get("/login").text
    assert "plain HTTP" in remote and "plain HTTP" not in local


def test_above_the_read_cap_decisions_are_sampled_and_weighted() -> None:
    broker = MemoryBroker()
    broker.create_topic("shop.decisions", ss.TopicConfig(1))
    context = shop(broker)
    context._decision_topics = ["shop.decisions"]
    sampler = Sampler(context)
    send(broker, "shop.decisions", [decision("allow", "light", 1.0)] * 10)
    sampler.sample_once()  # the first look: the newest records, as they are
    send(broker, "shop.decisions", [decision("block", "light", 1.0)] * 1_000)
    sampler.sample_once()  # 1,000 new: the newest 200 read, each counting for 5
    stats = sampler.decisions
    assert stats.seen == pytest.approx(1_010)
    blocks = sum(b.actions.get("block", 0.0) for b in stats.buckets.values())
    allows = sum(b.actions.get("allow", 0.0) for b in stats.buckets.values())
    assert (allows, blocks) == pytest.approx((10, 1_000))
