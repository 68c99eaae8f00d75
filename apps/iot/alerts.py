"""Alerts through the platform's action sinks. The detector stage flags the readings that
raise an alert (a score at or above the threshold, at most one per series per cooldown,
decided on event time in the stage's own durable state); this sink turns each flagged
reading into an ``Alert`` record and hands those to the action sinks behind it (a topic,
an alert log, a webhook, a table), which are idempotent by the reading's event id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from streamsense.brokers.base import OutRecord, TopicConfig
from streamsense.events import Event
from streamsense.runtime.app import Sink
from streamsense.runtime.repartition import CLOCK_HEADER, Repartition

from .readings import Alert, Scored

_alert, _machine = attrgetter("alert"), attrgetter("machine")
_partition, _event_time = attrgetter("partition"), attrgetter("event_time")


def alert_of(scored: Scored, threshold: float) -> Alert:
    where = f"{scored.machine}/{scored.sensor}" if scored.machine else scored.series
    return Alert(
        series=scored.series,
        machine=scored.machine,
        timestamp=scored.timestamp,
        score=scored.score,
        detector=scored.detector,
        features={"value": scored.value, **scored.features},
        reason=f"{scored.detector} score {scored.score:.3f} ≥ {threshold} on {where}",
    )


@dataclass
class AlertSink:
    """Flagged readings → ``Alert`` records → every action sink in ``actions``."""

    actions: list[Sink]
    threshold: float = 0.5

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        configs: dict[str, TopicConfig] = {}
        for sink in self.actions:
            configs.update(sink.topic_configs(partitions))
        return configs

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        if not any(map(_alert, values)):  # the common batch: nothing to act on
            return []
        chosen = [(e, v) for e, v in zip(events, values, strict=True) if v.alert]
        flagged = [e for e, _ in chosen]
        alerts = [alert_of(v, self.threshold) for _, v in chosen]
        records: list[OutRecord] = []
        for sink in self.actions:
            records.extend(sink.write(flagged, alerts))
        return records


@dataclass
class MachinesOnly:
    """The repartition by machine, for the scored readings that name a machine (NAB series
    name none, so they never reach the multi-sensor flow). An upstream partition whose
    batch had no such reading still sends its clock markers, so the event-time merge
    downstream never waits on it (runtime/repartition.py)."""

    repartition: Repartition

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return self.repartition.topic_configs(partitions)

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        chosen = (
            [(e, v) for e, v in zip(events, values, strict=True) if v.machine]
            if any(map(_machine, values))
            else []
        )
        records = self.repartition.write([e for e, _ in chosen], [v for _, v in chosen])
        reached: dict[int, int] = {}
        for partition in set(map(_partition, events)):  # the worker writes one at a time
            mine = (e for e in events if e.partition == partition)
            reached[partition] = max(map(_event_time, mine), default=0)
        for upstream in sorted(set(reached) - {e.partition for e, _ in chosen}):
            records.extend(self._markers(upstream, reached[upstream]))
        return records

    def _markers(self, upstream: int, clock: int) -> list[OutRecord]:
        target = self.repartition.target
        headers = ((CLOCK_HEADER, str(clock).encode()),)
        topic = target.lane_topics[upstream]
        return [OutRecord(topic, None, None, q, headers=headers) for q in range(target.partitions)]
