"""Embedded broker produce/consume throughput, side by side with raw sqlite3 in the same run.

    python bench/broker_bench.py [--events 1000000] [--repeat 3]

Each round runs both peers side by side on fresh files (the raw peer first in odd rounds);
the table gives the median and range over the rounds and each round's ratio.

The raw baseline inserts the same records one SQLite row each (executemany in one
transaction) and reads them back with fetchall: what a hand-written SQLite log would do.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from streamsense.brokers import EmbeddedBroker, TopicConfig, TopicPartition, partition_for

PARTITIONS = 4


def make_events(n: int) -> list[tuple[bytes, bytes, int]]:
    base = 1_522_540_800_000
    events = []
    for i in range(n):
        customer = i % 5000
        value = (
            f'{{"TRANSACTION_ID":{i},"TX_DATETIME":"2018-04-01T00:{i % 60:02d}:31",'
            f'"CUSTOMER_ID":{customer},"TERMINAL_ID":{(i * 7) % 10000},'
            f'"TX_AMOUNT":{i % 997 / 7:.2f}}}'
        ).encode()
        events.append((str(customer).encode(), value, base + i))
    return events


def streamsense_produce(path: Path, events: list[tuple[bytes, bytes, int]]) -> float:
    broker = EmbeddedBroker(path)
    broker.create_topic("tx", TopicConfig(PARTITIONS))
    started = time.perf_counter()
    producer = broker.producer(batch_size=50_000, linger_ms=0)
    send = producer.send
    for key, value, ts in events:
        send("tx", value, key, timestamp=ts)
    producer.flush()
    elapsed = time.perf_counter() - started
    broker.close()
    return elapsed


def streamsense_consume(path: Path, expected: int) -> float:
    broker = EmbeddedBroker(path)
    consumer = broker.consumer()
    consumer.assign([TopicPartition("tx", p) for p in range(PARTITIONS)])
    started = time.perf_counter()
    seen = size = 0
    while seen < expected:
        records = consumer.poll(10_000)
        for record in records:
            size += len(record.value or b"")
        seen += len(records)
    elapsed = time.perf_counter() - started
    broker.close()
    return elapsed


def raw_produce(path: Path, events: list[tuple[bytes, bytes, int]]) -> float:
    conn = _raw_connection(path)
    conn.execute(
        "CREATE TABLE log (partition INTEGER, offset INTEGER, ts INTEGER, key BLOB, value BLOB,"
        " PRIMARY KEY (partition, offset)) WITHOUT ROWID"
    )
    started = time.perf_counter()
    next_offset = [0] * PARTITIONS
    rows = []
    for key, value, ts in events:
        p = partition_for(key, PARTITIONS)
        rows.append((p, next_offset[p], ts, key, value))
        next_offset[p] += 1
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO log VALUES (?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def raw_consume(path: Path, expected: int) -> float:
    conn = _raw_connection(path)
    started = time.perf_counter()
    seen = size = 0
    for p in range(PARTITIONS):
        offset = 0
        while True:
            rows = conn.execute(
                "SELECT offset, ts, key, value FROM log WHERE partition = ? AND offset >= ?"
                " ORDER BY offset LIMIT 10000",
                (p, offset),
            ).fetchall()
            if not rows:
                break
            for row in rows:
                size += len(row[3])
            seen += len(rows)
            offset = rows[-1][0] + 1
    assert seen == expected
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def _raw_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


PATHS = (
    ("produce", streamsense_produce, raw_produce),
    ("consume", streamsense_consume, raw_consume),
)


def one_round(events: list[tuple[bytes, bytes, int]], round_index: int) -> list[dict[str, Any]]:
    """Both peers side by side in fresh files; odd rounds run the raw peer first."""
    n = len(events)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        dbs = {"streamsense": Path(tmp) / "ss.db", "raw sqlite3": Path(tmp) / "raw.db"}
        order = ["streamsense", "raw sqlite3"][:: -1 if round_index % 2 else 1]
        for path, ours, raw in PATHS:
            for peer in order:
                fn = ours if peer == "streamsense" else raw
                seconds = fn(dbs[peer], events) if path == "produce" else fn(dbs[peer], n)
                rows.append({"kind": path, "round": round_index, "peer": peer,
                             "seconds": seconds, "events_per_s": n / seconds})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from results import broker_tables, save_results

    events = make_events(args.events)
    rows = [row for r in range(args.repeat) for row in one_round(events, r)]
    settings = {**vars(args), "sqlite": sqlite3.sqlite_version, "partitions": PARTITIONS,
                "event_bytes": len(events[0][1])}  # fmt: skip
    path = save_results(Path(args.results), "broker_bench", settings, rows)
    print(f"events: {len(events):,} (JSON ~{len(events[0][1])} bytes, {PARTITIONS} partitions), "
          f"{args.repeat} rounds, median (range); raw results: {path}")  # fmt: skip
    print(broker_tables({"rows": rows}))


if __name__ == "__main__":
    main()
