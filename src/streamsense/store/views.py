"""Feature views served from an online store, windows evaluated at request time.

A view is one feature group (source stream × entity key) of a FeatureSet, named
``<feature set>.<key field>``. The online store keeps, per entity, the events still inside
that entity's windows (the same rows the streaming engine holds); a read folds them with the
engine's own kernels at the read time. So an online read and the stream agree by
construction, and a rolling count read long after the last event is 0.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from streamsense.errors import FatalError
from streamsense.features.buffer import F64, I64, KeyedBuffer, live_rows
from streamsense.features.definitions import FeatureSet
from streamsense.features.engine import FeatureEngine
from streamsense.features.group import GroupPlan
from streamsense.store.blob_fold import fold_blobs
from streamsense.store.online import OnlineRow, OnlineStore

_HEADER = struct.Struct("<II")  # rows, value columns


def encode_rows(times: I64, values: F64) -> bytes:
    return _HEADER.pack(len(times), values.shape[1]) + times.tobytes() + values.tobytes()


def decode_rows(blob: bytes) -> tuple[I64, F64]:
    n, m = _HEADER.unpack_from(blob)
    start = _HEADER.size
    times = np.frombuffer(blob, np.int64, n, start)
    values = np.frombuffer(blob, np.float64, n * m, start + 8 * n).reshape(n, m)
    return times, values


def rows_of(buffer: KeyedBuffer, keys: Sequence[Any]) -> list[OnlineRow]:
    """The online rows of ``keys`` from an engine buffer (keys it no longer holds: skipped).
    Every blob is laid out in one word array at once (no per-key numpy work): a backfill
    writes the window rows of every key a chunk touched."""
    slot_of = buffer.slot_of
    kept = [k for k in keys if slot_of.get(k) is not None]
    slots = np.fromiter((slot_of[k] for k in kept), np.int64, len(kept))
    lengths = buffer.seg_len[slots]
    held = lengths > 0
    slots, lengths = slots[held], lengths[held]
    kept = [k for k, h in zip(kept, held.tolist(), strict=True) if h]
    if not kept:
        return []
    width = buffer.n_values
    starts = np.cumsum(lengths) - lengths  # each key's first row among all rows
    within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(starts, lengths)
    pool_rows = live_rows(buffer.seg_start[slots] + buffer.seg_begin[slots], lengths)
    sizes = 1 + lengths * (1 + width)  # words per blob: header, times, values
    first = np.cumsum(sizes) - sizes
    words = np.empty(int(sizes.sum()), np.int64)
    words[first] = lengths | (width << 32)  # the header: struct "<II" (rows, columns)
    row_first = np.repeat(first + 1, lengths)
    times = buffer.ptime[pool_rows]
    words[row_first + within] = times
    value_at = np.repeat(first + 1 + lengths, lengths) + within * width
    words.view(np.float64)[value_at[:, None] + np.arange(width)] = buffer.pval[pool_rows]
    raw = words.tobytes()
    # Rows are in (time, seq) order: a key's newest event time is its last row's.
    newest = times[starts + lengths - 1].tolist()
    bounds = (8 * first).tolist()
    ends = (8 * (first + sizes)).tolist()
    return [
        OnlineRow(str(key), t, raw[a:b])
        for key, t, a, b in zip(kept, newest, bounds, ends, strict=True)
    ]


class OnlineView:
    def __init__(self, name: str, plan: GroupPlan, store: OnlineStore) -> None:
        self.name = name
        self.plan = plan
        self.store = store
        self.names = [f.name for f in plan.features]
        self._int = [f.output_dtype == "int64" for f in plan.features]

    def write(self, buffer: KeyedBuffer, keys: Sequence[Any]) -> int:
        return self.store.write(self.name, rows_of(buffer, keys), ttl_ms=self.plan.ttl_ms)

    def get(self, keys: Sequence[str], at_ms: int) -> list[dict[str, float | int]]:
        """Every feature of each key as of ``at_ms``; unknown keys get the defaults."""
        matrix = self.get_matrix(keys, at_ms)
        return [
            {
                n: (int(v) if is_int else v)
                for n, v, is_int in zip(self.names, row, self._int, strict=True)
            }
            for row in matrix.tolist()
        ]

    def get_matrix(self, keys: Sequence[str], at_ms: int, events: F64 | None = None) -> F64:
        """Features of ``keys`` at ``at_ms``. With ``events`` (one row of value fields per
        key), each key's window also holds that event at ``at_ms``, as if already processed:
        how the stream computes an event's own features (a count includes the event)."""
        (blobs,) = self.store.read_blobs([(self.name, [str(k) for k in keys])])
        return self.fold(blobs, np.full(len(keys), at_ms, np.int64), events)

    def fold(self, blobs: Sequence[bytes | None], times: I64, events: F64 | None = None) -> F64:
        """Every feature of each stored blob (None: no rows) at ``times[i]``, folded in place
        by one compiled pass (store.blob_fold) with the engine's own kernels."""
        width = max(1, len(self.plan.value_fields))
        stored = [b for b in blobs if b is not None]
        joined = b"".join(stored)
        if len(joined) % 8:
            raise FatalError(f"view {self.name}: a stored blob is not a whole number of words")
        words = np.frombuffer(joined, np.int64)
        sizes = np.fromiter(map(len, stored), np.int64, len(stored)) >> 3
        present = np.fromiter((b is not None for b in blobs), np.bool_, len(blobs))
        rows = np.zeros((0, width)) if events is None else events.reshape(len(blobs), width)
        out = np.zeros((len(blobs), len(self.plan.features)), np.float64)
        bad = fold_blobs(
            words,
            words.view(np.float64),
            sizes,
            present,
            times,
            np.ascontiguousarray(rows, np.float64),
            events is not None,
            out,
            *self.plan.kernel_args(),
        )
        if bad >= 0:
            raise FatalError(f"view {self.name}: malformed blob for key #{bad}")
        return out


class OnlineFeatures:
    """A whole FeatureSet served online: each group from its view, read for the entity keys
    in an event's payload, plus the event's own computed features. One store round trip
    for all the groups."""

    def __init__(self, features: FeatureSet, store: OnlineStore) -> None:
        engine = FeatureEngine(features)
        self.features = features
        self.views = {
            group: OnlineView(engine.view_name(group), plan, store)
            for group, plan in engine.plans.items()
        }
        self.computed = features.computed()
        self._column = {(getattr(f, "key", ""), f.name): j for j, f in enumerate(features.features)}
        self._columns = {
            group: np.array([self._column[(group, f.name)] for f in view.plan.features])
            for group, view in self.views.items()
        }
        self.store = store

    def warm_up(self) -> None:
        """Load the compiled kernels now, not on the first request."""
        for view in self.views.values():
            view.get_matrix(["__warm_up__"], 0)

    def views_by_name(self) -> dict[str, OnlineView]:
        """The views by their feature-store names (``<feature set>.<key field>``)."""
        return {view.name: view for view in self.views.values()}

    def vectors(
        self, payloads: Sequence[Any], at_ms: Sequence[int]
    ) -> list[dict[str, float | int]]:
        """Every feature for each payload, windows evaluated at its ``at_ms``."""
        matrix = self.matrix(payloads, at_ms)
        columns = [
            matrix[:, j].astype(np.int64).tolist()
            if f.output_dtype == "int64"
            else matrix[:, j].tolist()
            for j, f in enumerate(self.features.features)
        ]
        names = self.features.names
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]

    def matrix(
        self, payloads: Sequence[Any], at_ms: Sequence[int], *, include_events: bool = False
    ) -> F64:
        """The feature vectors as one matrix, columns in the FeatureSet's order (what a
        model scores). ``include_events``: each payload counts in its own windows, as the
        stream computes an event's features (for deciding on an event not yet processed).
        Every view is read in one store round trip."""
        out = np.zeros((len(payloads), len(self.features.features)), np.float64)
        times = np.asarray(at_ms, np.int64)
        views = list(self.views.items())
        requests = [(v.name, [str(getattr(p, group)) for p in payloads]) for group, v in views]
        for (group, view), blobs in zip(views, self.store.read_blobs(requests), strict=True):
            events = None
            if include_events:
                fields = view.plan.value_fields
                events = np.array(
                    [[float(getattr(p, f)) for f in fields] or [0.0] for p in payloads]
                )
            out[:, self._columns[group]] = view.fold(blobs, times, events)
        for feature in self.computed:
            inputs = {
                name: np.array([getattr(p, name) for p in payloads]) for name in feature.inputs
            }
            out[:, self._column[("", feature.name)]] = feature.fn(times, inputs)
        return out
