"""Priority lanes: high-priority events overtaking a backlog, on the embedded broker.

    python bench/lanes_bench.py [--backlog 200000] [--rate 200] [--partitions 4] [--rounds 3]

A backlog of ordinary orders waits in the broker; a worker (microbatch, default config)
drains it while high-priority orders arrive at a steady rate. Three runs per round (their
order rotating), each on a fresh broker file:

* lanes: high-priority orders go to the priority lane (``Stream(priority=...)``);
* one topic: the same orders go to the base topic, behind the backlog (no lanes);
* backlog only: no high-priority orders (the drain rate without lanes).

Reports each lane's produce-to-output latency (output record time minus input record time,
both broker timestamps in ms) and the backlog's drain rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]  # this checkout's code, whatever is installed

import streamsense as ss  # noqa: E402
from streamsense.brokers import EmbeddedBroker  # noqa: E402
from streamsense.runtime.worker import Worker, WorkerConfig  # noqa: E402
from streamsense.testing import drain_topic  # noqa: E402


class Order(ss.Schema):
    customer: str
    ts: int
    amount: float
    vip: bool = False


def is_vip(order: Order) -> bool:
    return order.vip


def build(partitions: int, lanes: bool) -> tuple[ss.App, ss.Stream[Order]]:
    stream = ss.Stream(
        "orders",
        Order,
        key="customer",
        time="ts",
        partitions=partitions,
        priority=is_vip if lanes else None,
    )

    def score(order: Order, ctx: ss.Context) -> dict[str, Any]:
        n, total = ctx.state.get((0, 0.0))
        ctx.state.set((n + 1, total + order.amount))
        return {"customer": order.customer, "n": n + 1, "vip": order.vip}

    app = ss.App("lanes-bench")
    app.flow(stream).stage("score", score).sink(ss.TopicSink("lanes-bench.out"))
    return app, stream


def produce_backlog(broker: EmbeddedBroker, stream: ss.Stream[Order], n: int) -> None:
    now = int(time.time() * 1000)
    with broker.producer(batch_size=50_000) as producer:
        for i in range(n):
            out = stream.to_record(Order(f"c{i % 5000}", now, float(i % 97)))
            producer.send(out.topic, out.value, out.key)


def run(path: Path, args: argparse.Namespace, mode: str) -> dict[str, Any]:
    broker = EmbeddedBroker(path)
    app, stream = build(args.partitions, lanes=mode == "lanes")
    worker = Worker(app, broker, WorkerConfig())
    worker.ensure_topics()
    produce_backlog(broker, stream, args.backlog)
    started = time.perf_counter()
    thread = threading.Thread(target=worker.run, kwargs={"until_caught_up": True})
    thread.start()
    vips = 0
    while worker.stats.events == 0:  # measure from the moment the worker is draining
        time.sleep(0.001)
    if mode != "backlog only":
        producer = broker.producer(linger_ms=0)
        period = 1.0 / args.rate
        next_at = time.perf_counter()
        while worker.stats.events < args.backlog:  # keep arriving while the backlog drains
            out = stream.to_record(Order(f"v{vips}", int(time.time() * 1000), 500.0, vip=True))
            producer.send(out.topic, out.value, out.key)
            producer.flush()
            vips += 1
            next_at += period
            time.sleep(max(0.0, next_at - time.perf_counter()))
        producer.close()
    thread.join()
    elapsed = time.perf_counter() - started
    latencies = lane_latencies(broker, stream)
    broker.close()
    commits = worker.stats.commits
    return {"mode": mode, "seconds": elapsed, "vips": vips, "commits": commits, **latencies}


def lane_latencies(broker: EmbeddedBroker, stream: ss.Stream[Order]) -> dict[str, Any]:
    produced = {
        f"{r.topic}/{r.partition}/{r.offset}": r.timestamp
        for topic in stream.lane_topics
        for r in drain_topic(broker, topic)
    }
    vip: list[int] = []
    normal: list[int] = []
    for out in drain_topic(broker, "lanes-bench.out"):
        source = dict(out.headers)["source"].decode()
        lane = vip if b'"vip":true' in (out.value or b"") else normal
        lane.append(out.timestamp - produced[source])
    return {"vip_ms": np.array(vip), "normal_ms": np.array(normal)}


def percentile_ms(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def result_row(round_index: int, result: dict[str, Any], backlog: int) -> dict[str, Any]:
    vip, normal = result["vip_ms"], result["normal_ms"]
    return {"round": round_index, "run": result["mode"], "high_priority": result["vips"],
            "high_p50_ms": percentile_ms(vip, 50), "high_p99_ms": percentile_ms(vip, 99),
            "backlog_p50_ms": percentile_ms(normal, 50),
            "backlog_p99_ms": percentile_ms(normal, 99), "drain_s": result["seconds"],
            "events_per_s": backlog / result["seconds"], "commits": result["commits"]}  # fmt: skip


MODES = ["lanes", "one topic", "backlog only"]


def main() -> None:
    from handbook_peers import rotated
    from results import render, save_results

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=200_000)
    parser.add_argument("--rate", type=float, default=200.0, help="high-priority orders/s")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            for mode in rotated(MODES, round_index):
                path = Path(tmp) / f"{round_index}-{mode.replace(' ', '-')}.db"
                rows.append(result_row(round_index, run(path, args, mode), args.backlog))
                print(f"round {round_index}: {mode}: {rows[-1]['drain_s']:.2f} s", flush=True)
    settings = {"backlog": args.backlog, "rate": args.rate, "partitions": args.partitions,
                "rounds": args.rounds, "config": "microbatch, default WorkerConfig"}  # fmt: skip
    path = save_results(Path(args.results), "lanes_bench", settings, rows)
    print(f"raw results: {path}\n")
    print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
