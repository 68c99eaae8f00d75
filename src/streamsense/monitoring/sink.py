"""``MonitorSink``: monitoring as a step of any flow. It watches the values that reach the
end of the flow (decision records, or any JSON object of features and scores), feeds the
drift windows and writes every alert raised as a JSON record to a topic, through the
platform's sink mechanism, so alerts commit with the offsets of the batch that raised them.

    flow.sink(MonitorSink(profile, rules, topic="payments.alerts", window_ms=DAY_MS))

A value's row: a decision record's ``features`` plus its ``score``; any other object as it
is. A column the row lacks counts as missing.

State lives in memory, in one process: after a restart the open windows start empty (the
windows that closed before had raised their alerts already). One sink instance sees every
partition its worker owns, as one stream: give it ``allowed_lateness_ms`` to cover how far
apart partitions run in event time, or monitor a single-partition topic (the decisions).

Batches written again (a retried batch, or a later sink failing) are not counted twice: the
sink remembers the last offset it counted per partition, and for events at or before it
returns again the alert records raised with them (a bounded number are kept), since the
first return was discarded with the failed commit.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec
import numpy as np

from streamsense.brokers.base import OutRecord, TopicConfig
from streamsense.events import Event
from streamsense.monitoring.alerts import Alert, AlertEvaluator, AlertRule, observations
from streamsense.monitoring.drift import Column, DriftWindows
from streamsense.monitoring.profile import ReferenceProfile
from streamsense.runtime.app import source_headers

RowOf = Callable[[Any], Mapping[str, object]]
KEPT_ALERTS = 1_024  # per partition, for batches written again


def decision_row(value: Any) -> Mapping[str, object]:
    """A decision record's features and score; any other JSON object as it is."""
    data = msgspec.to_builtins(value)
    if not isinstance(data, dict):
        return {}
    features = data.get("features")
    if isinstance(features, dict):
        return {**features, "score": data.get("score")}
    return data


class MonitorSink:
    def __init__(
        self,
        profile: ReferenceProfile,
        rules: Sequence[AlertRule],
        *,
        topic: str,
        window_ms: int,
        allowed_lateness_ms: int = 0,
        row_of: RowOf = decision_row,
    ) -> None:
        self.topic = topic
        self.windows = DriftWindows(profile, window_ms, allowed_lateness_ms=allowed_lateness_ms)
        self.evaluator = AlertEvaluator(rules)
        self.row_of = row_of
        self._numeric = {c.name: c.numeric is not None for c in profile.columns}
        self._counted: dict[int, int] = {}  # partition -> last offset counted
        self._raised: dict[int, deque[tuple[int, OutRecord]]] = {}

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {self.topic: TopicConfig(1)}

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        records = self._written_before(events)
        fresh = [
            (e, v)
            for e, v in zip(events, values, strict=True)
            if e.offset > self._counted.get(e.partition, -1)
        ]
        if not fresh:
            return records
        for event, _ in fresh:
            self._counted[event.partition] = max(
                self._counted.get(event.partition, -1), event.offset
            )
        times = np.fromiter((e.event_time for e, _ in fresh), np.int64, len(fresh))
        columns = self._columns([self.row_of(v) for _, v in fresh])
        alerts = self.evaluator.evaluate(observations(self.windows.update(columns, times)))
        last = fresh[-1][0]
        for alert in alerts:
            record = self._record(alert, last)
            self._raised.setdefault(last.partition, deque(maxlen=KEPT_ALERTS)).append(
                (last.offset, record)
            )
            records.append(record)
        return records

    def close_windows(self) -> list[Alert]:
        """Close the open windows (the end of a replay) and return what they raise."""
        return self.evaluator.evaluate(observations(self.windows.flush()))

    def _written_before(self, events: Sequence[Event[Any]]) -> list[OutRecord]:
        """Alert records raised with events of this batch that were counted already."""
        again: list[OutRecord] = []
        for partition in {e.partition for e in events}:
            offsets = [e.offset for e in events if e.partition == partition]
            low, high = min(offsets), max(offsets)
            raised = self._raised.get(partition, ())
            again += [record for offset, record in raised if low <= offset <= high]
        return again

    def _columns(self, rows: Sequence[Mapping[str, object]]) -> dict[str, Column]:
        columns: dict[str, Column] = {}
        for name, numeric in self._numeric.items():
            if numeric:
                columns[name] = np.fromiter(
                    (_number(row.get(name)) for row in rows), np.float64, len(rows)
                )
            else:
                columns[name] = [row.get(name) for row in rows]
        return columns

    def _record(self, alert: Alert, event: Event[Any]) -> OutRecord:
        return OutRecord(
            self.topic,
            msgspec.json.encode(alert),
            f"{alert.kind}/{alert.subject}".encode(),
            headers=source_headers(event),
        )


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return float("nan")
    return float(value)
