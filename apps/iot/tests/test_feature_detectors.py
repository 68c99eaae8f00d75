"""The detectors on the feature engine's features, through the pipeline: the feature stage
keeps its values by column for them (``vectors=False``), which must score exactly as the
features handed on per reading (``Enriched``) do; alerts carry the features either way."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest

from streamsense import features as F
from streamsense.testing import MemoryBroker, drain_topic

from ..app import build_app
from ..features import ALLOWED_LATENESS_MS, FEATURES
from ..nab_input import nab_readings
from ..pipeline_run import run_pipeline
from ..readings import ALERTS_TOPIC, SCORES_TOPIC, Alert
from ..score_batches import read_scores
from .nab_data import copy_nab_files

FILES = ["artificialWithAnomaly/art_daily_jumpsup", "realKnownCause/nyc_taxi"]


def run(readings: Path, detector: str, *, vectors: bool) -> tuple[list[float], list[Alert]]:
    stage = F.FeatureStage(
        "features",
        FEATURES,
        allowed_lateness_ms=ALLOWED_LATENESS_MS,
        feature_log=False,
        vectors=vectors,
    )
    broker = MemoryBroker()
    run_pipeline(build_app(detector, features=stage), broker, readings)
    scores = [
        s.score for s in sorted(read_scores(broker, SCORES_TOPIC), key=lambda s: (s.series, s.seq))
    ]
    decode = msgspec.json.Decoder(Alert).decode
    return scores, [decode(r.value or b"") for r in drain_topic(broker, ALERTS_TOPIC)]


@pytest.mark.parametrize("detector", ["features", "rarity+features"])
def test_features_by_column_score_as_features_per_reading(tmp_path: Path, detector: str) -> None:
    readings = nab_readings(copy_nab_files(tmp_path / "nab", FILES))["readings"]
    by_column, column_alerts = run(readings, detector, vectors=False)
    per_reading, reading_alerts = run(readings, detector, vectors=True)
    assert by_column == per_reading
    assert column_alerts == reading_alerts
    assert column_alerts and all("rate_1h" in a.features for a in column_alerts)
    assert np.all((np.array(by_column) >= 0.0) & (np.array(by_column) <= 1.0))
    assert max(by_column) > 0.5  # both files hold anomalies the engine's statistics show
