"""The feature engine: a FeatureSet computed over a partitioned stream of events.

Per partition it keeps a watermark (highest event time seen − allowed lateness); an event
older than the watermark is late and goes to the caller's late output instead of the state.
For each event it returns every feature as of that event's time; at request time it
evaluates windows as of the read time. State is bounded: rows no window can need any more
are evicted, and keys whose rows are all gone are forgotten.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from streamsense.errors import ConfigError
from streamsense.features.buffer import F64, I64, KeyedBuffer
from streamsense.features.definitions import FeatureSet
from streamsense.features.entries import Entry, buffers_from_entries, changed_entries
from streamsense.features.group import Columns, Final, GroupPlan, GroupState

NO_WATERMARK = -(2**62)


@dataclass
class BatchResult:
    """Features of a micro-batch: ``values[i]`` belongs to event i (rows of late events are
    meaningless), ``late[i]`` says it was late, ``finals`` lists windows that closed."""

    names: list[str]
    values: F64
    late: npt.NDArray[np.bool_]
    finals: list[Final] = field(default_factory=list)

    def row(self, i: int) -> dict[str, float | int]:
        return {name: v for name, v in zip(self.names, self.values[i].tolist(), strict=True)}


class PartitionEngine:
    """One source partition's watermark and feature groups."""

    def __init__(
        self, plans: Mapping[str, GroupPlan], computed: list[Any], lateness_ms: int
    ) -> None:
        self.plans = plans
        self.computed = computed
        self.lateness_ms = lateness_ms
        self.watermark = NO_WATERMARK
        self.next_seq = 0
        self.groups = {name: GroupState(plan) for name, plan in plans.items()}

    def process(
        self, times: I64, columns: Columns, order: list[tuple[str, int]], clock: I64 | None = None
    ) -> BatchResult:
        """``clock``: the times that move the watermark (default ``times``)."""
        n = len(times)
        # The watermark before each event: a running maximum, so lateness is vectorised.
        running = np.maximum.accumulate(
            np.concatenate(([self.watermark + self.lateness_ms], times if clock is None else clock))
        )
        before = np.maximum(running[:-1] - self.lateness_ms, self.watermark)
        late = times < before
        seqs = np.arange(self.next_seq, self.next_seq + n, dtype=np.int64)
        start = self.watermark
        values = np.zeros((n, len(order)), np.float64)
        for name, group in self.groups.items():
            evict_before = _minus(start, group.plan.retention_ms)
            out = group.process(columns, times, seqs, late, evict_before)
            for j, (group_name, f) in enumerate(order):
                if group_name == name:
                    values[:, j] = out[:, f]
        for j, (group_name, f) in enumerate(order):
            if group_name == "":
                feature = self.computed[f]
                values[:, j] = feature.fn(times, columns)
        if n:
            self.watermark = max(self.watermark, int(running[-1]) - self.lateness_ms)
        self.next_seq += n
        # Before the first watermark, windows close from the first event on.
        closes_after = start if start > NO_WATERMARK or not n else int(times.min()) - 1
        finals = self._close_windows(closes_after)
        return BatchResult([], values, late, finals)

    def advance(self, watermark: int) -> list[Final]:
        """Move the watermark forward without events (an idle partition)."""
        if watermark <= self.watermark:
            return []
        start, self.watermark = self.watermark, watermark
        return self._close_windows(start)

    def _close_windows(self, start: int) -> list[Final]:
        finals = []
        for group in self.groups.values():
            if start > NO_WATERMARK:
                finals.extend(group.finals(start, self.watermark))
            if self.watermark > NO_WATERMARK:
                group.sweep(self.watermark)
        return sorted(finals, key=lambda f: (f.end, f.feature, str(f.key)))

    def read(self, group: str, keys: list[Any], times: I64) -> F64:
        return self.groups[group].read(keys, times)

    def state_changes(self) -> tuple[bytes, list[Entry]]:
        """The watermark and sequence (``meta``) and an entry per key changed since the
        last call: what the state changelog needs to follow this partition."""
        meta = msgspec.msgpack.encode({"watermark": self.watermark, "next_seq": self.next_seq})
        return meta, changed_entries({name: g.buffer for name, g in self.groups.items()})

    def restore_entries(self, meta: bytes, entries: Iterable[tuple[bytes, bytes]]) -> int:
        """Rebuild from a meta blob and the latest entry of every key (see entries.py);
        returns how many keys were loaded."""
        state = msgspec.msgpack.decode(meta)
        self.watermark, self.next_seq = state["watermark"], state["next_seq"]
        widths = {name: len(plan.value_fields) for name, plan in self.plans.items()}
        buffers, keys = buffers_from_entries(widths, entries, self.next_seq)
        self.groups = {name: GroupState(self.plans[name], buffers[name]) for name in self.plans}
        if self.watermark > NO_WATERMARK:
            # Rows the live state evicted after their entry was written; keys this forgets
            # are marked changed, so the next write removes their stale entries.
            for group in self.groups.values():
                group.sweep(self.watermark)
        return keys

    def snapshot(self) -> bytes:
        """The whole state in one blob: local checkpoints (backfill), never a broker record."""
        groups = {name: g.buffer.snapshot() for name, g in self.groups.items()}
        return msgspec.msgpack.encode(
            {"watermark": self.watermark, "next_seq": self.next_seq, "groups": groups}
        )

    def restore(self, data: bytes) -> None:
        state = msgspec.msgpack.decode(data)
        self.watermark, self.next_seq = state["watermark"], state["next_seq"]
        for name, blob in state["groups"].items():
            plan = self.plans[name]
            self.groups[name] = GroupState(plan, KeyedBuffer.restore(len(plan.value_fields), blob))

    @property
    def live_events(self) -> int:
        return sum(g.buffer.live_events for g in self.groups.values())


def _minus(watermark: int, ms: int) -> int:
    return NO_WATERMARK if watermark == NO_WATERMARK else watermark - ms


class FeatureEngine:
    """Computes a FeatureSet over one source stream, partition by partition."""

    def __init__(self, features: FeatureSet, *, allowed_lateness_ms: int = 0) -> None:
        if len(features.sources) != 1:
            raise ConfigError("a feature engine reads one source stream; split the feature set")
        self.features = features
        self.source = next(iter(features.sources.values()))
        self._check_keys()
        self.lateness_ms = allowed_lateness_ms
        groups = features.groups()
        self.plans = {key: GroupPlan(fs) for (_, key), fs in groups.items()}
        self.computed = features.computed()
        self.order = self._output_order()
        self.partitions: dict[int, PartitionEngine] = {}
        self.input_fields = sorted(
            {p.key for p in self.plans.values()}
            | {f for p in self.plans.values() for f in p.value_fields}
            | {f for c in self.computed for f in c.inputs}
        )
        self._getter = attrgetter(*self.input_fields)
        types = {f.name: f.type for f in msgspec.structs.fields(self.source.schema)}
        kinds = [types[name] for name in self.input_fields]
        # Ints are exact in float64 up to 2**53: entity ids and counts of any real stream.
        self._numeric = all(kind in (int, float) for kind in kinds)
        self._integral = [kind is int for kind in kinds]
        self._integral_columns = np.flatnonzero(self._integral)

    def _check_keys(self) -> None:
        """A key's state must live with the partition that owns the key: on a stream with
        several partitions, every group must be keyed like the stream."""
        if self.source.partitions == 1:
            return
        for key in {key for (_, key) in self.features.groups()}:
            if key != self.source.key:
                raise ConfigError(
                    f"features keyed by {key!r} over {self.source.topic!r} (keyed by "
                    f"{self.source.key!r}, {self.source.partitions} partitions) would see only "
                    f"one partition's events: compute them from a stream keyed by {key!r} "
                    "(repartition with a TopicSink into such a stream), or use one partition"
                )

    def view_name(self, group: str) -> str:
        """The feature view a group is served as: ``<feature set>.<key field>``."""
        return f"{self.features.name}.{group}"

    def _output_order(self) -> list[tuple[str, int]]:
        """Where each feature's column comes from: (group key, index) or ("", computed #)."""
        order = []
        for feature in self.features.features:
            if feature in self.computed:
                order.append(("", self.computed.index(feature)))
                continue
            for name, plan in self.plans.items():
                if feature in plan.features:
                    order.append((name, plan.features.index(feature)))
        return order

    def partition(self, partition: int) -> PartitionEngine:
        engine = self.partitions.get(partition)
        if engine is None:
            engine = PartitionEngine(self.plans, self.computed, self.lateness_ms)
            self.partitions[partition] = engine
        return engine

    def process(
        self, partition: int, times: I64, columns: Columns, clock: I64 | None = None
    ) -> BatchResult:
        """Features for a micro-batch of one partition's events, in log order."""
        result = self.partition(partition).process(times, columns, self.order, clock)
        result.names = self.features.names
        return result

    def process_events(self, partition: int, events: Sequence[Any]) -> BatchResult:
        times = np.fromiter((e.event_time for e in events), np.int64, len(events))
        clock = None
        if self.source.priority is not None:
            # Priority-lane events overtake a backlog: were they to move the watermark, the
            # backlog they overtook would arrive late. The base topic alone moves it.
            base = self.source.topic
            lane = np.fromiter((e.topic != base for e in events), np.bool_, len(events))
            clock = np.where(lane, NO_WATERMARK, times)
        return self.process(partition, times, self.columns_of(events), clock)

    def columns_of(self, events: Sequence[Any]) -> Columns:
        """The input fields of ``events`` as arrays (one C-level conversion for all the
        numeric fields together when possible)."""
        if not events:
            return {name: np.zeros(0) for name in self.input_fields}
        rows = list(map(self._getter, (e.payload for e in events)))
        if self._numeric:
            try:
                matrix = np.array(rows, dtype=np.float64).reshape(len(rows), -1)
            except (TypeError, ValueError):
                pass
            else:
                ints = self._integral_columns
                # One reduction (a boolean mask and np.all cost twice as much per batch).
                if len(ints) and not np.abs(matrix[:, ints]).max() < 2**53:
                    return self._columns_slowly(rows)
                return {
                    name: matrix[:, j].astype(np.int64) if self._integral[j] else matrix[:, j]
                    for j, name in enumerate(self.input_fields)
                }
        return self._columns_slowly(rows)

    def _columns_slowly(self, rows: list[Any]) -> Columns:
        if len(self.input_fields) == 1:
            rows = [(r,) for r in rows]
        return {name: np.array([r[j] for r in rows]) for j, name in enumerate(self.input_fields)}

    def read(self, key: Any, at_ms: int) -> dict[str, float | int]:
        """Every feature of ``key`` as of ``at_ms`` (windows evaluated at the read time)."""
        return self.read_many([key], at_ms)[0]

    def read_many(self, keys: Sequence[Any], at_ms: int) -> list[dict[str, float | int]]:
        from streamsense.brokers.partitioner import partition_for

        rows: list[dict[str, float | int]] = [{} for _ in keys]
        by_partition: dict[int, list[int]] = {}
        for i, key in enumerate(keys):
            p = partition_for(str(key).encode(), self.source.partitions)
            by_partition.setdefault(p, []).append(i)
        for p, indexes in by_partition.items():
            engine = self.partition(p)
            chosen = [keys[i] for i in indexes]
            times = np.full(len(chosen), at_ms, np.int64)
            for j, (group, f) in enumerate(self.order):
                feature = self.features.features[j]
                if group == "":
                    continue  # event features need an event
                column = engine.read(group, chosen, times)[:, f]
                for i, v in zip(indexes, column.tolist(), strict=True):
                    rows[i][feature.name] = _typed(v, feature.output_dtype)
        return rows


def _typed(value: float, dtype: str) -> float | int:
    return int(value) if dtype == "int64" else float(value)
