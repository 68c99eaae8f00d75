"""Detector state as changelog entries: only the series changed since the last write, a
round trip restores them exactly, and an entry written after its meta is left out."""

from __future__ import annotations

import numpy as np

from ..series_state import SeriesState


def test_changes_hold_only_changed_series_and_restore_exactly() -> None:
    state = SeriesState()
    slots = state.indices(["a", "b", "c"])
    state.rows[slots] = np.arange(3)[:, None] + 1.0
    state.tables[1, 5] = 7.0
    state.label(int(slots[2]), "vibration")
    state.mark(slots, 3)
    meta, entries = state.changes()
    assert sorted(k for k, _ in entries) == [b"a", b"b", b"c"]
    state.mark(state.indices(["b"]), 4)
    assert [k for k, _ in state.changes()[1]] == [b"b"]

    back = SeriesState.restored(meta, [(k, v) for k, v in entries if v is not None])
    assert back.readings == 3 and back.names == ["a", "b", "c"]
    assert np.array_equal(back.rows[:3], state.rows[:3])
    assert back.tables[1, 5] == 7.0 and back.labels[2] == {"vibration": 0}


def test_an_entry_newer_than_its_meta_is_relearned_not_double_counted() -> None:
    state = SeriesState()
    state.mark(state.indices(["a", "b"]), 10)
    meta, entries = state.changes()
    state.mark(state.indices(["b"]), 12)  # written after the meta (a write cut short)
    _, newer = state.changes()
    latest = dict(entries) | dict(newer)  # what a compacted changelog keeps
    back = SeriesState.restored(meta, [(k, v) for k, v in latest.items() if v is not None])
    assert back.names == ["a"]  # "b" starts afresh: the replay from the meta relearns it
