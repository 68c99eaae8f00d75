"""The fraud app's model monitoring (issue #17): the platform's generic monitoring wired to
the decisions and labels flows.

    transactions → features → decide → fraud.decisions
                                     └→ MONITOR ─→ fraud.alerts   (drift, performance)
    labels ─────→ cards (hands each label to MONITOR first)

The reference is what ``streamsense fraud train`` attached to the heavy model in production
(monitoring_reference.py); without one (nothing trained yet) nothing is monitored. Windows,
thresholds and rules come from monitoring.yaml beside this file. `replay --export-alerts
FILE` writes every alert of fraud.alerts, one JSON object a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

import streamsense as ss
from streamsense.brokers import topic_chunks
from streamsense.brokers.base import OutRecord, TopicConfig
from streamsense.errors import StreamsenseError
from streamsense.events import Event
from streamsense.features.windows import to_ms
from streamsense.monitoring import (
    Alert,
    AlertEvaluator,
    MonitorSink,
    PageHinkley,
    ReferenceProfile,
    alerts_jsonl,
    decision_row,
)
from streamsense.monitoring.estimate import EstimatedPerformance
from streamsense.monitoring.model_sink import ModelMonitorSink
from streamsense.monitoring.performance import PerformanceWindows

from .metrics import card_precision_at_100
from .monitoring_config import MonitoringConfig, load_config
from .monitoring_reference import load_references

ALERTS_TOPIC = "fraud.alerts"


def _decision_of(value: Any) -> tuple[int, float, int] | None:
    transaction = getattr(value, "transaction_id", -1)
    if transaction < 0:
        return None  # decided by the HTTP API: no payment id to join a label with
    return transaction, float(value.score), int(value.key)


def _label_of(label: Any) -> tuple[int, int]:
    return int(label.transaction_id), int(label.tx_fraud)


def build_monitor(
    profile: ReferenceProfile, reference: dict[str, float], config: MonitoringConfig
) -> ModelMonitorSink:
    rules = config.alert_rules()
    drift = MonitorSink(
        profile,
        rules,
        topic=ALERTS_TOPIC,
        window_ms=to_ms(config.drift.window),
        allowed_lateness_ms=to_ms(config.drift.allowed_lateness),
        row_of=decision_row,
        min_slot_rows=config.drift.min_slot_rows,
    )
    settings = config.performance
    detector = settings.page_hinkley
    performance = PerformanceWindows(
        to_ms(settings.window),
        reference=reference,
        thresholds=settings.thresholds,
        metrics={"card_precision@100": card_precision_at_100},
        page_hinkley=None if detector is None else PageHinkley(
            delta=detector.delta, threshold=detector.threshold, min_samples=detector.min_samples
        ),
    )  # fmt: skip
    return ModelMonitorSink(
        topic=ALERTS_TOPIC,
        drift=drift,
        performance=performance,
        evaluator=AlertEvaluator(rules),
        decision_of=_decision_of,
        estimate=EstimatedPerformance(to_ms(settings.window), thresholds=settings.thresholds)
        if settings.estimate
        else None,
    )


class FraudMonitor:
    """The decisions flow's monitoring sink: empty until ``configure`` finds a reference."""

    alerts_topic = ALERTS_TOPIC  # `streamsense monitor status` reads it

    def __init__(self) -> None:
        self.inner: ModelMonitorSink | None = None

    def configure(self, state_dir: Path, config: MonitoringConfig | None = None) -> None:
        references = load_references(state_dir)
        if references is None:
            self.inner = None  # nothing trained: nothing to compare with
            return
        profile, performance = references
        self.inner = build_monitor(profile, performance, config or load_config())

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {ALERTS_TOPIC: TopicConfig(1)}

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        return self.inner.write(events, values) if self.inner is not None else []

    def observe_label(self, label: Any, ctx: ss.Context) -> None:
        if self.inner is not None:
            self.inner.label(ctx.event, _label_of(label))


def alerts(broker: ss.Broker) -> list[Alert]:
    """Every alert in fraud.alerts, in log order."""
    decoder = msgspec.json.Decoder(Alert)
    try:
        chunks = list(topic_chunks(broker, ALERTS_TOPIC))
    except StreamsenseError:
        return []  # never created: nothing was monitored
    return [decoder.decode(r.value) for chunk in chunks for r in chunk if r.value is not None]


def export_alerts(broker: ss.Broker, path: Path, start_ms: int | None, end_ms: int | None) -> int:
    """`replay --export-alerts`: every alert raised, one JSON object a line (kind, subject,
    detected_at, statistic, value, threshold, severity, window_ms, rows), in the order they
    were raised. All of them: an alert's time is its window's end, not a replayed row's."""
    raised = alerts(broker)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(alerts_jsonl(raised))
    temporary.replace(path)
    return len(raised)
