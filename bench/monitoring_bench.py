"""Monitoring's cost per row (issue #17): drift windows alone, and a flow with and without a
MonitorSink, on the synthetic payment stream with weekly cycles (monitoring/synthetic.py).

    python bench/monitoring_bench.py [--weeks 12] [--rounds 3]

- ``windows``: DriftWindows.update over column batches (amount, score numeric; channel
  categorical), tumbling windows of ``--window-hours`` (default a day), a weekday x hour
  seasonal reference: CPU µs per row.
- ``flow``: a worker on the memory broker reading the payments (one partition) through a
  pass-through stage into a TopicSink, alone and with a MonitorSink beside it: events/s and
  the share of throughput monitoring costs. Peers take turns running first.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import streamsense as ss
from streamsense.brokers import MemoryBroker, TopicConfig
from streamsense.monitoring import AlertRule, DriftWindows, ReferenceProfile, build_profile
from streamsense.monitoring.seasons import DAY_MS, HOUR_MS
from streamsense.monitoring.sink import MonitorSink
from streamsense.monitoring.synthetic import MONDAY_MS, WEEK_MS, SyntheticStream, weekly_stream

REFERENCE_WEEKS = 4
COLUMNS = ("amount", "channel", "score")


class Pay(ss.Schema):
    terminal: str
    ts: int
    amount: float
    channel: str
    score: float


PAYMENTS = ss.Stream("payments", Pay, key="terminal", time="ts", partitions=1)
RULES = [AlertRule(kind="feature_drift", statistic="psi", threshold=0.1, cooldown_ms=DAY_MS)]


def profile_of(stream: SyntheticStream) -> ReferenceProfile:
    reference = stream.between(MONDAY_MS, MONDAY_MS + REFERENCE_WEEKS * WEEK_MS)
    return build_profile(
        {k: reference.columns[k] for k in COLUMNS},
        reference.times,
        scores=["score"],
        categorical=["channel"],
        seasonality="weekday_hour",
    )


def time_windows(
    profile: ReferenceProfile,
    live: SyntheticStream,
    args: argparse.Namespace,
    columns: tuple[str, ...],
) -> float:
    windows = DriftWindows(profile, args.window_hours * HOUR_MS, columns=columns)
    batch = args.batch
    started = time.process_time()
    for start in range(0, live.times.size, batch):
        part = slice(start, start + batch)
        windows.update({k: live.columns[k][part] for k in columns}, live.times[part])
    windows.flush()
    return time.process_time() - started


def payments_broker(live: SyntheticStream) -> MemoryBroker:
    broker = MemoryBroker()
    broker.create_topic("payments", TopicConfig(1))
    c = live.columns
    rows = zip(live.times, c["terminal"], c["amount"], c["channel"], c["score"], strict=True)
    with broker.producer() as producer:
        for ts, terminal, amount, channel, score in rows:
            payment = Pay(str(terminal), int(ts), float(amount), str(channel), float(score))
            record = PAYMENTS.to_record(payment)
            producer.send(record.topic, record.value, record.key)
    return broker


def time_flow(live: SyntheticStream, profile: ReferenceProfile | None, window_ms: int) -> float:
    broker = payments_broker(live)
    app = ss.App("monitoring-bench")
    flow = app.flow(PAYMENTS).stage("pass", lambda value, ctx: value)
    flow.sink(ss.TopicSink("payments.out"))
    if profile is not None:
        flow.sink(MonitorSink(profile, RULES, topic="payments.alerts", window_ms=window_ms))
    worker = ss.Worker(app, broker)
    started = time.process_time()
    worker.run(until_caught_up=True)
    return time.process_time() - started


def one_round(
    profile: ReferenceProfile, live: SyntheticStream, args: argparse.Namespace, index: int
) -> list[dict[str, Any]]:
    n = int(live.times.size)
    rows: list[dict[str, Any]] = []
    for label, columns in (("numeric", ("amount", "score")), ("numeric+categorical", COLUMNS)):
        seconds = time_windows(profile, live, args, columns)
        rows.append({"kind": "windows", "round": index, "peer": label, "seconds": seconds,
                     "us_per_row": 1e6 * seconds / n})  # fmt: skip
    peers = [("flow", None), ("flow+monitor", profile)][:: -1 if index % 2 else 1]
    for label, monitored in peers:
        seconds = time_flow(live, monitored, args.window_hours * HOUR_MS)
        rows.append({"kind": "flow", "round": index, "peer": label, "seconds": seconds,
                     "events_per_s": n / seconds})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=12, help="monitored weeks after the reference")
    parser.add_argument("--rows-per-hour", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--window-hours", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--results", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from results import monitoring_tables, save_results

    weeks = REFERENCE_WEEKS + args.weeks
    stream = weekly_stream(weeks, seed=1, rows_per_hour=args.rows_per_hour)
    profile = profile_of(stream)
    live = stream.between(MONDAY_MS + REFERENCE_WEEKS * WEEK_MS, MONDAY_MS + weeks * WEEK_MS)
    rows = [row for r in range(args.rounds) for row in one_round(profile, live, args, r)]
    settings = {**vars(args), "rows": int(live.times.size)}
    path = save_results(Path(args.results), "monitoring_bench", settings, rows)
    print(f"{live.times.size:,} monitored rows, {args.rounds} rounds; raw results: {path}")
    print(monitoring_tables({"rows": rows}))


if __name__ == "__main__":
    main()
