"""Running the IoT pipeline over a file of readings on any broker, to the end: what the
bench, the demo's NAB table and the tests use (the commands use the platform's replay)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import streamsense as ss
from streamsense.runtime.ingest import ingest_file

from .readings import READINGS


@dataclass(frozen=True)
class Run:
    events: int
    seconds: float  # pipeline only (ingest excluded)
    cpu_seconds: float  # the process's CPU time meanwhile, all its threads


def run_pipeline(
    app: ss.App, broker: ss.Broker, readings: Path, config: ss.WorkerConfig | None = None
) -> Run:
    """Ingests ``readings`` (Parquet or JSON lines) and runs ``app`` until caught up."""
    worker = ss.Worker(app, broker, config or ss.WorkerConfig(mode="microbatch"))
    worker.ensure_topics()
    ingest_file(broker, READINGS, readings)
    started, cpu = time.perf_counter(), time.process_time()
    stats = worker.run(until_caught_up=True, own_all=True)
    return Run(stats.events, time.perf_counter() - started, time.process_time() - cpu)
