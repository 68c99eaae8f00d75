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

from streamsense.features import kernels
from streamsense.features.buffer import F64, I64, KeyedBuffer
from streamsense.features.definitions import FeatureSet
from streamsense.features.engine import FeatureEngine
from streamsense.features.group import GroupPlan
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
    """The online rows of ``keys`` from an engine buffer (keys it no longer holds: skipped)."""
    rows = []
    for key in keys:
        slot = buffer.slot_of.get(key)
        if slot is None or buffer.seg_len[slot] == 0:
            continue
        first = int(buffer.seg_start[slot] + buffer.seg_begin[slot])
        last = first + int(buffer.seg_len[slot])
        times = buffer.ptime[first:last]
        rows.append(
            OnlineRow(str(key), int(times.max()), encode_rows(times, buffer.pval[first:last]))
        )
    return rows


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
        stored = self.store.read(self.name, [str(k) for k in keys])
        width = max(1, len(self.plan.value_fields))
        if events is None:
            found = [i for i, row in enumerate(stored) if row is not None]
            slots = np.full(len(keys), -1, np.int64)
        else:
            found = list(range(len(keys)))
            slots = np.zeros(len(keys), np.int64)
        slots[found] = np.arange(len(found))
        blobs = [stored[i].blob if stored[i] is not None else _EMPTY[width] for i in found]  # type: ignore[union-attr]
        ptime, pval, starts, lengths = decode_many(blobs, width)
        if events is not None:
            ptime, pval, starts, lengths = _with_events(ptime, pval, starts, lengths, at_ms, events)
        out = np.zeros((len(keys), len(self.plan.features)), np.float64)
        kernels.read(
            slots,
            np.full(len(keys), at_ms, np.int64),
            out,
            ptime,
            pval,
            starts,
            np.zeros(len(starts), np.int64),
            lengths,
            *self.plan.kernel_args(),
        )
        return out


class _EmptyBlobs(dict[int, bytes]):
    def __missing__(self, width: int) -> bytes:
        self[width] = blob = encode_rows(np.zeros(0, np.int64), np.zeros((0, width)))
        return blob


_EMPTY = _EmptyBlobs()


def _with_events(
    ptime: I64, pval: F64, starts: I64, lengths: I64, at_ms: int, events: F64
) -> tuple[I64, F64, I64, I64]:
    """Every key's rows plus its event at ``at_ms``, kept in (time, log) order per key."""
    keys = len(lengths)
    rows = int(lengths.sum())
    segment = np.concatenate([np.repeat(np.arange(keys), lengths), np.arange(keys)])
    times = np.concatenate([ptime[:rows], np.full(keys, at_ms, np.int64)])
    later = np.concatenate([np.zeros(rows, np.int64), np.ones(keys, np.int64)])
    order = np.lexsort((later, times, segment))
    values = np.concatenate([pval[:rows], events.reshape(keys, -1)])
    new_lengths = lengths + 1
    return times[order], values[order], np.cumsum(new_lengths) - new_lengths, new_lengths


def decode_many(blobs: list[bytes], width: int) -> tuple[I64, F64, I64, I64]:
    """Many keys' blobs at once, vectorised: (times, values, start row, rows) per key.
    Every blob is 8-byte words: a header word (rows, columns), the times, the values."""
    if not blobs:
        return (
            np.zeros(1, np.int64),
            np.zeros((1, width)),
            np.zeros(1, np.int64),
            np.zeros(1, np.int64),
        )
    words = np.frombuffer(b"".join(blobs), np.int64)
    sizes = np.fromiter((len(b) >> 3 for b in blobs), np.int64, len(blobs))
    first_word = np.cumsum(sizes) - sizes
    rows = words[first_word] & 0xFFFFFFFF
    starts = np.cumsum(rows) - rows
    within = np.arange(int(rows.sum()), dtype=np.int64) - np.repeat(starts, rows)
    times = words[np.repeat(first_word + 1, rows) + within]
    value_rows = np.repeat(first_word + 1 + rows, rows) + within * width
    values = words.view(np.float64)[value_rows[:, None] + np.arange(width)]
    return times, values, starts, rows


class OnlineFeatures:
    """A whole FeatureSet served online: each group from its view, read for the entity keys
    in an event's payload, plus the event's own computed features. One store round trip
    per group."""

    def __init__(self, features: FeatureSet, store: OnlineStore) -> None:
        engine = FeatureEngine(features)
        self.features = features
        self.views = {
            group: OnlineView(engine.view_name(group), plan, store)
            for group, plan in engine.plans.items()
        }
        self.computed = features.computed()
        self._column = {(getattr(f, "key", ""), f.name): j for j, f in enumerate(features.features)}

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
        stream computes an event's features (for deciding on an event not yet processed)."""
        out = np.zeros((len(payloads), len(self.features.features)), np.float64)
        for group, view in self.views.items():
            keys = [str(getattr(p, group)) for p in payloads]
            columns = [self._column[(group, f.name)] for f in view.plan.features]
            # One read per distinct time (usually one: every payload is scored now).
            for at in sorted(set(at_ms)):
                chosen = [i for i, t in enumerate(at_ms) if t == at]
                events = None
                if include_events:
                    fields = view.plan.value_fields
                    events = np.array(
                        [[float(getattr(payloads[i], f)) for f in fields] or [0.0] for i in chosen]
                    )
                values = view.get_matrix([keys[i] for i in chosen], at, events)
                out[np.ix_(chosen, columns)] = values
        times = np.asarray(at_ms, np.int64)
        for feature in self.computed:
            inputs = {
                name: np.array([getattr(p, name) for p in payloads]) for name in feature.inputs
            }
            out[:, self._column[("", feature.name)]] = feature.fn(times, inputs)
        return out
