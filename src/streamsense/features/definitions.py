"""Feature definitions: one declarative object per feature, used unchanged by the live path,
the replay path and the feature store.

    customer = FeatureGroup(payments, key="customer_id")
    customer.add("nb_tx_1d", count(), rolling("1d"))
    customer.add("avg_amount_7d", mean("amount"), rolling("7d"))
    features = FeatureSet("payments", [*customer.features, weekend(payments, "weekend")])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from streamsense.errors import ConfigError
from streamsense.events import Stream
from streamsense.features.aggregations import Aggregation
from streamsense.features.windows import Duration, Window, to_ms

Dtype = Literal["int64", "float64"]
DEFAULT_TTL_MS = 30 * 86_400_000  # keys idle this long are forgotten (at least the windows' span)
Columns = Mapping[str, npt.NDArray[Any]]
ComputeFn = Callable[[npt.NDArray[np.int64], Columns], npt.NDArray[Any]]


@dataclass(frozen=True)
class Feature:
    """An aggregation over a window of one entity's events."""

    name: str
    source: Stream[Any]
    key: str
    aggregation: Aggregation
    window: Window
    default: float = 0.0
    dtype: Dtype | None = None
    ttl_ms: int = DEFAULT_TTL_MS

    @property
    def output_dtype(self) -> Dtype:
        if self.dtype is not None:
            return self.dtype
        return "int64" if self.aggregation.dtype == "int64" else "float64"

    @property
    def inputs(self) -> tuple[str, ...]:
        return () if self.aggregation.field is None else (self.aggregation.field,)


@dataclass(frozen=True)
class Computed:
    """A feature of the event itself, no window: ``fn(event_time_ms, columns)`` computes a
    whole micro-batch at once from the named input fields."""

    name: str
    source: Stream[Any]
    fn: ComputeFn = field(compare=False)
    inputs: tuple[str, ...] = ()
    dtype: Dtype = "float64"
    default: float = 0.0

    @property
    def output_dtype(self) -> Dtype:
        return self.dtype


AnyFeature = Feature | Computed


class FeatureGroup:
    """Features of one entity (a key field) of one source stream, declared together."""

    def __init__(self, source: Stream[Any], key: str, *, ttl: Duration = DEFAULT_TTL_MS) -> None:
        source.encoded_name(key)  # fails early on an unknown field
        self.source = source
        self.key = key
        self.ttl_ms = to_ms(ttl)
        self.features: list[Feature] = []

    def add(
        self,
        name: str,
        aggregation: Aggregation,
        window: Window,
        *,
        default: float = 0.0,
        dtype: Dtype | None = None,
    ) -> Feature:
        if aggregation.field is not None:
            self.source.encoded_name(aggregation.field)
        feature = Feature(
            name, self.source, self.key, aggregation, window, default, dtype, self.ttl_ms
        )
        self.features.append(feature)
        return feature


def weekend(source: Stream[Any], name: str = "during_weekend") -> Computed:
    """1 when the event time (UTC) falls on a Saturday or Sunday."""

    def during_weekend(times: npt.NDArray[np.int64], _: Columns) -> npt.NDArray[Any]:
        weekday = (times // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
        return (weekday >= 5).astype(np.int64)

    return Computed(name, source, during_weekend, (), "int64")


def hour_of_day(source: Stream[Any], name: str = "hour_of_day") -> Computed:
    """The event time's hour of the day (UTC), with its fraction: 13.5 at 13:30."""

    def hours(times: npt.NDArray[np.int64], _: Columns) -> npt.NDArray[Any]:
        return (times % 86_400_000) / 3_600_000.0

    return Computed(name, source, hours, (), "float64")


def weekday(source: Stream[Any], name: str = "weekday") -> Computed:
    """The event time's day of the week (UTC): Monday 0 to Sunday 6."""

    def days(times: npt.NDArray[np.int64], _: Columns) -> npt.NDArray[Any]:
        return (times // 86_400_000 + 3) % 7  # 1970-01-01 was a Thursday

    return Computed(name, source, days, (), "int64")


def night(source: Stream[Any], name: str = "during_night", last_hour: int = 6) -> Computed:
    """1 when the event time's hour (UTC) is 0 to ``last_hour``."""

    def during_night(times: npt.NDArray[np.int64], _: Columns) -> npt.NDArray[Any]:
        return ((times // 3_600_000) % 24 <= last_hour).astype(np.int64)

    return Computed(name, source, during_night, (), "int64")


class FeatureSet:
    """The features an engine computes, in output order; names are unique."""

    def __init__(self, name: str, features: Iterable[AnyFeature]) -> None:
        self.name = name
        self.features = list(features)
        names = [f.name for f in self.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ConfigError(f"feature set {name!r} repeats {duplicates}")
        if not self.features:
            raise ConfigError(f"feature set {name!r} is empty")
        partitions = {f.source.partitions for f in self.features}
        if len(partitions) > 1:
            raise ConfigError("all sources of a feature set need the same partition count")

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def sources(self) -> dict[str, Stream[Any]]:
        return {f.source.topic: f.source for f in self.features}

    def groups(self) -> dict[tuple[str, str], list[Feature]]:
        """Windowed features by (source topic, key field): each group shares its state."""
        grouped: dict[tuple[str, str], list[Feature]] = {}
        for feature in self.features:
            if isinstance(feature, Feature):
                grouped.setdefault((feature.source.topic, feature.key), []).append(feature)
        return grouped

    def computed(self) -> list[Computed]:
        return [f for f in self.features if isinstance(f, Computed)]
