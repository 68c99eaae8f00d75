"""What the cascade decides with when its models cannot score (design §1: "Model down: rules
engine or the last cached prediction").

A ``FallbackChain`` tries its steps in the configured order; the first that answers decides:

- ``"rules"``: a fallback rule set, evaluated only when the models are down. It can be
  stricter than the rules in front of the models (review at a lower amount, say), because
  nothing behind it will catch what it lets through. No matching rule: the next step.
- ``"last_prediction"``: the key's last model score, from a bounded ``LastKnownCache``
  filled with every score a model gave. Its confidence halves every ``half_life_ms`` of
  staleness; beyond ``max_age_ms`` it is not used. No score for the key: the next step.
- ``"default"``: a configured action and score. Confidence 0: it rests on no data.

Every fallback decision has tier ``"fallback"``, is marked degraded with
``"fallback:<step>"`` next to the reason the models were skipped (``light_unavailable``),
and carries the confidence. If no step answers, the rules tier's result stands (as with no
chain at all). ``penalise`` is how low confidence acts on any decision, here and on the
feature path: the score is left as the model gave it (it stays calibrated and comparable),
``record.confidence`` carries the penalty, and an ``allow`` below ``min_confidence`` becomes
``review``. Stale inputs under-state what happened since (a burst of events, a newly
arrived label), so a stale "allow" is the error that costs; a human review is the cheap way to
be safe. Blocks and reviews are kept as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError
from streamsense.resilience.staleness import LastKnownCache
from streamsense.serving.decision import Action, DecisionRecord
from streamsense.serving.rules import RuleMatch

__all__ = ["RULE_SCORES", "FallbackChain", "FallbackConfig", "FallbackStep", "penalise"]

FallbackStep = Literal["rules", "last_prediction", "default"]
_STEPS = ("rules", "last_prediction", "default")
# The score of a rule's decision when the rule names none.
RULE_SCORES: dict[str, float] = {"allow": 0.0, "review": 0.5, "block": 1.0}


class FallbackRules(Protocol):
    def decide(self, values: Mapping[str, Any]) -> RuleMatch: ...


@dataclass(frozen=True)
class FallbackConfig:
    """The steps, in order, and what they need. ``rules`` is required by the ``"rules"``
    step; ``min_confidence`` is where ``penalise`` turns an allow into a review."""

    chain: tuple[FallbackStep, ...] = ("last_prediction",)
    rules: FallbackRules | None = None
    default_action: Action = "review"
    default_score: float = 0.5
    cache_size: int = 100_000  # keys whose last score is kept (least recently used go)
    half_life_ms: float = 600_000.0  # a 10-minute-old score counts half
    max_age_ms: int | None = 3_600_000  # older scores are not used at all
    min_confidence: float = 0.5

    def __post_init__(self) -> None:
        unknown = [step for step in self.chain if step not in _STEPS]
        if unknown:
            raise ConfigError(f"unknown fallback steps {unknown}: use {list(_STEPS)}")
        if "rules" in self.chain and self.rules is None:
            raise ConfigError('the "rules" fallback step needs a rule set (rules=...)')
        if not 0.0 <= self.default_score <= 1.0:
            raise ConfigError(f"default_score must lie in [0, 1], got {self.default_score}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(f"min_confidence must lie in [0, 1], got {self.min_confidence}")


@dataclass(frozen=True, slots=True)
class _Prediction:
    score: float
    model_version: str | None


class FallbackChain:
    """Decides for the cascade when no model could score; remembers every model score."""

    def __init__(
        self,
        config: FallbackConfig | None = None,
        *,
        action_for: Callable[[float], Action],
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config or FallbackConfig()
        # The cascade's thresholds: a cached score is judged by the ones in force now.
        self._action_for = action_for
        self._predictions: LastKnownCache[str, _Prediction] = LastKnownCache(
            self.config.cache_size,
            self.config.half_life_ms,
            max_age_ms=self.config.max_age_ms,
            clock=clock,
        )
        self._clock = clock
        self._remembers = "last_prediction" in self.config.chain

    def remember(self, record: DecisionRecord) -> None:
        """Keep the model score of ``record`` for its key, as of when its features were
        true (a score on stale features is as old as they are)."""
        if self._remembers:
            at_ms = self._clock.now_ms() - record.feature_age_ms
            prediction = _Prediction(record.score, record.model_version)
            self._predictions.put(record.key, prediction, at_ms=at_ms)

    def decide(self, record: DecisionRecord, values: Mapping[str, Any]) -> bool:
        """Decide ``record`` by the first step that answers; False if none did."""
        for step in self.config.chain:
            if step == "rules":
                answered = self._by_rules(record, values)
            elif step == "last_prediction":
                answered = self._by_last_prediction(record)
            else:
                answered = self._by_default(record)
            if answered:
                return True
        return False

    def _by_rules(self, record: DecisionRecord, values: Mapping[str, Any]) -> bool:
        assert self.config.rules is not None  # checked by FallbackConfig
        match = self.config.rules.decide(values)
        if match.rule is None:
            return False  # the fallback rules' default is not a decision: next step
        score = match.score if match.score is not None else RULE_SCORES[match.action]
        _decided(record, "rules", score, match.action, None)
        record.rule = match.rule
        return True

    def _by_last_prediction(self, record: DecisionRecord) -> bool:
        stale = self._predictions.get(record.key)
        if stale is None:
            return False
        score = stale.value.score
        _decided(
            record, "last_prediction", score, self._action_for(score), stale.value.model_version
        )
        penalise(record, stale.confidence, self.config.min_confidence)
        return True

    def _by_default(self, record: DecisionRecord) -> bool:
        config = self.config
        _decided(record, "default", config.default_score, config.default_action, None)
        # Configured, not inferred: no data behind it, and no penalty overrides it.
        record.confidence = 0.0
        return True


def _decided(
    record: DecisionRecord, step: str, score: float, action: Action, model_version: str | None
) -> None:
    record.tier = "fallback"
    record.score, record.action, record.model_version, record.rule = (
        score,
        action,
        model_version,
        None,
    )
    record.mark_degraded(f"fallback:{step}")


def penalise(record: DecisionRecord, confidence: float, min_confidence: float) -> None:
    """Lower ``record.confidence`` to ``confidence``; below ``min_confidence`` an allow
    becomes a review, marked ``low_confidence`` (see the module doc for why)."""
    record.confidence = min(record.confidence, confidence)
    if record.confidence < min_confidence and record.action == "allow":
        record.action = "review"
        record.mark_degraded("low_confidence")
