"""The decision cascade: rules → light model → heavy model for borderline scores.

Each tier has a latency budget and a circuit breaker. A heavy tier that fails (or whose
breaker is open) falls back to the light score; a light tier that fails hands the decision to
the fallback chain (serving/fallbacks.py: fallback rules, the key's last cached prediction or
a configured default). Either way the decision is marked degraded and says why. Under load the
heavy tier can be shed: every event still gets the light score, and the decision is marked.
Shadow models score off the hot path (serving/shadow.py) and their scores are logged.

A micro-batch is decided with one call per model tier (``decide_batch``): the light model
scores every row the rules left, the heavy model the borderline subset of those. A model
call costs ~10 µs whatever its size and a row well under one (the light model: 0.2 µs a row
in batches of 1,000), so a replay pays the call once per batch instead of once per payment.
Scores are those of single-row calls (the same row, the same model; tested). What is shared
is the call: its latency is each of its rows' latency (reported as such), its failure each
row's failure, and the breaker counts it once. A tier's budget bounds its time per row (for
one row, the call's time): a replay's batch of 1,000 light scores in 2 ms is within budget.
``decide`` is ``decide_batch`` of one row, so the realtime and micro-batch paths are one.

The breakers report their state changes to ``logging`` and to ``registry`` (Prometheus): the
service exposes that registry on /metrics (``Serving.metrics_registry`` defaults to it).
"""

from __future__ import annotations

import logging
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from prometheus_client import CollectorRegistry

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.resilience.breaker import BreakerConfig, CircuitBreaker
from streamsense.resilience.policy import Policy
from streamsense.serving.decision import Action, DecisionRecord, ShadowScore, Tier
from streamsense.serving.fallbacks import RULE_SCORES, FallbackChain, FallbackConfig
from streamsense.serving.models import LoadedModel
from streamsense.serving.rules import RuleMatch
from streamsense.serving.shadow import ShadowScorer

log = logging.getLogger(__name__)


class Rules(Protocol):
    def decide(self, values: Mapping[str, Any]) -> RuleMatch: ...


@dataclass(frozen=True)
class CascadeConfig:
    review_at: float = 0.5  # a model score at or above this → review
    block_at: float = 0.9  # at or above this → block
    heavy_band: tuple[float, float] = (0.1, 0.9)  # light scores here go to the heavy model
    light_budget_ms: float = 2.0
    heavy_budget_ms: float = 20.0
    breaker: BreakerConfig = field(default_factory=lambda: BreakerConfig(minimum_calls=20))

    def action_for(self, score: float) -> Action:
        if score >= self.block_at:
            return "block"
        return "review" if score >= self.review_at else "allow"


class Cascade:
    def __init__(
        self,
        *,
        rules: Rules | None = None,
        light: LoadedModel | None = None,
        heavy: LoadedModel | None = None,
        shadow: Sequence[LoadedModel] = (),
        config: CascadeConfig | None = None,
        on_shadow: Callable[[ShadowScore], None] | None = None,
        fallbacks: FallbackConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.rules = rules
        self.light = light
        self.heavy = heavy
        self.config = config or CascadeConfig()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.fallbacks = FallbackChain(fallbacks, action_for=self.config.action_for, clock=clock)
        # A tier that fails (or whose breaker is open) yields no score: the tier before it
        # (or the fallback chain) decides, and the record says why.
        self.breakers = {
            tier: CircuitBreaker(
                f"{tier}-model", self.config.breaker, clock=clock, registry=self.registry
            )
            for tier in ("light", "heavy")
        }
        self._policies: dict[str, Policy[Any]] = {
            tier: Policy(tier, breaker=breaker, fallback=_no_score, clock=clock)
            for tier, breaker in self.breakers.items()
        }
        self._shadow = ShadowScorer(list(shadow), on_shadow) if shadow else None

    def decide(
        self,
        event_id: str,
        key: str,
        values: Mapping[str, Any],
        *,
        shed_heavy: bool = False,
        feature_age_ms: int = 0,
    ) -> DecisionRecord:
        """Decide one event (``decide_batch`` of one row)."""
        candidate = Candidate(event_id, key, values, feature_age_ms)
        return self.decide_batch([candidate], shed_heavy=shed_heavy)[0]

    def decide_batch(
        self, candidates: Sequence[Candidate], *, shed_heavy: bool = False
    ) -> list[DecisionRecord]:
        """Decide a micro-batch in order: rules row by row, then one call per model tier
        with the rows that reach it; each record's latencies are its batch's."""
        started = time.perf_counter()
        records = [_record(c) for c in candidates]
        scored = self._apply_rules(records, candidates)
        if self.light is not None and scored:
            self._apply_models(self.light, records, candidates, scored, shed_heavy)
        total_ms = (time.perf_counter() - started) * 1000
        for record in records:
            record.latency_ms["total"] = total_ms
        return records

    def _apply_rules(
        self, records: list[DecisionRecord], candidates: Sequence[Candidate]
    ) -> list[int]:
        """Decide by the rules where one matches; the indices of the rows left to score."""
        if self.rules is None:
            return list(range(len(records)))
        begun = time.perf_counter()
        left = [i for i, c in enumerate(candidates) if not self._by_rule(records[i], c.values)]
        rules_ms = (time.perf_counter() - begun) * 1000
        for record in records:
            record.latency_ms["rules"] = rules_ms
        return left

    def _by_rule(self, record: DecisionRecord, values: Mapping[str, Any]) -> bool:
        assert self.rules is not None
        match = self.rules.decide(values)
        if match.rule is None:
            return False  # no rule matched: the models decide
        record.rule, record.action, record.tier = match.rule, match.action, "rules"
        record.score = match.score if match.score is not None else RULE_SCORES[match.action]
        return True

    def _apply_models(
        self,
        light: LoadedModel,
        records: list[DecisionRecord],
        candidates: Sequence[Candidate],
        rows: list[int],
        shed_heavy: bool,
    ) -> None:
        scores = self._score("light", light, records, candidates, rows)
        if scores is None:
            for i in rows:
                records[i].mark_degraded("light_unavailable")
                self.fallbacks.decide(records[i], candidates[i].values)
            return
        for i, score in zip(rows, scores.tolist(), strict=True):
            self._set_score(records[i], "light", light, score)
        low, high = self.config.heavy_band
        borderline = [i for i, s in zip(rows, scores.tolist(), strict=True) if low <= s < high]
        if self.heavy is not None and borderline:
            self._apply_heavy(self.heavy, records, candidates, borderline, shed_heavy)
        for i in rows:
            self.fallbacks.remember(records[i])
            if self._shadow is not None:
                self._shadow.submit(records[i], candidates[i].values)

    def _apply_heavy(
        self,
        heavy: LoadedModel,
        records: list[DecisionRecord],
        candidates: Sequence[Candidate],
        rows: list[int],
        shed_heavy: bool,
    ) -> None:
        if shed_heavy:
            for i in rows:
                records[i].mark_degraded("heavy_shed")
            return
        scores = self._score("heavy", heavy, records, candidates, rows)
        if scores is None:  # the light scores stand
            for i in rows:
                records[i].mark_degraded("heavy_unavailable")
            return
        for i, score in zip(rows, scores.tolist(), strict=True):
            self._set_score(records[i], "heavy", heavy, score)

    def _score(
        self,
        tier: Tier,
        model: LoadedModel,
        records: list[DecisionRecord],
        candidates: Sequence[Candidate],
        rows: list[int],
    ) -> npt.NDArray[np.float64] | None:
        """One call of ``model`` under the tier's policy for ``rows``; None if it failed."""
        matrix = _matrix(model.features, candidates, rows)
        outcome = self._policies[tier].call(model.predict_proba, matrix)
        budget = self.config.light_budget_ms if tier == "light" else self.config.heavy_budget_ms
        over_budget = outcome.latency_ms > budget * len(rows)
        for i in rows:
            records[i].latency_ms[tier] = outcome.latency_ms
            if over_budget:
                records[i].mark_degraded(f"{tier}_over_budget")
        if outcome.degraded or outcome.value is None:
            return None
        return np.asarray(outcome.value, np.float64).reshape(len(rows))

    def _set_score(
        self, record: DecisionRecord, tier: Tier, model: LoadedModel, score: float
    ) -> None:
        record.score = score
        record.tier = tier
        record.model_version = f"{model.name}@{model.version}"
        record.action = self.config.action_for(score)

    def close(self) -> None:
        if self._shadow is not None:
            self._shadow.close()


def _no_score(error: BaseException) -> None:
    log.warning("model tier failed, falling back: %s", error)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One event to decide: its id, key, values (features and event fields) and how old
    its features were when read (0: computed now)."""

    event_id: str
    key: str
    values: Mapping[str, Any]
    feature_age_ms: int = 0


def _matrix(
    names: Sequence[str], candidates: Sequence[Candidate], rows: list[int]
) -> npt.NDArray[np.float32]:
    """The model's inputs of ``rows``, one row each: each value as a Python float (exact
    for the counts and amounts features hold), then float32, as the model takes them."""
    cells: list[Any]
    if len(names) < 2:  # itemgetter of one name gives the value, not a tuple
        cells = [[candidates[i].values[name] for name in names] for i in rows]
    else:
        pick = operator.itemgetter(*names)
        cells = [pick(candidates[i].values) for i in rows]
    return np.array(cells, np.float64).reshape(len(rows), len(names)).astype(np.float32)


def _record(candidate: Candidate) -> DecisionRecord:
    return DecisionRecord(
        event_id=candidate.event_id,
        key=candidate.key,
        score=0.0,
        action="allow",
        tier="rules",
        features=dict(candidate.values),
        feature_age_ms=candidate.feature_age_ms,
    )
