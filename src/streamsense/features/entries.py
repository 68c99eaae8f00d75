"""A partition's feature state as one entry per (group, key): what the state changelog
holds, so a write carries only the keys that changed and its records stay small however
many keys a partition has.

An entry is a key's live rows (times, sequence numbers, values) packed as arrays; the
partition's watermark and next sequence number travel in a separate ``meta`` blob. A
restore may meet an entry written after the meta it restores with (a write cut short by a
crash writes its entries before its meta): rows at or past the meta's next sequence number
belong to events that will be replayed, so they are left out. Rows the live state had
evicted since an entry was written are evicted again by the sweep that follows a restore.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import numpy as np

from streamsense.features.buffer import F64, I64, KeyedBuffer

Entry = tuple[bytes, bytes | None]  # (entry key, packed rows; None: the key is gone)

_WORD = 8


def entry_key(group: str, key: Any) -> bytes:
    return msgspec.msgpack.encode((group, key))


def split_entry_key(data: bytes) -> tuple[str, Any]:
    group, key = msgspec.msgpack.decode(data)
    return group, tuple(key) if isinstance(key, list) else key


def changed_entries(groups: Mapping[str, KeyedBuffer]) -> list[Entry]:
    """Entries for every key changed since the last call, None for keys now gone."""
    entries: list[Entry] = []
    for group, buffer in groups.items():
        for key in buffer.take_changed():
            rows = buffer.rows_of(key)
            entries.append((entry_key(group, key), None if rows is None else pack(*rows)))
    return entries


def pack(times: I64, seqs: I64, values: F64) -> bytes:
    count = np.array([len(times)], np.int64)
    parts = (count, times, seqs, np.ascontiguousarray(values))
    return b"".join(part.tobytes() for part in parts)


def unpack(data: bytes, width: int) -> tuple[I64, I64, F64]:
    n = int(np.frombuffer(data, np.int64, 1)[0])
    times = np.frombuffer(data, np.int64, n, _WORD)
    seqs = np.frombuffer(data, np.int64, n, _WORD * (1 + n))
    values = np.frombuffer(data, np.float64, n * width, _WORD * (1 + 2 * n)).reshape(n, width)
    return times, seqs, values


def buffers_from_entries(
    widths: Mapping[str, int], entries: Iterable[tuple[bytes, bytes]], seq_below: int
) -> tuple[dict[str, KeyedBuffer], int]:
    """Each group's buffer rebuilt from its entries, keeping rows with a sequence number
    below ``seq_below``; returns the buffers and how many keys they hold."""
    rows: dict[str, tuple[list[Any], list[I64], list[I64], list[F64]]] = {
        group: ([], [], [], []) for group in widths
    }
    for key_bytes, data in entries:
        group, key = split_entry_key(key_bytes)
        if group not in rows:
            continue  # a group the current definitions no longer have
        keys, times, seqs, values = rows[group]
        t, s, v = unpack(data, max(1, widths[group]))
        keys.append(key)
        times.append(t)
        seqs.append(s)
        values.append(v)
    buffers = {group: _buffer(widths[group], *lists, seq_below) for group, lists in rows.items()}
    return buffers, sum(len(b.slot_of) for b in buffers.values())


def _buffer(
    width: int,
    keys: list[Any],
    times: list[I64],
    seqs: list[I64],
    values: list[F64],
    seq_below: int,
) -> KeyedBuffer:
    if not keys:
        return KeyedBuffer(width)
    lengths = np.fromiter((len(t) for t in times), np.int64, len(times))
    all_times, all_seqs = np.concatenate(times), np.concatenate(seqs)
    all_values = np.concatenate(values)
    keep = all_seqs < seq_below
    if not keep.all():
        owner = np.repeat(np.arange(len(keys)), lengths)[keep]
        lengths = np.bincount(owner, minlength=len(keys)).astype(np.int64)
        all_times, all_seqs, all_values = all_times[keep], all_seqs[keep], all_values[keep]
        kept = lengths > 0
        keys = [k for k, k_kept in zip(keys, kept.tolist(), strict=True) if k_kept]
        lengths = lengths[kept]
    return KeyedBuffer.from_rows(width, keys, lengths, all_times, all_seqs, all_values)
