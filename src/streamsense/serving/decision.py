"""Decision records (design §1): what was decided, by which tier, on which features, how
degraded, and where the time went."""

from __future__ import annotations

from typing import Literal

import msgspec

from streamsense.events import Schema

Action = Literal["allow", "review", "block"]
Tier = Literal["rules", "light", "heavy", "fallback"]


class DecisionRecord(msgspec.Struct, kw_only=True):
    event_id: str
    key: str
    score: float  # probability of the positive class, 0..1
    action: Action
    tier: Tier
    model_version: str | None = None
    rule: str | None = None
    features: dict[str, float | int] = msgspec.field(default_factory=dict)
    feature_age_ms: int = 0  # how old the feature values were when used (0: computed now)
    # Trust in the inputs behind the decision, in [0, 1]: 1 for fresh features and a live
    # model score, lower for last known values (halved every half-life of staleness), 0 for
    # a configured default that rests on no data at all.
    confidence: float = 1.0
    degraded: bool = False
    degraded_reasons: list[str] = msgspec.field(default_factory=list)
    latency_ms: dict[str, float] = msgspec.field(default_factory=dict)

    def mark_degraded(self, reason: str) -> None:
        self.degraded = True
        if reason not in self.degraded_reasons:
            self.degraded_reasons.append(reason)


# msgspec makes the mix a frozen Struct; mypy's dataclass model refuses mixing frozenness.
class Decision(DecisionRecord, Schema, kw_only=True):  # type: ignore[misc]
    """A decision read back from a decisions topic, as a flow's source (action sinks):

        decisions = ss.Stream("payments.decisions", Decision, key="key", time="event_time")

    ``event_time`` is the decided event's time (epoch ms) when the writer recorded it, else
    0. A stream keeps only the fields its schema declares: subclass to keep more."""

    event_time: int = 0


class ShadowScore(msgspec.Struct):
    """A shadow model's score for an event, logged next to the live decision's."""

    event_id: str
    model: str
    model_version: str
    score: float
    live_score: float
    live_tier: Tier
