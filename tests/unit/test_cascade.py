from __future__ import annotations

import time
from typing import Any

import numpy as np

from streamsense.errors import RetryableError
from streamsense.serving.cascade import Cascade, CascadeConfig
from streamsense.serving.decision import ShadowScore
from streamsense.serving.models import ConstantModel, FunctionModel
from streamsense.serving.rules import RuleSet

FEATURES = ["amount", "risk"]
RULES = RuleSet.from_dicts([{"name": "huge", "when": "amount > 220", "action": "block"}])


def by_risk(name: str) -> FunctionModel:
    return FunctionModel(lambda X: X[:, 1], FEATURES, name=name, version=3)


def test_a_matching_rule_decides_without_any_model() -> None:
    light = by_risk("light")
    record = Cascade(rules=RULES, light=light).decide("e1", "k", {"amount": 500, "risk": 0.0})
    assert (record.tier, record.action, record.rule, record.score) == (
        "rules",
        "block",
        "huge",
        1.0,
    )
    assert light.calls == 0
    assert set(record.latency_ms) == {"rules", "total"}


def test_light_scores_clear_cases_and_heavy_only_borderline_ones() -> None:
    light, heavy = by_risk("light"), ConstantModel(0.95, FEATURES, name="heavy", version=7)
    cascade = Cascade(
        rules=RULES, light=light, heavy=heavy, config=CascadeConfig(heavy_band=(0.2, 0.8))
    )
    clear = cascade.decide("e1", "k", {"amount": 10, "risk": 0.05})
    assert (clear.tier, clear.action, clear.model_version) == ("light", "allow", "light@3")
    border = cascade.decide("e2", "k", {"amount": 10, "risk": 0.5})
    assert (border.tier, border.action, border.score) == ("heavy", "block", 0.95)
    assert border.model_version == "heavy@7" and {"light", "heavy"} <= set(border.latency_ms)
    assert heavy.calls == 1


def test_shedding_skips_the_heavy_tier_and_says_so() -> None:
    heavy = ConstantModel(0.95, FEATURES, name="heavy")
    cascade = Cascade(light=by_risk("light"), heavy=heavy)
    record = cascade.decide("e", "k", {"amount": 1, "risk": 0.5}, shed_heavy=True)
    assert (record.tier, record.degraded, record.degraded_reasons) == (
        "light",
        True,
        ["heavy_shed"],
    )
    assert heavy.calls == 0


def test_a_failing_model_falls_back_and_the_decision_is_marked() -> None:
    def broken(X: Any) -> Any:
        raise RetryableError("model server down")

    cascade = Cascade(rules=RULES, light=FunctionModel(broken, FEATURES, name="light"))
    record = cascade.decide("e", "k", {"amount": 1, "risk": 0.5})
    assert (record.tier, record.action, record.degraded) == ("rules", "allow", True)
    assert record.degraded_reasons == ["light_unavailable"]


def test_shadow_models_are_scored_off_the_hot_path() -> None:
    logged: list[ShadowScore] = []
    shadow = FunctionModel(lambda X: np.full(len(X), 0.42), FEATURES, name="candidate", version=9)
    cascade = Cascade(light=by_risk("light"), shadow=[shadow], on_shadow=logged.append)
    record = cascade.decide("e9", "k", {"amount": 1, "risk": 0.3})
    deadline = time.monotonic() + 5
    while not logged and time.monotonic() < deadline:
        time.sleep(0.01)
    cascade.close()
    assert logged == [ShadowScore("e9", "candidate", "9", 0.42, record.score, "light")]
