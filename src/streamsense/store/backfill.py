"""Backfill: replay a stream's history through the same feature engine as the live path.

Never a separately written SQL job: the events are read from the broker in offset order per
partition, decoded and validated exactly as the pipeline does, and folded by the same
FeatureEngine. The per-event vectors go to the offline store's feature history
(``feature_history/<feature set>``); each entity's window contents go to the online store.
Resumable: after every chunk the engine's partition state and the next offset are saved, so
a rerun continues where the last chunk ended (and rewrites that chunk's files, not adds).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from streamsense.brokers.base import Broker, Record, TopicPartition
from streamsense.errors import ConfigError, InvalidEvent
from streamsense.events import Event, Stream
from streamsense.features.definitions import FeatureSet
from streamsense.features.engine import FeatureEngine
from streamsense.features.group import Columns
from streamsense.store.offline import OfflineStore
from streamsense.store.online import OnlineStore
from streamsense.store.views import OnlineView

Progress = Callable[[int], None]


@dataclass
class BackfillResult:
    events: int = 0
    invalid: int = 0
    seconds: float = 0.0
    keys_online: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


class Checkpoint(msgspec.Struct):
    next_offset: int
    state: bytes


def history_table(features: FeatureSet) -> str:
    return f"feature_history/{features.name}"


def backfill(
    features: FeatureSet,
    broker: Broker,
    state_dir: Path,
    *,
    offline: OfflineStore | None = None,
    online: OnlineStore | None = None,
    chunk: int = 100_000,
    allowed_lateness_ms: int = 0,
    progress: Progress | None = None,
) -> BackfillResult:
    engine = FeatureEngine(features, allowed_lateness_ms=allowed_lateness_ms)
    views = (
        {g: OnlineView(engine.view_name(g), p, online) for g, p in engine.plans.items()}
        if online
        else {}
    )
    folder = state_dir / "backfill" / features.name
    folder.mkdir(parents=True, exist_ok=True)
    result = BackfillResult()
    started = time.perf_counter()
    source = engine.source
    require_one_log(source, "backfill")
    for part in broker.describe_topic(source.topic).partitions:
        tp = TopicPartition(source.topic, part.partition)
        checkpoint = _load(folder / f"p{tp.partition}.ckpt")
        if checkpoint is not None:
            engine.partition(tp.partition).restore(checkpoint.state)
            if progress is not None:
                progress(checkpoint.next_offset - part.low)
        start = part.low if checkpoint is None else checkpoint.next_offset
        for records in _chunks(broker, tp, start, part.high, chunk):
            events, invalid = _decode(source, records)
            result.invalid += invalid
            columns = engine.columns_of(events)
            _fold(engine, tp.partition, events, columns, offline, features, records)
            _write_online(views, engine, tp.partition, columns)
            _save(folder / f"p{tp.partition}.ckpt", records[-1].offset + 1, engine, tp.partition)
            result.events += len(records)
            if progress is not None:
                progress(len(records))
        result.keys_online += sum(
            len(engine.partition(tp.partition).groups[g].buffer.slot_of) for g in views
        )
    result.seconds = time.perf_counter() - started
    return result


def require_one_log(source: Stream[Any], what: str) -> None:
    """Backfill, verify and training sets replay one log per stream. A stream with a
    priority lane has two, interleaved live in arrival order, which a replay of the logs
    cannot reproduce: refuse rather than compute other values than the pipeline did."""
    if source.priority is not None:
        raise ConfigError(f"{what} reads one log; {source.name!r} has a priority lane")


def _chunks(broker: Broker, tp: TopicPartition, start: int, high: int, size: int) -> Any:
    consumer = broker.consumer()
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        buffered: list[Record] = []
        while consumer.position(tp) < high:
            records = consumer.poll(size, timeout=1.0)
            if not records:
                break
            buffered.extend(records)
            if len(buffered) >= size:
                yield buffered
                buffered = []
        if buffered:
            yield buffered
    finally:
        consumer.close()


def _decode(source: Stream[Any], records: list[Record]) -> tuple[list[Event[Any]], int]:
    decoded = source.decode_batch(records)
    events = [e for e in decoded if not isinstance(e, InvalidEvent)]
    # The pipeline dead-letters invalid records; they never reach features.
    return events, len(decoded) - len(events)


def _fold(
    engine: FeatureEngine,
    partition: int,
    events: list[Event[Any]],
    columns: Columns,
    offline: OfflineStore | None,
    features: FeatureSet,
    records: list[Record],
) -> None:
    if not events:
        return
    times = np.fromiter((e.event_time for e in events), np.int64, len(events))
    result = engine.process(partition, times, columns)
    if offline is None:
        return
    table: dict[str, Any] = {
        "event_id": [e.id for e in events],
        "partition": np.full(len(events), partition, np.int64),
        "offset": np.fromiter((e.offset for e in events), np.int64, len(events)),
        "key": [e.key for e in events],
        "event_time": times,
    }
    for j, feature in enumerate(features.features):
        values = result.values[:, j]
        table[feature.name] = values.astype(np.int64) if feature.output_dtype == "int64" else values
    name = f"p{partition:03d}-{records[0].offset:012d}-{records[-1].offset:012d}"
    rows = pa.table(table).filter(pa.array(~result.late))
    offline.write(history_table(features), rows, time_column="event_time", name=name)


def _write_online(
    views: dict[str, OnlineView], engine: FeatureEngine, partition: int, columns: Columns
) -> None:
    """Each view's window rows of every key the chunk touched (one write per view)."""
    for group, view in views.items():
        keys = np.unique(columns[group]).tolist()
        view.write(engine.partition(partition).groups[group].buffer, keys)


def _save(path: Path, next_offset: int, engine: FeatureEngine, partition: int) -> None:
    data = msgspec.msgpack.encode(Checkpoint(next_offset, engine.partition(partition).snapshot()))
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)


def _load(path: Path) -> Checkpoint | None:
    if not path.exists():
        return None
    return msgspec.msgpack.decode(path.read_bytes(), type=Checkpoint)
