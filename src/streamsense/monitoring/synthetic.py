"""A synthetic payment-like stream with weekly cycles, and an amount shift to inject: what
monitoring's tests and benchmark replay (deterministic by seed).

Weekends are busier and dearer, afternoons busier than nights, evenings favour the web
channel; the score rises with the amount. From ``shift_from`` on, amounts at a fifth of the
terminals (0, 5, 10, ...) are multiplied by ``shift_factor``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streamsense.monitoring.seasons import DAY_MS, HOUR_MS

MONDAY_MS = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
WEEK_MS = 7 * DAY_MS


@dataclass(frozen=True)
class SyntheticStream:
    times: npt.NDArray[np.int64]
    columns: dict[str, npt.NDArray[np.generic]]

    def between(self, start_ms: int, end_ms: int) -> SyntheticStream:
        keep = (self.times >= start_ms) & (self.times < end_ms)
        return SyntheticStream(self.times[keep], {k: v[keep] for k, v in self.columns.items()})


def weekly_stream(
    weeks: int,
    *,
    seed: int,
    rows_per_hour: float = 40.0,
    shift_from: int | None = None,
    shift_factor: float = 2.5,
    start_ms: int = MONDAY_MS,
) -> SyntheticStream:
    rng = np.random.default_rng(seed)
    hours = np.arange(weeks * 7 * 24)
    hour_of_day = hours % 24
    weekend = ((start_ms // DAY_MS + 3 + hours // 24) % 7) >= 5
    daily = 0.4 + np.sin(np.pi * hour_of_day / 24.0) ** 2
    per_hour = rng.poisson(rows_per_hour * daily * np.where(weekend, 1.6, 1.0))
    offsets = rng.integers(0, HOUR_MS, int(per_hour.sum()))
    times = np.repeat(start_ms + hours * HOUR_MS, per_hour) + offsets
    row_hour = np.repeat(hour_of_day, per_hour)
    log_mean = 3.0 + 0.7 * np.repeat(weekend, per_hour) + 0.4 * np.sin(np.pi * row_hour / 12.0)
    amount = rng.lognormal(log_mean, 0.5)
    terminal = rng.integers(0, 100, times.size)
    if shift_from is not None:
        shifted = (times >= shift_from) & (terminal % 5 == 0)
        amount = np.where(shifted, amount * shift_factor, amount)
    web = rng.random(times.size) < np.where(row_hour >= 18, 0.7, 0.3)
    columns: dict[str, npt.NDArray[np.generic]] = {
        "terminal": terminal,
        "amount": amount,
        "channel": np.where(web, "web", "shop"),
        "score": 1.0 / (1.0 + np.exp(-(np.log(amount) - 3.6))),
    }
    order = np.argsort(times, kind="stable")
    return SyntheticStream(times[order], {k: v[order] for k, v in columns.items()})
