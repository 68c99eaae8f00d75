"""The multi-sensor detector catches failure precursors that show only in a combination
of sensors, which every single-sensor detector misses: no threshold on a single-sensor
score flags a precursor without flagging a healthy machine at least as much."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pyarrow.parquet as pq
import pytest

import streamsense as ss
from streamsense.testing import MemoryBroker, drain_topic

from ..app import build_app
from ..kernels import DETECTORS
from ..machine_stage import MACHINE_THRESHOLD
from ..pipeline_run import run_pipeline
from ..readings import ALERTS_TOPIC, MACHINE_SCORES_TOPIC, SCORES_TOPIC, Alert, Scored
from ..score_batches import read_scores
from ..simulator import FleetConfig, Precursor, simulate_fleet

CONFIG = FleetConfig(machines=4, days=3.0, failing=2, seed=15)


def inside(s: Scored, precursors: list[Precursor]) -> bool:
    return any(p.machine == s.machine and p.start_ms <= s.timestamp < p.end_ms for p in precursors)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Precursor]]:
    table, precursors = simulate_fleet(CONFIG)
    path = tmp_path_factory.mktemp("fleet") / "readings.parquet"
    pq.write_table(table, path)
    return path, precursors


@pytest.mark.parametrize("detector", list(DETECTORS))
def test_single_sensor_detectors_miss_the_precursors_the_combination_catches(
    fleet: tuple[Path, list[Precursor]], detector: str
) -> None:
    path, precursors = fleet
    broker = MemoryBroker()
    # Event-time order across the upstream partitions, however slow a loaded machine is.
    run_pipeline(build_app(detector), broker, path, ss.WorkerConfig(order_wait_ms=600_000))
    failing = {p.machine for p in precursors}
    single = read_scores(broker, SCORES_TOPIC)
    machine = read_scores(broker, MACHINE_SCORES_TOPIC)
    assert len(machine) == len(single) == pq.read_metadata(path).num_rows

    healthy_single = max(s.score for s in single if s.machine not in failing)
    healthy_machine = max(s.score for s in machine if s.machine not in failing)
    assert healthy_machine < MACHINE_THRESHOLD  # no false alarm on a healthy machine
    for p in precursors:
        during = [s for s in single if inside(s, [p])]
        combined = [s for s in machine if inside(s, [p])]
        assert max(s.score for s in during) <= healthy_single  # single sensors: missed
        assert max(s.score for s in combined) >= MACHINE_THRESHOLD  # combination: caught

    alerts = [
        msgspec.json.decode(r.value or b"", type=Alert) for r in drain_topic(broker, ALERTS_TOPIC)
    ]
    multi = [a for a in alerts if a.detector == "multi-sensor"]
    assert {a.machine for a in multi} == failing
    times = sorted(a.timestamp for a in multi if a.machine == precursors[0].machine)
    assert np.all(np.diff(times) >= 3_600_000)  # cooldown: one alert per machine per hour
