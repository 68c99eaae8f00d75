"""Point-in-time training sets: each label row gets every feature as of its own timestamp,
nothing from the future.

Two ways in, both from the same operators as the live path:

* ``training_set`` replays the stream's history through the feature engine and, when the
  replay reaches a label's timestamp, reads the label's entity with the windows evaluated at
  that time (exactly what the online store would have answered then).
* ``training_set_from_history`` joins labels that name an event (``event_id``) with the
  vector that event was given (the offline feature history, written by backfill).

Labels are known only after ``label_delay_ms`` (days after the event, say), so
with ``as_of_ms`` only the labels known by then are used. A feature whose entity has had no
event for longer than the feature's TTL reads as its default.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsense.brokers.base import Broker, TopicPartition
from streamsense.brokers.partitioner import partition_for
from streamsense.errors import ConfigError
from streamsense.features.definitions import Feature, FeatureSet
from streamsense.features.engine import FeatureEngine
from streamsense.store.backfill import _chunks, _decode, history_table, require_one_log
from streamsense.store.offline import OfflineStore


def known_labels(
    labels: pa.Table, time_column: str, label_delay_ms: int, as_of_ms: int | None
) -> pa.Table:
    """The labels already known at ``as_of_ms`` (label time + delay <= as of)."""
    if as_of_ms is None:
        return labels
    times = _ms(labels.column(time_column))
    return labels.filter(pa.array(times + label_delay_ms <= as_of_ms))


def training_set(
    features: FeatureSet,
    broker: Broker,
    labels: pa.Table,
    *,
    key_column: str,
    time_column: str,
    label_delay_ms: int = 0,
    as_of_ms: int | None = None,
    allowed_lateness_ms: int = 0,
) -> pa.Table:
    labels = known_labels(labels, time_column, label_delay_ms, as_of_ms)
    engine = FeatureEngine(features, allowed_lateness_ms=allowed_lateness_ms)
    windowed = [f for f in features.features if isinstance(f, Feature)]
    if any(f.key != key_column for f in windowed):
        raise ConfigError(f"labels keyed by {key_column!r} cannot take features of other keys")
    keys = labels.column(key_column).to_pylist()
    times = _ms(labels.column(time_column))
    values = np.zeros((len(keys), len(windowed)), np.float64)
    source = engine.source
    require_one_log(source, "training sets")
    for part in broker.describe_topic(source.topic).partitions:
        mine = [
            i
            for i, k in enumerate(keys)
            if partition_for(str(k).encode(), source.partitions) == part.partition
        ]
        mine.sort(key=lambda i: times[i])
        _replay_and_read(
            engine,
            broker,
            TopicPartition(source.topic, part.partition),
            part.low,
            part.high,
            mine,
            keys,
            times,
            values,
            windowed,
        )
    columns = {name: labels.column(name) for name in labels.column_names}
    for j, feature in enumerate(windowed):
        column = values[:, j]
        columns[feature.name] = pa.array(
            column.astype(np.int64) if feature.output_dtype == "int64" else column
        )
    return pa.table(columns)


def _replay_and_read(
    engine: FeatureEngine,
    broker: Broker,
    tp: TopicPartition,
    low: int,
    high: int,
    order: list[int],
    keys: list[Any],
    times: np.ndarray,
    out: np.ndarray,
    windowed: list[Feature],
) -> None:
    """Process the partition's events in log order; before the first event later than a
    label's time, read that label's features at its time."""
    names = [f.name for f in windowed]
    ttl = np.array([f.ttl_ms for f in windowed], np.int64)
    next_label = 0
    for records in _chunks(broker, tp, low, high, 100_000):
        events, _ = _decode(engine.source, records)
        event_times = np.array([e.event_time for e in events], np.int64)
        running = np.maximum.accumulate(event_times) if len(events) else event_times
        start = 0
        while next_label < len(order):
            label = order[next_label]
            stop = int(np.searchsorted(running, times[label], side="right"))
            if stop >= len(events):
                break
            if stop > start:
                engine.process_events(tp.partition, events[start:stop])
                start = stop
            _read(engine, tp.partition, label, keys, times, out, names, ttl)
            next_label += 1
        if start < len(events):
            engine.process_events(tp.partition, events[start:])
    for label in order[next_label:]:
        _read(engine, tp.partition, label, keys, times, out, names, ttl)


def _read(
    engine: FeatureEngine,
    partition: int,
    label: int,
    keys: list[Any],
    times: np.ndarray,
    out: np.ndarray,
    names: list[str],
    ttl: np.ndarray,
) -> None:
    at = int(times[label])
    row = engine.read(keys[label], at)
    idle = at - _newest_event(engine, partition, keys[label], at)
    for j, name in enumerate(names):
        feature = next(f for f in engine.features.features if f.name == name)
        out[label, j] = feature.default if idle > ttl[j] else row[name]


def _newest_event(engine: FeatureEngine, partition: int, key: Any, at: int) -> int:
    newest = -(2**62)
    for group in engine.partition(partition).groups.values():
        buffer = group.buffer
        slot = buffer.slot_of.get(key)
        if slot is None:
            continue
        first = int(buffer.seg_start[slot] + buffer.seg_begin[slot])
        kept = buffer.ptime[first : first + int(buffer.seg_len[slot])]
        before = kept[kept <= at]
        if len(before):
            newest = max(newest, int(before.max()))
    return newest


def training_set_from_history(
    features: FeatureSet, offline: OfflineStore, labels: pa.Table, *, event_column: str = "event_id"
) -> pa.Table:
    """Labels naming an event, joined with the vector that event was given."""
    table = history_table(features).replace("/", "__").replace("-", "_").replace(".", "_")
    with offline.connect() as con:
        con.register("labels", labels)
        feature_columns = ", ".join(f'h."{name}"' for name in features.names)
        return con.sql(
            f'SELECT l.*, {feature_columns} FROM labels l JOIN "{table}" h'
            f' ON h.event_id = l."{event_column}" ORDER BY h.partition, h.offset'
        ).to_arrow_table()


def _ms(column: pa.ChunkedArray) -> np.ndarray:
    if pa.types.is_timestamp(column.type):
        column = pc.cast(pc.cast(column, pa.timestamp("ms")), pa.int64())
    return np.asarray(column.to_numpy(zero_copy_only=False), np.int64)
