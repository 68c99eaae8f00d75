"""Drift over tumbling event-time windows on a synthetic stream with weekly cycles: the
stationary stream raises nothing (with seasonality), an amount shift at a fifth of the
terminals is caught in the first window after it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamsense.monitoring import (
    Alert,
    AlertEvaluator,
    AlertRule,
    DriftWindows,
    ReferenceProfile,
    build_profile,
    observations,
)
from streamsense.monitoring.seasons import DAY_MS, HOUR_MS, Seasonality

MONDAY = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday
WEEK_MS = 7 * DAY_MS


@dataclass
class Stream:
    times: np.ndarray
    columns: dict[str, np.ndarray]

    def between(self, start: int, end: int) -> Stream:
        keep = (self.times >= start) & (self.times < end)
        return Stream(self.times[keep], {k: v[keep] for k, v in self.columns.items()})


def weekly_stream(weeks: int, seed: int, shift_from: int | None = None) -> Stream:
    """Busier, dearer weekends; evenings favour the web; a tenth of amounts missing-free.
    From ``shift_from`` on, amounts at terminals 0, 5, 10, ... are 2.5 times higher."""
    rng = np.random.default_rng(seed)
    hours = np.arange(weeks * 7 * 24)
    hour_of_day = hours % 24
    weekend = (hours // 24) % 7 >= 5
    rate = 40.0 * (0.4 + np.sin(np.pi * hour_of_day / 24.0) ** 2) * np.where(weekend, 1.6, 1.0)
    per_hour = rng.poisson(rate)
    times = np.repeat(MONDAY + hours * HOUR_MS, per_hour) + rng.integers(0, HOUR_MS, per_hour.sum())
    row_hour = np.repeat(hour_of_day, per_hour)
    row_weekend = np.repeat(weekend, per_hour)
    log_mean = 3.0 + 0.7 * row_weekend + 0.4 * np.sin(2 * np.pi * row_hour / 24.0)
    amount = rng.lognormal(log_mean, 0.5)
    terminal = rng.integers(0, 100, times.size)
    if shift_from is not None:
        amount = np.where((times >= shift_from) & (terminal % 5 == 0), amount * 2.5, amount)
    web_share = np.where(row_hour >= 18, 0.7, 0.3)
    channel = np.where(rng.random(times.size) < web_share, "web", "shop")
    score = 1.0 / (1.0 + np.exp(-(np.log(amount) - 3.6)))
    order = np.argsort(times, kind="stable")
    columns = {"amount": amount, "channel": channel, "score": score}
    return Stream(times[order], {k: v[order] for k, v in columns.items()})


RULES = [
    AlertRule(kind=kind, statistic="psi", threshold=0.1, min_rows=500, cooldown_ms=DAY_MS)
    for kind in ("feature_drift", "prediction_drift")
]


def reference_of(stream: Stream, seasonality: Seasonality) -> ReferenceProfile:
    reference = stream.between(MONDAY, MONDAY + 4 * WEEK_MS)
    return build_profile(
        reference.columns,
        reference.times,
        scores=["score"],
        categorical=["channel"],
        seasonality=seasonality,
    )


def replay(profile: ReferenceProfile, stream: Stream, batch: int = 5_000) -> list[Alert]:
    windows = DriftWindows(profile, DAY_MS)
    evaluator = AlertEvaluator(RULES)
    live = stream.between(MONDAY + 4 * WEEK_MS, MONDAY + 7 * WEEK_MS)
    alerts: list[Alert] = []
    for start in range(0, live.times.size, batch):
        part = slice(start, start + batch)
        results = windows.update({k: v[part] for k, v in live.columns.items()}, live.times[part])
        alerts += evaluator.evaluate(observations(results))
    alerts += evaluator.evaluate(observations(windows.flush()))
    return alerts


def test_a_stationary_stream_with_weekly_cycles_raises_no_alert_when_seasonal() -> None:
    stream = weekly_stream(7, seed=11)
    assert replay(reference_of(stream, "weekday_hour"), stream) == []


def test_the_same_stream_against_an_unseasonal_reference_looks_drifted() -> None:
    stream = weekly_stream(7, seed=11)
    alerts = replay(reference_of(stream, "none"), stream)
    assert {a.subject for a in alerts} >= {"amount", "score"}


def test_an_amount_shift_is_caught_in_the_first_window_after_it() -> None:
    shift_day = MONDAY + 5 * WEEK_MS + 2 * DAY_MS  # a Wednesday in the monitored weeks
    stream = weekly_stream(7, seed=12, shift_from=shift_day)
    alerts = replay(reference_of(stream, "weekday_hour"), stream)
    amount = [a for a in alerts if a.subject == "amount"]
    assert amount, "the shift raised no alert on amount"
    first = amount[0]
    assert first.detected_at_ms == shift_day + DAY_MS
    assert first.kind == "feature_drift"
    assert first.detected_at == "2026-02-12T00:00:00Z"
    assert all(a.detected_at_ms > shift_day for a in alerts)
