"""Time series from the sampler's samples, as uPlot wants them: a chart is the series'
names and columns, the first column the sample times in seconds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from streamsense.brokers.base import TopicPartition
from streamsense.ui.sampler import Sample

RATE_SPAN_S = 10.0  # events/s are averaged over this long


@dataclass(frozen=True)
class Chart:
    names: list[str]
    columns: Sequence[Sequence[float | None]]  # None: a gap
    unit: str = ""

    def as_json(self) -> dict[str, object]:
        return {"names": self.names, "columns": self.columns, "unit": self.unit}

    @property
    def empty(self) -> bool:
        return len(self.columns[0]) == 0 if self.columns else True


def committed_sum(sample: Sample, topic: str) -> int:
    return sum(v or 0 for tp, v in sample.committed.items() if tp.topic == topic)


def high_sum(sample: Sample, topic: str) -> int:
    return sum(v for tp, v in sample.highs.items() if tp.topic == topic)


def rate(samples: Sequence[Sample], total: Callable[[Sample], int]) -> float | None:
    """The per-second growth of ``total`` over the newest ``RATE_SPAN_S`` of samples."""
    if len(samples) < 2:
        return None
    newest = samples[-1]
    oldest = next((s for s in samples if newest.at_s - s.at_s <= RATE_SPAN_S), samples[0])
    if newest.at_s <= oldest.at_s:
        oldest = samples[-2]
    span = newest.at_s - oldest.at_s
    return max(0.0, (total(newest) - total(oldest)) / span) if span > 0 else None


def rates_chart(samples: Sequence[Sample], totals: dict[str, Callable[[Sample], int]]) -> Chart:
    """Per-second growth of each total between consecutive samples."""
    times: list[float] = []
    columns: list[list[float]] = [[] for _ in totals]
    for before, after in pairwise(samples):
        span = after.at_s - before.at_s
        if span <= 0:
            continue
        times.append(after.at_s)
        for column, total in zip(columns, totals.values(), strict=True):
            column.append(max(0.0, (total(after) - total(before)) / span))
    return Chart(list(totals), [times, *columns], "events/s")


def lag_chart(samples: Sequence[Sample], partitions: Sequence[TopicPartition]) -> Chart:
    """Offsets each partition's committed offset is behind its end, per sample."""
    times = [s.at_s for s in samples]
    columns = [[float(partition_lag(s, tp)) for s in samples] for tp in partitions]
    names = [f"{tp.topic}[{tp.partition}]" for tp in partitions]
    return Chart(names, [times, *columns], "offsets")


def partition_lag(sample: Sample, tp: TopicPartition) -> int:
    high = sample.highs.get(tp, 0)
    committed = sample.committed.get(tp)
    return max(0, high - (committed or 0))
