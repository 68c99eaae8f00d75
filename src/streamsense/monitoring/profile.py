"""Reference profiles: what a model's inputs and scores looked like on the data it was
trained (or last judged healthy) on, in the compact form drift statistics compare against.

A numeric column keeps quantile bin edges with open ends, so any later value falls in some
bin; a categorical column keeps its most frequent categories plus one bucket for the rest.
Counts (not frequencies) are stored, globally and per seasonal slot, so a window can be
compared with the reference's mix of the same weekday/hour slots (see ``seasons.py``).
Profiles are msgspec structs: JSON to store beside a model version in the registry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from streamsense.errors import ConfigError
from streamsense.monitoring import stats
from streamsense.monitoring.seasons import Seasonality, slot_count, slots_of

Role = Literal["feature", "score"]
OTHER = "__other__"  # the bucket of categories the reference did not keep
DEFAULT_BINS = 20
DEFAULT_TOP_CATEGORIES = 50


class NumericProfile(msgspec.Struct, frozen=True, kw_only=True):
    """Bins: (-inf, e[0]), [e[0], e[1]), ..., [e[-1], +inf): ``len(edges) + 1`` bins."""

    edges: list[float]
    counts: list[int]
    slot_counts: list[list[int]]  # per seasonal slot, same bins; empty without seasonality
    bin_means: list[float]  # mean value per bin (Wasserstein places each bin's mass there)
    minimum: float
    maximum: float
    mean: float
    std: float


class CategoricalProfile(msgspec.Struct, frozen=True, kw_only=True):
    """Kept categories, the last one always ``OTHER``."""

    categories: list[str]
    counts: list[int]
    slot_counts: list[list[int]]


class ColumnProfile(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    role: Role
    rows: int
    missing: int
    numeric: NumericProfile | None = None
    categorical: CategoricalProfile | None = None

    @property
    def missing_rate(self) -> float:
        return self.missing / self.rows if self.rows else 0.0


class ReferenceProfile(msgspec.Struct, frozen=True, kw_only=True):
    rows: int
    start_ms: int  # event-time range the reference came from, inclusive
    end_ms: int
    seasonality: Seasonality
    columns: list[ColumnProfile]

    def column(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        raise ConfigError(f"the reference profile has no column {name!r}")

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @staticmethod
    def from_json(data: bytes) -> ReferenceProfile:
        return msgspec.json.decode(data, type=ReferenceProfile)


def build_profile(
    columns: Mapping[str, Any],
    event_time_ms: npt.NDArray[np.int64] | Sequence[int],
    *,
    scores: Sequence[str] = (),
    categorical: Sequence[str] = (),
    bins: int = DEFAULT_BINS,
    top_categories: int = DEFAULT_TOP_CATEGORIES,
    seasonality: Seasonality = "none",
) -> ReferenceProfile:
    """Profile every column of a column table (numpy arrays, lists or pyarrow arrays via
    ``to_numpy``, nulls missing). Columns named in ``scores`` get the role ``score``; those named in
    ``categorical`` are profiled by category, the rest as numbers (NaN = missing)."""
    if bins < 2:
        raise ConfigError(f"a profile needs at least 2 bins, got {bins}")
    times = np.asarray(event_time_ms, dtype=np.int64)
    if times.size == 0:
        raise ConfigError("cannot profile an empty reference")
    slots = slots_of(times, seasonality)
    profiles = []
    for name, raw in columns.items():
        values = as_column(raw)
        if len(values) != times.size:
            raise ConfigError(f"column {name!r} has {len(values)} rows, event times {times.size}")
        role: Role = "score" if name in scores else "feature"
        if name in categorical:
            profiles.append(_categorical(name, role, values, slots, seasonality, top_categories))
        else:
            profiles.append(_numeric(name, role, values, slots, seasonality, bins))
    return ReferenceProfile(
        rows=int(times.size),
        start_ms=int(times.min()),
        end_ms=int(times.max()),
        seasonality=seasonality,
        columns=profiles,
    )


def profile_table(
    table: Any,
    time_column: str,
    **options: Any,
) -> ReferenceProfile:
    """``build_profile`` over a pyarrow Table (a training set, a replay's export): every column
    but ``time_column`` (epoch milliseconds, or a timestamp column) is profiled."""
    times = table[time_column]
    if str(times.type).startswith("timestamp"):  # pyarrow stays an optional import here
        times = times.cast("timestamp[ms]").cast("int64")
    columns = {name: table[name] for name in table.column_names if name != time_column}
    return build_profile(columns, np.asarray(as_column(times), dtype=np.int64), **options)


def as_column(raw: Any) -> Sequence[object] | npt.NDArray[np.generic]:
    """A pyarrow array or chunked array as numpy (nulls become NaN or None); others as given."""
    to_numpy = getattr(raw, "to_numpy", None)
    if to_numpy is not None and not isinstance(raw, np.ndarray):
        column: npt.NDArray[np.generic] = to_numpy(zero_copy_only=False)
        return column
    return raw  # type: ignore[no-any-return]


def quantile_edges(values: npt.NDArray[np.float64], bins: int) -> npt.NDArray[np.float64]:
    """Inner edges at the reference's 1/bins ... (bins-1)/bins quantiles; ties collapse
    (a column that is mostly zeros gets fewer, not empty, bins)."""
    levels = np.arange(1, bins) / bins
    return np.unique(np.quantile(values, levels))


def bin_index(
    values: npt.NDArray[np.float64], edges: npt.NDArray[np.float64]
) -> npt.NDArray[np.intp]:
    """Bin k holds [edges[k-1], edges[k]) with open ends, the convention of the profile."""
    return np.searchsorted(edges, values, side="right")


def _numeric(
    name: str,
    role: Role,
    raw: Sequence[object] | npt.NDArray[np.generic],
    slots: npt.NDArray[np.intp],
    seasonality: Seasonality,
    bins: int,
) -> ColumnProfile:
    values = np.asarray(raw, dtype=np.float64)
    present = np.isfinite(values)
    kept = values[present]
    if kept.size == 0:
        raise ConfigError(f"column {name!r} has no finite value in the reference")
    edges = quantile_edges(kept, bins)
    index = bin_index(kept, edges)
    width = edges.size + 1
    counts = np.bincount(index, minlength=width)
    sums = np.bincount(index, weights=kept, minlength=width).astype(np.float64)
    profile = NumericProfile(
        edges=edges.tolist(),
        counts=counts.tolist(),
        bin_means=stats.bin_means(sums, counts, edges).tolist(),
        slot_counts=_per_slot(index, slots[present], seasonality, width),
        minimum=float(kept.min()),
        maximum=float(kept.max()),
        mean=float(kept.mean()),
        std=float(kept.std()),
    )
    missing = int(values.size - kept.size)
    return ColumnProfile(
        name=name, role=role, rows=int(values.size), missing=missing, numeric=profile
    )


def _categorical(
    name: str,
    role: Role,
    raw: Sequence[object] | npt.NDArray[np.generic],
    slots: npt.NDArray[np.intp],
    seasonality: Seasonality,
    top: int,
) -> ColumnProfile:
    labels = category_labels(raw)
    present = labels != ""
    seen, counts = np.unique(labels[present], return_counts=True)
    order = np.argsort(-counts, kind="stable")[:top]
    categories = [str(c) for c in seen[order]] + [OTHER]
    index = category_index(labels[present], categories)
    width = len(categories)
    profile = CategoricalProfile(
        categories=categories,
        counts=np.bincount(index, minlength=width).tolist(),
        slot_counts=_per_slot(index, slots[present], seasonality, width),
    )
    missing = int(labels.size - int(present.sum()))
    return ColumnProfile(
        name=name, role=role, rows=int(labels.size), missing=missing, categorical=profile
    )


def category_labels(raw: Sequence[object] | npt.NDArray[np.generic]) -> npt.NDArray[np.str_]:
    """Categories as strings; None and NaN become "" (missing)."""
    if isinstance(raw, np.ndarray) and raw.dtype.kind == "U":
        return raw.astype(np.str_, copy=False)  # already strings: none is None or NaN
    labels = ["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in list(raw)]
    return np.asarray(labels, dtype=np.str_)


def category_index(labels: npt.NDArray[np.str_], categories: Sequence[str]) -> npt.NDArray[np.intp]:
    """Position of each label among ``categories``; unknown ones go to the last (OTHER).
    Looks up each distinct label once, not each row."""
    distinct, inverse = np.unique(labels, return_inverse=True)
    positions = {c: i for i, c in enumerate(categories)}
    other = len(categories) - 1
    lookup = np.fromiter((positions.get(str(v), other) for v in distinct), np.intp, distinct.size)
    index: npt.NDArray[np.intp] = lookup[inverse.reshape(-1)]
    return index


def _per_slot(
    index: npt.NDArray[np.intp],
    slots: npt.NDArray[np.intp],
    seasonality: Seasonality,
    width: int,
) -> list[list[int]]:
    if seasonality == "none":
        return []
    cells = np.bincount(slots * width + index, minlength=slot_count(seasonality) * width)
    return cells.reshape(-1, width).tolist()
