"""`streamsense monitor status APP` (issue #17): the alerts topics of an app's monitoring
sinks, read back and summarised per kind and subject."""

from __future__ import annotations

from rich.console import Console

import streamsense as ss
from streamsense.cli.monitor_status import alerts_topics, read_alerts, status_table
from tests.unit.test_monitoring_sink import PAYMENTS, monitor, payments_broker


def test_status_lists_each_kind_and_subject_with_its_last_alert() -> None:
    broker = payments_broker()
    app = ss.App("monitored")
    app.flow(PAYMENTS).sink(ss.TopicSink("payments.copy")).sink(monitor())
    assert alerts_topics(app) == ["payments.alerts"]
    ss.Worker(app, broker, ss.WorkerConfig(batch_size=400)).run(until_caught_up=True)
    raised = read_alerts(broker, ["payments.alerts", "never.created"])
    assert raised and {a.kind for a in raised} >= {"feature_drift", "prediction_drift"}
    console = Console(width=200, record=True)
    console.print(status_table(raised, "monitored"))
    text = console.export_text()
    amount = [a for a in raised if a.subject == "amount"]
    last = max(amount, key=lambda a: a.detected_at_ms)
    row = next(line for line in text.splitlines() if " amount " in line)
    assert f" {len(amount)} " in row and last.detected_at in row


def test_an_app_without_monitoring_has_no_alerts_topic() -> None:
    app = ss.App("plain")
    app.flow(PAYMENTS).sink(ss.TopicSink("payments.copy"))
    assert alerts_topics(app) == []
