"""Embedded broker produce/consume throughput, side by side with raw sqlite3 in the same run.

    python bench/broker_bench.py [--events 1000000] [--repeat 3]

The raw baseline inserts the same records one SQLite row each (executemany in one
transaction) and reads them back with fetchall: what a hand-written SQLite log would do.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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


def best(runs: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    events = make_events(args.events)
    n = len(events)
    results: dict[str, list[float]] = {k: [] for k in ("ss_p", "ss_c", "raw_p", "raw_c")}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            ss_db, raw_db = Path(tmp) / "ss.db", Path(tmp) / "raw.db"
            results["ss_p"].append(streamsense_produce(ss_db, events))
            results["raw_p"].append(raw_produce(raw_db, events))
            results["ss_c"].append(streamsense_consume(ss_db, n))
            results["raw_c"].append(raw_consume(raw_db, n))
    rate = {k: n / min(v) for k, v in results.items()}
    spread = {k: statistics.pstdev([n / x for x in v]) for k, v in results.items()}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}"
    )
    print(
        f"events: {n:,} (JSON ~{len(events[0][1])} bytes, {PARTITIONS} partitions), "
        f"best of {args.repeat}"
    )
    print("| path | streamsense embedded | raw sqlite3 rows | ratio |")
    print("|---|---|---|---|")
    for label, ours, raw in (("produce", "ss_p", "raw_p"), ("consume", "ss_c", "raw_c")):
        print(
            f"| {label} | {rate[ours]:,.0f} ev/s (±{spread[ours]:,.0f}) | "
            f"{rate[raw]:,.0f} ev/s (±{spread[raw]:,.0f}) | {rate[ours] / rate[raw]:.2f}× |"
        )


if __name__ == "__main__":
    main()
