"""``replay apps/iot --nab DIR``: the NAB files as one stream of readings, and
``--export-detections OUT_DIR``: the scores back as one CSV per file.

The files become one Parquet file of readings (series = ``<category>/<name>``, ``seq`` =
the row in its file) in event-time order across files, as a fleet's sensors would send
them; each series keeps its file's order. It is written once per corpus (named by a digest
of the files) in the system's temporary directory, so a rerun after a crash ingests the
same file and resumes where it stopped."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from streamsense.brokers import Broker

from .nab_files import nab_paths, read_nab_file
from .readings import READINGS, SCORES_TOPIC, Scored
from .score_batches import read_scores


def nab_readings(root: Path) -> Mapping[str, Path]:
    """The input option's files: {"readings": the corpus as one Parquet file}."""
    paths = nab_paths(root)
    digest = hashlib.blake2b(digest_size=8)
    for series, path in paths:
        stat = path.stat()
        digest.update(f"{series}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    target = Path(tempfile.gettempdir()) / f"streamsense-iot-nab-{digest.hexdigest()}.parquet"
    if not target.exists():
        _write_readings(paths, target)
    return {READINGS.name: target}


def _write_readings(paths: list[tuple[str, Path]], target: Path) -> None:
    files = [read_nab_file(series, path) for series, path in paths]
    series = np.concatenate([np.full(len(f.values), i) for i, f in enumerate(files)])
    seq = np.concatenate([np.arange(len(f.values)) for f in files])
    times = np.concatenate([f.times_ms for f in files])
    order = np.lexsort((seq, series, times))  # by time, then file, then row
    names = np.array([f.series for f in files], dtype=object)
    table = pa.table(
        {
            "series": pa.array(names[series[order]], pa.string()),
            "timestamp": pa.array(times[order], pa.int64()),
            "value": pa.array(np.concatenate([f.values for f in files])[order], pa.float64()),
            "seq": pa.array(seq[order], pa.int64()),
        }
    )
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    pq.write_table(table, partial)
    partial.replace(target)  # atomic: a crash never leaves half a corpus behind


def export_detections(broker: Broker, path: Path, start_ms: int | None, end_ms: int | None) -> int:
    """Writes ``path/<category>/<name>.csv`` (timestamp,value,anomaly_score) per series
    from the scores topic, rows in file order; returns the rows written."""
    by_series: dict[str, list[Scored]] = {}
    for scored in read_scores(broker, SCORES_TOPIC):
        if (start_ms is None or scored.timestamp >= start_ms) and (
            end_ms is None or scored.timestamp < end_ms
        ):
            by_series.setdefault(scored.series, []).append(scored)
    written = 0
    for series, rows in sorted(by_series.items()):
        rows.sort(key=lambda r: r.seq)
        target = path / f"{series}.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{_nab_time(r.timestamp)},{r.value!r},{r.score!r}\n" for r in rows]
        target.write_text("timestamp,value,anomaly_score\n" + "".join(lines))
        written += len(rows)
    return written


def _nab_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
