"""Drift over tumbling event-time windows, computed incrementally with bounded memory.

Each open window keeps, per column, a (seasonal slot x bin) count matrix over the
reference's bins, a sum of the values per bin, and the missing count: O(slots x bins)
numbers, whatever the window's size. Windows are [k*size, (k+1)*size) in event time
(the engine's tumbling windows). A window closes when the watermark (highest event time
seen minus ``allowed_lateness_ms``) passes its end; rows for a closed window are late:
counted in ``late_rows``, not added. With seasonality, a window is compared with the
reference's frequencies mixed in the proportions of the window's own slots, so a window
of Saturday nights is held against the reference's Saturday nights. (Wasserstein places
the reference's bin masses at the whole reference's bin means: sums per slot are not kept.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from streamsense.errors import ConfigError
from streamsense.monitoring import stats
from streamsense.monitoring.profile import (
    ColumnProfile,
    ReferenceProfile,
    Role,
    bin_index,
    category_index,
    category_labels,
)
from streamsense.monitoring.seasons import slot_count, slots_of

Column = Sequence[object] | npt.NDArray[np.generic]
MIN_SLOT_ROWS = 30  # a thinner reference slot is replaced by the whole reference


class WindowResult(msgspec.Struct, frozen=True, kw_only=True):
    column: str
    role: Role
    window_start_ms: int
    window_end_ms: int
    rows: int  # rows with a value (missing ones excluded)
    missing_rate: float
    statistics: dict[str, float]


class _ColumnReference:
    """A profile column in the form windows are compared with."""

    def __init__(self, profile: ColumnProfile, slots: int, min_slot_rows: int) -> None:
        self.profile = profile
        part = profile.numeric or profile.categorical
        if part is None:
            raise ConfigError(f"column {profile.name!r} has no profile")
        self.width = len(part.counts)
        self.overall = stats.frequencies(part.counts)
        self.by_slot = np.tile(self.overall, (slots, 1))
        if part.slot_counts:
            counts = np.asarray(part.slot_counts, dtype=np.float64)
            totals = counts.sum(axis=1)
            enough = totals >= min_slot_rows
            self.by_slot[enough] = counts[enough] / totals[enough, None]
        self.edges = np.asarray(profile.numeric.edges if profile.numeric else [], np.float64)
        self.means = np.asarray(profile.numeric.bin_means if profile.numeric else [], np.float64)

    def expected(self, slot_rows: npt.NDArray[np.int64]) -> stats.Floats:
        weights = stats.frequencies(slot_rows)
        mixed: stats.Floats = weights @ self.by_slot
        return mixed

    def bins(self, values: Column) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """Bin of each present value, and which rows are present."""
        if self.profile.numeric is not None:
            numbers = np.asarray(values, dtype=np.float64)
            present = np.isfinite(numbers)
            return bin_index(numbers[present], self.edges), present
        assert self.profile.categorical is not None
        labels = category_labels(values)
        present = labels != ""
        return category_index(labels[present], self.profile.categorical.categories), present


class _WindowCounts:
    def __init__(self, columns: Sequence[_ColumnReference], slots: int) -> None:
        self.cells = [np.zeros((slots, c.width), dtype=np.int64) for c in columns]
        self.missing = [0] * len(columns)
        self.sums = [np.zeros(c.width, dtype=np.float64) for c in columns]


class DriftWindows:
    """Feed column batches with their event times; get a ``WindowResult`` per column for
    every window that closes."""

    def __init__(
        self,
        profile: ReferenceProfile,
        window_ms: int,
        *,
        columns: Sequence[str] | None = None,
        allowed_lateness_ms: int = 0,
        min_slot_rows: int = MIN_SLOT_ROWS,
    ) -> None:
        if window_ms <= 0:
            raise ConfigError(f"window size must be positive, got {window_ms} ms")
        self.window_ms = window_ms
        self.allowed_lateness_ms = allowed_lateness_ms
        self.seasonality = profile.seasonality
        self.slots = slot_count(profile.seasonality)
        names = list(columns) if columns is not None else [c.name for c in profile.columns]
        self.references = [
            _ColumnReference(profile.column(n), self.slots, min_slot_rows) for n in names
        ]
        self.open: dict[int, _WindowCounts] = {}
        self.watermark = int(np.iinfo(np.int64).min)
        self.late_rows = 0

    def update(self, columns: Mapping[str, Column], event_time_ms: Column) -> list[WindowResult]:
        times = np.asarray(event_time_ms, dtype=np.int64)
        if times.size == 0:
            return []
        starts = times - times % self.window_ms
        on_time = starts + self.window_ms > self.watermark
        self.late_rows += int(times.size - on_time.sum())
        slots = slots_of(times, self.seasonality)
        for start in np.unique(starts[on_time]):
            rows = np.flatnonzero(starts == start)
            self._add(int(start), columns, rows, slots[rows])
        self.watermark = max(self.watermark, int(times.max()) - self.allowed_lateness_ms)
        return self._close(lambda end: end <= self.watermark)

    def flush(self) -> list[WindowResult]:
        """Close every open window (the end of a replay)."""
        return self._close(lambda end: True)

    def _add(
        self,
        start: int,
        columns: Mapping[str, Column],
        rows: npt.NDArray[np.intp],
        slots: npt.NDArray[np.intp],
    ) -> None:
        window = self.open.get(start)
        if window is None:
            window = self.open[start] = _WindowCounts(self.references, self.slots)
        for i, reference in enumerate(self.references):
            values = np.asarray(columns[reference.profile.name])[rows]
            index, present = reference.bins(values)
            cells = np.bincount(
                slots[present] * reference.width + index, minlength=window.cells[i].size
            )
            window.cells[i] += cells.reshape(window.cells[i].shape)
            window.missing[i] += int(rows.size - present.sum())
            if reference.profile.numeric is not None:
                numbers = np.asarray(values, dtype=np.float64)[present]
                window.sums[i] += np.bincount(index, weights=numbers, minlength=reference.width)

    def _close(self, closes: Callable[[int], bool]) -> list[WindowResult]:
        results: list[WindowResult] = []
        for start in sorted(self.open):
            if not closes(start + self.window_ms):
                break
            window = self.open.pop(start)
            for i, reference in enumerate(self.references):
                results.append(self._result(start, window, i, reference))
        return results

    def _result(
        self, start: int, window: _WindowCounts, i: int, reference: _ColumnReference
    ) -> WindowResult:
        cells = window.cells[i]
        rows = int(cells.sum())
        total = rows + window.missing[i]
        values: dict[str, float] = {}
        if rows:
            expected = reference.expected(cells.sum(axis=1))
            values = _statistics(reference, expected, cells.sum(axis=0), window, i)
        return WindowResult(
            column=reference.profile.name,
            role=reference.profile.role,
            window_start_ms=start,
            window_end_ms=start + self.window_ms,
            rows=rows,
            missing_rate=window.missing[i] / total if total else 0.0,
            statistics=values,
        )


def _statistics(
    reference: _ColumnReference,
    expected: stats.Floats,
    counts: npt.NDArray[np.int64],
    window: _WindowCounts,
    i: int,
) -> dict[str, float]:
    observed = stats.frequencies(counts)
    values = {
        "psi": stats.psi(expected, observed),
        "jensen_shannon": stats.js_distance(expected, observed),
    }
    numeric = reference.profile.numeric
    if numeric is None:
        chi2, p_value = stats.chi_square(expected, counts)
        values.update(chi_square=chi2, chi_square_p=p_value)
        return values
    means = stats.bin_means(window.sums[i], counts, reference.edges)
    values["ks"] = stats.ks_binned(expected, observed)
    values["wasserstein"] = stats.wasserstein_binned(
        expected, reference.means, observed, means, numeric.std
    )
    return values
