"""Every benchmark with its peers, one after the other: `make bench` (full sizes, results kept
under bench/results/ and BENCHMARKS.md's generated tables rewritten from them) and
`make bench-smoke` (tiny sizes, run by `make test` beside the tests: a check that every
benchmark and every peer still installs and runs; nothing is asserted about speed).

    python bench/run_all.py [--smoke] [--only broker,features,...]

Kafka, Pulsar and Redis are private to the run (scripts/kafka.sh, scripts/pulsar.sh and
scripts/redis.sh on ports and run directories of their own, stopped at the end), so it can
run while the tests use theirs.
The peers (Bytewax, Feast, Quix Streams) are installed by the caller: the `bench` extra, and
kafka_bench makes Quix's virtualenv itself.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KAFKA_PORT, KAFKA_CONTROLLER_PORT = "19092", "19093"
SERVICE_ENV = {
    "KAFKA_PORT": KAFKA_PORT,
    "KAFKA_CONTROLLER_PORT": KAFKA_CONTROLLER_PORT,
    "STREAMSENSE_KAFKA_RUN": "/tmp/streamsense-bench-kafka",
    "STREAMSENSE_REDIS_RUN": "/tmp/streamsense-bench-redis",
    "PULSAR_PORT": "19650",
    "PULSAR_HTTP_PORT": "19080",
    "PULSAR_BOOKIE_PORT": "19181",
    "STREAMSENSE_PULSAR_RUN": "/tmp/streamsense-bench-pulsar",
}
BOOTSTRAP = f"127.0.0.1:{KAFKA_PORT}"


@dataclass
class Bench:
    name: str
    script: str
    full: list[str]
    smoke: list[str]
    needs: set[str] = field(default_factory=set)
    one_core: bool = False  # pinned to CPU 0 (taskset), as BENCHMARKS.md's figures were
    smoke_too: bool = True  # part of the smoke run beside the tests


BENCHES = [
    Bench("broker", "broker_bench.py", [], ["--events", "20000", "--repeat", "1"], one_core=True),
    Bench(
        "features", "features_bench.py", [], ["--limit", "20000", "--rounds", "1"], one_core=True
    ),
    Bench(
        "online_store",
        "online_store_bench.py",
        ["--reads", "5000"],  # Feast's 100-key reads take ~20 ms each
        ["--keys", "500", "--reads", "500", "--rounds", "1"],
        needs={"redis"},
    ),
    Bench(
        "online_features",
        "online_features_bench.py",
        ["--events", "400000", "--reads", "5000"],
        ["--events", "20000", "--reads", "500", "--rounds", "1"],
        one_core=True,
    ),
    Bench("serving_calls", "serving_calls_bench.py", [], ["--calls", "500", "--rounds", "1"]),
    Bench(
        "backfill", "backfill_bench.py", [], ["--limit", "20000", "--rounds", "1"], one_core=True
    ),
    Bench("lanes", "lanes_bench.py", [], ["--backlog", "5000", "--rate", "50", "--rounds", "1"]),
    Bench("monitoring", "monitoring_bench.py", [], ["--weeks", "1", "--rounds", "1"]),
    Bench("nab", "nab_bench.py", [], ["--detectors", "rarity"], one_core=True),
    Bench(
        "iot",
        "iot_bench.py",
        [],
        ["--rounds", "1", "--demo-rounds", "0", "--rows", "5000"],
        one_core=True,
    ),
    Bench("recs", "recs_bench.py", [], ["--rounds", "1"]),
    Bench(
        "recs_http", "recs_http_bench.py", [], ["--rate", "100", "--seconds", "2", "--rounds", "1"]
    ),
    Bench("handbook_lr", "handbook_lr_check.py", [], [], smoke_too=False),  # a check, no peer
    Bench("ui", "ui_bench.py", [], ["--decisions", "20000", "--rounds", "1", "--seconds", "4"]),
    Bench(
        "fraud_replay",
        "fraud_replay_bench.py",
        ["--rounds", "3"],
        [
            *("--start", "2018-07-01", "--end", "2018-07-02", "--rounds", "1"),
            *("--train-days", "1", "--models-dir", "/tmp/streamsense-bench-smoke/fraud-models"),
        ],
    ),
    Bench(
        "state_restore",
        "state_restore_bench.py",
        ["--kafka", BOOTSTRAP],
        ["--keys", "5000", "--kafka", BOOTSTRAP],
        needs={"kafka"},
    ),
    Bench(
        "http",
        "http_bench.py",
        [],
        [
            "--events",
            "20000",
            "--requests",
            "2000",
            "--seconds",
            "2",
            "--rates",
            "200",
            "--targets",
            "bare,streamsense",
            "--rounds",
            "1",
        ],
    ),
    Bench(
        "rebalance",
        "rebalance_bench.py",
        ["--bootstrap", BOOTSTRAP],
        [
            "--bootstrap",
            BOOTSTRAP,
            "--rounds",
            "1",
            "--seconds",
            "16",
            "--kill-at",
            "8",
            "--rate",
            "100",
        ],
        needs={"kafka"},
    ),
    Bench(
        "kafka",
        "kafka_bench.py",
        ["--bootstrap", BOOTSTRAP, "--peers", "streamsense,quix,quix-rescan,bare"],
        [
            "--bootstrap",
            BOOTSTRAP,
            "--peers",
            "streamsense,quix,bare",
            "--limit",
            "3000",
            "--rounds",
            "1",
            "--workers",
            "1",
            "--seconds",
            "3",
            "--rate",
            "200",
        ],
        needs={"kafka"},
    ),
    Bench(
        "pulsar",
        "pulsar_bench.py",
        ["--kafka", BOOTSTRAP, "--limit", "50000", "--rounds", "2"],
        [
            "--kafka",
            BOOTSTRAP,
            "--limit",
            "2000",
            "--rounds",
            "1",
            "--seconds",
            "3",
            "--rate",
            "100",
        ],
        needs={"kafka", "pulsar"},
    ),
]


def _script(name: str, action: str) -> str:
    """Start or stop scripts/NAME.sh with the run's own ports and directories."""
    result = subprocess.run(
        [str(ROOT / "scripts" / name), action],
        env={**os.environ, **SERVICE_ENV},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"scripts/{name} {action} failed:\n{result.stderr[-2000:]}")
    return result.stdout.strip()


@contextmanager
def services(needed: set[str]) -> Iterator[dict[str, str]]:
    env: dict[str, str] = {}
    started: list[str] = []
    try:
        if "kafka" in needed:
            _script("kafka.sh", "start")
            started.append("kafka.sh")
        if "pulsar" in needed:
            env["BENCH_PULSAR_URL"] = _script("pulsar.sh", "start").splitlines()[-1]
            started.append("pulsar.sh")
        if "redis" in needed:
            address = _script("redis.sh", "start").splitlines()[-1]
            started.append("redis.sh")
            env["BENCH_REDIS_URL"] = f"redis://{address}/0"
        yield env
    finally:
        for name in reversed(started):
            _script(name, "stop")


def command(bench: Bench, smoke: bool, env: dict[str, str]) -> list[str]:
    args = list(bench.smoke if smoke else bench.full)
    if "redis" in bench.needs:
        args += ["--redis-url", env["BENCH_REDIS_URL"]]
    if "pulsar" in bench.needs:
        args += ["--pulsar", env["BENCH_PULSAR_URL"]]
    if smoke:  # smoke results are not figures: keep them out of bench/results/
        args += ["--results", "/tmp/streamsense-bench-smoke"] if _saves_results(bench) else []
    pinned = ["taskset", "-c", "0"] if bench.one_core and not smoke else []
    return [*pinned, sys.executable, str(ROOT / "bench" / bench.script), *args]


def _saves_results(bench: Bench) -> bool:
    return "--results" in (ROOT / "bench" / bench.script).read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no figures kept")
    names = ",".join(b.name for b in BENCHES)
    parser.add_argument("--only", help=f"comma-separated names: {names}")
    args = parser.parse_args()
    chosen = [
        b
        for b in BENCHES
        if (b.name in args.only.split(",") if args.only else b.smoke_too or not args.smoke)
    ]
    failed: list[str] = []
    with services(set().union(*(b.needs for b in chosen))) as env:
        for bench in chosen:
            started = time.perf_counter()
            print(f"== {bench.name}: {' '.join(command(bench, args.smoke, env))}", flush=True)
            run = subprocess.run(command(bench, args.smoke, env), cwd=ROOT, check=False)
            seconds = time.perf_counter() - started
            print(f"== {bench.name}: exit {run.returncode} in {seconds:.0f} s", flush=True)
            code = run.returncode
            if code != 0:
                failed.append(bench.name)
    if failed:
        raise SystemExit(f"benchmarks that failed: {', '.join(failed)}")
    print(f"all {len(chosen)} benchmarks ran")


if __name__ == "__main__":
    main()
