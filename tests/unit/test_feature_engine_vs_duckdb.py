"""The feature engine against an independent reference: DuckDB SQL computing the same window
definitions with a self-join (every event joined to its key's earlier events in log order).

Hypothesis generates streams with ties, bursts, gaps, out-of-order and late events."""

from __future__ import annotations

import itertools
from typing import Any

import duckdb
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamsense as ss
from streamsense import features as F
from streamsense.features.windows import HOPPING, LAST_N, ROLLING, SESSION, TUMBLING, Window


class Point(ss.Schema):
    k: int
    t: int
    v: float


POINTS = ss.Stream("points", Point, key="k", time="t", partitions=1)
AGGREGATIONS = {
    "count": (F.count(), "count(b.v)"),
    "sum": (F.sum("v"), "sum(b.v)"),
    "mean": (F.mean("v"), "avg(b.v)"),
    "min": (F.min("v"), "min(b.v)"),
    "max": (F.max("v"), "max(b.v)"),
    "var": (F.var("v"), "var_samp(b.v)"),
    "std": (F.std("v"), "stddev_samp(b.v)"),
    "distinct": (F.distinct_count("v"), "count(DISTINCT b.v)"),
    "first": (F.first("v"), "arg_min(b.v, b.t * 100000 + b.i)"),
    "last": (F.last("v"), "arg_max(b.v, b.t * 100000 + b.i)"),
    "approx": (F.approx_distinct_count("v"), "count(DISTINCT b.v)"),
    "q90": (F.quantile("v", 0.9), "quantile_cont(b.v, 0.9)"),
    "median": (F.quantile("v", 0.5), "quantile_cont(b.v, 0.5)"),
    "rate": (
        F.rate("v"),
        "CASE WHEN max(b.t) > min(b.t) THEN (arg_max(b.v, b.t * 100000 + b.i)"
        " - arg_min(b.v, b.t * 100000 + b.i)) * 1000.0 / (max(b.t) - min(b.t)) END",
    ),
}
DEFAULT = -1.0


def feature_set(window: Window) -> F.FeatureSet:
    group = F.FeatureGroup(POINTS, key="k")
    for name, (aggregation, _) in AGGREGATIONS.items():
        group.add(name, aggregation, window, default=DEFAULT)
    return F.FeatureSet("reference", group.features)


def window_predicate(window: Window) -> str:
    """Which rows b (same key, not later in the log) the window at row a holds."""
    if window.kind == ROLLING:
        size, off = window.p1, window.p2
        return f"b.t > a.t - {off} - {size} AND b.t <= a.t - {off}"
    if window.kind == TUMBLING:
        return f"b.t >= floor(a.t / {window.p1}) * {window.p1} AND b.t <= a.t"
    if window.kind == HOPPING:
        size, every = window.p1, window.p2
        return f"b.t >= floor(a.t / {every}) * {every} + {every} - {size} AND b.t <= a.t"
    return "b.t <= a.t"  # last_n and session: narrowed by rank / run below


def reference(
    rows: list[tuple[int, int, int, float]], window: Window, at: int | None
) -> dict[int, dict[str, float]]:
    """Features per row index i (or, with ``at``, per key read at time ``at``)."""
    con = duckdb.connect()
    con.execute("CREATE TABLE e (i BIGINT, k BIGINT, t BIGINT, v DOUBLE)")
    con.executemany("INSERT INTO e VALUES (?, ?, ?, ?)", rows)
    if at is None:
        anchor = "SELECT i, k, t FROM e"
        order_ok = "b.i <= a.i"
    else:
        anchor = f"SELECT k AS i, k, {at}::BIGINT AS t FROM (SELECT DISTINCT k FROM e)"
        order_ok = "TRUE"
    joined = (
        f"SELECT a.i AS ai, a.t AS anchor_t, b.* FROM ({anchor}) a JOIN e b"
        f" ON a.k = b.k AND {order_ok} AND {window_predicate(window)}"
    )
    members = _narrow(joined, window)
    aggs = ", ".join(f"{sql} AS {name}" for name, (_, sql) in AGGREGATIONS.items())
    result = con.execute(f"SELECT ai, {aggs} FROM ({members}) b GROUP BY ai").fetchall()
    names = list(AGGREGATIONS)
    return {row[0]: dict(zip(names, row[1:], strict=True)) for row in result}


def _narrow(joined: str, window: Window) -> str:
    if window.kind == LAST_N:
        return (
            f"SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY ai ORDER BY t DESC, i DESC)"
            f" AS r FROM ({joined})) WHERE r <= {window.p1}"
        )
    if window.kind == SESSION:
        gap = window.p1
        runs = (
            f"SELECT *, sum(CASE WHEN t - prev_t >= {gap} OR prev_t IS NULL THEN 1 ELSE 0 END)"
            f" OVER (PARTITION BY ai ORDER BY t, i) AS run,"
            f" max(t) OVER (PARTITION BY ai) AS last_t FROM ("
            f"SELECT *, lag(t) OVER (PARTITION BY ai ORDER BY t, i) AS prev_t FROM ({joined}))"
        )
        return (
            f"SELECT * FROM (SELECT *, max(run) OVER (PARTITION BY ai) AS last_run FROM ({runs}))"
            f" WHERE run = last_run AND anchor_t - last_t < {gap}"
        )
    return joined


def expected_row(ref: dict[str, Any] | None) -> dict[str, float]:
    empty = {name: (0.0 if name == "count" else DEFAULT) for name in AGGREGATIONS}
    if ref is None:
        return empty
    out = {}
    for name, value in ref.items():
        if name == "count":
            out[name] = float(value)
        elif value is None or (name in ("var", "std") and ref["count"] < 2):
            out[name] = DEFAULT
        else:
            out[name] = float(value)
    return out


def assert_close(actual: float, expected: float, name: str, where: str) -> None:
    if name == "approx":  # HyperLogLog: exact-ish for small sets (linear counting)
        assert abs(actual - expected) <= max(1.0, 0.05 * expected), where
    else:
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9), f"{name} at {where}"


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[int, int, float]]:
    n = draw(st.integers(1, 45))
    t = draw(st.integers(0, 50))
    out = []
    for _ in range(n):
        # Ties (0), bursts (small steps), gaps (large steps) and out-of-order (negative).
        t = max(0, t + draw(st.sampled_from([0, 0, 1, 2, 3, 7, 25, -2, -6, -30])))
        value = draw(st.sampled_from([0.0, 1.0, 2.5, 3.0, 3.0, -4.0, 100.0, 0.125]))
        out.append((draw(st.integers(1, 3)), t, value))
    return out


WINDOWS = st.one_of(
    st.builds(F.rolling, st.integers(1, 30), st.sampled_from([0, 0, 5])),
    st.builds(F.tumbling, st.integers(1, 30)),
    st.integers(1, 10).flatmap(lambda e: st.builds(F.hopping, st.integers(e, 30), st.just(e))),
    st.builds(F.session, st.integers(1, 12)),
    st.builds(F.last_n, st.integers(1, 6)),
)


def late_flags(times: list[int], lateness: int) -> list[bool]:
    watermark = None
    flags = []
    for t in times:
        late = watermark is not None and t < watermark
        flags.append(late)
        if not late:
            watermark = t - lateness if watermark is None else max(watermark, t - lateness)
    return flags


def run_engine(
    engine: F.FeatureEngine, stream: list[tuple[int, int, float]], cuts: list[int]
) -> F.BatchResult:
    keys = np.array([k for k, _, _ in stream], np.int64)
    times = np.array([t for _, t, _ in stream], np.int64)
    values = np.array([v for _, _, v in stream], np.float64)
    results = []
    bounds = [0, *sorted(set(cuts)), len(stream)]
    for lo, hi in itertools.pairwise(bounds):
        if hi > lo:
            results.append(engine.process(0, times[lo:hi], {"k": keys[lo:hi], "v": values[lo:hi]}))
    return F.BatchResult(
        results[0].names,
        np.concatenate([r.values for r in results]),
        np.concatenate([r.late for r in results]),
        [f for r in results for f in r.finals],
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams(), WINDOWS, st.integers(0, 12), st.lists(st.integers(0, 45), max_size=4))
def test_every_window_and_aggregation_matches_duckdb(
    stream: list[tuple[int, int, float]], window: Window, lateness: int, cuts: list[int]
) -> None:
    engine = F.FeatureEngine(feature_set(window), allowed_lateness_ms=lateness)
    result = run_engine(engine, stream, cuts)
    flags = late_flags([t for _, t, _ in stream], lateness)
    assert result.late.tolist() == flags
    rows = [(i, k, t, v) for i, (k, t, v) in enumerate(stream) if not flags[i]]
    ref = reference(rows, window, at=None)
    for i, _ in enumerate(stream):
        if flags[i]:
            continue
        expected = expected_row(ref.get(i))
        for j, name in enumerate(result.names):
            assert_close(
                result.values[i, j], expected[name], name, f"event {i} {window.describe()}"
            )
    # Reads at request time, at or after the watermark, see the window as of the read time.
    at = max(t for _, t, _ in stream) + 3
    read_ref = reference(rows, window, at=at)
    for key in {k for k, _, _ in stream}:
        got = engine.read(key, at)
        expected = expected_row(read_ref.get(key))
        for name in AGGREGATIONS:
            assert_close(float(got[name]), expected[name], name, f"read key {key} at {at}")


@settings(max_examples=60, deadline=None)
@given(streams(), WINDOWS, st.integers(0, 12), st.lists(st.integers(0, 45), max_size=6))
def test_any_batching_gives_bit_identical_features(
    stream: list[tuple[int, int, float]], window: Window, lateness: int, cuts: list[int]
) -> None:
    one_by_one = run_engine(
        F.FeatureEngine(feature_set(window), allowed_lateness_ms=lateness),
        stream,
        list(range(len(stream))),
    )
    batched = run_engine(
        F.FeatureEngine(feature_set(window), allowed_lateness_ms=lateness), stream, cuts
    )
    assert one_by_one.late.tolist() == batched.late.tolist()
    live = ~one_by_one.late
    assert one_by_one.values[live].tobytes() == batched.values[live].tobytes()
    assert one_by_one.finals == batched.finals


@settings(max_examples=40, deadline=None)
@given(streams(), WINDOWS, st.integers(0, 45))
def test_snapshot_and_restore_continue_exactly(
    stream: list[tuple[int, int, float]], window: Window, cut: int
) -> None:
    straight = run_engine(F.FeatureEngine(feature_set(window)), stream, [cut])
    first = F.FeatureEngine(feature_set(window))
    run_engine(first, stream[:cut], []) if cut else None
    second = F.FeatureEngine(feature_set(window))
    if cut and stream[:cut]:
        second.partition(0).restore(first.partition(0).snapshot())
    rest = stream[cut:]
    if not rest:
        return
    resumed = run_engine(second, rest, [])
    offset = len(stream) - len(rest)
    live = ~straight.late[offset:]
    assert resumed.late.tolist() == straight.late[offset:].tolist()
    assert resumed.values[live].tobytes() == straight.values[offset:][live].tobytes()
