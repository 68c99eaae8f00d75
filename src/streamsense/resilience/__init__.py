"""Degradation for every stage (design §1): retry with backoff and jitter, a circuit breaker
with resilience4j's semantics, timeouts and fallbacks composed by ``Policy``, and last known
values with a confidence penalty for when a store is slow or down.

    breaker = CircuitBreaker("model", BreakerConfig(minimum_calls=20), registry=registry)
    policy = Policy("model", timeout=0.05, retry=RetryPolicy(attempts=2), breaker=breaker,
                    fallback=lambda exc: rules.score(event))
    outcome = await policy.acall(model.score, features)
    record.degraded, record.reason = outcome.degraded, outcome.reason
"""

from __future__ import annotations

from streamsense.errors import CircuitOpen, StageTimeout
from streamsense.resilience.breaker import (
    BreakerConfig,
    BreakerMetrics,
    BreakerState,
    CircuitBreaker,
    StateChange,
)
from streamsense.resilience.policy import Outcome, Policy, degradation_reason
from streamsense.resilience.retry import RetryPolicy, RetryTrace, is_transient, should_retry
from streamsense.resilience.staleness import LastKnownCache, Stale, confidence

__all__ = [
    "BreakerConfig",
    "BreakerMetrics",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "LastKnownCache",
    "Outcome",
    "Policy",
    "RetryPolicy",
    "RetryTrace",
    "StageTimeout",
    "Stale",
    "StateChange",
    "confidence",
    "degradation_reason",
    "is_transient",
    "should_retry",
]
