"""Online read latency of the fraud app's 15-feature vector, windows evaluated at request
time, from the embedded (SQLite) and Redis online stores, side by side with Feast's local
SQLite online store serving 15 precomputed features, in one run.

    taskset -c 0 python bench/online_features_bench.py [--events 400000] [--reads 20000]
        [--rounds 3]

Setup (not timed): the first ``--events`` handbook transactions go through the fraud app's
FeatureEngine; every customer's and terminal's window contents are written to each store.
Timed: ``OnlineFeatures.vectors`` for 1 and for 100 transactions, i.e. one store round trip
for both entity groups (customer, terminal: ``OnlineStore.read_blobs``), folding all 12 window
features at the read time straight from the blobs (store.blob_fold), plus the 3 event
features — the full 15-feature vector.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

from apps.fraud.app import FEATURES, Transaction  # noqa: E402
from online_store_bench import bench_feast, measure, redis_server  # noqa: E402

from streamsense import features as F  # noqa: E402
from streamsense.store import OnlineStore, SqliteOnlineStore  # noqa: E402
from streamsense.store.views import OnlineFeatures, rows_of  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "fraud-handbook" / "transactions.parquet"


def load(events: int) -> tuple[F.FeatureEngine, list[Transaction], int]:
    table = pq.read_table(DATASET).slice(0, events)
    engine = F.FeatureEngine(FEATURES)
    times = table.column("TX_DATETIME").cast("int64").to_numpy() // 1000
    columns = {
        "customer_id": table.column("CUSTOMER_ID").to_numpy(),
        "terminal_id": table.column("TERMINAL_ID").to_numpy(),
        "tx_amount": table.column("TX_AMOUNT").to_numpy(),
        "tx_fraud": table.column("TX_FRAUD").to_numpy().astype(np.float64),
    }
    for lo in range(0, len(times), 50_000):
        engine.process(
            0, times[lo : lo + 50_000], {k: v[lo : lo + 50_000] for k, v in columns.items()}
        )
    last = table.slice(len(times) - 20_000)
    payloads = [
        Transaction(
            r["TRANSACTION_ID"],
            r["TX_DATETIME"],
            r["CUSTOMER_ID"],
            r["TERMINAL_ID"],
            r["TX_AMOUNT"],
        )
        for r in last.to_pylist()
    ]
    return engine, payloads, int(times[-1]) + 60_000


def fill(store: OnlineStore, engine: F.FeatureEngine) -> None:
    for group, state in engine.partition(0).groups.items():
        buffer = state.buffer
        keys = [k for k in buffer.key_of if k is not None]
        for lo in range(0, len(keys), 5_000):
            store.write(engine.view_name(group), rows_of(buffer, keys[lo : lo + 5_000]))


def bench(
    store: OnlineStore, payloads: list[Any], at: int, reads: int
) -> dict[int, dict[str, float]]:
    online = OnlineFeatures(FEATURES, store)
    expected_names = FEATURES.names
    assert list(online.vectors(payloads[:1], [at])[0]) == expected_names
    rng = random.Random(3)
    results = {}
    for size in (1, 100):
        batches = [rng.sample(payloads, size) for _ in range(reads)]
        results[size] = measure(lambda ps: online.vectors(ps, [at] * len(ps)), batches)
    return results


def one_round(
    engine: F.FeatureEngine, payloads: list[Any], at: int, reads: int, order: list[str]
) -> dict[str, dict[int, dict[str, float]]]:
    results: dict[str, dict[int, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in order:
            if name == "sqlite":
                sqlite = SqliteOnlineStore(Path(tmp) / "online.db")
                fill(sqlite, engine)
                results["streamsense, embedded (SQLite)"] = bench(sqlite, payloads, at, reads)
                sqlite.close()
            elif name == "redis":
                results["streamsense, Redis"] = bench_redis(engine, payloads, at, reads)
            elif name == "feast":
                feast_folder = Path(tmp) / "feast"
                feast_folder.mkdir()
                label = "Feast (local SQLite, 15 precomputed)"
                results[label] = bench_feast(10_000, reads, feast_folder)
    return results


def bench_redis(
    engine: F.FeatureEngine, payloads: list[Any], at: int, reads: int
) -> dict[int, dict[str, float]]:
    from streamsense.store.redis_online import RedisOnlineStore

    url, started = redis_server(None)
    try:
        redis = RedisOnlineStore(url, prefix=f"ssfeat-{random.randrange(1 << 30):x}:")
        fill(redis, engine)
        result = bench(redis, payloads, at, reads)
        redis.close()
        return result
    finally:
        if started:
            subprocess.run([ROOT / "scripts" / "redis.sh", "stop"], check=False)


def main() -> None:
    from handbook_peers import rotated
    from online_store_bench import latency_rows
    from results import render, save_results

    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--stores", default="sqlite,redis,feast")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    engine, payloads, at = load(args.events)
    rows = []
    for round_index in range(args.rounds):
        order = rotated(args.stores.split(","), round_index)
        rows += latency_rows(round_index, one_round(engine, payloads, at, args.reads, order))
        print(f"round {round_index} done", flush=True)
    settings = {"events": args.events, "reads": args.reads, "rounds": args.rounds}
    path = save_results(Path(args.results), "online_features_bench", settings, rows)
    print(f"raw results: {path}\n")
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
