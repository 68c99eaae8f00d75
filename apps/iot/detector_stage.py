"""The detectors as a pipeline stage: each reading leaves it scored, and flagged when it
raises an alert (cooldown per series). A batch of one partition's readings is one call of
the compiled kernel over the partition's series state (kernels.py, series_state.py); the
state goes to the platform's changelog for the series that changed (BatchStage)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec
import numpy as np

from streamsense.brokers.base import OutRecord, TopicConfig
from streamsense.errors import ConfigError
from streamsense.events import Event
from streamsense.features import Enriched, FeatureStage

from .feature_score import INPUTS
from .kernels import DETECTORS, USES_FEATURES, no_features, score_and_alert
from .readings import Reading, Scored
from .series_state import SeriesState

DEFAULT_DETECTOR = "rarity"
ALERT_THRESHOLD = 0.5  # the likelihood's log scale: a one-in-100,000 recent average
COOLDOWN_MS = 3_600_000  # one alert per series per hour at most


class DetectorStage:
    def __init__(
        self,
        name: str = "detect",
        detector: str = DEFAULT_DETECTOR,
        *,
        threshold: float = ALERT_THRESHOLD,
        cooldown_ms: int = COOLDOWN_MS,
        features: FeatureStage | None = None,
    ) -> None:
        """``features``: the feature stage before this one when it keeps its values by
        column (``vectors=False``); without it, features come in ``Enriched`` payloads."""
        if detector not in DETECTORS:
            raise ConfigError(f"unknown detector {detector!r} (have {sorted(DETECTORS)})")
        self.features = features
        self.name = name
        self.detector = detector
        self.threshold = threshold
        self.cooldown_ms = cooldown_ms
        self.partitions: dict[int, SeriesState] = {}

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {}

    def process_batch(
        self, partition: int, events: list[Event[Any]], values: list[Any]
    ) -> tuple[list[Any], list[OutRecord]]:
        state = self.partitions.setdefault(partition, SeriesState())
        # After the feature stage each value is the reading with its features.
        readings: list[Reading] = [v.payload if isinstance(v, Enriched) else v for v in values]
        slots = state.indices([r.series for r in readings])
        scores, alerts = self.score(state, slots, readings, self._inputs(partition, values))
        state.mark(slots, state.readings + len(readings))
        name = self.detector
        out: list[Any] = [
            Scored(r.series, r.timestamp, r.value, r.seq, s, name, r.machine, r.sensor, a)
            for r, s, a in zip(readings, scores.tolist(), alerts.tolist(), strict=True)
        ]
        for i in np.flatnonzero(alerts):  # alerts are rare: only they carry the features
            features = self._features_of(partition, values, int(i))
            if features:
                out[i] = msgspec.structs.replace(out[i], features=features)
        return out, []

    def _features_of(self, partition: int, values: list[Any], i: int) -> dict[str, float]:
        """Reading ``i``'s features (none without a feature stage)."""
        if isinstance(values[i], Enriched):
            return {k: float(v) for k, v in values[i].features.items()}
        if self.features is None:
            return {}
        row = self.features.batch_columns(partition)[i].tolist()
        return dict(zip(self.features.engine.features.names, row, strict=True))

    def _inputs(self, partition: int, values: list[Any]) -> np.ndarray[Any, Any]:
        """The engine's features the detector reads, a row per reading (no columns for
        the detectors that read none)."""
        if self.detector not in USES_FEATURES:
            return no_features(len(values))
        if self.features is not None:
            names = self.features.engine.features.names
            columns = [names.index(name) for name in INPUTS]
            return np.ascontiguousarray(self.features.batch_columns(partition)[:, columns])
        if values and not isinstance(values[0], Enriched):
            raise ConfigError(f"detector {self.detector!r} needs the feature stage before it")
        rows = [[v.features[name] for name in INPUTS] for v in values]
        return np.array(rows, dtype=np.float64).reshape(-1, len(INPUTS))

    def score(
        self,
        state: SeriesState,
        slots: np.ndarray[Any, Any],
        readings: list[Reading],
        features: np.ndarray[Any, Any],
    ) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        values = np.fromiter((r.value for r in readings), np.float64, len(readings))
        times = np.fromiter((r.timestamp for r in readings), np.int64, len(readings))
        scores = np.empty(len(readings))
        alerts = np.empty(len(readings), dtype=np.bool_)
        score_and_alert(
            DETECTORS[self.detector],
            slots,
            values,
            times,
            features,
            state.rows,
            state.tables,
            self.threshold,
            self.cooldown_ms,
            scores,
            alerts,
        )
        return scores, alerts

    def on_idle(self, partition: int, now_ms: int) -> list[OutRecord]:
        return []

    def state_changes(self, partition: int) -> tuple[bytes, list[tuple[bytes, bytes | None]]]:
        return self.partitions.setdefault(partition, SeriesState()).changes()

    def restore(
        self, partition: int, meta: bytes | None, entries: Iterable[tuple[bytes, bytes]]
    ) -> int:
        self.drop(partition)
        if meta is None:
            return 0
        state = self.partitions[partition] = SeriesState.restored(meta, entries)
        return len(state.names)

    def drop(self, partition: int) -> None:
        self.partitions.pop(partition, None)
