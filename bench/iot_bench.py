"""IoT app speed: readings/s end to end through the pipeline, the detector kernel alone,
and the latency from a reading to its score in process (the detector stage given one
reading at a time, as in realtime mode).

    taskset -c 0 python bench/iot_bench.py

End to end: the NAB corpus (113,913 readings of 18 series) ingested into a fresh embedded
broker (not timed), then the worker reads, decodes and validates every reading, computes
its rolling features (the feature engine; also measured without), scores it and commits
the scores (one record each) and alerts with its offsets (timed).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from apps.iot.app import build_app  # noqa: E402
from apps.iot.detector_stage import DetectorStage  # noqa: E402
from apps.iot.kernels import DETECTORS, score_batch  # noqa: E402
from apps.iot.layout import ROW, TABLE  # noqa: E402
from apps.iot.nab_input import nab_readings  # noqa: E402
from apps.iot.pipeline_run import run_pipeline  # noqa: E402
from apps.iot.readings import Reading  # noqa: E402

from streamsense.brokers import EmbeddedBroker  # noqa: E402
from streamsense.events import Event  # noqa: E402

NAB = ROOT.parent / "shared" / "datasets" / "nab"


def end_to_end(readings: Path, with_features: bool, runs: int = 3) -> list[float]:
    rates = []
    for i in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            broker = EmbeddedBroker(Path(tmp) / "broker.db")
            app = build_app(name=f"bench-{i}", with_features=with_features)
            run = run_pipeline(app, broker, readings)
            broker.close()
        rates.append(run.events / run.seconds)
    return rates


def kernel_only(table: Any) -> float:
    names = table.column("series").to_pylist()
    index = {name: i for i, name in enumerate(sorted(set(names)))}
    slots = np.array([index[n] for n in names], dtype=np.int64)
    values = table.column("value").to_numpy()
    rows, tables = np.zeros((len(index), ROW)), np.zeros((len(index), 2 * TABLE))
    out = np.empty(len(values))
    started = time.perf_counter()
    score_batch(DETECTORS["rarity"], slots, values, rows, tables, out)
    return len(values) / (time.perf_counter() - started)


def latencies(table: Any) -> np.ndarray[Any, Any]:
    """Seconds from handing the stage one reading to having its score, per reading."""
    stage = DetectorStage()
    taken = np.empty(table.num_rows)
    for i, row in enumerate(table.to_pylist()):
        reading = Reading(row["series"], row["timestamp"], row["value"], row["seq"])
        event = Event(reading.series, reading.timestamp, reading, "readings", 0, i, 0)
        started = time.perf_counter()
        stage.process_batch(0, [event], [reading])
        taken[i] = time.perf_counter() - started
    return taken


def main() -> None:
    readings = nab_readings(NAB)["readings"]
    table = pq.read_table(readings)
    kernel_only(table.slice(0, 1000))  # compile
    for with_features in (True, False):
        rates = end_to_end(readings, with_features)
        what = "with" if with_features else "without"
        print(f"end to end {what} the rolling features, readings/s:", end=" ")
        print(", ".join(f"{r:,.0f}" for r in rates))
    print(f"detector kernel alone: {kernel_only(table):,.0f} readings/s")
    taken = latencies(table) * 1e3
    p50, p99, p999 = np.percentile(taken, [50, 99, 99.9])
    print(f"reading → score in the stage (ms): p50 {p50:.4f}, p99 {p99:.4f}, p99.9 {p999:.4f}")


if __name__ == "__main__":
    main()
