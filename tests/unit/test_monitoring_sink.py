"""MonitorSink in a flow on the memory broker: alerts reach their topic with the offsets,
once each, also when a batch is written again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

import streamsense as ss
from streamsense.brokers import MemoryBroker, TopicConfig
from streamsense.brokers.base import OutRecord
from streamsense.errors import RetryableError
from streamsense.monitoring import Alert, AlertRule, build_profile
from streamsense.monitoring.seasons import DAY_MS
from streamsense.monitoring.sink import MonitorSink, decision_row
from streamsense.monitoring.synthetic import MONDAY_MS, WEEK_MS, weekly_stream
from streamsense.runtime.app import Sink
from streamsense.runtime.pauses import Backoff
from streamsense.testing import drain_topic

SHIFT_MS = MONDAY_MS + 5 * WEEK_MS + 2 * DAY_MS


class Pay(ss.Schema):
    terminal: str
    ts: int
    amount: float
    channel: str
    score: float


PAYMENTS = ss.Stream("payments", Pay, key="terminal", time="ts", partitions=1)
RULES = [
    AlertRule(kind=kind, statistic="psi", threshold=0.1, min_rows=300, cooldown_ms=DAY_MS)
    for kind in ("feature_drift", "prediction_drift")
]


def monitor() -> MonitorSink:
    stream = weekly_stream(4, seed=21, rows_per_hour=20)
    columns = {k: stream.columns[k] for k in ("amount", "channel", "score")}
    profile = build_profile(
        columns,
        stream.times,
        scores=["score"],
        categorical=["channel"],
        seasonality="weekday_hour",
    )
    return MonitorSink(profile, RULES, topic="payments.alerts", window_ms=DAY_MS)


def payments_broker() -> MemoryBroker:
    live = weekly_stream(7, seed=22, rows_per_hour=20, shift_from=SHIFT_MS).between(
        MONDAY_MS + 4 * WEEK_MS, MONDAY_MS + 7 * WEEK_MS
    )
    broker = MemoryBroker()
    broker.create_topic("payments", TopicConfig(1))
    c = live.columns
    rows = zip(live.times, c["terminal"], c["amount"], c["channel"], c["score"], strict=True)
    with broker.producer() as producer:
        for ts, terminal, amount, channel, score in rows:
            payment = Pay(
                terminal=str(terminal),
                ts=int(ts),
                amount=float(amount),
                channel=str(channel),
                score=float(score),
            )
            record = PAYMENTS.to_record(payment)
            producer.send(record.topic, record.value, record.key)
    return broker


class FailsOnce:
    """Fails the first batch reaching past ``at_ms`` in event time (retryably)."""

    def __init__(self, at_ms: int) -> None:
        self.at_ms = at_ms
        self.failed = False

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {}

    def write(self, events: Sequence[ss.Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        if not self.failed and max(e.event_time for e in events) >= self.at_ms:
            self.failed = True
            raise RetryableError("sink briefly down")
        return []


def alerts_after(sinks: Sequence[Sink]) -> list[Alert]:
    broker = payments_broker()
    app = ss.App("monitored")
    flow = app.flow(PAYMENTS)
    for sink in sinks:
        flow.sink(sink)
    config = ss.WorkerConfig(batch_size=400, retry=Backoff(first_s=0.001, max_s=0.002))
    ss.Worker(app, broker, config).run(until_caught_up=True)
    records = drain_topic(broker, "payments.alerts")
    return [msgspec.json.decode(r.value or b"", type=Alert) for r in records]


def test_a_flow_with_a_monitor_writes_the_shift_s_alerts_to_a_topic() -> None:
    alerts = alerts_after([monitor()])
    assert alerts, "no alert reached the topic"
    assert all(a.detected_at_ms > SHIFT_MS for a in alerts)
    first = next(a for a in alerts if a.subject == "amount")
    assert first.kind == "feature_drift" and first.detected_at_ms == SHIFT_MS + DAY_MS
    assert "prediction_drift" in {a.kind for a in alerts}


def test_a_batch_written_again_neither_loses_nor_repeats_alerts() -> None:
    failing = FailsOnce(at_ms=SHIFT_MS + DAY_MS)  # the batch that closes the shifted day
    alerts = alerts_after([monitor(), failing])
    assert failing.failed
    assert alerts == alerts_after([monitor()])


def test_decision_records_are_read_as_features_and_score() -> None:
    record = ss.serving.DecisionRecord(
        event_id="e", key="k", score=0.7, action="allow", tier="light", features={"amount": 3.0}
    )
    assert decision_row(record) == {"amount": 3.0, "score": 0.7}
    assert decision_row({"amount": 1.0}) == {"amount": 1.0}


def test_missing_or_non_numeric_values_count_as_missing() -> None:
    profile = build_profile({"amount": [1.0, 2.0, 3.0, 4.0]}, [0, 1, 2, 3], bins=2)
    rule = AlertRule(kind="feature_drift", statistic="missing_rate", threshold=0.4)
    sink = MonitorSink(profile, [rule], topic="alerts", window_ms=DAY_MS)
    values: list[dict[str, object]] = [{"amount": 1.0}, {"amount": None}, {"amount": "x"}, {}]
    events = [
        ss.Event(key="k", event_time=i, payload=v, topic="t", partition=0, offset=i, ingest_time=0)
        for i, v in enumerate(values)
    ]
    assert sink.write(events, values) == []
    assert sink.write(events, values) == []  # written again: not counted twice
    (alert,) = sink.close_windows()
    assert (alert.statistic, alert.value, alert.rows) == ("missing_rate", 0.75, 1)


def test_decision_records_in_a_batch_are_read_as_their_rows_are() -> None:
    profile = build_profile(
        {"amount": [1.0, 2.0, 3.0, 4.0], "score": [0.1, 0.2, 0.3, 0.4]}, [0, 1, 2, 3], bins=2,
        scores=["score"],
    )  # fmt: skip
    rule = AlertRule(kind="feature_drift", statistic="missing_rate", threshold=0.0)
    records = [
        ss.serving.DecisionRecord(
            event_id=str(i), key="k", score=0.5, action="allow", tier="light", features=f
        )
        for i, f in enumerate([{"amount": 3.0}, {"amount": 1.0, "score": 9.0}, {}])
    ]
    by_batch = MonitorSink(profile, [rule], topic="alerts", window_ms=DAY_MS)
    by_row = MonitorSink(profile, [rule], topic="alerts", window_ms=DAY_MS, row_of=decision_row)
    by_row.row_of = lambda value: decision_row(value)  # not decision_row itself: row by row
    events = [
        ss.Event(key="k", event_time=i, payload=r, topic="t", partition=0, offset=i, ingest_time=0)
        for i, r in enumerate(records)
    ]
    by_batch.write(events, records)
    by_row.write(events, records)
    (alert,) = by_batch.close_windows()
    assert by_row.close_windows() == [alert]
    assert (alert.subject, alert.value) == ("amount", pytest.approx(1 / 3))
