"""Scores as one record per micro-batch (issue #15): columns of the batch's scored readings
instead of a JSON record per reading.

A record per reading made the platform's per-record work (sizing, partitioning, headers,
one JSON document each) most of the pipeline's cost; a batch of a thousand scores is one
record of a few columns, written with the batch's offsets like any sink's records. The
series (with machine and sensor) are dictionary-encoded: a batch names each once.

Each record goes to the partition its readings came from, so a series' scores stay in log
order. A record holds at most ``CHUNK`` readings and stays under the broker's record limit
(halved until it fits; a single reading too large for it carries its own ``source`` header,
so the worker sends that reading to the dead letters as it would any oversized output).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

import streamsense as ss
from streamsense.brokers import Broker
from streamsense.brokers.base import RECORD_LIMIT_BYTES, OutRecord, TopicConfig
from streamsense.brokers.topic_chunks import topic_chunks
from streamsense.events import Event
from streamsense.runtime.app import source_headers

from .readings import Scored

CHUNK = 4096  # readings per record at most (~150 KB of JSON for NAB's series)


class ScoreBatch(ss.Schema):
    """The scored readings of one micro-batch of one partition, in log order, by column.
    ``keys`` lists each distinct (series, machine, sensor) once and ``key`` points into it;
    ``alerts`` are the positions of the readings that raised an alert."""

    detector: str
    keys: list[tuple[str, str, str]]
    key: list[int]
    timestamp: list[int]
    value: list[float]
    seq: list[int]
    score: list[float]
    alerts: list[int]

    @staticmethod
    def of(scored: Sequence[Scored]) -> ScoreBatch:
        index: dict[tuple[str, str, str], int] = {}
        key = [index.setdefault((s.series, s.machine, s.sensor), len(index)) for s in scored]
        return ScoreBatch(
            detector=scored[0].detector if scored else "",
            keys=list(index),
            key=key,
            timestamp=[s.timestamp for s in scored],
            value=[s.value for s in scored],
            seq=[s.seq for s in scored],
            score=[s.score for s in scored],
            alerts=[i for i, s in enumerate(scored) if s.alert],
        )

    def rows(self) -> list[Scored]:
        """The batch as one ``Scored`` per reading (without the alerts' features, which
        travel in the alert records)."""
        alerts = set(self.alerts)
        out = []
        columns = zip(self.key, self.timestamp, self.value, self.seq, self.score, strict=True)
        for i, (k, time, value, seq, score) in enumerate(columns):
            series, machine, sensor = self.keys[k]
            out.append(
                Scored(series, time, value, seq, score, self.detector, machine, sensor, i in alerts)
            )
        return out


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ScoreBatch).decode


@dataclass(frozen=True)
class ScoreBatchSink:
    """Writes a flow's ``Scored`` values to ``topic`` as ``ScoreBatch`` records."""

    topic: str

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {self.topic: TopicConfig(partitions)}

    def write(self, events: Sequence[Event[Any]], values: Sequence[Any]) -> list[OutRecord]:
        records: list[OutRecord] = []
        for start in range(0, len(values), CHUNK):
            end = min(start + CHUNK, len(values))
            records.extend(self._fitted(events, values, start, end))
        return records

    def _fitted(
        self, events: Sequence[Event[Any]], values: Sequence[Any], start: int, end: int
    ) -> Iterator[OutRecord]:
        """Readings ``start:end`` as one record, or split in halves until each fits."""
        value = _encode(ScoreBatch.of(values[start:end]))
        if len(value) > RECORD_LIMIT_BYTES - 256 and end - start > 1:
            middle = (start + end) // 2
            yield from self._fitted(events, values, start, middle)
            yield from self._fitted(events, values, middle, end)
            return
        first = events[start]
        # One reading: its own source (an oversized one becomes its dead letter); more:
        # the range of readings the record holds.
        headers = (
            source_headers(first)
            if end - start == 1
            else (("sources", f"{first.id}..{events[end - 1].offset}".encode()),)
        )
        yield OutRecord(self.topic, value, None, first.partition, headers=headers)


def read_scores(broker: Broker, topic: str) -> list[Scored]:
    """Every score in ``topic``, partition by partition in log order."""
    out: list[Scored] = []
    for chunk in topic_chunks(broker, topic):
        for record in chunk:
            if record.value:
                out.extend(_decode(record.value).rows())
    return out
