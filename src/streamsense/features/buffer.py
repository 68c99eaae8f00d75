"""One feature group's keyed event buffer in one partition: key → slot, and the pool of
rows the kernels read and write (see kernels.py for the layout)."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt

from streamsense.features import kernels

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]


def live_rows(firsts: I64, lengths: I64) -> I64:
    """Pool rows [firsts[i], firsts[i] + lengths[i]) of every segment i, concatenated
    (vectorised: a backfill snapshots every key of a partition after each chunk)."""
    starts = np.cumsum(lengths) - lengths
    within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(starts, lengths)
    return np.repeat(firsts, lengths) + within


class KeyedBuffer:
    def __init__(self, n_values: int, pool_rows: int = 1 << 12, slot_rows: int = 1 << 10) -> None:
        self.n_values = max(1, n_values)
        self.slot_of: dict[Any, int] = {}
        self.key_of: list[Any] = []
        self.free: list[int] = []
        self.ptime: I64 = np.zeros(pool_rows, np.int64)
        self.pseq: I64 = np.zeros(pool_rows, np.int64)
        self.pval: F64 = np.zeros((pool_rows, self.n_values), np.float64)
        self.seg_start: I64 = np.zeros(slot_rows, np.int64)
        self.seg_cap: I64 = np.zeros(slot_rows, np.int64)
        self.seg_begin: I64 = np.zeros(slot_rows, np.int64)
        self.seg_len: I64 = np.zeros(slot_rows, np.int64)
        self.top: I64 = np.zeros(1, np.int64)
        self.wasted: I64 = np.zeros(1, np.int64)
        # Keys whose rows changed since the last take_changed(): only they are written to
        # the state changelog. Eviction alone does not count: a restore evicts again.
        self.changed: set[Any] = set()

    # -- keys -------------------------------------------------------------------------------
    def slots(self, keys: npt.NDArray[Any]) -> I64:
        """The slot of each key, creating slots for new keys."""
        unique, inverse = np.unique(keys, return_inverse=True)
        mapped = np.empty(len(unique), np.int64)
        listed = unique.tolist()
        for i, key in enumerate(listed):
            slot = self.slot_of.get(key)
            mapped[i] = self._new_slot(key) if slot is None else slot
        self.changed.update(listed)
        return mapped[inverse]

    def lookup(self, keys: list[Any]) -> I64:
        """Slots of existing keys, -1 for keys never seen (or expired)."""
        return np.array([self.slot_of.get(k, -1) for k in keys], np.int64)

    def _new_slot(self, key: Any) -> int:
        if self.free:
            slot = self.free.pop()
            self.key_of[slot] = key
        else:
            slot = len(self.key_of)
            self.key_of.append(key)
            if slot >= len(self.seg_len):
                self._grow_slots()
        self.slot_of[key] = slot
        return slot

    def _grow_slots(self) -> None:
        size = len(self.seg_len) * 2
        for name in ("seg_start", "seg_cap", "seg_begin", "seg_len"):
            old = getattr(self, name)
            grown = np.zeros(size, np.int64)
            grown[: len(old)] = old
            setattr(self, name, grown)

    # -- the pool ---------------------------------------------------------------------------
    def grow_pool(self) -> None:
        rows = len(self.ptime) * 2
        self.ptime = np.resize(self.ptime, rows)
        self.pseq = np.resize(self.pseq, rows)
        self.pval = np.resize(self.pval, (rows, self.n_values))

    def compact_if_wasteful(self) -> None:
        """Pack the pool when most of it is abandoned segments: memory stays proportional
        to the events still inside some window."""
        live = int(self.seg_len.sum())
        if self.wasted[0] < max(1 << 16, 2 * live) and self.top[0] < 4 * max(live, 1 << 14):
            return
        rows = max(1 << 12, int(2 * live + live // 2 + 4 * len(self.key_of)))
        new_time, new_seq = np.zeros(rows, np.int64), np.zeros(rows, np.int64)
        new_val = np.zeros((rows, self.n_values), np.float64)
        top = kernels.compact(
            self.ptime,
            self.pseq,
            self.pval,
            self.seg_start,
            self.seg_cap,
            self.seg_begin,
            self.seg_len,
            new_time,
            new_seq,
            new_val,
        )
        self.ptime, self.pseq, self.pval = new_time, new_seq, new_val
        self.top[0], self.wasted[0] = top, 0

    def release_empty(self) -> int:
        """Forget keys that hold no event any more (their TTL passed); returns how many."""
        used = len(self.key_of)
        candidates = np.flatnonzero(self.seg_len[:used] == 0).tolist()
        empty = [s for s in candidates if self.key_of[s] is not None]
        for slot in empty:
            self.changed.add(self.key_of[slot])
            del self.slot_of[self.key_of[slot]]
            self.key_of[slot] = None
            self.seg_cap[slot] = 0
            self.free.append(slot)
        return len(empty)

    @property
    def live_events(self) -> int:
        return int(self.seg_len.sum())

    def take_changed(self) -> list[Any]:
        """Keys changed (rows added, or forgotten) since the last call, in a fixed order."""
        changed, self.changed = self.changed, set()
        return sorted(changed, key=str)

    def rows_of(self, key: Any) -> tuple[I64, I64, F64] | None:
        """A key's live rows (times, sequence numbers, values), or None for no key."""
        slot = self.slot_of.get(key)
        if slot is None or self.seg_len[slot] == 0:
            return None
        begin = int(self.seg_start[slot] + self.seg_begin[slot])
        end = begin + int(self.seg_len[slot])
        return self.ptime[begin:end], self.pseq[begin:end], self.pval[begin:end]

    # -- durability -------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Every key's live rows, packed (keys first, then rows grouped by key)."""
        keys = [k for k in self.key_of if k is not None]
        slots = np.array([self.slot_of[k] for k in keys], np.int64)
        lengths = self.seg_len[slots] if len(slots) else np.zeros(0, np.int64)
        index = live_rows(self.seg_start[slots] + self.seg_begin[slots], lengths)
        return msgspec.msgpack.encode(
            {
                "keys": keys,
                "lengths": lengths.tobytes(),
                "time": self.ptime[index].tobytes(),
                "seq": self.pseq[index].tobytes(),
                "values": self.pval[index].tobytes(),
            }
        )

    @classmethod
    def restore(cls, n_values: int, data: bytes) -> KeyedBuffer:
        state = msgspec.msgpack.decode(data)
        width = max(1, n_values)
        keys = [tuple(k) if isinstance(k, list) else k for k in state["keys"]]
        return cls.from_rows(
            n_values,
            keys,
            np.frombuffer(state["lengths"], np.int64),
            np.frombuffer(state["time"], np.int64),
            np.frombuffer(state["seq"], np.int64),
            np.frombuffer(state["values"], np.float64).reshape(-1, width),
        )

    @classmethod
    def from_rows(
        cls, n_values: int, keys: list[Any], lengths: I64, times: I64, seqs: I64, values: F64
    ) -> KeyedBuffer:
        """A buffer holding ``lengths[i]`` rows for ``keys[i]``, the rows grouped by key in
        that order, each key's rows in time order (vectorised: restores load millions)."""
        buffer = cls(n_values, pool_rows=max(1 << 12, 2 * len(times) + 8 * len(lengths)))
        count = len(keys)
        while len(buffer.seg_len) < count:
            buffer._grow_slots()
        buffer.key_of = list(keys)
        buffer.slot_of = dict(zip(buffer.key_of, range(count), strict=True))
        caps = np.maximum(4, lengths + (lengths >> 1))
        starts = np.cumsum(caps) - caps
        rows = live_rows(starts, lengths)
        buffer.ptime[rows], buffer.pseq[rows] = times, seqs
        buffer.pval[rows] = values.reshape(len(rows), buffer.n_values)
        buffer.seg_start[:count], buffer.seg_cap[:count] = starts, caps
        buffer.seg_len[:count] = lengths
        buffer.top[0] = int(caps.sum())
        return buffer
