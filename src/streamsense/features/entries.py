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
    below ``seq_below``; returns the buffers and how many keys they hold. Vectorised: a
    new owner of a partition may load millions of keys."""
    key_bytes, data = _columns(entries)
    names = _decode_keys(key_bytes)
    buffers = {}
    for group, width in widths.items():
        chosen = [i for i, (g, _) in enumerate(names) if g == group]
        keys = [_hashable(names[i][1]) for i in chosen]
        buffers[group] = _buffer(max(1, width), keys, [data[i] for i in chosen], seq_below)
    return buffers, sum(len(b.slot_of) for b in buffers.values())


def _columns(entries: Iterable[tuple[bytes, bytes]]) -> tuple[list[bytes], list[bytes]]:
    keys: list[bytes] = []
    data: list[bytes] = []
    for key, value in entries:
        keys.append(key)
        data.append(value)
    return keys, data


def _decode_keys(keys: list[bytes]) -> list[tuple[str, Any]]:
    """Every entry key at once: msgpack-encoded items joined are a msgpack array's body."""
    header = b"\xdd" + len(keys).to_bytes(4, "big")
    return [(group, key) for group, key in msgspec.msgpack.decode(header + b"".join(keys))]


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def _buffer(width: int, keys: list[Any], data: list[bytes], seq_below: int) -> KeyedBuffer:
    """A buffer from packed entries (``pack``), keeping rows before ``seq_below``."""
    if not keys:
        return KeyedBuffer(width)
    words = np.frombuffer(b"".join(data), np.int64)
    # Each entry is [n][n times][n seqs][n * width values]: its size gives n.
    sizes = np.fromiter(map(len, data), np.int64, len(data)) // _WORD
    heads = np.cumsum(sizes) - sizes
    lengths = (sizes - 1) // (2 + width)
    within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(
        np.cumsum(lengths) - lengths, lengths
    )
    time_at = np.repeat(heads + 1, lengths) + within
    seq_at = time_at + np.repeat(lengths, lengths)
    value_at = np.repeat(heads + 1 + 2 * lengths, lengths) + within * width
    times, seqs = words[time_at], words[seq_at]
    values = words.view(np.float64)[value_at[:, None] + np.arange(width)]
    keep = seqs < seq_below
    if not keep.all():
        owner = np.repeat(np.arange(len(keys)), lengths)[keep]
        lengths = np.bincount(owner, minlength=len(keys)).astype(np.int64)
        times, seqs, values = times[keep], seqs[keep], values[keep]
        kept = lengths > 0
        keys = [k for k, k_kept in zip(keys, kept.tolist(), strict=True) if k_kept]
        lengths = lengths[kept]
    return KeyedBuffer.from_rows(width, keys, lengths, times, seqs, values)
