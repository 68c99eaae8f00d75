"""The feature engine's state as one changelog entry per key: a restore from the latest
meta and the latest entry of every key continues exactly as the engine that wrote them,
also when entries were written after their meta (a write cut short by a crash)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamsense import features as F
from streamsense.features.entries import split_entry_key
from streamsense.features.windows import Window
from tests.unit.test_feature_engine_vs_duckdb import WINDOWS, feature_set, streams

Stream = list[tuple[int, int, float]]


def process(engine: F.FeatureEngine, stream: Stream, lo: int, hi: int) -> F.BatchResult:
    part = stream[lo:hi]
    keys = np.array([k for k, _, _ in part], np.int64)
    times = np.array([t for _, t, _ in part], np.int64)
    values = np.array([v for _, _, v in part], np.float64)
    return engine.process(0, times, {"k": keys, "v": values})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    streams(),
    WINDOWS,
    st.integers(0, 12),
    st.lists(st.integers(0, 45), max_size=4),
    st.integers(0, 45),
    st.integers(0, 45),
)
def test_restore_from_entries_continues_exactly(
    stream: Stream, window: Window, lateness: int, cuts: list[int], meta_cut: int, cut: int
) -> None:
    meta_at, entries_at = sorted((min(meta_cut, len(stream)), min(cut, len(stream))))
    bounds = sorted({0, *[min(c, len(stream)) for c in cuts], meta_at, entries_at, len(stream)})
    batches = [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]

    straight = F.FeatureEngine(feature_set(window), allowed_lateness_ms=lateness)
    expected = [process(straight, stream, lo, hi) for lo, hi in batches]

    # The writer: state written after every batch up to entries_at, its meta kept only up
    # to meta_at (the writes after it lost their meta record).
    writer = F.FeatureEngine(feature_set(window), allowed_lateness_ms=lateness)
    log: dict[bytes, bytes | None] = {}
    meta: bytes | None = None
    for lo, hi in batches:
        if hi > entries_at:
            break
        process(writer, stream, lo, hi)
        written_meta, entries = writer.partition(0).state_changes()
        log.update(entries)
        if hi <= meta_at:
            meta = written_meta

    restored = F.FeatureEngine(feature_set(window), allowed_lateness_ms=lateness)
    start = 0
    if meta is not None:
        live = [(k, v) for k, v in log.items() if v is not None]
        restored.partition(0).restore_entries(meta, live)
        start = meta_at
    for (lo, hi), want in zip(batches, expected, strict=True):
        if lo < start:
            continue
        got = process(restored, stream, lo, hi)
        if lo < entries_at:
            continue  # replayed silently: its outputs were committed before
        assert got.late.tolist() == want.late.tolist()
        live_rows = ~want.late
        assert got.values[live_rows].tobytes() == want.values[live_rows].tobytes()
        assert got.finals == want.finals


def test_only_changed_keys_are_written() -> None:
    engine = F.FeatureEngine(feature_set(F.rolling(10)))
    stream = [(1, 0, 1.0), (2, 1, 1.0), (3, 2, 1.0)]
    process(engine, stream, 0, 3)
    _, first = engine.partition(0).state_changes()
    assert len(first) == 3 * 1  # one group (key k): an entry per key
    process(engine, [(2, 5, 2.0)], 0, 1)
    _, second = engine.partition(0).state_changes()
    assert [split_entry_key(key) for key, _ in second] == [("k", 2)]
    process(engine, [(2, 40, 2.0)], 0, 1)  # keys 1 and 3 expire: their entries go
    _, third = engine.partition(0).state_changes()
    gone = {key for key, value in third if value is None}
    assert len(third) == 3 and len(gone) == 2
