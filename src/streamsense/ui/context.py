"""What the UI reads, gathered once: the broker, the app's topology (when an app is named),
the served parts (model registry, feature views, breakers: present under ``serve``) and where
each kind of record lives, found from the application contract alone (no app names here).

Decision topics are the serving's ``decisions_topic`` and any sink topic whose newest record
looks like a decision record (``action``, ``tier``, ``score``); alert topics are the sinks'
``alerts_topic`` (monitoring sinks offer it); dead letters are ``<stream>.dead-letters``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from streamsense.brokers.base import Broker
from streamsense.errors import StreamsenseError
from streamsense.runtime.app import App, Flow, Stage
from streamsense.serving.registry import ModelRegistry
from streamsense.ui.tail import tail

if TYPE_CHECKING:
    from streamsense.resilience.breaker import CircuitBreaker
    from streamsense.serving.served import Serving
    from streamsense.store.views import OnlineView

DECISION_FIELDS = ("action", "tier", "score")


@dataclass(frozen=True)
class FlowShape:
    """One flow of the app as the overview draws it: source → stages → sinks."""

    source: str  # the source topic
    stages: tuple[tuple[str, str], ...]  # (name, "function" | "batch")
    sinks: tuple[tuple[str, tuple[str, ...]], ...]  # (label, the topics it writes)
    dead_letters: str


@dataclass
class UiContext:
    """Everything the pages read. ``app`` and ``serving`` are None when not known."""

    broker: Broker
    name: str
    app: App | None = None
    serving: Serving | None = None
    registry: ModelRegistry | None = None
    api_key: str | None = None
    state_dir: Path | None = None
    _decision_topics: list[str] | None = field(default=None, repr=False)

    @property
    def group(self) -> str | None:
        return None if self.app is None else self.app.group

    def flows(self) -> list[FlowShape]:
        if self.app is None:
            return []
        return [_shape(flow, self.app.partitions) for flow in self.app.flows.values()]

    def source_topics(self) -> list[str]:
        return [] if self.app is None else list(self.app.sources())

    def sink_topics(self) -> list[str]:
        return [topic for f in self.flows() for _, topics in f.sinks for topic in topics]

    def dead_letter_topics(self) -> list[str]:
        return [f.dead_letters for f in self.flows()]

    def alerts_topics(self) -> list[str]:
        found: list[str] = []
        for flow in [] if self.app is None else self.app.flows.values():
            for sink in flow.sinks:
                topic = getattr(sink, "alerts_topic", None)
                if isinstance(topic, str) and topic not in found:
                    found.append(topic)
        return found

    def decision_topics(self) -> list[str]:
        """Found once (a topic still empty at the first look is looked at again later)."""
        if self._decision_topics:
            return self._decision_topics
        found: list[str] = []
        served = self.serving.decisions_topic if self.serving is not None else ""
        if served:
            found.append(served)
        for topic in self.sink_topics():
            if topic not in found and _holds_decisions(self.broker, topic):
                found.append(topic)
        self._decision_topics = found
        return found

    def views(self) -> dict[str, OnlineView]:
        return {} if self.serving is None else dict(self.serving.views)

    def breakers(self) -> dict[str, CircuitBreaker]:
        """The breakers of this process's serving (the cascade's tiers, feature reads)."""
        if self.serving is None:
            return {}
        found: dict[str, CircuitBreaker] = {}
        if self.serving.cascade is not None:
            for breaker in self.serving.cascade.breakers.values():
                found[breaker.name] = breaker
        for guard in self.serving.feature_guards.values():
            found[guard.breaker.name] = guard.breaker
        return found

    def breaker_transitions(self) -> dict[str, dict[str, int]]:
        """Per breaker, how often it went to each state (its Prometheus counter)."""
        registry = None if self.serving is None else self.serving.metrics_registry
        found: dict[str, dict[str, int]] = {}
        for metric in [] if registry is None else registry.collect():
            if metric.name != "streamsense_circuit_breaker_transitions":
                continue
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    to = found.setdefault(sample.labels["breaker"], {})
                    state = sample.labels["to_state"]
                    to[state] = to.get(state, 0) + int(sample.value)
        return found

    def existing(self, topics: list[str]) -> list[str]:
        known = set(self.broker.list_topics())
        return [t for t in topics if t in known]


def _shape(flow: Flow, partitions: int) -> FlowShape:
    stages = tuple((s.name, "function" if isinstance(s, Stage) else "batch") for s in flow.stages)
    # Every sink says which topics it writes (the Sink protocol's topic_configs).
    sinks = tuple(
        (type(sink).__name__, tuple(sink.topic_configs(partitions))) for sink in flow.sinks
    )
    return FlowShape(flow.source.topic, stages, sinks, flow.source.dead_letter_topic)


def _holds_decisions(broker: Broker, topic: str) -> bool:
    try:
        records = tail(broker, topic, 1)
    except StreamsenseError:
        return False
    for record in records:
        try:
            value = msgspec.json.decode(record.value or b"")
        except msgspec.DecodeError:
            return False
        return isinstance(value, dict) and all(name in value for name in DECISION_FIELDS)
    return False
