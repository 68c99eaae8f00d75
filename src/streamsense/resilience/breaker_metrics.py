"""The circuit breakers' Prometheus metrics, one set per registry (labelled by breaker)."""

from __future__ import annotations

import threading
from typing import Literal
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Gauge

BreakerState = Literal["closed", "open", "half_open"]


class BreakerPrometheus:
    """The breaker metrics of one registry, shared by all its breakers (labelled by name):
    prometheus-client refuses to register a metric name twice in a registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.state = Gauge(
            "streamsense_circuit_breaker_state",
            "1 for the breaker's current state (closed, open, half_open), 0 for the others.",
            ("breaker", "state"),
            registry=registry,
        )
        self.transitions = Counter(
            "streamsense_circuit_breaker_transitions",
            "State changes of the breaker.",
            ("breaker", "from_state", "to_state"),
            registry=registry,
        )
        self.calls = Counter(
            "streamsense_circuit_breaker_calls",
            "Calls by outcome: success, failure, slow_success, slow_failure, ignored, "
            "not_permitted.",
            ("breaker", "outcome"),
            registry=registry,
        )

    def set_state(self, breaker: str, current: BreakerState) -> None:
        for state in ("closed", "open", "half_open"):
            self.state.labels(breaker, state).set(1 if state == current else 0)


# Weak keys: the cache keeps no registry alive.
_REGISTRIES: WeakKeyDictionary[CollectorRegistry, BreakerPrometheus] = WeakKeyDictionary()
_REGISTRIES_LOCK = threading.Lock()


def breaker_metrics(registry: CollectorRegistry | None) -> BreakerPrometheus | None:
    if registry is None:
        return None
    with _REGISTRIES_LOCK:
        if registry not in _REGISTRIES:
            _REGISTRIES[registry] = BreakerPrometheus(registry)
        return _REGISTRIES[registry]
