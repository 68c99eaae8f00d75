"""The multi-sensor detector as a compiled kernel: per machine, the latest value of each
sensor, their exponentially weighted mean and covariance, and how far the current
combination lies from them (Mahalanobis distance). Sensors driven by one load move
together; a combination off that relation is unusual even when every value is usual.

Row of a machine: N, then per sensor slot (MAX_SENSORS): the latest value, whether it has
one, the mean, then the covariance matrix, and when the machine last raised an alert."""

from __future__ import annotations

import math
from typing import Final

import numba
import numpy as np
import numpy.typing as npt

from .layout import cache_name

# Compiled once and cached under a fixed module name (layout.cache_name says why).
__name__ = cache_name(__name__, "streamsense_apps_iot_machine_kernels")

MAX_SENSORS: Final = 6
ALPHA: Final = 1.0 / 2880.0  # ~2 days of readings at one a minute per sensor
WARMUP: Final = 1440  # readings of the machine before it may score
RIDGE: Final = 1e-3  # added to the covariance's diagonal (relative to its mean variance)
_N, _LAST, _SEEN = 0, 1, 1 + MAX_SENSORS
_MEAN = 1 + 2 * MAX_SENSORS
_COV = _MEAN + MAX_SENSORS
_ALERT = _COV + MAX_SENSORS * MAX_SENSORS  # event time of the machine's last alert
MACHINE_ROW: Final = _ALERT + 1
_LOG_FLOOR = math.log(1e-10)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@numba.njit(nogil=True, cache=True)
def _distance(row: F64, k: int) -> float:
    """(x − mean)ᵀ (cov + ridge)⁻¹ (x − mean) over the first k sensors, by Cholesky."""
    scale = 0.0
    for i in range(k):
        scale += row[_COV + i * MAX_SENSORS + i]
    ridge = RIDGE * scale / k + 1e-12
    lower = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1):
            total = row[_COV + i * MAX_SENSORS + j] + (ridge if i == j else 0.0)
            for p in range(j):
                total -= lower[i, p] * lower[j, p]
            if i == j:
                lower[i, i] = math.sqrt(max(total, 1e-12))
            else:
                lower[i, j] = total / lower[j, j]
    distance = 0.0
    solved = np.zeros(k)
    for i in range(k):
        total = row[_LAST + i] - row[_MEAN + i]
        for p in range(i):
            total -= lower[i, p] * solved[p]
        solved[i] = total / lower[i, i]
        distance += solved[i] * solved[i]
    return distance


@numba.njit(nogil=True, cache=True)
def _tail_score(distance: float, k: int) -> float:
    """P(χ²_k ≥ distance) (Wilson–Hilferty) on a log scale: 1 at one in 10^10."""
    h = 2.0 / (9.0 * k)
    z = ((distance / k) ** (1.0 / 3.0) - (1.0 - h)) / math.sqrt(h)
    tail = 0.5 * math.erfc(z / math.sqrt(2.0))
    return min(math.log(max(tail, 1e-300)) / _LOG_FLOOR, 1.0)


@numba.njit(nogil=True, cache=True)
def _learn(row: F64, k: int) -> None:
    alpha = max(ALPHA, 1.0 / (row[_N] + 1.0))
    for i in range(k):
        row[_MEAN + i] += alpha * (row[_LAST + i] - row[_MEAN + i])
    for i in range(k):
        di = row[_LAST + i] - row[_MEAN + i]
        for j in range(k):
            dj = row[_LAST + j] - row[_MEAN + j]
            at = _COV + i * MAX_SENSORS + j
            row[at] = (1.0 - alpha) * row[at] + alpha * di * dj


@numba.njit(nogil=True, cache=True)
def score_machines(
    machine: I64,
    sensor: I64,
    sensors: I64,
    values: F64,
    times: I64,
    rows: F64,
    threshold: float,
    cooldown_ms: int,
    out: F64,
    alerts: npt.NDArray[np.bool_],
) -> None:
    """Scores each reading (machine slot, sensor slot, the machine's sensor count, value)
    by the machine's current combination of sensor values, then learns it; flags the
    readings that raise an alert (at most one per machine per cooldown)."""
    for i in range(values.shape[0]):
        _score_reading(rows[machine[i]], sensor[i], sensors[i], values[i], out, i)
        row = rows[machine[i]]
        due = row[_ALERT] == 0.0 or times[i] - row[_ALERT] >= cooldown_ms
        alerts[i] = out[i] >= threshold and due
        if alerts[i]:
            row[_ALERT] = times[i]


@numba.njit(nogil=True, cache=True)
def _score_reading(row: F64, sensor: int, k: int, value: float, out: F64, i: int) -> None:
    row[_LAST + sensor] = value
    row[_SEEN + sensor] = 1.0
    out[i] = 0.0
    for s in range(k):
        if row[_SEEN + s] == 0.0:
            return  # not every sensor has spoken yet
    if row[_N] >= WARMUP:
        out[i] = _tail_score(_distance(row, k), k)
    _learn(row, k)
    row[_N] += 1.0
