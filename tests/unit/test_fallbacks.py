"""Fallbacks when a model tier or the online store fails: every path, the confidence penalty
and the breakers (open → bypass → half-open → closed), all on a ManualClock."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import streamsense as ss
from streamsense import features as F
from streamsense.brokers import MemoryBroker, TopicConfig
from streamsense.errors import ConfigError, RetryableError
from streamsense.resilience.breaker import BreakerConfig
from streamsense.serving import Serving
from streamsense.serving.cascade import Cascade, CascadeConfig
from streamsense.serving.decide import decide_event
from streamsense.serving.fallbacks import FallbackConfig
from streamsense.serving.feature_fallback import FeatureFallbackConfig, FeatureGuard
from streamsense.serving.models import FunctionModel
from streamsense.serving.rules import RuleSet
from streamsense.serving.service import create_api
from streamsense.store.memory_online import MemoryOnlineStore
from streamsense.store.online import OnlineRow, ViewKeys
from streamsense.store.views import OnlineFeatures
from streamsense.testing import ManualClock
from tests.apps.counter import Click

FEATURES = ["amount", "risk"]
RULES = RuleSet.from_dicts([{"name": "huge", "when": "amount > 220", "action": "block"}])
STRICTER = RuleSet.from_dicts(
    [{"name": "big_when_down", "when": "amount > 100", "action": "review"}]
)
# Opens after 4 calls of which half failed; probes twice after 30 s.
BREAKER = BreakerConfig(
    window_size=4, minimum_calls=4, wait_in_open=30.0, permitted_calls_in_half_open=2
)
HOUR_MS = 3_600_000


class Switchable:
    """A model scoring the risk column, that fails like a dead model server when down."""

    def __init__(self, name: str = "light") -> None:
        self.down = False
        self.model = FunctionModel(self._score, FEATURES, name=name, version=3)

    def _score(self, X: Any) -> Any:
        if self.down:
            raise RetryableError("model server down")
        return X[:, 1]


def cascade_with(
    chain: Sequence[str], clock: ManualClock, **options: Any
) -> tuple[Cascade, Switchable]:
    light = Switchable()
    fallbacks = FallbackConfig(chain=tuple(chain), rules=STRICTER, half_life_ms=HOUR_MS, **options)
    config = CascadeConfig(breaker=BREAKER)
    cascade = Cascade(
        rules=RULES, light=light.model, config=config, fallbacks=fallbacks, clock=clock
    )
    return cascade, light


def test_the_chain_is_checked_when_configured() -> None:
    with pytest.raises(ConfigError, match="unknown fallback steps"):
        FallbackConfig(chain=("rules", "coin_toss"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs a rule set"):
        FallbackConfig(chain=("rules",))
    with pytest.raises(ConfigError, match="default_score"):
        FallbackConfig(default_score=2.0)


def test_fallback_rules_decide_first_when_the_light_model_is_down() -> None:
    clock = ManualClock()
    cascade, light = cascade_with(["rules", "default"], clock, default_action="allow")
    light.down = True
    big = cascade.decide("e1", "k", {"amount": 150, "risk": 0.0})
    assert (big.tier, big.action, big.rule, big.score) == (
        "fallback",
        "review",
        "big_when_down",
        0.5,
    )
    assert big.degraded_reasons == ["light_unavailable", "fallback:rules"]
    assert big.confidence == 1.0  # the rules read the event's own, fresh values
    small = cascade.decide("e2", "k", {"amount": 20, "risk": 0.0})  # no fallback rule: next step
    assert (small.tier, small.action, small.rule) == ("fallback", "allow", None)
    assert small.degraded_reasons == ["light_unavailable", "fallback:default"]
    assert small.confidence == 0.0


def test_the_last_prediction_answers_with_a_confidence_that_decays() -> None:
    clock = ManualClock()
    cascade, light = cascade_with(["last_prediction", "default"], clock, max_age_ms=5 * HOUR_MS)
    live = cascade.decide("e1", "k", {"amount": 1, "risk": 0.3})
    assert (live.tier, live.action, live.confidence, live.degraded) == (
        "light",
        "allow",
        1.0,
        False,
    )
    light.down = True
    clock.advance(HOUR_MS)  # one half-life
    cached = cascade.decide("e2", "k", {"amount": 1, "risk": 0.99})
    assert (cached.tier, cached.score, cached.model_version) == ("fallback", live.score, "light@3")
    assert cached.confidence == pytest.approx(0.5)
    assert (cached.action, cached.degraded_reasons) == (
        "allow",
        ["light_unavailable", "fallback:last_prediction"],
    )
    clock.advance(HOUR_MS)  # two half-lives: below min_confidence, the allow becomes a review
    older = cascade.decide("e3", "k", {"amount": 1, "risk": 0.0})
    assert older.confidence == pytest.approx(0.25) and older.score == live.score
    assert older.action == "review" and "low_confidence" in older.degraded_reasons
    other = cascade.decide("e4", "another key", {"amount": 1, "risk": 0.0})
    assert (other.action, other.degraded_reasons[-1]) == ("review", "fallback:default")
    clock.advance(4 * HOUR_MS)  # past max_age_ms: not used at all
    too_old = cascade.decide("e5", "k", {"amount": 1, "risk": 0.0})
    assert too_old.degraded_reasons[-1] == "fallback:default"


def test_a_cached_score_is_as_old_as_the_features_it_was_made_on() -> None:
    clock = ManualClock()
    cascade, light = cascade_with(["last_prediction"], clock)
    cascade.decide("e1", "k", {"amount": 1, "risk": 0.2}, feature_age_ms=HOUR_MS)
    light.down = True
    assert cascade.decide("e2", "k", {"amount": 1, "risk": 0}).confidence == pytest.approx(0.5)


def test_without_an_answer_the_rules_tier_result_stands() -> None:
    clock = ManualClock()
    cascade, light = cascade_with(["last_prediction"], clock)
    light.down = True
    record = cascade.decide("e", "never seen", {"amount": 1, "risk": 0.5})
    assert (record.tier, record.action, record.degraded_reasons) == (
        "rules",
        "allow",
        ["light_unavailable"],
    )


def test_a_heavy_model_down_leaves_the_light_score_which_is_remembered() -> None:
    clock = ManualClock()
    heavy = Switchable("heavy")
    heavy.down = True
    light = Switchable()
    cascade = Cascade(
        light=light.model,
        heavy=heavy.model,
        config=CascadeConfig(heavy_band=(0.1, 0.9)),
        clock=clock,
    )
    record = cascade.decide("e1", "k", {"amount": 1, "risk": 0.4})
    assert (record.tier, record.score, record.degraded_reasons) == (
        "light",
        pytest.approx(0.4),
        ["heavy_unavailable"],
    )
    light.down = True
    cached = cascade.decide("e2", "k", {"amount": 1, "risk": 0.0})
    assert (cached.score, cached.model_version) == (pytest.approx(0.4), "light@3")


def test_the_model_breaker_opens_bypasses_probes_and_closes() -> None:
    clock = ManualClock()
    cascade, light = cascade_with(["last_prediction", "default"], clock)
    breaker = cascade.breakers["light"]
    light.down = True
    for i in range(4):
        cascade.decide(f"e{i}", "k", {"amount": 1, "risk": 0.1})
    assert breaker.state == "open"
    scored = light.model.calls
    bypassed = cascade.decide("e5", "k", {"amount": 1, "risk": 0.1})
    assert light.model.calls == scored  # not even tried
    assert bypassed.degraded_reasons == ["light_unavailable", "fallback:default"]
    light.down = False
    clock.advance(30_000)
    assert breaker.state == "half_open"
    probes = [cascade.decide(f"p{i}", "k", {"amount": 1, "risk": 0.1}) for i in range(2)]
    assert [p.tier for p in probes] == ["light", "light"]
    assert breaker.state == "closed"
    registry = cascade.registry
    state = "streamsense_circuit_breaker_state"
    assert registry.get_sample_value(state, {"breaker": "light-model", "state": "closed"}) == 1
    transitions = "streamsense_circuit_breaker_transitions_total"
    for before, after in [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]:
        labels = {"breaker": "light-model", "from_state": before, "to_state": after}
        assert registry.get_sample_value(transitions, labels) == 1


# -- the online feature read ------------------------------------------------------------------

stream = ss.Stream("fclicks", Click, key="user", time="ts", partitions=1)
user = F.FeatureGroup(stream, key="user")
user.add("n_10s", F.count(), F.rolling("10s"))
DOUBLED = F.Computed("amount_x2", stream, lambda times, cols: cols["amount"] * 2, ("amount",))
FEATURE_SET = F.FeatureSet("fb", [DOUBLED, *user.features])
STORE_BREAKER = BreakerConfig(
    slow_call_duration=0.05,
    slow_call_rate_threshold=50.0,
    window_size=4,
    minimum_calls=4,
    wait_in_open=5.0,
    permitted_calls_in_half_open=2,
)


class FlakyStore(MemoryOnlineStore):
    """The memory store, made to fail (a stopped server) or to be slow (each read moves the
    manual clock on by 100 ms) on demand."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock=clock)
        self.manual = clock
        self.down = False
        self.slow = False
        self.reads = 0
        self.error: Exception = RetryableError("online store unavailable: connection refused")

    def read(self, view: str, keys: Sequence[str]) -> list[OnlineRow | None]:
        self._answer()
        return super().read(view, keys)

    def read_blobs(self, requests: Sequence[ViewKeys]) -> list[list[bytes | None]]:
        self._answer()
        return super().read_blobs(requests)

    def _answer(self) -> None:
        self.reads += 1
        if self.down:
            raise self.error
        if self.slow:
            self.manual.advance(100)


def make_serving(
    clock: ManualClock, **config: Any
) -> tuple[Serving, FlakyStore, MemoryBroker, Switchable]:
    broker = MemoryBroker()
    broker.create_topic(stream.topic, TopicConfig(1))
    broker.create_topic("decisions", TopicConfig(1))
    store = FlakyStore(clock)
    online = OnlineFeatures(FEATURE_SET, store)
    light = Switchable()
    light.model = FunctionModel(lambda X: X[:, 0] / 10, ["n_10s"], name="light", version=1)
    cascade = Cascade(light=light.model, clock=clock)
    settings = FeatureFallbackConfig(breaker=STORE_BREAKER, half_life_ms=60_000, **config)
    guard = FeatureGuard(
        "features:fclicks", online, settings, clock=clock, registry=cascade.registry
    )
    serving = Serving(
        name="t",
        streams={stream.topic: stream},
        features={stream.topic: online},
        cascade=cascade,
        broker=broker,
        decisions_topic="decisions",
        feature_guards={stream.topic: guard},
    )
    return serving, store, broker, light


def decide(serving: Serving, broker: MemoryBroker, user: str, amount: float, ts: int) -> Any:
    body = f'{{"user": "{user}", "ts": {ts}, "amount": {amount}}}'.encode()
    return decide_event(serving, broker.producer(), stream.topic, body)


def test_a_failed_store_read_uses_the_last_known_features_with_a_penalty() -> None:
    clock = ManualClock()
    serving, store, broker, _ = make_serving(clock)
    fresh = decide(serving, broker, "u1", 5.0, 1_000)
    assert fresh.features == {"amount_x2": 10.0, "n_10s": 1.0} and not fresh.degraded
    store.down = True
    clock.advance(30_000)  # half a half-life
    stale = decide(serving, broker, "u1", 7.0, 2_000)
    # The windowed value is the last known one; the event's own feature is computed afresh.
    assert stale.features == {"amount_x2": 14.0, "n_10s": 1.0}
    assert (stale.tier, stale.score, stale.action) == ("light", pytest.approx(0.1), "allow")
    assert stale.degraded_reasons == [
        "features_unavailable",
        "features_error:RetryableError",
        "fallback:last_features",
    ]
    assert stale.confidence == pytest.approx(2**-0.5) and stale.feature_age_ms == 30_000
    clock.advance(60_000)  # 1.5 half-lives: below 0.5, the allow becomes a review
    staler = decide(serving, broker, "u1", 7.0, 3_000)
    assert staler.confidence == pytest.approx(2**-1.5)
    assert (staler.action, staler.degraded_reasons[-1]) == ("review", "low_confidence")
    assert staler.score == pytest.approx(0.1)  # the model's score is left as it was


def test_no_features_at_all_gives_the_configured_default_marked() -> None:
    clock = ManualClock()
    serving, store, broker, light = make_serving(clock, default_action="block", default_score=0.9)
    store.down = True
    record = decide(serving, broker, "new", 5.0, 1_000)
    assert (record.tier, record.action, record.score, record.confidence) == (
        "fallback",
        "block",
        0.9,
        0.0,
    )
    assert record.degraded_reasons == [
        "features_unavailable",
        "features_error:RetryableError",
        "fallback:default",
    ]
    assert light.model.calls == 0  # nothing to score


def test_a_slow_store_is_bypassed_once_its_breaker_opens_then_probed_back() -> None:
    clock = ManualClock()
    serving, store, broker, _ = make_serving(clock)
    guard = serving.feature_guards[stream.topic]
    store.slow = True
    slow = [decide(serving, broker, "u1", 1.0, 1_000 + i) for i in range(4)]
    assert not any(r.degraded for r in slow)  # slow answers are still answers
    assert guard.breaker.state == "open"
    reads = store.reads
    bypassed = decide(serving, broker, "u1", 1.0, 2_000)
    assert store.reads == reads  # the store was not asked
    assert "features_circuit_open" in bypassed.degraded_reasons
    store.slow = False
    clock.advance(5_000)
    assert guard.breaker.state == "half_open"
    probes = [decide(serving, broker, "u1", 1.0, 3_000 + i) for i in range(2)]
    assert not any(p.degraded for p in probes) and guard.breaker.state == "closed"


def test_errors_that_are_not_transient_are_not_hidden() -> None:
    clock = ManualClock()
    serving, store, broker, _ = make_serving(clock)
    store.down, store.error = True, ConfigError("view misconfigured")
    with pytest.raises(ConfigError, match="misconfigured"):
        decide(serving, broker, "u1", 1.0, 1_000)


def test_breakers_and_degraded_decisions_are_on_the_metrics_page() -> None:
    clock = ManualClock()
    serving, store, _, _ = make_serving(clock)
    store.down = True
    with TestClient(create_api(serving)) as http:
        reply = http.post(f"/v1/decide/{stream.topic}", json={"user": "u", "ts": 1, "amount": 1})
        assert reply.json()["degraded_reasons"][-1] == "fallback:default"
        page = http.get("/metrics").text
    assert (
        'streamsense_circuit_breaker_state{breaker="features:fclicks",state="closed"} 1.0' in page
    )
    assert 'streamsense_circuit_breaker_state{breaker="light-model",state="closed"} 1.0' in page
    assert 'streamsense_degraded_decisions_total{reason="fallback:default"} 1.0' in page


def test_a_default_guard_serves_every_stream() -> None:
    online = OnlineFeatures(FEATURE_SET, MemoryOnlineStore())
    cascade = Cascade()
    serving = Serving(
        "t", MemoryBroker(), {stream.topic: stream}, {stream.topic: online}, cascade, "d"
    )
    guard = serving.feature_guards[stream.topic]
    assert guard.online is online and serving.metrics_registry is cascade.registry
    assert np.array_equal(guard.read("u", Click("u", 1, 2.0), 1).row, [4.0, 1.0])  # type: ignore[arg-type]
