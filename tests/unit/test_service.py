"""The HTTP API in process (FastAPI's TestClient), on the memory broker and online store."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
from fastapi.testclient import TestClient

from streamsense.brokers import MemoryBroker, TopicConfig
from streamsense.serving import Serving
from streamsense.serving.cascade import Cascade
from streamsense.serving.models import FunctionModel
from streamsense.serving.rules import RuleSet
from streamsense.serving.service import create_api
from streamsense.store.memory_online import MemoryOnlineStore
from streamsense.store.views import OnlineFeatures, OnlineView
from streamsense.testing import ManualClock, drain_topic
from tests.apps.counter import Click
from tests.apps.windowed import FEATURES, clicks

KEY = "s3cret"


@pytest.fixture
def client() -> Iterator[tuple[TestClient, MemoryBroker]]:
    broker = MemoryBroker()
    broker.create_topic(clicks.topic, TopicConfig(clicks.partitions))
    broker.create_topic("decisions", TopicConfig(1))
    store = MemoryOnlineStore()
    online = OnlineFeatures(FEATURES, store)
    light = FunctionModel(lambda X: X[:, 0] / 10, ["n_10s"], name="light", version=1)
    rules = RuleSet.from_dicts([{"name": "big", "when": "amount > 1000", "action": "block"}])
    serving = Serving(
        name="test",
        streams={clicks.topic: clicks},
        features={clicks.topic: online},
        # On a ManualClock a model call takes no time: no tier is ever over its budget.
        cascade=Cascade(rules=rules, light=light, clock=ManualClock()),
        broker=broker,
        decisions_topic="decisions",
        views=online.views_by_name(),
        api_key=KEY,
        max_body_bytes=2048,
    )
    with TestClient(create_api(serving)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {KEY}"
        yield test_client, broker


def test_decide_answers_and_publishes_the_event_and_its_decision(
    client: tuple[TestClient, MemoryBroker],
) -> None:
    http, broker = client
    response = http.post(
        f"/v1/decide/{clicks.topic}", json={"user": "u1", "ts": 1_600_000_000_000, "amount": 5.0}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["action"] == "allow" and body["tier"] == "light" and body["degraded"] is False
    assert body["score"] == pytest.approx(0.1)  # n_10s counts the event itself
    assert body["latency_ms"] > 0 and body["features"]["n_10s"] == 1
    big = http.post(
        f"/v1/decide/{clicks.topic}", json={"user": "u1", "ts": 1_600_000_001_000, "amount": 5000}
    )
    assert (big.json()["action"], big.json()["tier"]) == ("block", "rules")
    http.app.state.producer.flush()  # type: ignore[attr-defined]
    events = drain_topic(broker, clicks.topic)
    assert len(events) == 2 and all(dict(e.headers)["decided-by"] == b"api" for e in events)
    decisions = [msgspec.json.decode(r.value or b"") for r in drain_topic(broker, "decisions")]
    assert [d["action"] for d in decisions] == ["allow", "block"]


def test_bad_requests_get_4xx_naming_the_field(client: tuple[TestClient, MemoryBroker]) -> None:
    http, _ = client
    wrong_type = http.post(
        f"/v1/decide/{clicks.topic}", json={"user": "u", "ts": "soon", "amount": 1}
    )
    assert (wrong_type.status_code, wrong_type.json()["field"]) == (422, "ts")
    missing = http.post(f"/v1/decide/{clicks.topic}", json={"user": "u", "ts": 1})
    assert (missing.status_code, missing.json()["field"]) == (422, "amount")
    not_json = http.post(f"/v1/decide/{clicks.topic}", content=b"{nope")
    assert not_json.status_code == 422
    too_big = http.post(f"/v1/decide/{clicks.topic}", content=b"{" + b" " * 4000 + b"}")
    assert too_big.status_code == 413
    assert http.post("/v1/decide/nothing", json={}).status_code == 404
    batch = http.post(
        f"/v1/events/{clicks.topic}", json=[{"user": "u", "ts": 1, "amount": 1}, {"user": "u"}]
    )
    assert (batch.status_code, batch.json()["field"]) == (422, "[1].ts")


def test_api_keys_are_required(client: tuple[TestClient, MemoryBroker]) -> None:
    http, _ = client
    body = {"user": "u", "ts": 1, "amount": 1.0}
    assert (
        http.post(
            f"/v1/events/{clicks.topic}", json=body, headers={"Authorization": "Bearer no"}
        ).status_code
        == 401
    )
    assert http.post(f"/v1/events/{clicks.topic}", json=body).json() == {"accepted": 1}
    assert http.get("/healthz", headers={"Authorization": ""}).status_code == 200


def test_features_health_readiness_metrics_and_models(
    client: tuple[TestClient, MemoryBroker],
) -> None:
    http, _ = client
    features = http.get("/v1/features/windowed.user/u1", params={"at": "2020-09-13T12:26:40"})
    assert features.status_code == 200 and features.json()["features"]["n_10s"] == 0
    assert http.get("/v1/features/nope/u1").status_code == 404
    assert http.get("/readyz").json() == {"status": "ready"}
    http.post(f"/v1/decide/{clicks.topic}", json={"user": "u2", "ts": 1, "amount": 1.0})
    assert "streamsense_decide_seconds" in http.get("/metrics").text
    assert http.get("/v1/models").json() == {"models": []}


def test_views_are_named_like_the_feature_store() -> None:
    online = OnlineFeatures(FEATURES, MemoryOnlineStore())
    assert isinstance(online.views_by_name()["windowed.user"], OnlineView)
    assert Click("u", 1, 1.0).user == "u"
