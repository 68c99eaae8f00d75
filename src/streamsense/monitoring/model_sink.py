"""``ModelMonitorSink``: a model's whole monitoring as one sink of its decisions flow: drift
of its inputs and score (``MonitorSink``), live performance as labels arrive
(``PerformanceWindows``) and, optionally, performance estimated from the scores before they
do (``EstimatedPerformance``); alerts of all to one topic, committed with the batch's offsets.

    monitor = ModelMonitorSink(drift, performance, decision_of=..., topic="app.alerts")
    app.flow(payments)...stage("decide", decide).sink(monitor)
    app.flow(labels).stage("labels", monitor.label_stage(label_of))

Labels come on another flow: its stage hands them to the sink's performance windows (a
stage, because a flow's sinks only see what its last stage returned). Windows close as the
decisions flow writes, so performance alerts commit with a batch of decisions. Both flows
must run in one worker (co-partitioned single-partition topics, or a replay); the state is
in memory, as ``MonitorSink``'s is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec

from streamsense.brokers.base import OutRecord, TopicConfig
from streamsense.events import Event
from streamsense.monitoring.alerts import Alert, AlertEvaluator, Observation
from streamsense.monitoring.estimate import EstimatedPerformance
from streamsense.monitoring.performance import PerformanceWindows
from streamsense.monitoring.sink import CountedBatches, MonitorSink
from streamsense.runtime.app import Context, source_headers

T = TypeVar("T")
# A decision's id, score and group (card, user); None: not a decision to judge.
DecisionOf = Callable[[Any], tuple[int, float, int] | None]
# A label's id and value (0/1); None: not a label.
LabelOf = Callable[[Any], tuple[int, int] | None]


class ModelMonitorSink:
    def __init__(
        self,
        *,
        topic: str,
        drift: MonitorSink | None,
        performance: PerformanceWindows | None,
        evaluator: AlertEvaluator,
        decision_of: DecisionOf,
        estimate: EstimatedPerformance | None = None,
    ) -> None:
        self.topic = topic
        self.drift = drift
        self.performance = performance
        self.estimate = estimate
        self.evaluator = evaluator
        self.decision_of = decision_of
        self._batches = CountedBatches()
        self._labels_counted: dict[int, int] = {}

    @property
    def alerts_topic(self) -> str:
        return self.topic

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {self.topic: TopicConfig(1)}

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        records = self.drift.write(events, values) if self.drift is not None else []
        if (self.performance is None and self.estimate is None) or not events:
            return records
        again, first_new = self._batches.split(events)
        records += again  # a batch written again returns the alerts it raised the first time
        fresh = list(zip(events[first_new:], values[first_new:], strict=True))
        if not fresh:
            return records
        last = fresh[-1][0]
        raised = [
            self._record(alert, last) for alert in self.evaluator.evaluate(self._observe(fresh))
        ]
        self._batches.counted(last, raised)
        return records + raised

    def _observe(self, fresh: list[tuple[Event[Any], Any]]) -> list[Observation]:
        """The batch's decisions into the windows; what the windows that closed observed."""
        ids, scores, times, groups = [], [], [], []
        for event, value in fresh:
            decision = self.decision_of(value)
            if decision is None:
                continue
            ids.append(decision[0])
            scores.append(decision[1])
            groups.append(decision[2])
            times.append(event.event_time)
        seen: list[Observation] = []
        if self.estimate is not None:
            seen += self.estimate.update(scores, times)
        if self.performance is not None:
            self.performance.decisions(ids, scores, times, groups)
            seen += self.performance.close()
        return seen

    def label(self, event: Event[Any], seen: tuple[int, int] | None) -> None:
        """One label (id, 0/1) with its event, counted once (a batch run again is not
        counted twice)."""
        if self.performance is None:
            return
        if event.offset <= self._labels_counted.get(event.partition, -1):
            return
        self._labels_counted[event.partition] = event.offset
        if seen is None:
            self.performance.label_time(event.event_time)
        else:
            self.performance.labels([seen[0]], [seen[1]], [event.event_time])

    def label_stage(self, label_of: LabelOf) -> Callable[[T, Context], T]:
        """A stage for the labels flow: hands each label to ``label`` and passes it on."""

        def observe(label: T, ctx: Context) -> T:
            self.label(ctx.event, label_of(label))
            return label

        return observe

    def close_windows(self) -> list[Alert]:
        """Close every open window (the end of a replay) and return what they raise."""
        alerts = self.drift.close_windows() if self.drift is not None else []
        if self.estimate is not None:
            alerts += self.evaluator.evaluate(self.estimate.flush())
        if self.performance is not None:
            alerts += self.evaluator.evaluate(self.performance.flush())
        return alerts

    def _record(self, alert: Alert, event: Event[Any]) -> OutRecord:
        return OutRecord(
            self.topic,
            msgspec.json.encode(alert),
            f"{alert.kind}/{alert.subject}".encode(),
            headers=source_headers(event),
        )
