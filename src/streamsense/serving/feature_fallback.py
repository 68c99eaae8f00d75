"""Online feature reads on the decision path, with a fallback for a slow or failed store
(design §1: "Feature store slow: last known values with a confidence penalty that grows with
staleness. Every degraded decision says so in its record").

    guard = FeatureGuard("features:transactions", online, registry=registry)
    read = guard.read(key, payload, event_time)    # FeatureRead: row, age, confidence, reasons

Each read runs under a ``Policy`` with a circuit breaker:

- a store error (a stopped Redis: connection refused, or its socket timeouts) is a failure;
  a read slower than ``slow_call_s`` is a slow call. Once the failure or slow-call rate
  crosses its threshold the breaker opens and reads skip the store altogether (no waiting on
  a sick store) until ``wait_in_open`` has passed; half-open probes then close it again.
- the fallback is the key's last known vector, kept in a bounded ``LastKnownCache`` that every
  successful read fills. The features computed from the event itself (the amount, the hour)
  are recomputed from the new payload: only the windowed values are stale.
- no vector for the key: ``read.row`` is None and ``default_record`` gives the configured
  default decision, marked.

How the staleness penalty acts (``apply``): ``record.confidence`` becomes the cached vector's
confidence, ``0.5 ** (age / half_life)``, and below ``min_confidence`` an ``allow`` turns into
a ``review`` (``fallbacks.penalise``). The score stays the model's own: changing it would
break its calibration and the thresholds that read it. Stale windows miss the newest events, a
burst of events being the very thing windowed features exist to see, so an allow
on stale values is the decision to distrust; a block or review on them stays. Errors that are
not transient (a bug, a bad configuration) are raised, not hidden behind a fallback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.features.buffer import F64
from streamsense.resilience.breaker import BreakerConfig, CircuitBreaker
from streamsense.resilience.policy import Policy
from streamsense.resilience.retry import is_transient
from streamsense.resilience.staleness import LastKnownCache, Stale
from streamsense.serving.decision import Action, DecisionRecord
from streamsense.serving.fallbacks import penalise
from streamsense.store.views import OnlineFeatures

__all__ = ["FeatureFallbackConfig", "FeatureGuard", "FeatureRead"]

log = logging.getLogger(__name__)


def _store_breaker() -> BreakerConfig:
    # A decision waits on the read: 20 % of reads over 50 ms, or half of them failing, in the
    # last 20 opens the breaker; after 5 s three probes tell whether the store is back.
    return BreakerConfig(
        failure_rate_threshold=50.0,
        slow_call_rate_threshold=20.0,
        slow_call_duration=0.05,
        window_size=20,
        minimum_calls=10,
        wait_in_open=5.0,
        permitted_calls_in_half_open=3,
    )


@dataclass(frozen=True)
class FeatureFallbackConfig:
    """The read's breaker, the last-known cache and the decision without any features."""

    breaker: BreakerConfig = field(default_factory=_store_breaker)
    cache_size: int = 100_000  # keys whose last vector is kept (least recently used go)
    half_life_ms: float = 60_000.0  # velocity windows are minutes: a minute-old vector counts half
    max_age_ms: int | None = 3_600_000  # older vectors are not used at all
    min_confidence: float = 0.5  # below it an allow becomes a review
    default_action: Action = "review"  # no vector at all: nothing to score
    default_score: float = 0.5


@dataclass(frozen=True)
class FeatureRead:
    """The feature vector to decide with (None: none at all), how old it is, the trust in it
    and the reasons to mark the decision with (none for a fresh read)."""

    row: F64 | None
    age_ms: int = 0
    confidence: float = 1.0
    reasons: tuple[str, ...] = ()


class FeatureGuard:
    """One stream's online feature reads, guarded. Thread-safe."""

    def __init__(
        self,
        name: str,
        online: OnlineFeatures,
        config: FeatureFallbackConfig | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self.online = online
        self.config = config or FeatureFallbackConfig()
        self.breaker = CircuitBreaker(name, self.config.breaker, clock=clock, registry=registry)
        self._policy: Policy[F64 | None] = Policy(
            name, breaker=self.breaker, fallback=self._no_row, clock=clock
        )
        self._last: LastKnownCache[str, F64] = LastKnownCache(
            self.config.cache_size,
            self.config.half_life_ms,
            max_age_ms=self.config.max_age_ms,
            clock=clock,
        )
        names = online.features.names
        self._computed = [(names.index(f.name), f) for f in online.computed]

    def read(self, key: str, payload: Any, event_time: int) -> FeatureRead:
        """The event's features, counting the event in its own windows; on a failed or
        skipped store read, the key's last known ones."""
        outcome = self._policy.call(self._read_store, payload, event_time)
        if not outcome.degraded and outcome.value is not None:
            self._last.put(key, outcome.value)
            return FeatureRead(outcome.value)
        cause = f"features_{outcome.reason}"
        stale = self._last.get(key)
        if stale is None:
            return FeatureRead(None, reasons=("features_unavailable", cause, "fallback:default"))
        row = self._recompute(stale, payload, event_time)
        reasons = ("features_unavailable", cause, "fallback:last_features")
        return FeatureRead(row, stale.age_ms, stale.confidence, reasons)

    def apply(self, record: DecisionRecord, read: FeatureRead) -> None:
        """Mark a decision made on ``read`` and apply its staleness penalty."""
        for reason in read.reasons:
            record.mark_degraded(reason)
        record.feature_age_ms = read.age_ms
        penalise(record, read.confidence, self.config.min_confidence)

    def default_record(self, event_id: str, key: str, read: FeatureRead) -> DecisionRecord:
        """The configured decision for an event with no features at all, marked."""
        record = DecisionRecord(
            event_id=event_id,
            key=key,
            score=self.config.default_score,
            action=self.config.default_action,
            tier="fallback",
            confidence=0.0,
        )
        for reason in read.reasons:
            record.mark_degraded(reason)
        return record

    def _read_store(self, payload: Any, event_time: int) -> F64:
        matrix = self.online.matrix([payload], [event_time], include_events=True)
        row: F64 = matrix[0]
        return row

    def _recompute(self, stale: Stale[F64], payload: Any, event_time: int) -> F64:
        """The cached vector with the event's own features (no window) computed afresh."""
        row = stale.value.copy()
        times = np.array([event_time], np.int64)
        for column, feature in self._computed:
            inputs = {name: np.array([getattr(payload, name)]) for name in feature.inputs}
            row[column] = feature.fn(times, inputs)[0]
        return row

    @staticmethod
    def _no_row(error: Exception) -> None:
        if not is_transient(error):
            raise error  # a bug or a bad configuration: a fallback would only hide it
        log.debug("online feature read failed, using last known values: %s", error)
