"""Restoring batch-stage state at scale: one partition holding 1 million keys written to its
state changelog (one record per key), then read back by a new owner.

    python bench/state_restore_bench.py [--keys 1000000] [--kafka 127.0.0.1:9092]

Built, not timed: a feature engine fed 3 events per key (a rolling count and mean over a
day), its state written as one changelog write to the embedded broker (and to Kafka when
``--kafka`` is given). Timed, each restore in a fresh process (so its peak memory is its
own): reading the changelog to its end, rebuilding the engine's buffers and the sweep that
follows. Checked: the restored engine reads the same features as the writer for a sample
of keys. Prints one JSON line per broker and keeps them under bench/results/ (one results
file, a row per broker).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

import streamsense as ss  # noqa: E402
from streamsense import features as F  # noqa: E402
from streamsense.brokers import TopicConfig, TopicPartition, Transaction, open_broker  # noqa: E402
from streamsense.runtime.batch_state import read_state, state_records  # noqa: E402

TOPIC = "bench.features.state-changelog"
SOURCE = "bench.events"
DAY_MS = 86_400_000
SAMPLE = 1000


class Reading(ss.Schema):
    sensor: int
    ts: int
    value: float


def engine() -> F.FeatureEngine:
    stream = ss.Stream(SOURCE, Reading, key="sensor", time="ts", partitions=1)
    group = F.FeatureGroup(stream, key="sensor")
    group.add("n_1d", F.count(), F.rolling("1d"))
    group.add("mean_1d", F.mean("value"), F.rolling("1d"))
    return F.FeatureEngine(F.FeatureSet("bench", group.features))


def build(keys: int) -> tuple[F.FeatureEngine, bytes, list[tuple[bytes, bytes | None]]]:
    writer = engine()
    rng = np.random.default_rng(7)
    for round_ in range(3):
        sensors = rng.permutation(keys).astype(np.int64)
        times = np.full(keys, round_ * 60_000, np.int64) + np.arange(keys) // 1000
        values = rng.normal(20, 5, keys)
        for lo in range(0, keys, 200_000):
            part = slice(lo, lo + 200_000)
            columns = {"sensor": sensors[part], "value": values[part]}
            writer.process(0, np.sort(times[part]), columns)
    meta, entries = writer.partition(0).state_changes()
    return writer, meta, entries


def write(url: str, meta: bytes, entries: list[tuple[bytes, bytes | None]]) -> int:
    broker = open_broker(url)
    broker.create_topic(TOPIC, TopicConfig(1, compacted=True), exist_ok=True)
    records = state_records(TOPIC, 0, {SOURCE: 3}, meta, entries, {})
    for lo in range(0, len(records), 100_000):
        broker.commit_transaction(Transaction("bench", after_offsets=records[lo : lo + 100_000]))
    broker.close()
    return len(records)


def restore(url: str, expected_file: Path) -> dict[str, float]:
    """In its own process: read the changelog back and rebuild the engine."""
    logging.basicConfig(level=logging.INFO, format="  %(message)s")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    broker = open_broker(url)
    started = time.perf_counter()
    stored = read_state(broker, TOPIC, 0, {TopicPartition(SOURCE, 0): 3})
    read_s = time.perf_counter() - started
    assert stored is not None
    restored = engine()
    keys = restored.partition(0).restore_entries(stored.meta, stored.entries)
    total_s = time.perf_counter() - started
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    expected = json.loads(expected_file.read_text())
    got = restored.read_many(expected["keys"], expected["at"])
    assert got == expected["features"], "restored features differ from the writer's"
    broker.close()
    return {"keys": keys, "read_s": read_s, "restore_s": total_s, "peak_rss_mb": peak_mb}


def main() -> None:
    from results import render, save_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--kafka", help="also measure on this Kafka bootstrap address")
    parser.add_argument("--restore", nargs=2, help=argparse.SUPPRESS)  # URL, expected file
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    if args.restore:
        print(json.dumps(restore(args.restore[0], Path(args.restore[1]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        writer, meta, entries = build(args.keys)
        sample = [int(k) for k in np.random.default_rng(1).choice(args.keys, SAMPLE)]
        at = 3 * 60_000 + args.keys // 1000
        expected = {"keys": sample, "at": at, "features": writer.read_many(sample, at)}
        expected_file = Path(tmp) / "expected.json"
        expected_file.write_text(json.dumps(expected))
        size = sum(len(k) + len(v or b"") for k, v in entries)
        del writer
        urls = [f"embedded://{tmp}/broker.db"]
        if args.kafka:
            urls.append(f"kafka://{args.kafka}")
        rows = []
        for url in urls:
            records = write(url, meta, entries)
            command = [sys.executable, __file__, "--restore", url, str(expected_file)]
            out = subprocess.run(command, check=True, capture_output=True, text=True)
            sys.stderr.write(out.stderr)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result.update(
                round=0,
                broker=url.split("://")[0],
                records=records,
                state_mb=round(size / 1e6, 1),
                keys_per_s=round(result["keys"] / result["restore_s"]),
            )
            print(json.dumps(result), flush=True)
            rows.append(result)
    settings = {"keys": args.keys, "kafka": bool(args.kafka)}
    path = save_results(Path(args.results), "state_restore_bench", settings, rows)
    print(f"raw results: {path}\n")
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
