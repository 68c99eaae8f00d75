"""The 15 fraud-handbook features in one DuckDB query: the batch reference for the streaming peers.

    python bench/handbook_reference.py [--threads 1] [--path PATH]

Feature definitions: ../shared/datasets/README.md (t = the transaction's time, w in 1, 7, 30 days):
customer count / mean amount over (t - w, t], the current transaction included, and, for payments
in the same second, only those at or before it in FILE order; terminal count / fraud share over
(t - 7d - w, t - 7d]. TRANSACTION_ID is not in file order within a second, so ties are broken by the
Parquet file row number, never by TRANSACTION_ID.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

DATASET = str(
    Path(__file__).resolve().parents[2]
    / "shared"
    / "datasets"
    / "fraud-handbook"
    / "transactions.parquet"
)
DAY = 86_400
WINDOWS = (1, 7, 30)
DELAY_DAYS = 7
# Sort key = epoch_seconds * ROW_SPAN + file_row: ordering by it is ordering by (time, file order).
# Epoch seconds (~1.5e9) * 2^22 stays far below 2^63; the file row must stay below ROW_SPAN.
ROW_SPAN = 1 << 22

# The handbook's 15 model inputs: TX_AMOUNT as is, then the 14 computed features.
FEATURE_COLUMNS = [
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    *[f"CUSTOMER_ID_{kind}_{w}DAY_WINDOW" for w in WINDOWS for kind in ("NB_TX", "AVG_AMOUNT")],
    *[f"TERMINAL_ID_{kind}_{w}DAY_WINDOW" for w in WINDOWS for kind in ("NB_TX", "RISK")],
]
INT_COLUMNS = [c for c in FEATURE_COLUMNS if "_NB_TX_" in c or c.startswith("TX_DURING")]
FLOAT_COLUMNS = [c for c in FEATURE_COLUMNS if c not in INT_COLUMNS]  # amount, means, risks


def _customer_sql(w: int) -> str:
    # A RANGE frame ending at CURRENT ROW includes every peer with an equal sort key, so ordering
    # by the time alone would count payments of the same second that come later in the file.
    # Ordering by the unique key k = ts * ROW_SPAN + file_row instead leaves the current row
    # without peers, so CURRENT ROW ends the frame exactly at the current payment (ROWS-like).
    # The lower bound must stay a time bound, ts' > ts - w, i.e. k' >= (ts - w + 1) * ROW_SPAN:
    # a per-row offset k - (ts - w + 1) * ROW_SPAN, which DuckDB evaluates row by row. It is
    # exact (no subtraction of sums) and as fast as the constant-offset RANGE frame on ts.
    frame = (
        f"(PARTITION BY CUSTOMER_ID ORDER BY k RANGE BETWEEN "
        f"k - (ts - {w * DAY - 1}) * {ROW_SPAN} PRECEDING AND CURRENT ROW)"
    )
    return (
        f"count(*) OVER {frame} AS CUSTOMER_ID_NB_TX_{w}DAY_WINDOW,\n"
        f"avg(TX_AMOUNT) OVER {frame} AS CUSTOMER_ID_AVG_AMOUNT_{w}DAY_WINDOW"
    )


def _terminal_sql(w: int) -> str:
    # (t - 7d - w, t - 7d] on whole seconds is [t - 7d - w + 1, t - 7d]; the frame ends 7 days
    # back, so same-second ties with the current payment cannot be in it: RANGE on ts suffices.
    delay = DELAY_DAYS * DAY
    frame = (
        f"(PARTITION BY TERMINAL_ID ORDER BY ts RANGE BETWEEN "
        f"{delay + w * DAY - 1} PRECEDING AND {delay} PRECEDING)"
    )
    return (
        f"count(*) OVER {frame} AS TERMINAL_ID_NB_TX_{w}DAY_WINDOW,\n"
        f"coalesce(avg(TX_FRAUD::DOUBLE) OVER {frame}, 0.0) AS TERMINAL_ID_RISK_{w}DAY_WINDOW"
    )


def features_sql(source: str) -> str:
    """The query over `source`: a relation with the dataset's columns plus `file_row_number`."""
    windows = ",\n".join([*map(_customer_sql, WINDOWS), *map(_terminal_sql, WINDOWS)])
    return f"""
WITH events AS (
    SELECT *, epoch(TX_DATETIME)::BIGINT AS ts,
           epoch(TX_DATETIME)::BIGINT * {ROW_SPAN} + file_row_number AS k
    FROM {source}
), features AS (
    SELECT file_row_number, TRANSACTION_ID, TX_AMOUNT,
           (isodow(TX_DATETIME) >= 6)::BIGINT AS TX_DURING_WEEKEND,
           (hour(TX_DATETIME) <= 6)::BIGINT AS TX_DURING_NIGHT,
           {windows}
    FROM events
)
SELECT TRANSACTION_ID, {", ".join(FEATURE_COLUMNS)}
FROM features ORDER BY file_row_number
"""


def _run(con: duckdb.DuckDBPyConnection, source: str, threads: int) -> pa.Table:
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET enable_progress_bar = false")
    return con.sql(features_sql(source)).to_arrow_table()


def duckdb_features(path: str, threads: int = 1) -> pa.Table:
    """TRANSACTION_ID + the 15 features for every row of the Parquet file at `path`, file order."""
    quoted = "'" + path.replace("'", "''") + "'"
    with duckdb.connect() as con:
        return _run(con, f"read_parquet({quoted}, file_row_number = true)", threads)


def duckdb_features_from_table(events: pa.Table, threads: int = 1) -> pa.Table:
    """Same as duckdb_features, over events already in memory (rows in file order)."""
    if events.num_rows >= ROW_SPAN:
        raise ValueError(f"at most {ROW_SPAN - 1} rows")
    rows = pa.array(np.arange(events.num_rows, dtype=np.int64))
    numbered = events.append_column("file_row_number", rows)
    with duckdb.connect() as con:
        con.register("numbered_events", numbered)
        return _run(con, "numbered_events", threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--path", default=DATASET)
    args = parser.parse_args()
    started = time.perf_counter()
    table = duckdb_features(args.path, args.threads)
    elapsed = time.perf_counter() - started
    print(
        f"duckdb threads={args.threads}: {table.num_rows:,} events, {len(FEATURE_COLUMNS)} "
        f"columns in {elapsed:.2f} s (Parquet read included) = "
        f"{table.num_rows / elapsed:,.0f} events/s"
    )


if __name__ == "__main__":
    main()
