"""MovieLens CSV files as the replay's input: ratings in time order (ties in file order),
each with its event time in milliseconds, and the catalogue.

The platform ingests Parquet and JSON lines in file order, and MovieLens sorts ratings by
user: the conversion sorts them (stably) by timestamp once and keeps the result in the state
dir under a name derived from the file's path, size and modification time, so a replay
rerun after a crash ingests the very same file and resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq

RATINGS_COLUMNS = {"userId": pa.int64(), "movieId": pa.int64(), "rating": pa.float64()}


def _target(source: Path, folder: Path) -> Path:
    stat = source.stat()
    identity = f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    digest = hashlib.sha1(identity.encode()).hexdigest()[:16]
    return folder / f"{source.stem}-{digest}.parquet"


def ratings_table(source: Path) -> pa.Table:
    """userId, movieId, rating, timestamp (as given) and time_ms, in time order."""
    table = pv.read_csv(
        source, convert_options=pv.ConvertOptions(column_types={"timestamp": pa.int64()})
    )
    order = np.argsort(table.column("timestamp").to_numpy(), kind="stable")
    table = table.select(["userId", "movieId", "rating", "timestamp"]).take(order)
    table = table.cast(pa.schema({**RATINGS_COLUMNS, "timestamp": pa.int64()}))
    time_ms = pa.array(table.column("timestamp").to_numpy() * 1000, pa.int64())
    return table.append_column("time_ms", time_ms)


def movies_table(source: Path) -> pa.Table:
    """movieId, title, genres (``|``-joined) and time_ms 0: known from the start."""
    table = pv.read_csv(
        source,
        convert_options=pv.ConvertOptions(
            column_types={"movieId": pa.int64(), "title": pa.string(), "genres": pa.string()}
        ),
    ).select(["movieId", "title", "genres"])
    return table.append_column("time_ms", pa.array(np.zeros(table.num_rows, np.int64)))


@dataclass
class CsvInputs:
    """Maps ``--ratings`` and ``--movies`` onto their streams, converting CSV files into
    Parquet in the state dir (``configure`` sets it); Parquet files pass as they are."""

    state_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "recs")

    def ratings(self, source: Path) -> dict[str, Path]:
        return {"interactions": self._converted(source, ratings_table)}

    def movies(self, source: Path) -> dict[str, Path]:
        return {"items": self._converted(source, movies_table)}

    def _converted(self, source: Path, convert: Callable[[Path], pa.Table]) -> Path:
        if source.suffix != ".csv":
            return source
        folder = self.state_dir / "inputs"
        target = _target(source, folder)
        if not target.exists():
            folder.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".partial")
            pq.write_table(convert(source), partial)
            partial.replace(target)  # a crash never leaves a half-written input behind
        return target
