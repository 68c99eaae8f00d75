"""`streamsense monitor status APP`: the alerts an app's monitoring raised, one row per kind
and subject (how many, the last one's time, value and threshold), as a rich table.

An app's monitoring sinks say where their alerts go (``alerts_topic``: ``MonitorSink``,
``ModelMonitorSink``, or an app's own sink offering it); every such topic is read whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
from rich.table import Table

from streamsense.brokers import Broker, topic_chunks
from streamsense.errors import StreamsenseError
from streamsense.monitoring.alerts import Alert
from streamsense.runtime.app import App


def alerts_topics(app: App) -> list[str]:
    """The topics the app's monitoring sinks write alerts to, in flow order."""
    found: list[str] = []
    for flow in app.flows.values():
        for sink in flow.sinks:
            topic = getattr(sink, "alerts_topic", None)
            if isinstance(topic, str) and topic not in found:
                found.append(topic)
    return found


def read_alerts(broker: Broker, topics: Iterable[str]) -> list[Alert]:
    decoder = msgspec.json.Decoder(Alert)
    raised: list[Alert] = []
    for topic in topics:
        try:
            chunks = list(topic_chunks(broker, topic))
        except StreamsenseError:
            continue  # never created: nothing raised there yet
        raised += [decoder.decode(r.value) for c in chunks for r in c if r.value is not None]
    return raised


def status_table(raised: list[Alert], title: str) -> Table:
    """One row per (kind, subject), the most recent first."""
    latest: dict[tuple[str, str], tuple[int, Alert]] = {}
    for alert in raised:
        count, last = latest.get((alert.kind, alert.subject), (0, alert))
        newer = alert if alert.detected_at_ms >= last.detected_at_ms else last
        latest[(alert.kind, alert.subject)] = (count + 1, newer)
    table = Table(title=title)
    for name in ("kind", "subject", "alerts", "last at", "statistic", "value", "threshold"):
        table.add_column(name, justify="right" if name in ("alerts", "value") else "left")
    table.add_column("severity")
    rows = sorted(latest.values(), key=lambda entry: -entry[1].detected_at_ms)
    for count, alert in rows:
        table.add_row(*_cells(count, alert), style=_style(alert))
    return table


def _cells(count: int, alert: Alert) -> list[str]:
    return [
        alert.kind, alert.subject, f"{count:,}", alert.detected_at, alert.statistic,
        f"{alert.value:.4g}", f"{alert.threshold:.4g}", alert.severity,
    ]  # fmt: skip


def _style(alert: Alert) -> Any:
    return {"critical": "red", "warning": "yellow"}.get(alert.severity)
