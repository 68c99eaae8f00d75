"""Online store read latency: memory, SQLite and Redis side by side with Feast's local SQLite
online store, side by side in each of --rounds rounds (the order rotating), raw results kept
in bench/results/ and printed as a table (median and range over the rounds).

    python bench/online_store_bench.py [--keys 10000] [--reads 20000] [--blob 2048]
                                       [--stores memory,sqlite,redis,feast] [--redis-url URL]
                                       [--rounds 3]

Each store holds ``--keys`` entities of one view, each a random ``--blob``-byte state blob
(the size of a card's windowed state). Every read is timed alone with perf_counter_ns,
after a warm-up, over ``--reads`` reads of 1 random key and ``--reads`` reads of 100 random
keys: the latency a serving request pays, Python overhead included.

Redis: a local redis-server on 127.0.0.1 started by scripts/redis.sh (stopped at the end if
this run started it), unless --redis-url names one.

Feast (pip install feast; the ``bench`` extra): a throwaway feature repo in a temp dir, one
FeatureView of 15 Float64 features over an INT64 entity, the same number of entities
written with ``FeatureStore.write_to_online_store``, read with ``get_online_features(...)
.to_dict()``. Not the same work: Feast decodes 15 typed values per entity, streamsense's
stores return one opaque blob per key (the view decodes it); both are "fetch one entity's
precomputed state for a request".
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

from streamsense.store import (  # noqa: E402
    MemoryOnlineStore,
    OnlineRow,
    OnlineStore,
    SqliteOnlineStore,
)

VIEW = "cards.card_id"
BATCH = 1000
WARMUP = 1000
FEATURES = 15


def percentile(sorted_ns: list[int], q: float) -> float:
    """The q-quantile (nearest rank) in milliseconds."""
    index = min(len(sorted_ns) - 1, max(0, round(q * len(sorted_ns)) - 1))
    return sorted_ns[index] / 1e6


def measure(read: Callable[[list[Any]], object], batches: list[list[Any]]) -> dict[str, float]:
    for keys in batches[:WARMUP]:
        read(keys)
    gc.collect()
    timings = []
    clock = time.perf_counter_ns
    for keys in batches:
        start = clock()
        read(keys)
        timings.append(clock() - start)
    timings.sort()
    return {
        "p50": percentile(timings, 0.50),
        "p99": percentile(timings, 0.99),
        "p999": percentile(timings, 0.999),
        "mean": sum(timings) / len(timings) / 1e6,
    }


def key_batches(n_keys: int, reads: int, size: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[f"card-{rng.randrange(n_keys)}" for _ in range(size)] for _ in range(reads)]


def bench_store(
    store: OnlineStore, n_keys: int, reads: int, blob_size: int
) -> dict[int, dict[str, float]]:
    rng = random.Random(1)
    now = int(time.time() * 1000)
    for lo in range(0, n_keys, BATCH):
        rows = [
            OnlineRow(f"card-{i}", now, rng.randbytes(blob_size))
            for i in range(lo, min(n_keys, lo + BATCH))
        ]
        assert store.write(VIEW, rows) == len(rows)
    probe = store.read(VIEW, ["card-0", "missing"])
    assert probe[0] is not None and len(probe[0].blob) == blob_size and probe[1] is None
    results = {}
    for size in (1, 100):
        batches = key_batches(n_keys, reads, size, seed=size)
        results[size] = measure(lambda keys: store.read(VIEW, keys), batches)
    return results


# -- Redis -------------------------------------------------------------------------------------
def redis_server(url: str | None) -> tuple[str, bool]:
    """The URL to use, and whether this run started the server (so must stop it)."""
    if url:
        return url, False
    script = ROOT / "scripts" / "redis.sh"
    running = subprocess.run([script, "status"], capture_output=True).returncode == 0
    out = subprocess.run([script, "start"], capture_output=True, text=True, check=True)
    return f"redis://{out.stdout.strip().splitlines()[-1]}/0", not running


def bench_redis(url: str, n_keys: int, reads: int, blob_size: int) -> dict[int, dict[str, float]]:
    from streamsense.store.redis_online import RedisOnlineStore

    prefix = f"ssbench-{random.randrange(1 << 30):x}:"
    store = RedisOnlineStore(url, prefix=prefix)
    try:
        return bench_store(store, n_keys, reads, blob_size)
    finally:
        store.delete(VIEW, [f"card-{i}" for i in range(n_keys)])
        store.close()


# -- Feast -------------------------------------------------------------------------------------
def bench_feast(n_keys: int, reads: int, folder: Path) -> dict[int, dict[str, float]]:
    from datetime import UTC, datetime, timedelta

    import numpy as np
    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.repo_config import RepoConfig
    from feast.types import Float64

    names = [f"f{i}" for i in range(FEATURES)]
    config = RepoConfig(
        project="ssbench",
        registry=str(folder / "registry.db"),
        provider="local",
        online_store={"type": "sqlite", "path": str(folder / "online.db")},
        offline_store={"type": "file"},
        entity_key_serialization_version=3,
        repo_path=str(folder),
    )
    store = FeatureStore(config=config)
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "card_id": np.arange(n_keys, dtype=np.int64),
            "event_timestamp": [datetime.now(UTC)] * n_keys,
            **{name: rng.random(n_keys) for name in names},
        }
    )
    frame.to_parquet(folder / "cards.parquet")
    card = Entity(name="card", join_keys=["card_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="card_features",
        entities=[card],
        ttl=timedelta(days=1),
        schema=[Field(name=name, dtype=Float64) for name in names],
        source=FileSource(path=str(folder / "cards.parquet"), timestamp_field="event_timestamp"),
        online=True,
    )
    store.apply([card, view])
    store.write_to_online_store("card_features", frame)
    refs = [f"card_features:{name}" for name in names]

    def read(rows: list[dict[str, int]]) -> dict[str, Any]:
        return store.get_online_features(features=refs, entity_rows=rows).to_dict()

    probe = read([{"card_id": 7}])
    assert probe["f3"] == [float(frame["f3"][7])], probe
    results = {}
    for size in (1, 100):
        batches = [
            [{"card_id": int(k)} for k in keys]
            for keys in (
                [int(key.removeprefix("card-")) for key in batch]
                for batch in key_batches(n_keys, reads, size, seed=size)
            )
        ]
        results[size] = measure(read, batches)
    return results


# -- main --------------------------------------------------------------------------------------
def latency_rows(
    round_index: int, results: dict[str, dict[int, dict[str, float]]]
) -> list[dict[str, Any]]:
    """One raw row per store and read size (1 or 100 keys), latencies in ms."""
    return [
        {
            "round": round_index,
            "store": store,
            "keys": size,
            **{f"{stat}_ms": value for stat, value in stats.items()},
        }
        for store, by_size in results.items()
        for size, stats in by_size.items()
    ]


def one_round(args: argparse.Namespace, order: list[str]) -> dict[str, dict[int, dict[str, float]]]:
    results: dict[str, dict[int, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="ss-online-bench-") as tmp:
        folder = Path(tmp)
        for name in order:
            if name == "memory":
                store: OnlineStore = MemoryOnlineStore()
                results["memory"] = bench_store(store, args.keys, args.reads, args.blob)
            elif name == "sqlite":
                sqlite = SqliteOnlineStore(folder / "online.db")
                results["sqlite (file, WAL)"] = bench_store(
                    sqlite, args.keys, args.reads, args.blob
                )
                sqlite.close()
            elif name == "redis":
                url, started = redis_server(args.redis_url)
                try:
                    results["redis (127.0.0.1)"] = bench_redis(
                        url, args.keys, args.reads, args.blob
                    )
                finally:
                    if started:
                        subprocess.run([ROOT / "scripts" / "redis.sh", "stop"], capture_output=True)
            elif name == "feast":
                import feast  # the bench extra; a missing peer fails the run, never hides

                feast_dir = folder / "feast"
                feast_dir.mkdir()
                label = f"feast {feast.__version__} sqlite, 15 features"
                results[label] = bench_feast(args.keys, args.reads, feast_dir)
    return results


def main() -> None:
    from handbook_peers import rotated
    from results import render, save_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=20_000, help="timed reads per case")
    parser.add_argument("--blob", type=int, default=2048, help="bytes per state blob")
    parser.add_argument("--stores", default="memory,sqlite,redis,feast")
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    rows = []
    for round_index in range(args.rounds):
        order = rotated(args.stores.split(","), round_index)
        rows += latency_rows(round_index, one_round(args, order))
        print(f"round {round_index} done", flush=True)
    settings = {"keys": args.keys, "reads": args.reads, "blob": args.blob, "rounds": args.rounds}
    path = save_results(Path(args.results), "online_store_bench", settings, rows)
    print(f"raw results: {path}\n")
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
