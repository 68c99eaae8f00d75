"""Quantiles and rates of change over windows longer than the DuckDB reference's streams:
a quantile sorts its window by insertion up to ~100 rows and with numpy beyond, and both
must agree with numpy's linear-interpolation quantile."""

from __future__ import annotations

import numpy as np
import pytest

import streamsense as ss
from streamsense import features as F


class Point(ss.Schema):
    k: int
    t: int
    v: float


POINTS = ss.Stream("points", Point, key="k", time="t", partitions=1)


@pytest.mark.parametrize("rows", [5, 96, 97, 400])
def test_quantiles_and_rates_over_long_windows_match_numpy(rows: int) -> None:
    group = F.FeatureGroup(POINTS, key="k")
    levels = (0.0, 0.1, 0.5, 0.9, 1.0)
    for q in levels:
        group.add(f"q{q}", F.quantile("v", q), F.rolling(10_000_000))
    group.add("rate", F.rate("v"), F.rolling(10_000_000))
    engine = F.FeatureEngine(F.FeatureSet("q", group.features))
    rng = np.random.default_rng(rows)
    times = np.arange(rows, dtype=np.int64) * 1000
    values = rng.normal(size=rows)
    result = engine.process(0, times, {"k": np.zeros(rows, np.int64), "v": values})
    for i in (0, rows // 2, rows - 1):
        window = values[: i + 1]
        for j, q in enumerate(levels):
            assert result.values[i, j] == pytest.approx(np.quantile(window, q), abs=1e-12)
        rate = (window[-1] - window[0]) / i if i else 0.0  # per second: rows 1 s apart
        assert result.values[i, len(levels)] == pytest.approx(rate, abs=1e-12)


def test_time_of_day_and_weekday_context() -> None:
    group = F.FeatureGroup(POINTS, key="k")
    group.add("n", F.count(), F.rolling(1000))
    context = [F.hour_of_day(POINTS), F.weekday(POINTS)]
    engine = F.FeatureEngine(F.FeatureSet("c", [*group.features, *context]))
    # 2026-12-06 is a Sunday; 2026-12-07 13:30 UTC a Monday afternoon.
    times = np.array([1_796_515_200_000 + 3_600_000, 1_796_650_200_000], dtype=np.int64)
    result = engine.process(0, times, {"k": np.zeros(2, np.int64), "v": np.zeros(2)})
    assert result.values[:, 1].tolist() == [1.0, 13.5]
    assert result.values[:, 2].tolist() == [6, 0]
