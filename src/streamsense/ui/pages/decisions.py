"""Decisions: by action and tier over time, latency percentiles per tier, the degraded
share and its reasons, the breakers' states, and the newest decisions with their features
and reasons. Read from the decision topics as they grow (the sampler's running
aggregates), never by scanning them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from streamsense.resilience.breaker import BreakerMetrics
from streamsense.ui.context import UiContext
from streamsense.ui.sampler import Sampler
from streamsense.ui.series import Chart

SHOWN_RECENT = 12


@dataclass
class DecisionsView:
    topics: list[str]
    seen: float  # decisions counted (records read, each weighted when sampled)
    degraded: float
    reasons: dict[str, int]
    latencies: dict[str, tuple[float, float, int]]  # per tier
    breakers: dict[str, BreakerMetrics]
    transitions: dict[str, dict[str, int]]  # breaker → state → times it went there
    recent: list[dict[str, Any]]

    @property
    def degraded_share(self) -> float:
        return 100.0 * self.degraded / self.seen if self.seen else 0.0


def decisions(context: UiContext, sampler: Sampler) -> DecisionsView:
    sampler.latest()  # a first look at the decision topics if none was taken yet
    topics = context.decision_topics()
    breakers = {name: b.metrics() for name, b in context.breakers().items()}
    with sampler.lock:
        stats = sampler.decisions
        return DecisionsView(
            topics=topics,
            seen=stats.seen,
            degraded=stats.degraded,
            reasons=dict(stats.reasons.most_common()),
            latencies=stats.percentiles(),
            breakers=breakers,
            transitions=context.breaker_transitions(),
            recent=list(stats.recent)[:SHOWN_RECENT],
        )


def by_chart(sampler: Sampler, by: str) -> Chart:
    """Decisions per second by action (``by="actions"``) or by tier."""
    with sampler.lock:
        names, columns = sampler.decisions.series(by)
    return Chart(names, columns, "decisions/s")


def degraded_chart(sampler: Sampler) -> Chart:
    with sampler.lock:
        columns = sampler.decisions.degraded_series()
    return Chart(["degraded %"], columns, "%")
