"""Repartitions that keep event-time order.

A flow that re-keys its events (say payments keyed by terminal, re-keyed by customer) sends
them to a stream declared with ``upstream_partitions=U``. Such a stream lives in U topics,
``<name>.from.<u>``, one per upstream partition: each holds what upstream partition u wrote,
in the order u processed it. Downstream, partition q of the U topics feeds one flow and one
keyed state (they are co-partitioned like a priority lane), and the worker takes their
records in event-time order (runtime/merge.py): a customer's payments that left several
terminal partitions at different speeds are then seen in time order, as the definition
says, instead of in the order they happened to be written.

Every record carries its event time (header ``ss-time``). After each batch the writer of
upstream partition u sends a marker to every partition of its topic (header ``ss-clock``):
the event time it has reached, a promise that what u writes next is not older. Markers let
a reader take a record from one upstream while another has nothing buffered, and are
skipped by the flows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from streamsense.brokers.base import Headers, OutRecord, Record, TopicConfig
from streamsense.errors import ConfigError
from streamsense.events import Event, Stream

TIME_HEADER = "ss-time"
CLOCK_HEADER = "ss-clock"
_encode = msgspec.json.Encoder().encode


def is_marker(record: Record) -> bool:
    return record.value is None and any(name == CLOCK_HEADER for name, _ in record.headers)


def record_time(record: Record) -> int | None:
    """The event time a repartitioned record or a marker carries, if any."""
    for name, value in record.headers:
        if name in (TIME_HEADER, CLOCK_HEADER):
            return int(value)
    return None


@dataclass
class Repartition:
    """The sink of a flow that re-keys its values into ``target`` (a stream declared with
    ``upstream_partitions`` equal to this flow's source partitions). Values must be
    payloads of the target's schema; they are keyed and timed by its key and time fields."""

    target: Stream[Any]
    _clock: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _topics: tuple[str, ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.target.upstream_partitions < 1:
            raise ConfigError(
                f"stream {self.target.name!r} is not declared as a repartition target "
                "(Stream(..., upstream_partitions=<partitions of the source>))"
            )
        self._topics = self.target.lane_topics  # worked out once: asked for every record

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return self.target.topic_configs()

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        out = []
        for event, value in zip(events, values, strict=True):
            topic = self._topic(event.partition)
            time_ms = self.target.event_time_of(value)
            self._clock[event.partition] = max(time_ms, self._clock.get(event.partition, time_ms))
            headers: Headers = (("source", event.id.encode()), (TIME_HEADER, str(time_ms).encode()))
            key = self.target.key_of(value).encode()
            out.append(OutRecord(topic, _encode(value), key, headers=headers))
        upstreams = {event.partition for event in events}
        out.extend(marker for u in sorted(upstreams) for marker in self.markers(u))
        return out

    def markers(self, upstream: int) -> list[OutRecord]:
        """One marker per target partition: upstream ``upstream`` reached its clock."""
        clock = self._clock.get(upstream)
        if clock is None:
            return []
        headers: Headers = ((CLOCK_HEADER, str(clock).encode()),)
        topic = self._topic(upstream)
        return [OutRecord(topic, None, None, q, headers=headers) for q in self._partitions()]

    def _topic(self, upstream: int) -> str:
        if upstream >= self.target.upstream_partitions:
            raise ConfigError(
                f"stream {self.target.name!r} has {self.target.upstream_partitions} upstream "
                f"partitions; an event came from partition {upstream}"
            )
        return self._topics[upstream]

    def _partitions(self) -> range:
        return range(self.target.partitions)
