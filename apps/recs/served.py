"""What the app served before each rating, as it goes to the ``recs.served`` topic: one
record per micro-batch of ratings (up to ``ROWS_PER_RECORD`` each), the batch's columns as
packed arrays, written by the stage with the batch's offsets.

One JSON record per rating cost more than the ranking itself: a Struct, an encode, a
record with its headers and partitioning per rating, then a decode per rating again for
the export (issue #16: the replay's goal is 20,000 ratings/s per core, export included).
The records commit with the offsets of the ratings they serve, so each rating's row is in
the topic once however often a replay is killed and rerun; rows keep the log's order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import msgspec
import numpy as np

from streamsense.brokers.base import OutRecord

SERVED_TOPIC = "recs.served"
ROWS_PER_RECORD = 2_000  # ~200 KB a record: well under the broker's record limit


class ServedBatch(msgspec.Struct, array_like=True):
    """Rows of served lists: little-endian int64 columns; ``recommended`` is [rows, width]
    movie ids, best first, -1 after the last (a catalogue with fewer unrated movies)."""

    users: bytes
    movies: bytes
    timestamps: bytes  # as in the input (epoch seconds)
    width: int
    recommended: bytes


@dataclass(frozen=True)
class ServedColumns:
    users: np.ndarray
    movies: np.ndarray
    timestamps: np.ndarray
    recommended: np.ndarray  # int64 [rows, width], -1 padded


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(ServedBatch).decode
_I8 = np.dtype("<i8")


def served_records(
    partition: int,
    users: np.ndarray,
    movies: np.ndarray,
    timestamps: np.ndarray,
    recommended: np.ndarray,
) -> list[OutRecord]:
    """The records for one batch's rows (in order)."""
    out = []
    for start in range(0, len(users), ROWS_PER_RECORD):
        rows = slice(start, start + ROWS_PER_RECORD)
        batch = ServedBatch(
            users[rows].astype(_I8).tobytes(),
            movies[rows].astype(_I8).tobytes(),
            timestamps[rows].astype(_I8).tobytes(),
            int(recommended.shape[1]),
            np.ascontiguousarray(recommended[rows], _I8).tobytes(),
        )
        out.append(OutRecord(SERVED_TOPIC, _encode(batch), partition=partition))
    return out


def served_columns(values: Iterable[bytes]) -> ServedColumns:
    """Every row of the given records' values, in order."""
    batches = [_decode(v) for v in values]
    width = max((b.width for b in batches), default=0)

    def column(name: str) -> np.ndarray:
        parts = [np.frombuffer(getattr(b, name), _I8) for b in batches]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    lists = [np.frombuffer(b.recommended, _I8).reshape(-1, b.width) for b in batches]
    padded = [np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=-1) for x in lists]
    recommended = np.concatenate(padded) if padded else np.zeros((0, width), np.int64)
    return ServedColumns(column("users"), column("movies"), column("timestamps"), recommended)
