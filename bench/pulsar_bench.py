"""The fraud-handbook pipeline of bench/kafka_bench.py on Apache Pulsar next to Apache Kafka:
the same streamsense worker, the same events, the same machine, in the same run.

    scripts/kafka.sh start; scripts/pulsar.sh start     # each prints its URL
    python bench/pulsar_bench.py --kafka 127.0.0.1:9092 \\
        --pulsar 'pulsar://127.0.0.1:16650?admin=http://127.0.0.1:18080' \\
        [--limit 50000] [--rounds 2] [--rate 500] [--seconds 15]

The workload is kafka_bench's streamsense peer (its create_app: terminal features, a
repartition by customer, customer features, the fraud rules; at least once, one worker),
run with `streamsense run bench/kafka_bench.py --broker URL`. Only the broker differs.

Throughput: the worker starts and is given its partitions on empty topics; then every
event is produced at once (streamsense's producer on that broker) and the time runs from
the first send until the decisions topic holds one decision per event. The worker's CPU
time per event is reported beside it. Latency: a new worker, open loop at --rate events/s
for --seconds; latency = when a decision is first seen by a reader of the decisions topic
(a process of its own, streamsense's consumer on the same broker) minus its event's
scheduled send time; the first second is warm-up. The worker commits every 2 ms.
Decisions are compared with DuckDB's batch computation of the handbook (the share exact).
Rounds alternate which broker runs first.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).with_name("kafka_bench.py")
WORKER_START_S = 180.0
OUTPUT_TIMEOUT_S = 1800.0


class Worker:
    """One `streamsense run bench/kafka_bench.py` process on topics of its own."""

    def __init__(self, broker: str, url: str, tmp: Path, *, latency: bool) -> None:
        self.broker, self.url = broker, url
        self.name = f"pb-{broker}-{uuid.uuid4().hex[:6]}"
        self.dir = tmp / self.name
        self.latency = latency
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from kafka_bench import create_app

        from streamsense.brokers import open_broker
        from streamsense.runtime.worker import Worker as Runtime

        os.environ["KAFKA_BENCH_NAME"] = self.name
        broker = open_broker(self.url)
        try:
            Runtime(create_app(), broker).ensure_topics()
        finally:
            broker.close()
        self.dir.mkdir(parents=True)
        batch = ["--batch-ms", "2"] if self.latency else ["--batch-size", "5000"]
        command = [
            sys.executable, "-m", "streamsense", "run", str(BENCH), "--broker", self.url,
            "--state-dir", str(self.dir), "-v", *batch,
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
        with (self.dir / "worker.log").open("wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_for("assigned", WORKER_START_S)

    def log(self) -> str:
        return (self.dir / "worker.log").read_text(errors="replace")

    def _wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            self.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no {text!r} in {timeout} s")
            time.sleep(0.1)

    def check(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} died:\n{self.log()[-3000:]}")

    def cpu_seconds(self) -> float:
        assert self.process is not None
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def decisions_count(broker: Any, topic: str) -> int:
    return int(broker.describe_topic(topic).messages)


def throughput(worker: Worker, events: Any) -> dict[str, float]:
    from streamsense.brokers import open_broker

    values, keys, _ = events
    broker = open_broker(worker.url)
    topic, out = f"{worker.name}.transactions", f"{worker.name}.decisions"
    cpu = worker.cpu_seconds()
    started = time.perf_counter()
    with broker.producer() as producer:
        for value, key in zip(values, keys, strict=True):
            producer.send(topic, value, key)
    produced = time.perf_counter() - started
    while decisions_count(broker, out) < len(values):
        worker.check()
        if time.perf_counter() - started > OUTPUT_TIMEOUT_S:
            raise TimeoutError(f"{worker.name}: outputs did not arrive")
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    broker.close()
    return {
        "seconds": seconds,
        "events_per_s": len(values) / seconds,
        "produce_s": produced,
        "cpu_us_per_event": (worker.cpu_seconds() - cpu) / len(values) * 1e6,
    }


def _watch(url: str, topic: str, expected: int, result: Any) -> None:
    """In its own process: when each decision (by transaction id) is first seen."""
    import msgspec

    from streamsense.brokers import TopicPartition, open_broker

    broker = open_broker(url)
    partitions = broker.describe_topic(topic).config.partitions
    consumer = broker.consumer()
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    seen: dict[int, float] = {}
    deadline = time.monotonic() + OUTPUT_TIMEOUT_S
    result.send("ready")
    while len(seen) < expected and time.monotonic() < deadline:
        records = consumer.poll(1000, timeout=0.05)
        now = time.time()
        for record in records:
            tx = msgspec.json.decode(record.value or b"")["transaction_id"]
            seen.setdefault(tx, now)
    consumer.close()
    broker.close()
    result.send(seen)


def latency(worker: Worker, events: Any, rate: float, seconds: float) -> dict[str, float]:
    from streamsense.brokers import open_broker

    values, keys, _ = events
    n = min(len(values), int(rate * seconds))
    ids = [json.loads(v)["TRANSACTION_ID"] for v in values[:n]]
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    watcher = ctx.Process(target=_watch, args=(worker.url, f"{worker.name}.decisions", n, send))
    watcher.start()
    assert receive.recv() == "ready"
    broker = open_broker(worker.url)
    producer = broker.producer(linger_ms=0)
    topic = f"{worker.name}.transactions"
    scheduled: list[float] = []
    start = time.time() + 0.1
    for i in range(n):
        due = start + i / rate
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)  # not a busy loop: the machine's two cores run everything
        producer.send(topic, values[i], keys[i])
        producer.flush()
        scheduled.append(due)
    producer.close()
    seen: dict[int, float] = receive.recv()
    watcher.join()
    broker.close()
    warm = int(rate)
    lat = sorted(
        (seen[tx] - due) * 1000
        for tx, due in zip(ids[warm:], scheduled[warm:], strict=True)
        if tx in seen
    )
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
    return {
        "p50_ms": pick(0.5),
        "p99_ms": pick(0.99),
        "max_ms": lat[-1],
        "missing": n - warm - len(lat),
        "events": n,
    }


def exact_share(worker: Worker, reference: Any) -> float:
    from kafka_bench import check, read_decisions

    from streamsense.brokers import open_broker

    broker = open_broker(worker.url)
    try:
        return float(check(read_decisions(broker, worker.name), reference))
    finally:
        broker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kafka", default="127.0.0.1:9092", help="Kafka bootstrap host:port")
    parser.add_argument("--pulsar", required=True, help="the URL scripts/pulsar.sh prints")
    parser.add_argument("--limit", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2, help="each broker first in one round")
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]
    from kafka_bench import load_events, rotated
    from results import save_results

    urls = {"kafka": f"kafka://{args.kafka}", "pulsar": args.pulsar}
    events, reference = load_events(args.limit)
    print(f"{len(events[0]):,} events loaded", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="pulsar-bench-"))
    rows: list[dict[str, Any]] = []
    try:
        for round_index in range(args.rounds):
            for broker in rotated(list(urls), round_index):
                rows += one_round(args, broker, urls[broker], events, reference, tmp, round_index)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    path = save_results(Path(args.results), "pulsar_bench", vars(args), rows)
    print(f"raw results: {path}")


def one_round(
    args: argparse.Namespace,
    broker: str,
    url: str,
    events: Any,
    reference: Any,
    tmp: Path,
    round_index: int,
) -> list[dict[str, Any]]:
    common = {"peer": broker, "workers": 1, "round": round_index}
    worker = Worker(broker, url, tmp, latency=False)
    try:
        worker.start()
        measured = throughput(worker, events)
        measured["exact"] = exact_share(worker, reference)
    finally:
        worker.stop()
    print(f"round {round_index} {broker} throughput: {measured}", flush=True)
    rows = [{**common, "kind": "throughput", **measured}]
    worker = Worker(broker, url, tmp, latency=True)
    try:
        worker.start()
        timed = latency(worker, events, args.rate, args.seconds)
    finally:
        worker.stop()
    print(f"round {round_index} {broker} latency: {timed}", flush=True)
    return [*rows, {**common, "kind": "latency", **timed}]


if __name__ == "__main__":
    main()
