"""IoT app speed (issue #15): readings/s end to end through the pipeline, the detector
kernel alone, the latency from a reading to its score in process (the detector stage given
one reading at a time, as in realtime mode), and the wall time of the demo.

    taskset -c 0 python bench/iot_bench.py [--rounds 3] [--demo-rounds 3]

End to end: the NAB corpus (113,913 readings of 18 series) ingested into a fresh embedded
broker (not timed), then the worker reads, decodes and validates every reading, scores it
and commits the scores (one columnar record per micro-batch) and alerts with its offsets.
Two pipelines: the detectors alone (``build_app(with_features=False)``) and the default app
(the feature engine's 22 series features first). Each run reports readings per wall second
and per CPU second of the process (all its threads): on a machine shared with other work
the CPU figure is the one that says what a core does. Raw results go to bench/results/
(bench/results.py prints the tables BENCHMARKS.md shows).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
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
from apps.iot.kernels import DETECTORS, no_features, score_batch  # noqa: E402
from apps.iot.layout import ROW, TABLE  # noqa: E402
from apps.iot.nab_input import nab_readings  # noqa: E402
from apps.iot.pipeline_run import run_pipeline  # noqa: E402
from apps.iot.readings import Reading  # noqa: E402

from streamsense.brokers import EmbeddedBroker  # noqa: E402
from streamsense.events import Event  # noqa: E402

NAB = ROOT.parent / "shared" / "datasets" / "nab"
PIPELINES = {"detectors only": False, "default app (features + detectors)": True}


def end_to_end(readings: Path, with_features: bool, name: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        broker = EmbeddedBroker(Path(tmp) / "broker.db")
        run = run_pipeline(build_app(name=name, with_features=with_features), broker, readings)
        broker.close()
    return {
        "readings": run.events,
        "seconds": run.seconds,
        "cpu_seconds": run.cpu_seconds,
        "readings_per_s": run.events / run.seconds,
        "readings_per_cpu_s": run.events / run.cpu_seconds,
    }


def kernel_only(table: Any) -> float:
    names = table.column("series").to_pylist()
    index = {name: i for i, name in enumerate(sorted(set(names)))}
    slots = np.array([index[n] for n in names], dtype=np.int64)
    values = table.column("value").to_numpy()
    rows, tables = np.zeros((len(index), ROW)), np.zeros((len(index), 2 * TABLE))
    out = np.empty(len(values))
    features = no_features(len(values))
    started = time.perf_counter()
    score_batch(DETECTORS["rarity"], slots, values, features, rows, tables, out)
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


def demo_seconds() -> dict[str, float]:
    """Wall and CPU seconds of ``streamsense demo apps/iot`` in a fresh process and state
    dir (the CPU is what the demo needs; the wall adds waiting for a core on a busy host)."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "streamsense", "demo", "apps/iot", "--state-dir", tmp]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(
            command,
            cwd=ROOT,
            env={"PYTHONPATH": str(ROOT / "src")},
            check=True,
            capture_output=True,
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {"seconds": wall, "cpu_seconds": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--demo-rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=0, help="only the first N readings (0: all)")
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from results import iot_tables, save_results

    readings = nab_readings(NAB)["readings"]
    table = pq.read_table(readings)
    if args.rows:
        table = table.slice(0, args.rows)
        readings = Path(tempfile.mkdtemp()) / "readings.parquet"
        pq.write_table(table, readings)
    kernel_only(table.slice(0, 1000))  # compiled (or loaded from numba's cache) before timing
    end_to_end(readings, True, "warm-up")
    rows: list[dict[str, Any]] = []
    for r in range(args.rounds):
        for pipeline, with_features in PIPELINES.items():
            run = end_to_end(readings, with_features, f"bench-{r}-{int(with_features)}")
            rows.append({"kind": "end_to_end", "round": r, "pipeline": pipeline, **run})
        rows.append({"kind": "kernel", "round": r, "readings_per_s": kernel_only(table)})
        p50, p99, p999 = np.percentile(latencies(table) * 1e3, [50, 99, 99.9])
        rows.append({"kind": "latency", "round": r, "p50_ms": p50, "p99_ms": p99, "p999_ms": p999})
    for r in range(args.demo_rounds):
        rows.append({"kind": "demo", "round": r, **demo_seconds()})
    settings = {**vars(args), "readings": table.num_rows}
    path = save_results(Path(args.results), "iot_bench", settings, rows)
    print(f"{table.num_rows:,} readings, {args.rounds} rounds; raw results: {path}")
    print(iot_tables({"rows": rows}))


if __name__ == "__main__":
    main()
