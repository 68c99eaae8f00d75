"""``streamsense serve apps/iot``: ``POST /v1/decide/readings`` answers a reading's score
at request time. The API reads the series' rolling statistics from the online store (the
feature engine's windows folded at the request's time, the reading itself included) and
scores the reading against them: how far it lies from the 6-hour mean in 6-hour standard
deviations (a two-sided tail probability on a log scale, 1 at one in 10^10), or 1 when it
leaves the day's range by more than that range. The reading is then published, so the
pipeline scores it with its stateful detectors too."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import streamsense as ss
from streamsense.serving import Serving
from streamsense.serving.cascade import Cascade, CascadeConfig
from streamsense.serving.models import FunctionModel
from streamsense.store import OnlineStore, open_online_store
from streamsense.store.views import OnlineFeatures

from .features import FEATURES
from .readings import READINGS

INPUTS = ["value", "mean_6h", "std_6h", "min_1d", "max_1d"]
DECISIONS_TOPIC = "iot.decisions"
CONFIG = CascadeConfig(review_at=0.5, block_at=0.9, heavy_band=(2.0, 2.0))
_LOG_FLOOR = math.log(1e-10)


def reading_scores(X: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """One score in [0, 1] per row of ``INPUTS``."""
    value, mean, std, low, high = (X[:, i].astype(np.float64) for i in range(5))
    z = np.abs(value - mean) / np.maximum(std, 1e-9)
    tail = np.array([math.erfc(v / math.sqrt(2.0)) for v in z])
    scores = np.minimum(np.log(np.maximum(tail, 1e-300)) / _LOG_FLOOR, 1.0)
    span = np.maximum(high - low, 1e-9)
    outside = (value > high + span) | (value < low - span)
    return np.where(outside, 1.0, scores)


def online_store(state_dir: Path) -> OnlineStore:
    return open_online_store(f"sqlite://{Path(state_dir).resolve() / 'online.db'}")


def build_serving(broker: ss.Broker, state_dir: Path) -> Serving:
    # The API's decision records (the pipeline writes its scores to iot.scores).
    broker.create_topic(DECISIONS_TOPIC, ss.TopicConfig(READINGS.partitions), exist_ok=True)
    online = OnlineFeatures(FEATURES, online_store(state_dir))
    model = FunctionModel(reading_scores, INPUTS, name="iot-rolling-gaussian", version=1)
    return Serving(
        name="iot",
        streams={READINGS.topic: READINGS},
        features={READINGS.topic: online},
        cascade=Cascade(light=model, config=CONFIG),
        broker=broker,
        decisions_topic=DECISIONS_TOPIC,
        views=online.views_by_name(),
    )
