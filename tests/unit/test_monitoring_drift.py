"""Drift over tumbling event-time windows on a synthetic stream with weekly cycles: the
stationary stream raises nothing (with seasonality), an amount shift at a fifth of the
terminals is caught in the first window after it."""

from __future__ import annotations

import numpy as np
import pytest

from streamsense.monitoring import (
    Alert,
    AlertEvaluator,
    AlertRule,
    DriftWindows,
    ReferenceProfile,
    build_profile,
    observations,
)
from streamsense.monitoring.seasons import DAY_MS, Seasonality
from streamsense.monitoring.synthetic import MONDAY_MS, WEEK_MS, SyntheticStream, weekly_stream

MONDAY = MONDAY_MS


def without_terminal(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: v for k, v in columns.items() if k != "terminal"}


RULES = [
    AlertRule(kind=kind, statistic="psi", threshold=0.1, min_rows=500, cooldown_ms=DAY_MS)
    for kind in ("feature_drift", "prediction_drift")
]


def reference_of(stream: SyntheticStream, seasonality: Seasonality) -> ReferenceProfile:
    reference = stream.between(MONDAY, MONDAY + 4 * WEEK_MS)
    return build_profile(
        without_terminal(reference.columns),
        reference.times,
        scores=["score"],
        categorical=["channel"],
        seasonality=seasonality,
    )


def replay(profile: ReferenceProfile, stream: SyntheticStream, batch: int = 5_000) -> list[Alert]:
    windows = DriftWindows(profile, DAY_MS)
    evaluator = AlertEvaluator(RULES)
    live = stream.between(MONDAY + 4 * WEEK_MS, MONDAY + 7 * WEEK_MS)
    alerts: list[Alert] = []
    for start in range(0, live.times.size, batch):
        part = slice(start, start + batch)
        columns = without_terminal(live.columns)
        results = windows.update({k: v[part] for k, v in columns.items()}, live.times[part])
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


def test_windows_close_when_the_watermark_passes_their_end_and_late_rows_are_counted() -> None:
    profile = build_profile({"x": np.arange(100.0)}, np.arange(100), bins=4)
    windows = DriftWindows(profile, 1_000, allowed_lateness_ms=500)
    assert windows.update({"x": [1.0, 2.0]}, [100, 900]) == []
    assert windows.update({"x": [3.0]}, [1_400]) == []  # watermark 900: [0, 1000) still open
    assert windows.update({"x": [50.0]}, [950]) == []  # on time, within the lateness
    (closed,) = windows.update({"x": [4.0]}, [1_600])  # watermark 1100 closes [0, 1000)
    assert (closed.window_start_ms, closed.window_end_ms, closed.rows) == (0, 1_000, 3)
    assert windows.update({"x": [5.0]}, [999]) == [] and windows.late_rows == 1
    (last,) = windows.flush()
    assert (last.window_start_ms, last.rows) == (1_000, 2)
    assert windows.flush() == []


def test_a_window_like_the_reference_shows_no_drift_and_a_shifted_one_does() -> None:
    rng = np.random.default_rng(4)
    reference = rng.normal(10.0, 2.0, 20_000)
    profile = build_profile({"x": reference}, np.zeros(reference.size, np.int64), bins=10)
    windows = DriftWindows(profile, 10**9)
    same = rng.normal(10.0, 2.0, 5_000)
    shifted = same + 2.0  # one reference standard deviation
    (alike,) = windows.update({"x": same}, np.zeros(same.size, np.int64)) + windows.flush()
    (moved,) = windows.update({"x": shifted}, np.zeros(same.size, np.int64)) + windows.flush()
    assert alike.statistics["psi"] < 0.01 and alike.statistics["wasserstein"] < 0.05
    assert moved.statistics["psi"] > 0.5
    assert moved.statistics["wasserstein"] == pytest.approx(1.0, abs=0.05)
    assert moved.statistics["ks"] > 0.3


def test_a_thin_reference_slot_falls_back_to_the_whole_reference() -> None:
    hour = 3_600_000
    # Monday 00h: 100 rows of low values; Monday 01h: 5 rows of high values only.
    times = np.concatenate([np.full(100, MONDAY), np.full(5, MONDAY + hour)])
    values = np.concatenate([np.linspace(0, 1, 100), np.full(5, 10.0)])
    profile = build_profile({"x": values}, times, bins=4, seasonality="weekday_hour")
    thin = DriftWindows(profile, hour, min_slot_rows=30)
    trusting = DriftWindows(profile, hour, min_slot_rows=1)
    window = {"x": np.linspace(0, 1, 50)}  # looks like the reference as a whole
    at_one = np.full(50, MONDAY + WEEK_MS + hour)
    (fallback,) = thin.update(window, at_one) + thin.flush()
    (slot_only,) = trusting.update(window, at_one) + trusting.flush()
    assert fallback.statistics["psi"] < 0.2 < slot_only.statistics["psi"]
