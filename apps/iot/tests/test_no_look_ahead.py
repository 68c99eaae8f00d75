"""A score depends only on the readings up to it: scoring a prefix gives the same scores
whether or not later rows exist, whatever the batches the pipeline cuts them into."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from streamsense.events import Event

from ..detector_stage import DetectorStage
from ..feature_score import INPUTS
from ..kernels import DETECTORS, score_batch
from ..layout import ROW, TABLE
from ..readings import Reading

values = st.lists(
    st.one_of(
        st.floats(-1e6, 1e6, allow_nan=False),
        st.sampled_from([0.0, 1.0, 5.0]),  # repeated values: runs and flat stretches
    ),
    min_size=1,
    max_size=400,
)


def scores(detector: int, series: list[int], xs: list[float]) -> np.ndarray[Any, Any]:
    rows, tables = np.zeros((3, ROW)), np.zeros((3, 2 * TABLE))
    out = np.empty(len(xs))
    # Any features will do (the engine's are causal: tested with the engine): the row's
    # own, derived from the values up to it, so a prefix sees the same ones.
    features = np.zeros((len(xs), len(INPUTS)))
    running = np.cumsum(xs) / np.arange(1, len(xs) + 1) if xs else np.zeros(0)
    features[:, 0], features[:, 1], features[:, 2] = running, 1.0 + np.abs(running) * 0.1, xs
    features[:, 3] = np.diff(xs, prepend=xs[:1]) / 60.0 if xs else 0.0
    index = np.array(series, dtype=np.int64)
    score_batch(detector, index, np.array(xs), features, rows, tables, out)
    return out


@settings(max_examples=60, deadline=None)
@given(values, st.data())
def test_prefix_scores_do_not_depend_on_later_rows(xs: list[float], data: st.DataObject) -> None:
    series = data.draw(st.lists(st.integers(0, 2), min_size=len(xs), max_size=len(xs)))
    cut = data.draw(st.integers(0, len(xs)))
    for detector in DETECTORS.values():
        whole = scores(detector, series, xs)
        prefix = scores(detector, series[:cut], xs[:cut])
        assert np.array_equal(whole[:cut], prefix)
        assert np.all((whole >= 0.0) & (whole <= 1.0))


def events(readings: list[Reading]) -> list[Event[Any]]:
    return [
        Event(r.series, r.timestamp, r, "readings", 0, i, r.timestamp)
        for i, r in enumerate(readings)
    ]


@settings(max_examples=30, deadline=None)
@given(values, st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_the_stage_scores_the_same_whatever_the_batches(xs: list[float], sizes: list[int]) -> None:
    readings = [
        Reading(f"s{i % 3}", 1_600_000_000_000 + 60_000 * i, x, i) for i, x in enumerate(xs)
    ]
    one = DetectorStage().process_batch(0, events(readings), readings)[0]
    stage, cut = DetectorStage(), 0
    split: list[Any] = []
    while cut < len(readings):
        size = sizes[len(split) % len(sizes)]
        batch = readings[cut : cut + size]
        split.extend(stage.process_batch(0, events(batch), batch)[0])
        cut += size
    assert split == one
