"""Seasonal slots: a reference split by weekday x hour of day (UTC), so a window is compared
with what the reference looked like at the same times of the week, and a stationary stream
with weekly cycles does not look like drift."""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

Seasonality = Literal["none", "hour", "weekday", "weekday_hour"]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday is 0


def slot_count(seasonality: Seasonality) -> int:
    return {"none": 1, "hour": 24, "weekday": 7, "weekday_hour": 168}[seasonality]


def slots_of(times_ms: npt.NDArray[np.int64], seasonality: Seasonality) -> npt.NDArray[np.intp]:
    """Slot of each event time: weekday * 24 + hour for ``weekday_hour``."""
    hours = (times_ms // HOUR_MS) % 24
    weekdays = (times_ms // DAY_MS + _EPOCH_WEEKDAY) % 7
    if seasonality == "hour":
        slots = hours
    elif seasonality == "weekday":
        slots = weekdays
    elif seasonality == "weekday_hour":
        slots = weekdays * 24 + hours
    else:
        slots = np.zeros_like(times_ms)
    return slots.astype(np.intp)
