"""The operator UI's cost (issue #18): each page's first render, server side, with a million
decisions stored, and the CPU the UI takes while a page is open and the pipeline writes.

A decisions topic of ``--decisions`` records (fraud-like: 20 features, a latency breakdown)
and a source topic as long sit in an embedded broker. Each round builds a fresh UI (no
sample, nothing followed yet: a first visit) and times each page's first GET in process
(Starlette's test client: the server's time, no network, no browser), on one broker
connection opened before, as a running server's is. Then, while a child
process writes ``--rate`` decisions a second, the UI is polled as an open page polls it
(its live part and its charts every 2 s) for ``--seconds``; the CPU this process used over
that time, per second of wall time, is the UI's share of a core.

    python bench/ui_bench.py [--decisions 1000000] [--rounds 3] [--smoke sizes: see run_all]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

from results import save_results  # noqa: E402

import streamsense as ss  # noqa: E402
from streamsense.brokers import Broker, open_broker  # noqa: E402
from streamsense.ui import ui_context  # noqa: E402
from streamsense.ui.web import create_ui  # noqa: E402

PAGES = ("overview", "streams", "decisions", "features", "models")
POLLED = ("/overview/live", "/api/chart/throughput", "/decisions/live", "/api/chart/actions")


class Event(ss.Schema):
    key: str
    ts: int
    amount: float


EVENTS = ss.Stream("bench.events", Event, key="key", time="ts", partitions=1)


def bench_app() -> ss.App:
    app = ss.App("bench")
    app.flow(EVENTS).stage("decide", lambda e, ctx: e).sink(ss.TopicSink("bench.decisions"))
    return app


def decision(i: int) -> bytes:
    return msgspec.json.encode(
        {"event_id": f"bench.events/0/{i}", "key": str(i % 5000), "score": (i % 97) / 97,
         "action": ("allow", "review", "block")[i % 3], "tier": ("light", "heavy")[i % 2],
         "model_version": "3", "features": {f"f{j}": float(i % (j + 7)) for j in range(20)},
         "degraded": i % 50 == 0, "degraded_reasons": ["heavy_shed"] if i % 50 == 0 else [],
         "latency_ms": {"features": 0.05, "light": 0.02, "total": 0.08 + (i % 10) / 100}}
    )  # fmt: skip


def fill(url: str, count: int) -> None:
    broker = open_broker(url)
    for topic, config in bench_app().topic_configs().items():
        broker.create_topic(topic, config, exist_ok=True)
    producer = broker.producer(batch_size=20_000)
    event = b'{"key": "1", "ts": 1, "amount": 2.0}'
    for i in range(count):
        producer.send("bench.decisions", decision(i), str(i % 5000).encode())
        producer.send("bench.events", event, b"1")
    producer.flush()
    consumer = broker.consumer("bench")
    consumer.commit({ss.TopicPartition("bench.events", 0): count})
    broker.close()


def write_on(url: str, rate: float, seconds: float) -> None:
    """The pipeline's stand-in: ``rate`` decisions a second, in batches of a tenth."""
    broker = open_broker(url)
    producer = broker.producer()
    i, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        for _ in range(max(1, int(rate / 10))):
            producer.send("bench.decisions", decision(i), b"1")
            i += 1
        producer.flush()
        time.sleep(0.1)
    broker.close()


def warm_up(broker: Broker) -> None:
    """One request to a UI's login page (no data): the process has served before, as a
    running server has (first imports, the test client's threads)."""
    from fastapi.testclient import TestClient

    ui = create_ui(ui_context(broker, name="bench", app=bench_app()), root="/")
    TestClient(ui).get("/login")
    ui.state.sampler.close()


def first_renders(broker: Broker) -> dict[str, float]:
    """Each page's first GET on a UI of its own (nothing sampled or followed yet), over
    the broker connection of a running server (open and used: ``main`` opens it once)."""
    from fastapi.testclient import TestClient

    times: dict[str, float] = {}
    for page in PAGES:
        ui = create_ui(ui_context(broker, name="bench", app=bench_app()), root="/")
        client = TestClient(ui)
        started = time.perf_counter()
        answer = client.get(f"/{page}")
        times[page] = (time.perf_counter() - started) * 1000
        assert answer.status_code == 200, answer.text[:300]
        ui.state.sampler.close()
    return times


def open_page_cpu(url: str, rate: float, seconds: float) -> float:
    from fastapi.testclient import TestClient

    broker = open_broker(url)
    ui = create_ui(ui_context(broker, name="bench", app=bench_app()), root="/")
    client = TestClient(ui)
    writer = multiprocessing.Process(target=write_on, args=(url, rate, seconds + 2))
    writer.start()
    time.sleep(1)
    cpu, wall = time.process_time(), time.monotonic()
    while time.monotonic() - wall < seconds:
        for path in POLLED:
            client.get(path)
        time.sleep(2)
    share = (time.process_time() - cpu) / (time.monotonic() - wall)
    writer.join()
    ui.state.sampler.close()
    broker.close()
    return share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1_000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"embedded://{Path(folder) / 'broker.db'}"
        started = time.perf_counter()
        fill(url, args.decisions)
        print(f"stored {args.decisions:,} decisions in {time.perf_counter() - started:.0f} s")
        rows: list[dict[str, Any]] = []
        broker = open_broker(url)
        for topic in broker.list_topics():  # a serving process has used its broker already
            broker.describe_topic(topic)
        warm_up(broker)
        for round_ in range(args.rounds):
            times = first_renders(broker)
            rows += [
                {"kind": "first_render", "round": round_, "page": p, "ms": ms}
                for p, ms in times.items()
            ]
            print(f"round {round_}: " + ", ".join(f"{p} {ms:.0f} ms" for p, ms in times.items()))
        broker.close()
        share = open_page_cpu(url, args.rate, args.seconds)
        rows.append({"kind": "open_page_cpu", "rate": args.rate, "cpu_share": share})
        print(f"UI CPU while open, {args.rate:,.0f} decisions/s written: {share:.1%} of a core")
    worst = max(r["ms"] for r in rows if r["kind"] == "first_render")
    median = statistics.median(r["ms"] for r in rows if r["kind"] == "first_render")
    print(f"first render: median {median:.0f} ms, worst {worst:.0f} ms")
    settings = {
        "decisions": args.decisions,
        "rounds": args.rounds,
        "rate": args.rate,
        "seconds": args.seconds,
    }
    print(save_results(args.results, "ui_bench", settings, rows))


if __name__ == "__main__":
    main()
