"""Backfill throughput: history replayed from the embedded broker through the fraud app's
feature engine into the offline (Parquet) and online (SQLite) stores.

    taskset -c 0 python bench/backfill_bench.py [--limit N]

Not timed: producing the handbook file into a fresh embedded broker. Timed: `backfill`, i.e.
reading the log, decoding and validating every event, computing its 15 features, writing the
feature history to Parquet and every entity's window contents to the online store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from apps.fraud.app import FEATURES, transactions  # noqa: E402

from streamsense.brokers import EmbeddedBroker, TopicConfig  # noqa: E402
from streamsense.runtime.ingest import ingest_file  # noqa: E402
from streamsense.store import open_online_store  # noqa: E402
from streamsense.store.backfill import backfill  # noqa: E402
from streamsense.store.offline import OfflineStore  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "fraud-handbook" / "transactions.parquet"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "transactions.parquet"
        if args.limit:
            import pyarrow.parquet as pq

            pq.write_table(pq.read_table(DATASET).slice(0, args.limit), source)
        else:
            source = DATASET
        broker = EmbeddedBroker(Path(tmp) / "broker.db")
        broker.create_topic(transactions.topic, TopicConfig(transactions.partitions))
        ingest_file(broker, transactions, source, timestamp=1_700_000_000_000)
        events = broker.describe_topic(transactions.topic).messages
        runs = {
            "engine only (decode + features)": {},
            "+ offline history (Parquet)": {"offline": OfflineStore(Path(tmp) / "offline")},
            "+ offline + online (SQLite)": {
                "offline": OfflineStore(Path(tmp) / "offline2"),
                "online": open_online_store(f"sqlite://{tmp}/online.db"),
            },
        }
        print(f"{events:,} events, one partition, {time.strftime('%Y-%m-%d')}")
        print("| backfill | seconds | events/s |")
        print("|---|---:|---:|")
        for i, (label, stores) in enumerate(runs.items()):
            result = backfill(FEATURES, broker, Path(tmp) / f"state{i}", **stores)  # type: ignore[arg-type]
            print(f"| {label} | {result.seconds:.2f} | {result.rate:,.0f} |", flush=True)
        broker.close()


if __name__ == "__main__":
    main()
