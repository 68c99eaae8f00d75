"""The features of one group (source stream × entity key) in one partition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from streamsense.features import kernels
from streamsense.features.aggregations import CUSTOM
from streamsense.features.buffer import F64, I64, KeyedBuffer
from streamsense.features.definitions import Feature
from streamsense.features.windows import HOPPING, SESSION, TUMBLING

Columns = dict[str, npt.NDArray[Any]]


@dataclass(frozen=True)
class Final:
    """A window that closed (the watermark passed its end): its final value for one key."""

    feature: str
    key: Any
    start: int
    end: int
    value: float


class GroupPlan:
    """What the kernels need to know about a group's features, as arrays."""

    def __init__(self, features: list[Feature]) -> None:
        self.features = features
        self.key = features[0].key
        self.value_fields = sorted({f.aggregation.field for f in features if f.aggregation.field})
        column = {name: i for i, name in enumerate(self.value_fields)}
        self.wkind = np.array([f.window.kind for f in features], np.int64)
        self.wp1 = np.array([f.window.p1 for f in features], np.int64)
        self.wp2 = np.array([f.window.p2 for f in features], np.int64)
        self.akind = np.array([f.aggregation.kind for f in features], np.int64)
        self.acol = np.array([column.get(f.aggregation.field or "", 0) for f in features], np.int64)
        self.adefault = np.array([f.default for f in features], np.float64)
        self.aprec = np.array([f.aggregation.precision for f in features], np.int64)
        self.retention_ms = max(f.window.retention_ms for f in features)
        # A key that saw no event for the TTL is forgotten, whatever its windows.
        self.ttl_ms = max(self.retention_ms, *(f.ttl_ms for f in features))
        gaps = [f.window.p1 for f in features if f.window.kind == SESSION]
        self.session_gap = max(gaps, default=0)
        self.keep_last = max(f.window.keeps_last for f in features)
        self.custom = [i for i, f in enumerate(features) if f.aggregation.kind == CUSTOM]

    def kernel_args(self) -> tuple[Any, ...]:
        return (self.wkind, self.wp1, self.wp2, self.akind, self.acol, self.adefault, self.aprec)


class GroupState:
    def __init__(self, plan: GroupPlan, buffer: KeyedBuffer | None = None) -> None:
        self.plan = plan
        self.buffer = buffer or KeyedBuffer(len(plan.value_fields))

    def process(
        self,
        columns: Columns,
        times: I64,
        seqs: I64,
        late: npt.NDArray[np.bool_],
        evict_before: int,
    ) -> F64:
        """Each event's features as of its own time (rows of late events are left at 0)."""
        plan, buf = self.plan, self.buffer
        n = len(times)
        out = np.zeros((n, len(plan.features)), np.float64)
        slots = buf.slots(columns[plan.key])
        rows = self._rows(columns, n)
        done = 0
        while done < n:
            done = kernels.process(
                slots,
                times,
                seqs,
                late,
                rows,
                out,
                done,
                buf.ptime,
                buf.pseq,
                buf.pval,
                buf.seg_start,
                buf.seg_cap,
                buf.seg_begin,
                buf.seg_len,
                buf.top,
                buf.wasted,
                *plan.kernel_args(),
                evict_before,
                plan.session_gap,
                plan.keep_last,
            )
            if done < n:
                buf.grow_pool()
        if plan.custom:
            self._fold_custom(out, slots, times, seqs, late)
        return out

    def _rows(self, columns: Columns, n: int) -> F64:
        rows = np.zeros((n, self.buffer.n_values), np.float64)
        for i, name in enumerate(self.plan.value_fields):
            rows[:, i] = columns[name]
        return rows

    def _fold_custom(
        self, out: F64, slots: I64, times: I64, seqs: I64, late: npt.NDArray[np.bool_]
    ) -> None:
        """User-defined aggregations run in Python over the same window rows, limited to
        events at or before each event in log order."""
        buf = self.buffer
        for f in self.plan.custom:
            feature = self.plan.features[f]
            aggregator = feature.aggregation.aggregator
            assert aggregator is not None
            column = int(self.plan.acol[f])
            for i in np.flatnonzero(~late):
                begin = buf.seg_start[slots[i]] + buf.seg_begin[slots[i]]
                end = begin + buf.seg_len[slots[i]]
                lo, hi = kernels.window_range(
                    buf.ptime,
                    begin,
                    end,
                    times[i],
                    feature.window.kind,
                    feature.window.p1,
                    feature.window.p2,
                )
                acc = aggregator.create()
                for row in range(lo, hi):
                    if buf.pseq[row] <= seqs[i]:
                        acc = aggregator.update(acc, float(buf.pval[row, column]))
                out[i, f] = aggregator.result(acc) if hi > lo else feature.default

    def read(self, keys: list[Any], times: I64) -> F64:
        """Features of ``keys`` at ``times`` (request time) from everything kept."""
        buf = self.buffer
        out = np.zeros((len(keys), len(self.plan.features)), np.float64)
        kernels.read(
            buf.lookup(keys),
            times,
            out,
            buf.ptime,
            buf.pval,
            buf.seg_start,
            buf.seg_begin,
            buf.seg_len,
            *self.plan.kernel_args(),
        )
        return out

    def finals(self, watermark_before: int, watermark_after: int) -> list[Final]:
        """Windows whose end the watermark passed during the last batch, for every key
        that had events in them."""
        finals: list[Final] = []
        for f, feature in enumerate(self.plan.features):
            window = feature.window
            if window.kind in (TUMBLING, HOPPING):
                hop = window.p1 if window.kind == TUMBLING else window.p2
                first = (watermark_before // hop) * hop + hop
                for end in range(first, watermark_after + 1, hop):
                    finals.extend(self._closed(f, end - window.p1, end))
            elif window.kind == SESSION:
                finals.extend(self._closed_sessions(f, watermark_before, watermark_after))
        return finals

    def _closed_sessions(self, f: int, before: int, after: int) -> list[Final]:
        """Sessions whose last event plus the gap fell in (before, after]."""
        buf, feature = self.buffer, self.plan.features[f]
        gap = feature.window.p1
        finals = []
        for key in [k for k in buf.key_of if k is not None]:
            slot = buf.slot_of[key]
            begin = int(buf.seg_start[slot] + buf.seg_begin[slot])
            times = buf.ptime[begin : begin + int(buf.seg_len[slot])]
            ends = [*np.flatnonzero(np.diff(times) >= gap).tolist(), len(times) - 1]
            starts = [0] + [e + 1 for e in ends[:-1]]
            for a, b in zip(starts, ends, strict=True):
                if len(times) and before < times[b] + gap <= after:
                    value = self.read([key], times[b : b + 1].copy())[0, f]
                    finals.append(
                        Final(feature.name, key, int(times[a]), int(times[b] + gap), float(value))
                    )
        return finals

    def _closed(self, f: int, start: int, end: int) -> list[Final]:
        keys = [k for k in self.buffer.key_of if k is not None]
        if not keys:
            return []
        values = self.read(keys, np.full(len(keys), end - 1, np.int64))[:, f]
        counts = self._counts_in(keys, start, end)
        name = self.plan.features[f].name
        return [
            Final(name, key, start, end, float(v))
            for key, v, c in zip(keys, values.tolist(), counts.tolist(), strict=True)
            if c > 0
        ]

    def _counts_in(self, keys: list[Any], start: int, end: int) -> I64:
        buf = self.buffer
        counts = np.zeros(len(keys), np.int64)
        for i, slot in enumerate(buf.lookup(keys).tolist()):
            begin = buf.seg_start[slot] + buf.seg_begin[slot]
            stop = begin + buf.seg_len[slot]
            lo = kernels.lower(buf.ptime, begin, stop, start)
            counts[i] = kernels.lower(buf.ptime, begin, stop, end) - lo
        return counts

    def sweep(self, watermark: int) -> None:
        buf, plan = self.buffer, self.plan
        kernels.sweep(
            watermark - plan.retention_ms,
            watermark - plan.ttl_ms,
            plan.session_gap,
            plan.keep_last,
            buf.ptime,
            buf.seg_start,
            buf.seg_begin,
            buf.seg_len,
        )
        buf.release_empty()
        buf.compact_if_wasteful()
