"""The detectors' state for the series of one partition: a row and a context table per
series (layout.py) in arrays that grow by doubling, the series' names, and which series
changed since the state was last written (only those go to the changelog)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from .layout import ROW, TABLE


class Meta(msgspec.Struct, frozen=True, array_like=True):
    readings: int  # readings this partition has scored (what the state is as of)


class Entry(msgspec.Struct, frozen=True, array_like=True):
    readings: int  # the partition's reading count when this series last changed
    row: bytes
    table: bytes


_encode = msgspec.msgpack.Encoder().encode
_decode_meta = msgspec.msgpack.Decoder(Meta).decode
_decode_entry = msgspec.msgpack.Decoder(Entry).decode


class SeriesState:
    def __init__(self, capacity: int = 16) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []
        self.rows = np.zeros((capacity, ROW))
        self.tables = np.zeros((capacity, 2 * TABLE))
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
        return slot

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
                    )
                ),
            )
            for s in changed
        ]
        self.changed_at[:] = 0
        return _encode(Meta(self.readings)), entries

    @classmethod
    def restored(cls, meta: bytes, entries: Iterable[tuple[bytes, bytes]]) -> SeriesState:
        """The state as of ``meta``. An entry written after its meta (a write cut short
        on a broker that cannot write both atomically) is as of a later reading than the
        replay that follows starts from: its series is left out and relearned, rather than
        learning the same readings twice."""
        state = cls()
        state.readings = _decode_meta(meta).readings
        for key, body in entries:
            entry = _decode_entry(body)
            if entry.readings > state.readings:
                continue
            slot = state._add(key.decode())
            state.rows[slot] = np.frombuffer(entry.row, dtype=np.float64)
            state.tables[slot] = np.frombuffer(entry.table, dtype=np.float64)
        return state
