"""`replay --export-recommendations`: one row per rating, read back from the topic the
pipeline wrote (so a rerun after a crash exports each row once): userId, movieId,
timestamp (as in the input) and recommended (movie ids, best first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import streamsense as ss
from streamsense.brokers import topic_chunks

from .served import SERVED_TOPIC, ServedColumns, served_columns

SCHEMA = pa.schema(
    {
        "userId": pa.int64(),
        "movieId": pa.int64(),
        "timestamp": pa.int64(),
        "recommended": pa.list_(pa.int64()),
    }
)


def served_rows(broker: ss.Broker) -> ServedColumns:
    """Every served row in log order (one partition)."""
    values = (r.value for got in topic_chunks(broker, SERVED_TOPIC) for r in got if r.value)
    return served_columns(values)


def export_recommendations(
    broker: ss.Broker, path: Path, start_ms: int | None, end_ms: int | None
) -> int:
    served = served_rows(broker)
    low = -(2**62) if start_ms is None else start_ms
    high = 2**62 if end_ms is None else end_ms
    kept = (low <= served.timestamps * 1000) & (served.timestamps * 1000 < high)
    lists = served.recommended[kept]
    present = lists >= 0  # the -1 padding of short lists is not a movie
    offsets = np.zeros(len(lists) + 1, np.int32)
    np.cumsum(present.sum(axis=1), out=offsets[1:])
    table = pa.table(
        {
            "userId": served.users[kept],
            "movieId": served.movies[kept],
            "timestamp": served.timestamps[kept],
            # one flat array (row-major: each list best first) and offsets
            "recommended": pa.ListArray.from_arrays(pa.array(offsets), pa.array(lists[present])),
        },
        schema=SCHEMA,
    )
    pq.write_table(table, path)
    return len(lists)
