"""Running aggregates of decision records, kept in memory while the UI is open: counts by
action and tier per time bucket, recent latencies per tier, the degraded share and the
newest records. Folding is O(records read); nothing here ever rereads a topic. Records are
decoded into the few fields counted (``Slim``: msgspec skips the rest, the features above
all, without building them); only the newest are decoded whole, for the table."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from streamsense.brokers.base import Record

BUCKET_MS = 5_000
KEPT_BUCKETS = 240  # 20 minutes of 5-second buckets
KEPT_LATENCIES = 4_096  # per tier
KEPT_RECENT = 50

_decode = msgspec.json.Decoder().decode


class Slim(msgspec.Struct):
    """What the aggregates need of a decision record."""

    action: str
    tier: str
    degraded: bool = False
    degraded_reasons: list[str] = msgspec.field(default_factory=list)
    latency_ms: dict[str, float] = msgspec.field(default_factory=dict)


_slim = msgspec.json.Decoder(Slim).decode


@dataclass
class Bucket:
    """Counts (weighted: a sampled record counts for the records it stands for)."""

    actions: dict[str, float] = field(default_factory=dict)
    tiers: dict[str, float] = field(default_factory=dict)
    degraded: float = 0.0


@dataclass
class DecisionStats:
    """Everything the decisions pages draw, folded from the records as they arrive."""

    buckets: dict[int, Bucket] = field(default_factory=dict)
    latencies: dict[str, deque[float]] = field(default_factory=dict)  # tier → total ms
    stage_latencies: dict[str, deque[float]] = field(default_factory=dict)  # part → ms
    recent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEPT_RECENT))
    seen: float = 0.0
    degraded: float = 0.0
    reasons: Counter[str] = field(default_factory=Counter)  # of the records read

    def fold(self, records: list[Record], weight: float = 1.0) -> None:
        """Adds the decision records among ``records`` (others are skipped), each counting
        for ``weight`` decisions (more than one when they are a sample of the new ones)."""
        for record in records:
            try:
                decision = _slim(record.value or b"")
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
            self._add(record.timestamp, decision, weight)
        for record in records[-KEPT_RECENT:]:
            whole = decoded(record)
            if whole is not None:
                self.recent.appendleft({"written_ms": record.timestamp, **whole})

    def _add(self, written_ms: int, decision: Slim, weight: float) -> None:
        start = written_ms - written_ms % BUCKET_MS
        bucket = self.buckets.get(start)
        if bucket is None:
            bucket = self.buckets[start] = Bucket()
            horizon = max(self.buckets) - (KEPT_BUCKETS - 1) * BUCKET_MS
            for old in [b for b in self.buckets if b < horizon]:
                del self.buckets[old]  # kept: the last KEPT_BUCKETS buckets' time, no more
        bucket.actions[decision.action] = bucket.actions.get(decision.action, 0.0) + weight
        bucket.tiers[decision.tier] = bucket.tiers.get(decision.tier, 0.0) + weight
        self.seen += weight
        if decision.degraded:
            bucket.degraded += weight
            self.degraded += weight
            self.reasons.update(decision.degraded_reasons)
        latency = decision.latency_ms
        if "total" in latency:
            _kept(self.latencies, decision.tier).append(latency["total"])
        for part, ms in latency.items():
            _kept(self.stage_latencies, part).append(ms)

    def percentiles(self, by_stage: bool = False) -> dict[str, tuple[float, float, int]]:
        """Per tier (or per latency part): p50, p99 in ms and how many latencies back it."""
        source = self.stage_latencies if by_stage else self.latencies
        return {name: (*_p50_p99(values), len(values)) for name, values in sorted(source.items())}

    def series(self, by: str) -> tuple[list[str], list[list[float]]]:
        """Decisions per second for each action (``by="actions"``) or tier, per bucket:
        the names and uPlot's columns (times in seconds first)."""
        starts = self._starts()
        names = sorted({n for b in self.buckets.values() for n in getattr(b, by)})
        columns: list[list[float]] = [[s / 1000 for s in starts]]
        for name in names:
            columns.append([self._count(s, by, name) / (BUCKET_MS / 1000) for s in starts])
        return names, columns

    def degraded_series(self) -> list[list[float]]:
        starts = self._starts()
        shares = []
        for s in starts:
            bucket = self.buckets.get(s)
            total = sum(bucket.actions.values()) if bucket else 0
            shares.append(100.0 * bucket.degraded / total if bucket and total else 0.0)
        return [[s / 1000 for s in starts], shares]

    def _starts(self) -> list[int]:
        """Every bucket from the oldest kept to the newest, quiet ones included (zeros)."""
        if not self.buckets:
            return []
        newest = max(self.buckets)
        oldest = max(min(self.buckets), newest - (KEPT_BUCKETS - 1) * BUCKET_MS)
        return list(range(oldest, newest + 1, BUCKET_MS))

    def _count(self, start: int, by: str, name: str) -> float:
        bucket = self.buckets.get(start)
        return 0.0 if bucket is None else float(getattr(bucket, by).get(name, 0.0))


def decoded(record: Record) -> dict[str, Any] | None:
    """A decision record whole, or None if the record is not one."""
    try:
        value = _decode(record.value or b"")
    except msgspec.DecodeError:
        return None
    if isinstance(value, dict) and "action" in value and "tier" in value:
        return value
    return None


def _kept(table: dict[str, deque[float]], name: str) -> deque[float]:
    found = table.get(name)
    if found is None:
        found = table[name] = deque(maxlen=KEPT_LATENCIES)
    return found


def _p50_p99(values: deque[float]) -> tuple[float, float]:
    if not values:
        return (0.0, 0.0)
    p50, p99 = np.percentile(np.fromiter(values, float, len(values)), [50, 99])
    return (float(p50), float(p99))
