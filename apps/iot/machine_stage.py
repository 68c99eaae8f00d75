"""The multi-sensor detector as a pipeline stage, on the readings re-keyed by machine
(``machine-readings``, a repartition of the scored readings that name a machine, taken in
event-time order): each reading is scored by its machine's current combination of sensor
values (machine_kernels.py) and flagged when it raises an alert (cooldown per machine)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from streamsense.brokers.base import OutRecord, TopicConfig
from streamsense.errors import ConfigError
from streamsense.events import Event

from .machine_kernels import MACHINE_ROW, MAX_SENSORS, score_machines
from .readings import Scored
from .series_state import SeriesState

DETECTOR = "multi-sensor"
MACHINE_THRESHOLD = 0.5  # a combination as unlikely as one in 100,000
COOLDOWN_MS = 3_600_000


class MachineStage:
    def __init__(
        self,
        name: str = "machines",
        *,
        threshold: float = MACHINE_THRESHOLD,
        cooldown_ms: int = COOLDOWN_MS,
    ) -> None:
        self.name = name
        self.threshold = threshold
        self.cooldown_ms = cooldown_ms
        self.partitions: dict[int, SeriesState] = {}

    def topic_configs(self, partitions: int) -> dict[str, TopicConfig]:
        return {}

    def _state(self, partition: int) -> SeriesState:
        state = self.partitions.get(partition)
        if state is None:
            state = self.partitions[partition] = SeriesState(MACHINE_ROW, 0)
        return state

    def process_batch(
        self, partition: int, events: list[Event[Any]], values: list[Any]
    ) -> tuple[list[Any], list[OutRecord]]:
        state = self._state(partition)
        readings: list[Scored] = values
        machines = state.indices([r.machine for r in readings])
        sensors = np.array(
            [state.label(int(m), r.sensor) for m, r in zip(machines, readings, strict=True)]
        )
        counts = np.array([len(state.labels[int(m)]) for m in machines], dtype=np.int64)
        if len(counts) and counts.max() > MAX_SENSORS:
            raise ConfigError(f"a machine has more than {MAX_SENSORS} sensors")
        scores = np.empty(len(readings))
        alerts = np.empty(len(readings), dtype=np.bool_)
        score_machines(
            machines,
            sensors.astype(np.int64),
            counts,
            np.fromiter((r.value for r in readings), np.float64, len(readings)),
            np.fromiter((r.timestamp for r in readings), np.int64, len(readings)),
            state.rows,
            self.threshold,
            self.cooldown_ms,
            scores,
            alerts,
        )
        state.mark(machines, state.readings + len(readings))
        out: list[Any] = [
            Scored(
                f"{r.machine}/*", r.timestamp, r.value, r.seq, s, DETECTOR, r.machine, r.sensor, a
            )
            for r, s, a in zip(readings, scores.tolist(), alerts.tolist(), strict=True)
        ]
        return out, []

    def on_idle(self, partition: int, now_ms: int) -> list[OutRecord]:
        return []

    def state_changes(self, partition: int) -> tuple[bytes, list[tuple[bytes, bytes | None]]]:
        return self._state(partition).changes()

    def restore(
        self, partition: int, meta: bytes | None, entries: Iterable[tuple[bytes, bytes]]
    ) -> int:
        self.drop(partition)
        if meta is None:
            return 0
        state = SeriesState.restored(meta, entries, MACHINE_ROW, 0)
        self.partitions[partition] = state
        return len(state.names)

    def drop(self, partition: int) -> None:
        self.partitions.pop(partition, None)
