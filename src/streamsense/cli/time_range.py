"""``--start`` / ``--end``: the event times a replay feeds, and the row filter that keeps
them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streamsense.cli.common import fail
from streamsense.events import Stream, to_epoch_ms
from streamsense.runtime.ingest import RowFilter
from streamsense.runtime.input_files import Format, file_format


@dataclass(frozen=True)
class TimeRange:
    """Event times in [start, end), epoch milliseconds (None: unbounded)."""

    start_ms: int | None = None
    end_ms: int | None = None

    @classmethod
    def parse(cls, start: str | None, end: str | None) -> TimeRange:
        chosen = cls(epoch_ms(start, "--start"), epoch_ms(end, "--end"))
        bounded = chosen.start_ms is not None and chosen.end_ms is not None
        if bounded and chosen.start_ms >= chosen.end_ms:  # type: ignore[operator]
            fail(f"--start {start} is not before --end {end}")
        return chosen

    def row_filter(
        self, stream: Stream[Any], path: Path, fmt: Format | None = None
    ) -> RowFilter | None:
        if self.start_ms is None and self.end_ms is None:
            return None
        if file_format(path, fmt) == "jsonl":
            fail(f"--start/--end need a Parquet or CSV file, not {path}")
        return RowsInTime(stream.encoded_name(stream.time), self.start_ms, self.end_ms)


@dataclass(frozen=True)
class RowsInTime:
    """Keeps the rows whose ``column`` (a timestamp, or epoch ms) is in [start, end), and
    the rows whose time could not be read (null): those are dead letters, never dropped
    unseen (issue #21). Its repr names the ingest's resumable cursor, so it must stay the
    same from run to run."""

    column: str
    start_ms: int | None
    end_ms: int | None

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        values = batch.column(self.column)
        scale = 1
        if pa.types.is_timestamp(values.type):  # compared in microseconds, exactly
            values = pc.cast(pc.cast(values, pa.timestamp("us", values.type.tz)), pa.int64())
            scale = 1000
        keep = pa.array(np.ones(batch.num_rows, np.bool_))
        if self.start_ms is not None:
            keep = pc.and_(keep, pc.greater_equal(values, self.start_ms * scale))
        if self.end_ms is not None:
            keep = pc.and_(keep, pc.less(values, self.end_ms * scale))
        return batch.filter(pc.fill_null(keep, True))


def epoch_ms(text: str | None, option: str) -> int | None:
    """An ISO date or time (UTC unless it says otherwise) as epoch milliseconds."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{option} {text!r} is not an ISO date or time (e.g. 2018-08-08)")
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return to_epoch_ms(when)
