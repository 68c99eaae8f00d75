"""Streams: topics with their partitions and end offsets, the app's consumer group with its
lag per partition (now and over time), a message browser over a topic's newest records and
the dead letters with their reasons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from streamsense.brokers.base import Record, TopicInfo, TopicPartition
from streamsense.runtime.lag import GroupLag, group_lag
from streamsense.ui.context import UiContext
from streamsense.ui.sampler import Sampler
from streamsense.ui.series import Chart, lag_chart
from streamsense.ui.tail import tail

BROWSE_LIMIT = 200


@dataclass(frozen=True)
class ShownRecord:
    partition: int
    offset: int
    written: str
    key: str
    value: str
    headers: dict[str, str]


def topics(context: UiContext) -> list[TopicInfo]:
    return [context.broker.describe_topic(name) for name in sorted(context.broker.list_topics())]


def lag_now(context: UiContext) -> GroupLag | None:
    if context.group is None:
        return None
    return group_lag(context.broker, context.group, context.existing(context.source_topics()))


def lag_over_time(context: UiContext, sampler: Sampler) -> Chart:
    samples = sampler.snapshot()
    sources = set(context.source_topics())
    partitions = sorted({tp for s in samples[-1:] for tp in s.highs if tp.topic in sources})
    return lag_chart(samples, partitions)


def browse(context: UiContext, topic: str, n: int) -> list[ShownRecord]:
    """The ``n`` newest records of ``topic`` (at most ``BROWSE_LIMIT``), decoded."""
    if topic not in set(context.broker.list_topics()):
        return []
    return [shown(r) for r in tail(context.broker, topic, max(1, min(n, BROWSE_LIMIT)))]


def dead_letters(context: UiContext, n: int = 20) -> dict[str, list[ShownRecord]]:
    """Per dead-letter topic of the app, its newest letters (reasons are in the headers)."""
    return {
        topic: browse(context, topic, n) for topic in context.existing(context.dead_letter_topics())
    }


def shown(record: Record) -> ShownRecord:
    return ShownRecord(
        partition=record.partition,
        offset=record.offset,
        written=datetime.fromtimestamp(record.timestamp / 1000, UTC).isoformat(
            timespec="milliseconds"
        ),
        key=_text(record.key),
        value=_pretty(record.value),
        headers={name: _text(value) for name, value in record.headers},
    )


def _pretty(value: bytes | None) -> str:
    """JSON as compact text; msgpack or other bytes as their repr (cut)."""
    if value is None:
        return "(tombstone)"
    try:
        return msgspec.json.encode(msgspec.json.decode(value)).decode()[:2_000]
    except msgspec.DecodeError:
        pass
    try:
        return repr(msgspec.msgpack.decode(value))[:2_000]
    except msgspec.DecodeError:
        return repr(value[:500])


def _text(data: bytes | None) -> str:
    if data is None:
        return ""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return repr(data)


def source_of(record: ShownRecord) -> TopicPartition | None:
    """Where a dead letter came from (its ``source`` header: topic/partition/offset)."""
    topic, _, rest = record.headers.get("source", "").rpartition("/")
    topic, _, partition = topic.rpartition("/")
    return TopicPartition(topic, int(partition)) if topic and partition.isdigit() and rest else None
