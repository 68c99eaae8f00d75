"""Aggregations over a window's events.

Built-ins run in compiled kernels. ``custom(aggregator, field)`` takes any object with
``create``/``update``/``revert``/``merge``/``result`` (see Aggregator) and runs in Python.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Protocol

COUNT, SUM, MEAN, MIN, MAX, VAR, STD, DISTINCT, APPROX_DISTINCT, FIRST, LAST, CUSTOM = range(12)
QUANTILE, RATE = 12, 13
QUANTILE_SCALE = 1_000_000  # a quantile's level is kept in millionths (an integer parameter)
_NAMES = [
    "count",
    "sum",
    "mean",
    "min",
    "max",
    "var",
    "std",
    "distinct_count",
    "approx_distinct_count",
    "first",
    "last",
    "custom",
    "quantile",
    "rate",
]
INTEGER_KINDS = (COUNT, DISTINCT, APPROX_DISTINCT)


class Aggregator(Protocol):
    """A user-defined aggregation. ``update`` adds a value, ``revert`` removes one that was
    added (sliding windows), ``merge`` combines two accumulators (panes, partitions)."""

    def create(self) -> Any: ...

    def update(self, acc: Any, value: float) -> Any: ...

    def revert(self, acc: Any, value: float) -> Any: ...

    def merge(self, left: Any, right: Any) -> Any: ...

    def result(self, acc: Any) -> float: ...


@dataclass(frozen=True)
class Aggregation:
    kind: int
    field: str | None = None
    # The kernels' integer parameter: approximate distinct counts use 2**precision
    # registers; a quantile's level is precision / QUANTILE_SCALE.
    precision: int = 12
    aggregator: Aggregator | None = dataclasses.field(default=None, compare=False)

    @property
    def name(self) -> str:
        return _NAMES[self.kind]

    @property
    def dtype(self) -> str:
        return "int64" if self.kind in INTEGER_KINDS else "float64"


def count() -> Aggregation:
    return Aggregation(COUNT)


def sum(field: str) -> Aggregation:
    return Aggregation(SUM, field)


def mean(field: str) -> Aggregation:
    return Aggregation(MEAN, field)


def min(field: str) -> Aggregation:
    return Aggregation(MIN, field)


def max(field: str) -> Aggregation:
    return Aggregation(MAX, field)


def var(field: str) -> Aggregation:
    """Sample variance (n − 1), as SQL's var_samp."""
    return Aggregation(VAR, field)


def std(field: str) -> Aggregation:
    """Sample standard deviation, as SQL's stddev_samp."""
    return Aggregation(STD, field)


def distinct_count(field: str) -> Aggregation:
    return Aggregation(DISTINCT, field)


def approx_distinct_count(field: str, precision: int = 12) -> Aggregation:
    """HyperLogLog with 2**precision registers (standard error ≈ 1.04 / sqrt(2**precision))."""
    if not 4 <= precision <= 16:
        raise ValueError("precision must be between 4 and 16")
    return Aggregation(APPROX_DISTINCT, field, precision=precision)


def first(field: str) -> Aggregation:
    return Aggregation(FIRST, field)


def last(field: str) -> Aggregation:
    return Aggregation(LAST, field)


def quantile(field: str, q: float) -> Aggregation:
    """The ``q``-quantile of the window's values, interpolated linearly between the two
    nearest ranks (SQL's quantile_cont, numpy's default); ``q`` to the nearest millionth."""
    if not 0.0 <= q <= 1.0:
        raise ValueError("a quantile's level q must be between 0 and 1")
    return Aggregation(QUANTILE, field, precision=round(q * QUANTILE_SCALE))


def rate(field: str) -> Aggregation:
    """Rate of change per second across the window: (last − first) / (time of the last −
    time of the first); the default when fewer than two rows or no time lie between them."""
    return Aggregation(RATE, field)


def custom(aggregator: Aggregator, field: str) -> Aggregation:
    return Aggregation(CUSTOM, field, aggregator=aggregator)


__all__ = [
    "Aggregation",
    "Aggregator",
    "approx_distinct_count",
    "count",
    "custom",
    "distinct_count",
    "first",
    "last",
    "max",
    "mean",
    "min",
    "quantile",
    "rate",
    "std",
    "sum",
    "var",
]
