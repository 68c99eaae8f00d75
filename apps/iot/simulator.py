"""A fleet of machines, each with sensors driven by one load (so they move together), a
daily cycle, slow drift and noise; some machines show a failure precursor that no sensor
shows alone: for a few hours before the failure, vibration follows the load's mirror
image (high when the load and the temperature are low). Each sensor's values stay within
their usual range and shape; only their combination is new. Deterministic by seed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

SENSORS = ("temperature", "vibration", "current")
DAY_S = 86_400


@dataclass(frozen=True)
class FleetConfig:
    machines: int = 6
    days: float = 4.0
    step_s: int = 60  # one reading per sensor per step
    failing: int = 2  # machines with a precursor (the first ones)
    precursor_hours: float = 6.0
    seed: int = 15
    start_ms: int = 1_790_000_000_000  # 2026-09-21: in the past, so never "in the future"


@dataclass(frozen=True)
class Precursor:
    machine: str
    start_ms: int
    end_ms: int  # the failure


def machine_name(m: int) -> str:
    return f"machine-{m:03d}"


def simulate_fleet(config: FleetConfig) -> tuple[pa.Table, list[Precursor]]:
    """Readings (series, timestamp, value, seq, machine, sensor) in time order, and the
    precursor windows."""
    rng = np.random.default_rng(config.seed)
    steps = int(config.days * DAY_S / config.step_s)
    t_s = np.arange(steps) * config.step_s
    times = config.start_ms + t_s * 1000
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("series", "time", "value", "seq")}
    machines, sensors, precursors = [], [], []
    for m in range(config.machines):
        name = machine_name(m)
        load = _load(rng, t_s, steps)
        values = _sensors(rng, load, t_s, steps)
        if m < config.failing:
            end = int(steps * rng.uniform(0.7, 0.95))
            start = end - int(config.precursor_hours * 3600 / config.step_s)
            mirrored = _vibration(rng, 1.0 - load[start:end], end - start)
            values["vibration"][start:end] = mirrored
            precursors.append(Precursor(name, int(times[start]), int(times[end])))
        for sensor, series in values.items():
            columns["series"].append(np.full(steps, f"{name}/{sensor}", dtype=object))
            columns["time"].append(times)
            columns["value"].append(series)
            columns["seq"].append(np.arange(steps))
            machines.append(np.full(steps, name, dtype=object))
            sensors.append(np.full(steps, sensor, dtype=object))
    table = pa.table(
        {
            "series": pa.array(np.concatenate(columns["series"]), pa.string()),
            "timestamp": pa.array(np.concatenate(columns["time"]), pa.int64()),
            "value": pa.array(np.concatenate(columns["value"]), pa.float64()),
            "seq": pa.array(np.concatenate(columns["seq"]), pa.int64()),
            "machine": pa.array(np.concatenate(machines), pa.string()),
            "sensor": pa.array(np.concatenate(sensors), pa.string()),
        }
    )
    return table.sort_by([("timestamp", "ascending"), ("series", "ascending")]), precursors


def _load(rng: np.random.Generator, t_s: np.ndarray, steps: int) -> np.ndarray:
    """Daily cycle plus a slowly wandering (AR(1)) part, within [0, 1]."""
    wander = np.empty(steps)
    wander[0] = 0.0
    shocks = rng.normal(0.0, 0.01, steps)
    for i in range(1, steps):
        wander[i] = 0.995 * wander[i - 1] + shocks[i]
    phase = rng.uniform(0, 2 * np.pi)
    return np.clip(0.5 + 0.3 * np.sin(2 * np.pi * t_s / DAY_S + phase) + wander, 0.0, 1.0)


def _vibration(rng: np.random.Generator, load: np.ndarray, n: int) -> np.ndarray:
    return 2.0 + 3.0 * load + rng.normal(0.0, 0.12, n)


def _sensors(
    rng: np.random.Generator, load: np.ndarray, t_s: np.ndarray, steps: int
) -> dict[str, np.ndarray]:
    drift = 0.4 * t_s / DAY_S  # the temperature creeps up 0.4 °C a day (wear, season)
    return {
        "temperature": 40.0 + 25.0 * load + drift + rng.normal(0.0, 0.6, steps),
        "vibration": _vibration(rng, load, steps),
        "current": 10.0 + 20.0 * load + rng.normal(0.0, 0.4, steps),
    }
