"""`replay --export-recommendations`: one row per rating, read back from the topic the
pipeline wrote (so a rerun after a crash exports each row once): userId, movieId,
timestamp (as in the input) and recommended (movie ids, best first)."""

from __future__ import annotations

from itertools import chain
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import streamsense as ss
from streamsense.brokers import topic_chunks

from .stage import Served

SERVED_TOPIC = "recs.served"
_decode = msgspec.json.Decoder(list[Served]).decode

SCHEMA = pa.schema(
    {
        "userId": pa.int64(),
        "movieId": pa.int64(),
        "timestamp": pa.int64(),
        "recommended": pa.list_(pa.int64()),
    }
)


def served_rows(broker: ss.Broker, chunk: int = 50_000) -> list[Served]:
    """Every served record in log order (one partition)."""
    rows: list[Served] = []
    for got in topic_chunks(broker, SERVED_TOPIC, chunk=chunk):
        # One decode per chunk: the values joined are a JSON array's body.
        rows.extend(_decode(b"[" + b",".join(r.value or b"null" for r in got) + b"]"))
    return rows


def export_recommendations(
    broker: ss.Broker, path: Path, start_ms: int | None, end_ms: int | None
) -> int:
    rows = served_rows(broker)
    low = -(2**62) if start_ms is None else start_ms
    high = 2**62 if end_ms is None else end_ms
    rows = [r for r in rows if low <= r.timestamp * 1000 < high]
    lengths = np.fromiter((len(r.recommended) for r in rows), np.int32, len(rows))
    offsets = np.zeros(len(rows) + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter(chain.from_iterable(r.recommended for r in rows), np.int64, offsets[-1])
    table = pa.table(
        {
            "userId": np.fromiter((r.userId for r in rows), np.int64, len(rows)),
            "movieId": np.fromiter((r.movieId for r in rows), np.int64, len(rows)),
            "timestamp": np.fromiter((r.timestamp for r in rows), np.int64, len(rows)),
            # one flat array and offsets: no Python list per row on the Arrow side
            "recommended": pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)),
        },
        schema=SCHEMA,
    )
    pq.write_table(table, path)
    return len(rows)
