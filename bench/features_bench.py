"""The 15 handbook features over the whole file: streamsense's feature engine side by side
with DuckDB batch SQL, a plain-Python loop and Bytewax, in one run (see handbook_peers.py
for how each peer is timed and checked against DuckDB).

    taskset -c 0 python bench/features_bench.py [--limit N] [--peers streamsense,duckdb1,...]
        [--rounds 3] [--results DIR]

streamsense streams the events in file order in micro-batches of BATCH events through the
same FeatureEngine the pipeline runs (fraud app's definitions), from the Arrow table to
every event's 15 features.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

from handbook_peers import Peer, main  # noqa: E402
from handbook_reference import FEATURE_COLUMNS  # noqa: E402

import streamsense as ss  # noqa: E402
from streamsense import features as F  # noqa: E402

BATCH = 20_000


def _engine() -> tuple[F.FeatureEngine, list[str]]:
    from apps.fraud.app import FEATURES  # the fraud app's definitions, unchanged

    return F.FeatureEngine(FEATURES), FEATURES.names


def streamsense_run(events: pa.Table) -> tuple[np.ndarray, np.ndarray, list[str]]:
    engine, names = _engine()
    times = events.column("TX_DATETIME").cast(pa.int64()).to_numpy() // 1000
    columns: dict[str, Any] = {
        "customer_id": events.column("CUSTOMER_ID").to_numpy(),
        "terminal_id": events.column("TERMINAL_ID").to_numpy(),
        "tx_amount": events.column("TX_AMOUNT").to_numpy(),
        "tx_fraud": events.column("TX_FRAUD").to_numpy().astype(np.float64),
    }
    out = np.empty((len(times), len(names)), np.float64)
    for lo in range(0, len(times), BATCH):
        hi = lo + BATCH
        batch = {name: column[lo:hi] for name, column in columns.items()}
        out[lo:hi] = engine.process(0, times[lo:hi], batch).values
    return events.column("TRANSACTION_ID").to_numpy(), out, names


def streamsense_table(output: tuple[np.ndarray, np.ndarray, list[str]]) -> pa.Table:
    ids, values, names = output
    columns = {"TRANSACTION_ID": pa.array(ids)}
    for name in FEATURE_COLUMNS:
        column = values[:, names.index(name)]
        is_count = "_NB_TX_" in name or name.startswith("TX_DURING")
        columns[name] = pa.array(column.astype(np.int64) if is_count else column)
    return pa.table(columns)


assert ss.__version__

if __name__ == "__main__":
    main({"streamsense": Peer(streamsense_run, streamsense_table)}, bench="features_bench")
