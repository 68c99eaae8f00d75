"""ModelMonitorSink (issue #17): labels handed over by the labels flow, performance alerts
written with a batch of decisions, once each, also when a batch is written again."""

from __future__ import annotations

from typing import Any

import msgspec

from streamsense.events import Event
from streamsense.monitoring import Alert, AlertEvaluator, AlertRule
from streamsense.monitoring.model_sink import ModelMonitorSink
from streamsense.monitoring.performance import PerformanceWindows

DAY = 86_400_000
RULES = [
    AlertRule(
        kind="performance", subject="auc", statistic="vs_reference", threshold=0.8,
        direction="below",
    )
]  # fmt: skip


class Decided(msgspec.Struct):
    payment: int
    score: float


def event(topic: str, offset: int, time: int) -> Event[Any]:
    return Event("k", time, None, topic, 0, offset, time)


def sink() -> ModelMonitorSink:
    return ModelMonitorSink(
        topic="alerts",
        drift=None,
        performance=PerformanceWindows(DAY, reference={"auc": 0.9}),
        evaluator=AlertEvaluator(RULES),
        decision_of=lambda d: (d.payment, d.score, 0) if d.payment >= 0 else None,
    )


def test_a_day_scored_backwards_raises_one_alert_also_when_written_again() -> None:
    monitor = sink()
    first = [Decided(1, 0.1), Decided(2, 0.9), Decided(-1, 0.5)]  # -1: not a payment
    assert monitor.write([event("d", i, i) for i in range(3)], first) == []
    for offset, (payment, label) in enumerate([(1, 1), (2, 0)]):
        monitor.label(event("labels", offset, DAY // 2 + offset), (payment, label))
    monitor.label(event("labels", 1, DAY // 2 + 1), (2, 1))  # a label read again: ignored
    monitor.label(event("labels", 2, DAY + 1), None)  # not a label, but time moves on
    later = [event("d", 3, DAY + 5)]
    records = monitor.write(later, [Decided(3, 0.5)])
    assert len(records) == 1 and records[0].topic == "alerts"
    alert = msgspec.json.decode(records[0].value or b"", type=Alert)
    assert (alert.kind, alert.subject, alert.value) == ("performance", "auc", 0.0)
    assert alert.detected_at == "1970-01-02T00:00:00Z"
    # The same batch again (its commit failed): the same record, nothing counted twice.
    assert monitor.write(later, [Decided(3, 0.5)]) == records
    assert monitor.close_windows() == []
