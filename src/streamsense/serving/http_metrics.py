"""The HTTP API's own metrics (requests by route template and status, decide latency,
decisions, degraded decisions), registered once per registry."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, Counter, Histogram

from streamsense.serving.served import Serving

__all__ = ["HttpMetrics", "metrics_of"]


class HttpMetrics:
    """Request counts are labelled by route template (routes.py), never by raw path."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "streamsense_http_requests",
            "HTTP requests",
            ["route", "status"],
            registry=self.registry,
        )
        self.decide_seconds = Histogram(
            "streamsense_decide_seconds",
            "In-process decide latency",
            registry=self.registry,
            buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05),
        )
        self.decisions = Counter(
            "streamsense_decisions", "Decisions", ["action", "tier"], registry=self.registry
        )
        self.degraded = Counter(
            "streamsense_degraded_decisions",
            "Degraded decisions, by reason (a decision may count under several).",
            ["reason"],
            registry=self.registry,
        )


# One set per registry: a registry refuses a metric name twice (two APIs on one serving).
_METRICS: WeakKeyDictionary[CollectorRegistry, HttpMetrics] = WeakKeyDictionary()


def metrics_of(serving: Serving) -> HttpMetrics:
    registry = serving.metrics_registry
    if registry is None:  # set by Serving.__post_init__; kept for type checkers
        registry = CollectorRegistry()
    if registry not in _METRICS:
        _METRICS[registry] = HttpMetrics(registry)
    return _METRICS[registry]
