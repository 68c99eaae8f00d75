"""Models & monitoring: the registry's versions and aliases, the alerts the app's
monitoring raised (drift per feature over time is the value of each drift alert at the
window end that raised it, by subject), and live performance alerts."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import msgspec

from streamsense.errors import StreamsenseError
from streamsense.monitoring.alerts import Alert
from streamsense.serving.registry import ModelMetadata
from streamsense.ui.context import UiContext
from streamsense.ui.sampler import Sampler
from streamsense.ui.series import Chart
from streamsense.ui.tail import tail

CHART_SUBJECTS = 8
SHOWN_ALERTS = 20
SHOWN_DRIFT = 15
FIRST_ALERTS = 500  # alerts read back per topic when the page first opens
_alert = msgspec.json.Decoder(Alert)


@dataclass
class ModelView:
    name: str
    versions: list[ModelMetadata]
    aliases: dict[str, int]


@dataclass
class MonitoringView:
    models: list[ModelView]
    registry: str | None
    alerts_topics: list[str]
    alerts: list[Alert] = field(default_factory=list)  # newest first
    drift_model: str = ""  # whose reference the live drift compares with ("": none)
    drift_now: list[tuple[str, float]] = field(default_factory=list)  # highest first


def models(context: UiContext, sampler: Sampler) -> MonitoringView:
    found: list[ModelView] = []
    registry = context.registry
    if registry is not None and registry.root.is_dir():
        listed = registry.list()
        for name in sorted({m.name for m in listed}):
            versions = [m for m in listed if m.name == name]
            found.append(ModelView(name, versions, registry.aliases(name)))
    with sampler.lock:
        drift_model, drift_now = sampler.drift.model, sampler.drift.current()
    return MonitoringView(
        models=found,
        registry=None if registry is None else str(registry.root),
        alerts_topics=context.alerts_topics(),
        alerts=alerts(context, sampler)[:SHOWN_ALERTS],
        drift_model=drift_model,
        drift_now=sorted(drift_now.items(), key=lambda kv: -kv[1])[:SHOWN_DRIFT],
    )


def live_drift_chart(sampler: Sampler) -> Chart:
    """PSI per column over time, for the ``CHART_SUBJECTS`` columns drifting most now."""
    with sampler.lock:
        points = list(sampler.drift.points)
    if not points:
        return Chart([], [[]], "PSI")
    latest = points[-1][1]
    names = sorted(latest, key=lambda n: -latest[n])[:CHART_SUBJECTS]
    columns = [[point.get(name) for _, point in points] for name in names]
    return Chart(names, [[at for at, _ in points], *columns], "PSI")


def alerts(context: UiContext, sampler: Sampler) -> list[Alert]:
    """The newest alerts: those the sampler followed, else a bounded tail of each topic."""
    with sampler.lock:
        records = list(sampler.alerts)
    if not records:
        for topic in context.existing(context.alerts_topics()):
            try:
                records += tail(context.broker, topic, FIRST_ALERTS)
            except StreamsenseError:
                continue
    decoded: list[Alert] = []
    for record in records:
        try:
            decoded.append(_alert.decode(record.value or b""))
        except msgspec.DecodeError:
            continue
    decoded.sort(key=lambda a: a.detected_at_ms, reverse=True)
    return decoded


def drift_chart(context: UiContext, sampler: Sampler, kinds: tuple[str, ...]) -> Chart:
    """Alert values over event time (alerts of ``kinds``), for the ``CHART_SUBJECTS``
    subjects that reached the highest values (a chart of forty lines reads as none)."""
    chosen = [a for a in alerts(context, sampler) if a.kind in kinds]
    highest: dict[str, float] = {}
    for a in chosen:
        highest[a.subject] = max(highest.get(a.subject, a.value), a.value)
    kept = set(sorted(highest, key=lambda s: -highest[s])[:CHART_SUBJECTS])
    chosen = [a for a in chosen if a.subject in kept]
    times = sorted({a.detected_at_ms / 1000 for a in chosen})
    by_subject: dict[str, dict[float, float]] = defaultdict(dict)
    for a in chosen:
        by_subject[a.subject][a.detected_at_ms / 1000] = a.value
    names = sorted(by_subject)
    columns: list[list[float | None]] = [[by_subject[n].get(t) for t in times] for n in names]
    return Chart(names, [times, *columns], "statistic")
