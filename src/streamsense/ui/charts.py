"""Every chart the pages draw, by the name its ``data-chart`` attribute asks for."""

from __future__ import annotations

from collections.abc import Callable

from streamsense.ui.context import UiContext
from streamsense.ui.pages import decisions, models, overview, streams
from streamsense.ui.sampler import Sampler
from streamsense.ui.series import Chart

DRIFT_KINDS = ("feature_drift", "prediction_drift")
PERFORMANCE_KINDS = ("performance",)

CHARTS: dict[str, Callable[[UiContext, Sampler], Chart]] = {
    "throughput": overview.throughput_chart,
    "lag": streams.lag_over_time,
    "actions": lambda c, s: decisions.by_chart(s, "actions"),
    "tiers": lambda c, s: decisions.by_chart(s, "tiers"),
    "degraded": lambda c, s: decisions.degraded_chart(s),
    "drift": lambda c, s: models.drift_chart(c, s, DRIFT_KINDS),
    "live-drift": lambda c, s: models.live_drift_chart(s),
    "performance": lambda c, s: models.drift_chart(c, s, PERFORMANCE_KINDS),
}
