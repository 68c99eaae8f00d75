"""What an app serves: the ``Serving`` bundle its ``serving(...)`` hook builds.

Both APIs (HTTP in service.py, gRPC in grpc_service.py) and the shared decide logic
(decide.py) take it; it holds no web framework, so a pipeline that only refers to it
imports neither FastAPI nor grpc.

Decisions (a cascade over online features) are one thing an app may serve; an app may also,
or instead, offer its own routes (``endpoints``: endpoints.py) with what they need started
and stopped around the server (``on_start``/``on_stop``) and a readiness of its own
(``ready``: /readyz answers 503 until it is true). An app without a cascade serves no
decisions: ``POST /v1/decide/...`` answers 404.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from streamsense.brokers.base import Broker
from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.events import Stream
from streamsense.serving.cascade import Cascade
from streamsense.serving.endpoints import Endpoint
from streamsense.serving.feature_fallback import FeatureGuard
from streamsense.serving.registry import ModelRegistry
from streamsense.store.views import OnlineFeatures, OnlineView

__all__ = ["Serving"]


@dataclass
class Serving:
    """Everything the API serves, built by the app (its ``serving(...)`` hook)."""

    name: str
    broker: Broker
    streams: dict[str, Stream[Any]] = field(default_factory=dict)
    features: dict[str, OnlineFeatures] = field(default_factory=dict)  # per stream
    cascade: Cascade | None = None  # None: no decisions served
    decisions_topic: str = ""
    views: dict[str, OnlineView] = field(default_factory=dict)
    registry: ModelRegistry | None = None
    api_key: str | None = None
    max_body_bytes: int = 64 * 1024
    on_model_switch: Callable[[str, str, int], None] | None = None
    # What /metrics shows: by default the cascade's registry, where its breakers report.
    metrics_registry: CollectorRegistry | None = None
    # Per stream, the guarded online read (breaker, last known values); a default guard is
    # made for every stream not given one.
    feature_guards: dict[str, FeatureGuard] = field(default_factory=dict)
    # What "now" is when an event's time is checked (no more than the stream's
    # max_future_ms ahead, as the worker checks it): injected by tests.
    clock: Clock = SYSTEM_CLOCK
    # The app's own routes, answered before the platform's (endpoints.py).
    endpoints: Sequence[Endpoint] = ()
    on_start: Callable[[], None] | None = None  # before the first request
    on_stop: Callable[[], None] | None = None  # after the last
    ready: Callable[[], bool] | None = None  # /readyz: 503 until true

    def __post_init__(self) -> None:
        if self.cascade is not None and self.decisions_topic == "":
            raise ValueError("a Serving with a cascade needs its decisions_topic")
        if self.metrics_registry is None:
            cascade = self.cascade
            self.metrics_registry = CollectorRegistry() if cascade is None else cascade.registry
        for stream, online in self.features.items():
            if stream not in self.feature_guards:
                self.feature_guards[stream] = FeatureGuard(
                    f"features:{stream}", online, registry=self.metrics_registry
                )
