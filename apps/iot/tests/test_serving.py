"""``POST /v1/decide/readings`` answers a reading's score at request time from the series'
rolling features the pipeline keeps in the online store, and publishes the reading."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from streamsense.serving.service import create_api
from streamsense.testing import MemoryBroker, drain_topic

from ..app import build_app
from ..features import feature_stage
from ..pipeline_run import run_pipeline
from ..readings import ALERTS_TOPIC, READINGS, Alert
from ..serving import build_serving, online_store

START = 1_790_000_000_000
MINUTE = 60_000


def test_the_api_scores_a_reading_against_its_series_at_request_time(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 2000
    values = 20.0 + np.sin(np.arange(n) / 50.0) + rng.normal(0, 0.2, n)
    values[1500] = 35.0  # one spike: the pipeline alerts on it
    readings = tmp_path / "readings.parquet"
    times = START + np.arange(n) * MINUTE
    pq.write_table(
        pa.table({"series": ["pump/temperature"] * n, "timestamp": times, "value": values}),
        readings,
    )
    broker = MemoryBroker()
    stage = feature_stage()
    stage.attach_online(online_store(tmp_path))
    run_pipeline(build_app(features=stage), broker, readings)

    now = int(times[-1]) + MINUTE
    with TestClient(create_api(build_serving(broker, tmp_path))) as client:
        usual = client.post(
            "/v1/decide/readings",
            json={"series": "pump/temperature", "timestamp": now, "value": float(values[-1])},
        )
        spike = client.post(
            "/v1/decide/readings",
            json={"series": "pump/temperature", "timestamp": now + MINUTE, "value": 60.0},
        )
        missing = client.post("/v1/decide/readings", json={"series": "pump/temperature"})
    assert usual.status_code == spike.status_code == 200, usual.text
    assert usual.json()["score"] < 0.5 <= 0.9 <= spike.json()["score"] <= 1.0
    assert spike.json()["action"] == "block"
    assert {"mean_6h", "std_6h", "max_1d"} <= set(spike.json()["features"])
    assert missing.status_code == 422 and "timestamp" in missing.text
    published = drain_topic(broker, READINGS.topic)
    assert len(published) == n + 2  # the API publishes what it scored, for the pipeline
    alerts = [
        msgspec.json.decode(r.value or b"", type=Alert) for r in drain_topic(broker, ALERTS_TOPIC)
    ]
    spike = next(a for a in alerts if a.timestamp == times[1500])
    assert spike.detector == "rarity" and spike.features["value"] == 35.0
    assert spike.features["max_1d"] == 35.0 and "std_6h" in spike.features  # the engine's
