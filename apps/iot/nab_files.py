"""The NAB corpus on disk: ``DIR/data/<category>/<name>.csv`` (timestamp,value) and, for
scoring only, ``DIR/labels/combined_windows.json``. The pipeline never reads the labels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from streamsense.errors import ConfigError

from .nab_scoring import LabelledSeries

_EPOCH = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True)
class NabFile:
    series: str  # "<category>/<name>", the key of its readings
    path: Path
    timestamps: pa.Array  # the file's own text, written back unchanged
    times_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


def nab_paths(root: Path) -> list[tuple[str, Path]]:
    """Every ``data/<category>/<name>.csv`` under ``root``, sorted, with its series name."""
    files = sorted((root / "data").glob("*/*.csv"))
    if not files:
        raise ConfigError(f"no NAB files under {root / 'data'} (expected data/<category>/*.csv)")
    return [(f"{p.parent.name}/{p.stem}", p) for p in files]


def read_nab_file(series: str, path: Path) -> NabFile:
    options = pa_csv.ConvertOptions(column_types={"timestamp": pa.string(), "value": pa.float64()})
    table = pa_csv.read_csv(path, convert_options=options)
    stamps = table.column("timestamp").combine_chunks()
    times = _epoch_ms_all(stamps)
    values = table.column("value").to_numpy().astype(np.float64)
    return NabFile(series, path, stamps, times, values)


# NAB's own form: date and time without a zone, which numpy parses as a whole column.
_PLAIN = r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$"


def _epoch_ms_all(stamps: pa.Array) -> npt.NDArray[np.int64]:
    """Every stamp in epoch ms: vectorised for plain stamps (the corpus' 114k rows in
    milliseconds instead of a second), one by one when any carries a zone or another form."""
    if pc.all(pc.match_substring_regex(stamps, _PLAIN)).as_py():
        return np.array(stamps.to_numpy(zero_copy_only=False), dtype="datetime64[ms]").astype(
            np.int64
        )
    return np.array([_epoch_ms(s) for s in stamps.to_pylist()], dtype=np.int64)


def _epoch_ms(text: str) -> int:
    return _naive_ms(datetime.fromisoformat(text))


def _naive_ms(moment: datetime) -> int:
    """NAB's times carry no zone: taken as UTC, in whole milliseconds."""
    return (moment.replace(tzinfo=None) - _EPOCH) // _MS


def read_windows(root: Path, series: str, times_ms: npt.NDArray[np.int64]) -> LabelledSeries:
    """The labelled windows of one file as row ranges (for scoring, never for detecting)."""
    labels = json.loads((root / "labels" / "combined_windows.json").read_text())
    windows = [
        (_naive_ms(datetime.fromisoformat(a)), _naive_ms(datetime.fromisoformat(b)))
        for a, b in labels.get(f"{series}.csv", [])
    ]
    return LabelledSeries.from_times(times_ms, windows)
