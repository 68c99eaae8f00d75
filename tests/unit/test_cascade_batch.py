"""A micro-batch decided at once (Cascade.decide_batch, issue #19): the decisions of
single-row calls, one model call per tier, the call's latency and failure shared by its
rows, and a tier's budget bounding its time per row."""

from __future__ import annotations

from typing import Any

import numpy as np

from streamsense.errors import RetryableError
from streamsense.serving.cascade import Candidate, Cascade, CascadeConfig
from streamsense.serving.decision import DecisionRecord
from streamsense.serving.fallbacks import FallbackConfig
from streamsense.serving.models import FunctionModel
from streamsense.serving.rules import RuleSet
from streamsense.testing import ManualClock

FEATURES = ["amount", "risk"]
RULES = RuleSet.from_dicts([{"name": "huge", "when": "amount > 220", "action": "block"}])
BAND = CascadeConfig(heavy_band=(0.2, 0.8))


class CountedModel(FunctionModel):
    """Scores by a function of the rows; ``batches`` counts the calls, ``rows`` their sizes."""

    def __init__(self, fn: Any, name: str) -> None:
        super().__init__(fn, FEATURES, name=name, version=1)
        self.batches: list[int] = []

    def predict_proba(self, X: Any) -> Any:
        self.batches.append(len(X))
        return super().predict_proba(X)


def cascade(light: Any, heavy: Any = None, **options: Any) -> Cascade:
    return Cascade(rules=RULES, light=light, heavy=heavy, config=BAND, **options)


def risk_model(name: str) -> CountedModel:
    return CountedModel(lambda X: X[:, 1], name)


def heavy_model() -> CountedModel:
    return CountedModel(lambda X: np.clip(X[:, 1] * 1.5, 0, 1), "heavy")


def candidates(n: int) -> list[Candidate]:
    rng = np.random.default_rng(7)
    amounts = rng.choice([10.0, 50.0, 300.0], n)  # every third-ish row is ruled
    risks = rng.random(n)
    return [
        Candidate(f"e{i}", f"k{i % 5}", {"amount": float(a), "risk": float(r)})
        for i, (a, r) in enumerate(zip(amounts, risks, strict=True))
    ]


def decided(record: DecisionRecord) -> tuple[Any, ...]:
    return (
        record.event_id,
        record.score,
        record.action,
        record.tier,
        record.rule,
        record.model_version,
        record.degraded_reasons,
    )


def test_a_batch_decides_as_single_rows_would_with_one_call_per_tier() -> None:
    rows = candidates(200)
    one_by_one = cascade(risk_model("light"), heavy_model())
    singles = [one_by_one.decide(c.event_id, c.key, c.values) for c in rows]
    light, heavy = risk_model("light"), heavy_model()
    batch = cascade(light, heavy).decide_batch(rows)
    assert [decided(r) for r in batch] == [decided(r) for r in singles]
    assert {r.tier for r in batch} == {"rules", "light", "heavy"}
    ruled = sum(r.tier == "rules" for r in batch)
    borderline = sum(r.tier == "heavy" for r in batch)
    assert light.batches == [200 - ruled]
    assert heavy.batches == [borderline]


def test_each_row_reports_its_batch_latencies() -> None:
    clock = ManualClock()

    def slow(X: Any) -> Any:
        clock.advance(15.0)
        return X[:, 1]

    light = CountedModel(slow, "light")
    rows = [Candidate(f"e{i}", "k", {"amount": 1.0, "risk": 0.05}) for i in range(10)]
    records = cascade(light, clock=clock).decide_batch(rows)
    assert [r.latency_ms["light"] for r in records] == [15.0] * 10
    assert len({r.latency_ms["total"] for r in records}) == 1
    # 1.5 ms a row: within the light tier's 2 ms budget; one row alone is over it.
    assert not any(r.degraded for r in records)
    alone = cascade(CountedModel(slow, "light"), clock=clock).decide("e", "k", rows[0].values)
    assert alone.degraded_reasons == ["light_over_budget"]


def test_a_failed_light_call_sends_every_row_of_it_to_the_fallbacks() -> None:
    def down(X: Any) -> Any:
        raise RetryableError("model server down")

    light = CountedModel(down, "light")
    chain = FallbackConfig(chain=("last_prediction", "default"), default_action="review")
    records = cascade(light, fallbacks=chain).decide_batch(candidates(30))
    unruled = [r for r in records if r.rule is None]
    assert light.batches == [len(unruled)]  # one call, failed once for all of them
    assert unruled and all(
        (r.tier, r.action, r.degraded_reasons)
        == ("fallback", "review", ["light_unavailable", "fallback:default"])
        for r in unruled
    )
    assert all(not r.degraded for r in records if r.rule is not None)


def test_a_failed_heavy_call_leaves_the_light_scores_standing() -> None:
    def down(X: Any) -> Any:
        raise RetryableError("heavy model down")

    records = cascade(risk_model("light"), CountedModel(down, "heavy")).decide_batch(candidates(60))
    borderline = [r for r in records if r.tier == "light" and 0.2 <= r.score < 0.8]
    assert borderline and all(r.degraded_reasons == ["heavy_unavailable"] for r in borderline)
    assert all(not r.degraded for r in records if r not in borderline)


def test_shedding_marks_only_the_borderline_rows() -> None:
    heavy = heavy_model()
    records = cascade(risk_model("light"), heavy).decide_batch(candidates(60), shed_heavy=True)
    assert heavy.batches == []
    for record in records:
        borderline = record.tier == "light" and 0.2 <= record.score < 0.8
        assert record.degraded_reasons == (["heavy_shed"] if borderline else [])


def test_an_empty_batch_calls_no_model() -> None:
    light = risk_model("light")
    assert cascade(light).decide_batch([]) == []
    assert light.batches == []
