"""The detector state survives SIGKILL: a real worker process is killed at random points
(its state written to the changelog every few batches), restarted, and finally every
reading is scored exactly once, each score what an uninterrupted run gives."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streamsense.brokers import EmbeddedBroker, MemoryBroker, TopicPartition
from streamsense.runtime.worker import Worker
from streamsense.testing import drain_topic

from ..app import app
from ..pipeline_run import run_pipeline
from ..readings import READINGS, SCORES_TOPIC, Scored
from ..score_batches import read_scores
from .nab_data import ROOT

SERIES, LENGTH = 24, 1500


def write_readings(path: Path) -> int:
    rng = np.random.default_rng(15)
    t = np.arange(LENGTH)
    series, times, values, seq = [], [], [], []
    for s in range(SERIES):
        wave = np.sin(2 * np.pi * t / 144 + s) * 10 + rng.normal(0, 0.5 + s % 3, LENGTH)
        wave[1000 + s : 1010 + s] += 40  # an anomaly in each series
        series += [f"m{s // 3}/sensor{s % 3}"] * LENGTH
        times.append(1_600_000_000_000 + t * 60_000)
        values.append(wave)
        seq.append(t)
    table = pa.table(
        {
            "series": series,
            "timestamp": np.concatenate(times),
            "value": np.concatenate(values),
            "seq": np.concatenate(seq),
        }
    ).sort_by("timestamp")
    pq.write_table(table, path)
    return int(table.num_rows)


def start_worker(state_dir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    command = [sys.executable, "-m", "streamsense", "run", str(ROOT / "apps" / "iot")]
    command += ["--state-dir", str(state_dir), "--batch-size", "300", "--state-every-s", "0.1"]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def committed(db: Path) -> int:
    broker = EmbeddedBroker(db)
    try:
        tps = [TopicPartition(READINGS.topic, p) for p in range(READINGS.partitions)]
        return sum(v or 0 for v in broker.committed(app.group, tps).values())
    finally:
        broker.close()


def reached(db: Path, target: float) -> bool:
    return committed(db) >= target


def wait_until(condition: Callable[[], bool], worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 240
    while not condition():
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.02)


def scores(broker: EmbeddedBroker | MemoryBroker) -> list[Scored]:
    return read_scores(broker, SCORES_TOPIC)


@pytest.mark.slow
def test_sigkill_loses_no_state_and_duplicates_no_score(tmp_path: Path) -> None:
    readings = tmp_path / "readings.parquet"
    total = write_readings(readings)
    straight = MemoryBroker()
    run_pipeline(app, straight, readings)
    expected = {(s.series, s.seq): s for s in scores(straight)}

    db = tmp_path / "broker.db"
    broker = EmbeddedBroker(db)
    Worker(app, broker).ensure_topics()
    from streamsense.runtime.ingest import ingest_file

    ingest_file(broker, READINGS, readings)
    broker.close()
    rng = random.Random(15)
    for target in sorted(rng.uniform(0.1, 0.9) * total for _ in range(3)):
        worker = start_worker(tmp_path)
        wait_until(partial(reached, db, target), worker)
        time.sleep(rng.uniform(0.0, 0.05))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    worker = start_worker(tmp_path)
    wait_until(lambda: committed(db) >= total, worker)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.stderr.read() if worker.stderr else ""

    broker = EmbeddedBroker(db)
    got = scores(broker)
    state_records = drain_topic(broker, app.state_topic("detect"))
    broker.close()
    assert state_records, "the detector wrote no state: the restore was not exercised"
    assert len(got) == total == len(expected)
    assert {(s.series, s.seq): s for s in got} == expected
