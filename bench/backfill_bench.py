"""Backfill throughput: history replayed from the embedded broker through the fraud app's
feature engine into the offline (Parquet) and online (SQLite) stores.

    taskset -c 0 python bench/backfill_bench.py [--limit N] [--rounds 3]

Not timed: producing the handbook file into a fresh embedded broker. Timed: `backfill`, i.e.
reading the log, decoding and validating every event, computing its 15 features, writing the
feature history to Parquet and every entity's window contents to the online store.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT), str(ROOT / "bench")]

from apps.fraud.app import FEATURES, transactions  # noqa: E402

from streamsense.brokers import EmbeddedBroker, TopicConfig  # noqa: E402
from streamsense.runtime.ingest import ingest_file  # noqa: E402
from streamsense.store import open_online_store  # noqa: E402
from streamsense.store.backfill import backfill  # noqa: E402
from streamsense.store.offline import OfflineStore  # noqa: E402

DATASET = ROOT.parent / "shared" / "datasets" / "fraud-handbook" / "transactions.parquet"


def stores_of(folder: Path) -> dict[str, dict[str, object]]:
    return {
        "engine only (decode + features)": {},
        "+ offline history (Parquet)": {"offline": OfflineStore(folder / "offline")},
        "+ offline + online (SQLite)": {
            "offline": OfflineStore(folder / "offline2"),
            "online": open_online_store(f"sqlite://{folder}/online.db"),
        },
    }


def main() -> None:
    from results import render, save_results

    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=None, help="only the first N rows")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    rows = []
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
        for round_index in range(args.rounds):
            folder = Path(tmp) / f"round{round_index}"
            for i, (label, stores) in enumerate(stores_of(folder).items()):
                state = folder / f"state{i}"
                result = backfill(FEATURES, broker, state, **stores)  # type: ignore[arg-type]
                rows.append({"round": round_index, "backfill": label, "events": events,
                             "seconds": result.seconds, "events_per_s": result.rate})  # fmt: skip
                print(f"round {round_index}: {label}: {result.rate:,.0f} events/s", flush=True)
        broker.close()
    settings = {"limit": args.limit, "rounds": args.rounds, "events": events}
    path = save_results(Path(args.results), "backfill_bench", settings, rows)
    print(f"raw results: {path}\n")
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
