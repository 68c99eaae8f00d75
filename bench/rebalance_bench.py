"""A worker killed under load: how much the survivors notice, and how soon its partitions
are processed again (issue #20, non-stop rebalancing).

    python bench/rebalance_bench.py [--bootstrap 127.0.0.1:9092] [--rounds 3] [--rate 1000]
                                    [--seconds 40] [--kill-at 15] [--session-timeout-ms 6000]

The pipeline is bench/kafka_bench.py's (the fraud handbook's 15 features, two hops with a
repartition by customer, at least once), run by three streamsense workers that commit every
2 ms. Events are produced open loop at --rate; at --kill-at seconds one worker is
SIGKILLed (it leaves nothing: its session runs out). An event "of the survivors" went
through partitions that never belonged to the killed worker at either hop (terminal
partition and customer partition); the others are "moved". Measured per round:

* the survivors' p99 produce → decision in the steady window (from 5 s to the kill) and
  in the kill window (from the kill until the moved partitions are processed again, plus
  two seconds), and their ratio (goal: under 2);
* the moved partitions' recovery: from the kill until the first decision of an event of
  a moved partition produced after the kill (goal: at most the session timeout + 2 s);
* decisions missing at the end (must be 0: at least once loses nothing).

Kafka's groups use KIP-848's consumer protocol (only moved partitions change hands);
``--group-protocol classic`` measures the eager protocol for comparison.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [
    str(Path(__file__).resolve().parent),
    str(Path(__file__).resolve().parents[1] / "src"),
]

import kafka_bench as kb  # noqa: E402  (the pipeline, its events and its output watcher)

WORKERS = 3


class KillRun(kb.Run):
    """Three streamsense workers with a chosen session timeout and group protocol."""

    def __init__(self, bootstrap: str, tmp: Path, session_timeout_ms: int, protocol: str):
        super().__init__("streamsense", WORKERS, bootstrap, tmp, latency=True)
        self.session_timeout_ms = session_timeout_ms
        self.protocol = protocol

    def _command(self, i: int) -> list[str]:
        command = super()._command(i)
        broker = command.index("--broker") + 1
        command[broker] += f"?group_protocol={self.protocol}"
        return [*command, "--session-timeout-ms", str(self.session_timeout_ms)]


def assignment(client: Any, group: str) -> dict[str, set[int]]:
    """Each member's partition numbers (transactions topic and repartition topics)."""
    described = kb._describe_group(client, group)
    if described is None:
        return {}
    return {
        m.member_id: {tp.partition for tp in m.assignment.topic_partitions}
        for m in described.members
    }


def customer_partitions(values: list[bytes]) -> list[int]:
    """The second hop's partition of each event: its customer's (ss.Repartition keys by
    the customer id's text, placed by murmur2 like every key)."""
    from streamsense.brokers import partition_for

    customers = (str(json.loads(v)["CUSTOMER_ID"]).encode() for v in values)
    return [partition_for(key, kb.PARTITIONS) for key in customers]


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else float("nan")


def one_round(
    args: argparse.Namespace, client: Any, admin: Any, tmp: Path, events: kb.Events
) -> dict[str, Any]:
    run = KillRun(args.bootstrap, tmp, args.session_timeout_ms, args.group_protocol)
    run.create_topics(admin)
    run.start()
    try:
        run.wait_stable(client)
        before = assignment(client, run.name)
        result = drive(args, run, client, before, events)
    finally:
        run.stop()
    return result


def drive(
    args: argparse.Namespace,
    run: KillRun,
    client: Any,
    before: dict[str, set[int]],
    events: kb.Events,
) -> dict[str, Any]:
    values, keys, parts = events
    n = min(len(values), int(args.rate * args.seconds))
    ids = [json.loads(v)["TRANSACTION_ID"] for v in values[:n]]
    second_hop = customer_partitions(values[:n])
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    watcher = ctx.Process(
        target=kb._watch_outputs, args=(run.bootstrap, f"{run.name}.decisions", n, send)
    )
    watcher.start()
    time.sleep(2.0)
    producer = kb._producer(run.bootstrap, 0)
    topic = f"{run.name}.transactions"
    scheduled: list[float] = []
    start = time.time() + 0.1
    killed_at: float | None = None
    for i in range(n):
        due = start + i / args.rate
        if killed_at is None and due - start >= args.kill_at:
            run.processes[1].send_signal(signal.SIGKILL)
            killed_at = time.time()
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        producer.produce(topic, values[i], keys[i], parts[i])
        producer.poll(0)
        scheduled.append(due)
    producer.flush()
    after = assignment(client, run.name)
    seen: dict[int, float] = receive.recv()
    watcher.join()
    assert killed_at is not None
    gone = set(before) - set(after)
    moved = set().union(*(before[m] for m in gone)) if gone else set()
    return measure(args, ids, scheduled, parts, second_hop, seen, killed_at, moved)


def measure(
    args: argparse.Namespace,
    ids: list[int],
    scheduled: list[float],
    parts: list[int],
    second_hop: list[int],
    seen: dict[int, float],
    killed_at: float,
    moved: set[int],
) -> dict[str, Any]:
    def is_moved(i: int) -> bool:
        return parts[i] in moved or second_hop[i] in moved

    after_kill = [
        seen[tx]
        for i, tx in enumerate(ids)
        if scheduled[i] >= killed_at and is_moved(i) and tx in seen
    ]
    recovered_at = min(after_kill) if after_kill else float("nan")
    window_end = recovered_at + 2.0
    warm = scheduled[0] + 5.0
    steady, during = [], []
    for i, tx in enumerate(ids):
        if tx not in seen or is_moved(i):
            continue
        latency_ms = (seen[tx] - scheduled[i]) * 1000
        if warm <= scheduled[i] < killed_at:
            steady.append(latency_ms)
        elif killed_at <= scheduled[i] < window_end:
            during.append(latency_ms)
    row = {
        "kind": "kill",
        "workers": WORKERS,
        "rate": args.rate,
        "session_timeout_ms": args.session_timeout_ms,
        "group_protocol": args.group_protocol,
        "moved_partitions": sorted(moved),
        "steady_p99_ms": p99(steady),
        "kill_window_p99_ms": p99(during),
        "p99_ratio": p99(during) / p99(steady),
        "kill_window_s": window_end - killed_at,
        "recovery_s": recovered_at - killed_at,
        "missing": len(ids) - sum(tx in seen for tx in ids),
        "events": len(ids),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(
        f"moved {row['moved_partitions']}: survivors p99 steady {row['steady_p99_ms']:.1f} ms, "
        f"kill window {row['kill_window_p99_ms']:.1f} ms (x{row['p99_ratio']:.2f}); "
        f"moved partitions processed again after {row['recovery_s']:.2f} s "
        f"(session {args.session_timeout_ms / 1000:.0f} s); missing {row['missing']}; "
        f"load {row['load_average']}",
        flush=True,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--kill-at", type=float, default=15)
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument("--group-protocol", default="consumer", choices=["consumer", "classic"])
    parser.add_argument("--results", default=str(kb.ROOT / "bench" / "results"))
    parser.add_argument("--keep-logs", action="store_true", help="keep the workers' logs")
    args = parser.parse_args()
    from confluent_kafka.admin import AdminClient
    from results import save_results

    from streamsense.brokers.kafka import KafkaBroker

    events, _ = kb.load_events(int(args.rate * args.seconds))
    admin = KafkaBroker(args.bootstrap)
    client = AdminClient({"bootstrap.servers": args.bootstrap})
    tmp = Path(tempfile.mkdtemp(prefix="rebalance-bench-"))
    rows = []
    try:
        for round_index in range(args.rounds):
            rows.append({"round": round_index, **one_round(args, client, admin, tmp, events)})
    finally:
        if args.keep_logs:
            print(f"workers' logs: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
        admin.close()
    path = save_results(Path(args.results), "rebalance_bench", vars(args), rows)
    print(f"raw results: {path}")


if __name__ == "__main__":
    main()
