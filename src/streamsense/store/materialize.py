"""Copying a topic into the offline store, resumably: each partition's records go in
chunks to Parquet files named after their offsets, and a cursor file per partition says
how far it got, so a rerun continues (and rewrites at most the chunk it was writing)."""

from __future__ import annotations

import json

import msgspec
import pyarrow as pa

from streamsense.brokers.base import Broker, TopicPartition
from streamsense.store.backfill import _chunks
from streamsense.store.offline import OfflineStore


def offline_table(topic: str) -> str:
    """Where a topic lands offline: feature logs under ``feature_log/``, streams under
    ``events/`` (the event archive)."""
    if topic.endswith(".feature-log"):
        return f"feature_log/{topic.removesuffix('.feature-log')}"
    return f"events/{topic}"


def materialize(broker: Broker, topic: str, offline: OfflineStore, *, chunk: int = 200_000) -> int:
    copied = 0
    cursors = offline.root / "_cursors"
    cursors.mkdir(parents=True, exist_ok=True)
    for part in broker.describe_topic(topic).partitions:
        tp = TopicPartition(topic, part.partition)
        cursor = cursors / f"{topic}.{part.partition}.json"
        start = json.loads(cursor.read_text())["next"] if cursor.exists() else part.low
        for records in _chunks(broker, tp, max(start, part.low), part.high, chunk):
            rows = [msgspec.json.decode(r.value or b"{}") for r in records]
            table = pa.Table.from_pylist(
                [
                    {
                        **_flatten(row),
                        "offset": r.offset,
                        "partition": r.partition,
                        "timestamp": r.timestamp,
                    }
                    for row, r in zip(rows, records, strict=True)
                ]
            )
            name = f"p{part.partition:03d}-{records[0].offset:012d}-{records[-1].offset:012d}"
            offline.write(offline_table(topic), table, time_column="timestamp", name=name)
            cursor.write_text(json.dumps({"next": records[-1].offset + 1}))
            copied += len(records)
    return copied


def _flatten(row: dict[str, object]) -> dict[str, object]:
    """Nested objects (a feature vector) become top-level columns."""
    flat: dict[str, object] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat
