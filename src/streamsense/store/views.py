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

    def get_matrix(self, keys: Sequence[str], at_ms: int) -> F64:
        stored = self.store.read(self.name, [str(k) for k in keys])
        width = max(1, len(self.plan.value_fields))
        parts_t: list[I64] = []
        parts_v: list[F64] = []
        slots = np.full(len(keys), -1, np.int64)
        starts: list[int] = []
        lengths: list[int] = []
        offset = 0
        for i, row in enumerate(stored):
            if row is None:
                continue
            times, values = decode_rows(row.blob)
            parts_t.append(times)
            parts_v.append(values)
            slots[i] = len(starts)
            starts.append(offset)
            lengths.append(len(times))
            offset += len(times)
        ptime = np.concatenate(parts_t) if parts_t else np.zeros(1, np.int64)
        pval = np.concatenate(parts_v) if parts_v else np.zeros((1, width), np.float64)
        out = np.zeros((len(keys), len(self.plan.features)), np.float64)
        kernels.read(
            slots,
            np.full(len(keys), at_ms, np.int64),
            out,
            ptime,
            pval,
            np.array(starts or [0], np.int64),
            np.zeros(max(1, len(starts)), np.int64),
            np.array(lengths or [0], np.int64),
            *self.plan.kernel_args(),
        )
        return out
