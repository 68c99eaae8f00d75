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
import numpy.typing as npt

from streamsense.brokers.base import OutRecord, TopicConfig
from streamsense.events import Event
from streamsense.monitoring.alerts import Alert, AlertEvaluator, AlertRule, observations
from streamsense.monitoring.drift import MIN_SLOT_ROWS, Column, DriftWindows
from streamsense.monitoring.profile import ReferenceProfile
from streamsense.runtime.app import source_headers

RowOf = Callable[[Any], Mapping[str, object]]
KEPT_ALERTS = 1_024  # per partition, for batches written again


class CountedBatches:
    """What a sink needs to take a batch written again (a retried commit) without counting it
    twice: per partition, the last offset counted and the alert records raised with the
    offsets that raised them, so the batch's alerts come back as they were the first time."""

    def __init__(self) -> None:
        self._counted: dict[int, int] = {}
        self._raised: dict[int, deque[tuple[int, OutRecord]]] = {}

    def split(self, events: Sequence[Event[Any]]) -> tuple[list[OutRecord], int]:
        """The records raised before by this batch's counted events, and the index of its
        first event not counted yet (``len(events)`` when all were)."""
        partition = events[0].partition
        counted = self._counted.get(partition, -1)
        first = events[0].offset
        again = [r for offset, r in self._raised.get(partition, ()) if first <= offset <= counted]
        fresh = 0
        while fresh < len(events) and events[fresh].offset <= counted:
            fresh += 1
        return again, fresh

    def counted(self, last: Event[Any], raised: Sequence[OutRecord]) -> None:
        """Events up to ``last`` are counted; ``raised`` are the records they raised."""
        self._counted[last.partition] = last.offset
        kept = self._raised.setdefault(last.partition, deque(maxlen=KEPT_ALERTS))
        kept.extend((last.offset, record) for record in raised)


def decision_row(value: Any) -> Mapping[str, object]:
    """A decision record's features and score; any other JSON object as it is."""
    if isinstance(value, msgspec.Struct):
        data = msgspec.structs.asdict(value)  # shallow: cheaper than to_builtins
    else:
        data = msgspec.to_builtins(value)
    if not isinstance(data, dict):
        return {}
    features = data.get("features")
    if isinstance(features, dict):
        return {**features, "score": data.get("score")}
    return data


class MonitorSink:
    """A flow's sink that raises drift alerts against ``profile`` over tumbling windows of
    ``window_ms`` in event time, written as JSON to ``topic`` (see the module's docstring)."""

    def __init__(
        self,
        profile: ReferenceProfile,
        rules: Sequence[AlertRule],
        *,
        topic: str,
        window_ms: int,
        allowed_lateness_ms: int = 0,
        row_of: RowOf = decision_row,
        min_slot_rows: int = MIN_SLOT_ROWS,
    ) -> None:
        self.topic = topic
        self.windows = DriftWindows(
            profile,
            window_ms,
            allowed_lateness_ms=allowed_lateness_ms,
            min_slot_rows=min_slot_rows,
        )
        self.evaluator = AlertEvaluator(rules)
        self.row_of = row_of
        self._numeric = {c.name: c.numeric is not None for c in profile.columns}
        self._batches = CountedBatches()

    @property
    def alerts_topic(self) -> str:
        return self.topic

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {self.topic: TopicConfig(1)}

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        """One partition's batch, in offset order (the worker's contract for sinks)."""
        if not events:
            return []
        records, first_new = self._batches.split(events)
        if first_new == len(events):
            return records
        events, values = events[first_new:], values[first_new:]
        last = events[-1]
        times = np.fromiter((e.event_time for e in events), np.int64, len(events))
        columns = self._columns(values)
        alerts = self.evaluator.evaluate(observations(self.windows.update(columns, times)))
        raised = [self._record(alert, last) for alert in alerts]
        self._batches.counted(last, raised)
        return records + raised

    def close_windows(self) -> list[Alert]:
        """Close the open windows (the end of a replay) and return what they raise."""
        return self.evaluator.evaluate(observations(self.windows.flush()))

    def _columns(self, values: Sequence[Any]) -> dict[str, Column]:
        field = self._field_reader(values)
        columns: dict[str, Column] = {}
        for name, numeric in self._numeric.items():
            column = field(name)
            columns[name] = _numbers(column) if numeric else column
        return columns

    def _field_reader(self, values: Sequence[Any]) -> Callable[[str], list[object]]:
        """Reads a column from the batch. Structs are read by attribute (a decision record's
        features from its ``features`` mapping, its score as ``score``), skipping a dict per
        row: most of the sink's own cost otherwise."""
        first = values[0]
        if self.row_of is decision_row and isinstance(first, msgspec.Struct):
            features = getattr(first, "features", None)
            if isinstance(features, dict) and all(isinstance(v, msgspec.Struct) for v in values):
                return _decision_field(values)
            if features is None:
                return lambda name: [getattr(v, name, None) for v in values]
        rows = [self.row_of(v) for v in values]
        return lambda name: [row.get(name) for row in rows]

    def _record(self, alert: Alert, event: Event[Any]) -> OutRecord:
        return OutRecord(
            self.topic,
            msgspec.json.encode(alert),
            f"{alert.kind}/{alert.subject}".encode(),
            headers=source_headers(event),
        )


def _decision_field(values: Sequence[Any]) -> Callable[[str], list[object]]:
    """Columns of decision records, as ``decision_row`` reads them (the score wins over a
    feature of that name)."""
    features = [v.features if isinstance(v.features, dict) else {} for v in values]

    def field(name: str) -> list[object]:
        if name == "score":
            return [getattr(v, "score", None) for v in values]
        return [f.get(name) for f in features]

    return field


def _numbers(values: list[object]) -> npt.NDArray[np.float64]:
    """As floats, None as NaN (missing); anything that is not a number is missing too."""
    try:
        return np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        return np.fromiter((_number(v) for v in values), np.float64, len(values))


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return float("nan")
    return float(value)
