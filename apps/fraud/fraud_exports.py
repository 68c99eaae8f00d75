"""Reading what the pipeline wrote, as columns: decisions (with the feature vector each was
made on) and labels. Used by the replay's exports, the summary, training and evaluation.

Topics are read in chunks and decoded straight into typed structs, so a replay of the whole
handbook file (1.75 million decisions) is read in seconds and without holding it all as
Python objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import streamsense as ss
from streamsense.brokers import topic_chunks
from streamsense.brokers.base import Record
from streamsense.events import to_epoch_ms

DECISIONS_TOPIC = "fraud.decisions"
LABELS_TOPIC = "labels"
NO_LIMIT = 2**62


def records(broker: ss.Broker, topic: str, *, chunk: int = 50_000) -> Iterator[list[Record]]:
    """Every record of ``topic`` in offset order (partition by partition), in chunks."""
    return topic_chunks(broker, topic, chunk=chunk)


def _decision_type(names: Sequence[str]) -> type[Any]:
    vector = msgspec.defstruct("Vector", [(n, float, 0.0) for n in names], kw_only=True)
    return msgspec.defstruct(
        "Row",
        [
            ("transaction_id", int, -1),
            ("key", str, ""),
            ("event_time", int, 0),
            ("score", float, 0.0),
            ("action", str, ""),
            ("tier", str, ""),
            ("rule", str | None, None),
            ("model_version", str | None, None),
            ("degraded", bool, False),
            ("latency_ms", dict[str, float], {}),
            ("features", vector, msgspec.field(default_factory=vector)),
        ],
        kw_only=True,
    )


def decisions(
    broker: ss.Broker,
    feature_names: Sequence[str] = (),
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> dict[str, np.ndarray]:
    """The pipeline's decisions on payments with event time in [start, end), in log order:
    TRANSACTION_ID, event_time, CUSTOMER_ID, score, action, tier, rule, model_version, degraded,
    latency_ms (total), latency_light and latency_heavy (NaN when that tier did not run)
    and the named features. Decisions made by the HTTP API (no payment id) are left out."""
    decoder = msgspec.json.Decoder(list[_decision_type(feature_names)])  # type: ignore[misc]
    lo = -NO_LIMIT if start_ms is None else start_ms
    hi = NO_LIMIT if end_ms is None else end_ms
    parts: dict[str, list[np.ndarray]] = {}
    for chunk in records(broker, DECISIONS_TOPIC):
        values = [r.value for r in chunk if r.value is not None]
        rows = decoder.decode(b"[" + b",".join(values) + b"]")
        kept = [r for r in rows if r.transaction_id >= 0 and lo <= r.event_time < hi]
        for name, column in _columns(kept, feature_names).items():
            parts.setdefault(name, []).append(column)
    if not parts:
        parts = {name: [column] for name, column in _columns([], feature_names).items()}
    return {name: np.concatenate(arrays) for name, arrays in parts.items()}


def _columns(rows: list[Any], feature_names: Sequence[str]) -> dict[str, np.ndarray]:
    latency = [row.latency_ms for row in rows]
    nan = float("nan")
    columns = {
        "TRANSACTION_ID": np.array([row.transaction_id for row in rows], np.int64),
        "event_time": np.array([row.event_time for row in rows], np.int64),
        "CUSTOMER_ID": np.array([int(row.key) for row in rows], np.int64),
        "score": np.array([row.score for row in rows], np.float64),
        "action": np.array([row.action for row in rows], object),
        "tier": np.array([row.tier for row in rows], object),
        "rule": np.array([row.rule for row in rows], object),
        "model_version": np.array([row.model_version for row in rows], object),
        "degraded": np.array([row.degraded for row in rows], np.bool_),
        "latency_ms": np.array([t.get("total", 0.0) for t in latency], np.float64),
        "latency_light": np.array([t.get("light", nan) for t in latency], np.float64),
        "latency_heavy": np.array([t.get("heavy", nan) for t in latency], np.float64),
    }
    for name in feature_names:
        columns[name] = np.array([getattr(row.features, name) for row in rows], np.float64)
    return columns


class _Label(msgspec.Struct):
    TRANSACTION_ID: int
    CUSTOMER_ID: int
    TX_FRAUD: int
    LABEL_TIME: datetime


def _labels_of(values: list[bytes]) -> list[_Label]:
    """The labels among ``values``: one parse for the chunk, else one by one, leaving out
    what the labels stream itself dead-letters (a hostile file's row with no time, say)."""
    try:
        return _LABELS.decode(b"[" + b",".join(values) + b"]")
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    kept = []
    for value in values:
        try:
            kept.append(_LABEL.decode(value))
        except (msgspec.ValidationError, msgspec.DecodeError):
            continue
    return kept


_LABEL, _LABELS = msgspec.json.Decoder(_Label), msgspec.json.Decoder(list[_Label])


def labels(broker: ss.Broker) -> dict[str, np.ndarray]:
    """Every valid label streamed so far, in log order: TRANSACTION_ID, CUSTOMER_ID,
    TX_FRAUD and label_time (when the bank learnt it, epoch ms)."""
    parts: dict[str, list[np.ndarray]] = {
        "TRANSACTION_ID": [], "CUSTOMER_ID": [], "TX_FRAUD": [], "label_time": []
    }  # fmt: skip
    for chunk in records(broker, LABELS_TOPIC):
        rows = _labels_of([r.value for r in chunk if r.value is not None])
        parts["TRANSACTION_ID"].append(np.array([r.TRANSACTION_ID for r in rows], np.int64))
        parts["CUSTOMER_ID"].append(np.array([r.CUSTOMER_ID for r in rows], np.int64))
        parts["TX_FRAUD"].append(np.array([r.TX_FRAUD for r in rows], np.int64))
        parts["label_time"].append(np.array([to_epoch_ms(r.LABEL_TIME) for r in rows], np.int64))
    return {
        name: np.concatenate(arrays) if arrays else np.zeros(0, np.int64)
        for name, arrays in parts.items()
    }


def export_features_file(
    broker: ss.Broker,
    path: Path,
    names: Sequence[str],
    int_names: set[str],
    start_ms: int | None,
    end_ms: int | None,
) -> int:
    """TRANSACTION_ID and the named features of every decided payment in [start, end)."""
    columns = decisions(broker, names, start_ms, end_ms)
    table = pa.table(
        {
            "TRANSACTION_ID": pa.array(columns["TRANSACTION_ID"], pa.int64()),
            **{
                name: pa.array(
                    columns[name].astype(np.int64) if name in int_names else columns[name],
                    pa.int64() if name in int_names else pa.float64(),
                )
                for name in names
            },
        }
    )
    _write(table, path)
    return int(table.num_rows)


def export_decisions_file(
    broker: ss.Broker, path: Path, start_ms: int | None, end_ms: int | None
) -> int:
    columns = decisions(broker, (), start_ms, end_ms)
    table = pa.table(
        {
            "TRANSACTION_ID": pa.array(columns["TRANSACTION_ID"], pa.int64()),
            "score": pa.array(columns["score"], pa.float64()),
            "action": pa.array(columns["action"], pa.string()),
            "tier": pa.array(columns["tier"], pa.string()),
            "model_version": pa.array(columns["model_version"], pa.string()),
            "degraded": pa.array(columns["degraded"], pa.bool_()),
            "latency_ms": pa.array(columns["latency_ms"], pa.float64()),
        }
    )
    _write(table, path)
    return int(table.num_rows)


def _write(table: pa.Table, path: Path) -> None:
    """Readers never see half a file: written aside, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    temporary.replace(path)
