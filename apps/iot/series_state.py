"""A detector's state for the keys of one partition: a row and a table per key (for the
single-series detectors, layout.py; for machines, a row and the names of their sensors) in
arrays that grow by doubling, the keys' names, and which keys changed since the state was
last written (only those go to the changelog)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from .layout import ROW, TABLE


class Meta(msgspec.Struct, frozen=True, array_like=True):
    readings: int  # readings this partition has scored (what the state is as of)


class Entry(msgspec.Struct, frozen=True, array_like=True):
    readings: int  # the partition's reading count when this key last changed
    row: bytes
    table: bytes
    labels: list[str] = msgspec.field(default_factory=list)  # a machine's sensors, in order


_encode = msgspec.msgpack.Encoder().encode
_decode_meta = msgspec.msgpack.Decoder(Meta).decode
_decode_entry = msgspec.msgpack.Decoder(Entry).decode


class SeriesState:
    def __init__(self, row: int = ROW, table: int = 2 * TABLE, capacity: int = 16) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.labels: list[dict[str, int]] = []
        self.rows = np.zeros((capacity, row))
        self.tables = np.zeros((capacity, table))
        self.changed_at = np.zeros(capacity, dtype=np.int64)  # reading count, 0: unchanged
        self.readings = 0

    def indices(self, keys: Sequence[str]) -> npt.NDArray[np.int64]:
        """Each key's slot, new series getting fresh (zero) state."""
        index = self.index
        out = np.empty(len(keys), dtype=np.int64)
        for i, key in enumerate(keys):
            slot = index.get(key)
            if slot is None:
                slot = self._add(key)
            out[i] = slot
        return out

    def _add(self, key: str) -> int:
        slot = len(self.names)
        if slot == len(self.rows):
            self._grow()
        self.index[key] = slot
        self.names.append(key)
        self.labels.append({})
        return slot

    def label(self, slot: int, name: str) -> int:
        """The slot of ``name`` (a sensor) within key ``slot``, added when new."""
        labels = self.labels[slot]
        return labels.setdefault(name, len(labels))

    def _grow(self) -> None:
        size = 2 * len(self.rows)
        self.rows = np.concatenate([self.rows, np.zeros_like(self.rows)])[:size]
        self.tables = np.concatenate([self.tables, np.zeros_like(self.tables)])[:size]
        self.changed_at = np.concatenate([self.changed_at, np.zeros_like(self.changed_at)])

    def mark(self, slots: npt.NDArray[np.int64], readings: int) -> None:
        self.readings = readings
        self.changed_at[slots] = readings

    def changes(self) -> tuple[bytes, list[tuple[bytes, bytes | None]]]:
        """The meta and an entry per series changed since the last call."""
        changed = np.flatnonzero(self.changed_at[: len(self.names)])
        entries: list[tuple[bytes, bytes | None]] = [
            (
                self.names[s].encode(),
                _encode(
                    Entry(
                        int(self.changed_at[s]),
                        self.rows[s].tobytes(),
                        self.tables[s].tobytes(),
                        list(self.labels[s]),
                    )
                ),
            )
            for s in changed
        ]
        self.changed_at[:] = 0
        return _encode(Meta(self.readings)), entries

    @classmethod
    def restored(
        cls,
        meta: bytes,
        entries: Iterable[tuple[bytes, bytes]],
        row: int = ROW,
        table: int = 2 * TABLE,
    ) -> SeriesState:
        """The state as of ``meta``. An entry written after its meta (a write cut short
        on a broker that cannot write both atomically) is as of a later reading than the
        replay that follows starts from: its series is left out and relearned, rather than
        learning the same readings twice."""
        state = cls(row, table)
        state.readings = _decode_meta(meta).readings
        for key, body in entries:
            entry = _decode_entry(body)
            if entry.readings > state.readings:
                continue
            slot = state._add(key.decode())
            state.rows[slot] = np.frombuffer(entry.row, dtype=np.float64)
            state.tables[slot] = np.frombuffer(entry.table, dtype=np.float64)
            state.labels[slot] = {name: i for i, name in enumerate(entry.labels)}
        return state
