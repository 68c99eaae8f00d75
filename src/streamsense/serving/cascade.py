"""The decision cascade: rules → light model → heavy model for borderline scores.

Each tier has a latency budget and a circuit breaker. A heavy tier that fails (or whose
breaker is open) falls back to the light score; a light tier that fails hands the decision to
the fallback chain (serving/fallbacks.py: fallback rules, the key's last cached prediction or
a configured default). Either way the decision is marked degraded and says why. Under load the
heavy tier can be shed: every event still gets the light score, and the decision is marked.
Shadow models score off the hot path (a background thread) and their scores are logged.

The breakers report their state changes to ``logging`` and to ``registry`` (Prometheus): the
service exposes that registry on /metrics (``Serving.metrics_registry`` defaults to it).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from prometheus_client import CollectorRegistry

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.resilience.breaker import BreakerConfig, CircuitBreaker
from streamsense.resilience.policy import Policy
from streamsense.serving.decision import Action, DecisionRecord, ShadowScore
from streamsense.serving.fallbacks import RULE_SCORES, FallbackChain, FallbackConfig
from streamsense.serving.models import LoadedModel
from streamsense.serving.rules import RuleMatch

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
        self._shadow = _ShadowScorer(list(shadow), on_shadow) if shadow else None

    def decide(
        self,
        event_id: str,
        key: str,
        values: Mapping[str, Any],
        *,
        shed_heavy: bool = False,
        feature_age_ms: int = 0,
    ) -> DecisionRecord:
        started = time.perf_counter()
        record = DecisionRecord(
            event_id=event_id,
            key=key,
            score=0.0,
            action="allow",
            tier="rules",
            features=dict(values),
            feature_age_ms=feature_age_ms,
        )
        if self._decide_by_rules(record, values):
            return self._finish(record, started)
        if self.light is None:
            return self._finish(record, started)
        light_score = self._score("light", self.light, values, record)
        if light_score is None:
            record.mark_degraded("light_unavailable")
            self.fallbacks.decide(record, values)
            return self._finish(record, started)
        self._set_score(record, "light", self.light, light_score)
        low, high = self.config.heavy_band
        if self.heavy is not None and low <= light_score < high:
            if shed_heavy:
                record.mark_degraded("heavy_shed")
            else:
                heavy_score = self._score("heavy", self.heavy, values, record)
                if heavy_score is None:
                    record.mark_degraded("heavy_unavailable")
                else:
                    self._set_score(record, "heavy", self.heavy, heavy_score)
        self.fallbacks.remember(record)
        if self._shadow is not None:
            self._shadow.submit(record, values)
        return self._finish(record, started)

    def _decide_by_rules(self, record: DecisionRecord, values: Mapping[str, Any]) -> bool:
        if self.rules is None:
            return False
        begun = time.perf_counter()
        match = self.rules.decide(values)
        record.latency_ms["rules"] = (time.perf_counter() - begun) * 1000
        if match.rule is None:
            return False  # no rule matched: the models decide
        record.rule, record.action, record.tier = match.rule, match.action, "rules"
        record.score = match.score if match.score is not None else RULE_SCORES[match.action]
        return True

    def _score(
        self, tier: str, model: LoadedModel, values: Mapping[str, Any], record: DecisionRecord
    ) -> float | None:
        row = np.array([[float(values[name]) for name in model.features]], np.float32)
        outcome = self._policies[tier].call(model.predict_proba, row)
        record.latency_ms[tier] = outcome.latency_ms
        budget = self.config.light_budget_ms if tier == "light" else self.config.heavy_budget_ms
        if outcome.latency_ms > budget:
            record.mark_degraded(f"{tier}_over_budget")
        if outcome.degraded or outcome.value is None:
            return None
        return float(outcome.value[0])

    def _set_score(
        self, record: DecisionRecord, tier: str, model: LoadedModel, score: float
    ) -> None:
        record.score = score
        record.tier = "light" if tier == "light" else "heavy"
        record.model_version = f"{model.name}@{model.version}"
        record.action = self.config.action_for(score)

    @staticmethod
    def _finish(record: DecisionRecord, started: float) -> DecisionRecord:
        record.latency_ms["total"] = (time.perf_counter() - started) * 1000
        return record

    def close(self) -> None:
        if self._shadow is not None:
            self._shadow.close()


def _no_score(error: BaseException) -> None:
    log.warning("model tier failed, falling back: %s", error)


class _ShadowScorer:
    """Scores shadow models on a background thread; a full queue skips (and counts) shadow
    work rather than slow the live path."""

    def __init__(
        self, models: list[LoadedModel], sink: Callable[[ShadowScore], None] | None
    ) -> None:
        self.models = models
        self.sink = sink or (lambda score: log.info("shadow %s", score))
        self.skipped = 0
        self.scored = 0
        self._queue: queue.Queue[tuple[DecisionRecord, dict[str, Any]] | None] = queue.Queue(10_000)
        self._thread = threading.Thread(target=self._run, daemon=True, name="shadow-models")
        self._thread.start()

    def submit(self, record: DecisionRecord, values: Mapping[str, Any]) -> None:
        try:
            self._queue.put_nowait((record, dict(values)))
        except queue.Full:
            self.skipped += 1

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            record, values = item
            for model in self.models:
                try:
                    row = np.array([[float(values[n]) for n in model.features]], np.float32)
                    score = float(model.predict_proba(row)[0])
                except Exception:  # a broken shadow model must never affect live decisions
                    log.exception("shadow model %s failed", model.name)
                    continue
                self.scored += 1
                self.sink(
                    ShadowScore(
                        record.event_id,
                        model.name,
                        str(model.version),
                        score,
                        record.score,
                        record.tier,
                    )
                )

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)
