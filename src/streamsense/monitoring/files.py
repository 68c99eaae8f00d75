"""Monitoring over Parquet files (a training set, a replay's export): a reference profile
of one file, and the alerts a second one raises against it, read in record batches so
memory stays bounded whatever the file's size. Rows must come in event-time order (up to
``allowed_lateness_ms``), as a replay's exports do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from streamsense.errors import ConfigError
from streamsense.monitoring.alerts import Alert, AlertEvaluator, AlertRule, observations
from streamsense.monitoring.drift import DriftWindows
from streamsense.monitoring.profile import ReferenceProfile, as_column, profile_table

BATCH_ROWS = 65_536


def profile_parquet(path: Path, time_column: str, **options: Any) -> ReferenceProfile:
    table = pq.read_table(path)
    _check_columns(table.schema, [time_column], path)
    return profile_table(table, time_column, **options)


def drift_parquet(
    path: Path,
    profile: ReferenceProfile,
    time_column: str,
    window_ms: int,
    rules: Sequence[AlertRule],
    *,
    allowed_lateness_ms: int = 0,
) -> list[Alert]:
    """Every alert the file raises, window by window, the last (partial) window included."""
    names = [c.name for c in profile.columns]
    source = pq.ParquetFile(path)
    _check_columns(source.schema_arrow, [time_column, *names], path)
    windows = DriftWindows(profile, window_ms, allowed_lateness_ms=allowed_lateness_ms)
    evaluator = AlertEvaluator(rules)
    alerts: list[Alert] = []
    for batch in source.iter_batches(BATCH_ROWS, columns=[time_column, *names]):
        times = _epoch_ms(batch.column(time_column))
        columns = {name: as_column(batch.column(name)) for name in names}
        alerts += evaluator.evaluate(observations(windows.update(columns, times)))
    alerts += evaluator.evaluate(observations(windows.flush()))
    return alerts


def _epoch_ms(column: pa.Array) -> np.ndarray[Any, np.dtype[np.int64]]:
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("ms")).cast(pa.int64())
    times: np.ndarray[Any, np.dtype[np.int64]] = np.asarray(
        column.to_numpy(zero_copy_only=False), dtype=np.int64
    )
    return times


def _check_columns(schema: pa.Schema, needed: Sequence[str], path: Path) -> None:
    missing = [name for name in needed if schema.get_field_index(name) < 0]
    if missing:
        raise ConfigError(f"{path}: no column {', '.join(missing)} (it has {schema.names})")
