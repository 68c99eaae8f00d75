"""What monitoring costs the fraud pipeline (issue #17): the same replay of a simulated month
through apps/fraud's whole pipeline (features, cascade with trained models, decisions),
with its monitoring sink (drift of every model input and the score, performance as labels
arrive) and without it, side by side in one process, the two taking turns going first.

    python bench/fraud_monitoring_bench.py [--rounds 3] [--customers 1000] [--days 56]

Only the rows from ``--start`` on are replayed (the last three weeks by default: the cost is
per event, and the machine is shared). The models are trained once (`streamsense fraud
train` on the simulation, the handbook's protocol shifted to its dates) in ``--state-dir``;
each replay runs on a fresh in-memory broker. Reported per run: events/s and CPU µs per
event (the machine is shared: CPU time is the steadier figure); the cost is 1 - plain /
monitored CPU per event, the share of throughput monitoring takes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from streamsense.brokers import MemoryBroker
from streamsense.cli.session import open_session, replay_files
from streamsense.cli.time_range import TimeRange, epoch_ms
from streamsense.runtime.loader import load_app

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "apps" / "fraud")


def prepare(state: Path, customers: int, days: int) -> Path:
    """The simulated file, and models trained on its days 38-44 (labels known by 51), with
    their monitoring references."""
    sys.path.insert(0, str(ROOT))
    from apps.fraud.app import MODEL_INPUTS
    from apps.fraud.fraud_metrics import Protocol
    from apps.fraud.monitoring_reference import load_references, save_references
    from apps.fraud.simulator import FraudSimulatorConfig, simulate_transactions, write_parquet

    start = epoch_ms("2018-05-08", "train start")
    assert start is not None
    protocol = Protocol(start, 7, 7, 7, 0)

    data = state / f"payments-{customers}-{days}.parquet"
    if not data.exists():
        config = FraudSimulatorConfig(n_customers=customers, n_terminals=2 * customers, n_days=days)
        write_parquet(simulate_transactions(config), data)
    if not (state / "models" / "fraud-heavy").exists():
        with open_session(APP, state) as session:
            training = session.application.training
            assert training is not None
            training.train(session, {"transactions": data}, protocol)
    if load_references(state) is None:  # a training stopped before attaching them
        with open_session(APP, state) as session:
            save_references(
                session.broker, state, MODEL_INPUTS, protocol.train_start_ms,
                protocol.train_end_ms, protocol.test_start_ms,
            )  # fmt: skip
    return data


def one_run(
    app: Any, state: Path, data: Path, monitored: bool, start_ms: int | None
) -> dict[str, Any]:
    module = app.module
    app.application.configure(state)  # loads the models and the monitor's references
    if not monitored:
        module.MONITOR.inner = None
    assert (module.MONITOR.inner is not None) == monitored, "no references to monitor with"
    stream = app.application.inputs["transactions"]
    cpu, wall = time.process_time(), time.perf_counter()
    stats, _ = replay_files(
        app.application, MemoryBroker(), {"transactions": (stream, data)}, TimeRange(start_ms, None)
    )
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "peer": "monitored" if monitored else "plain",
        "events": stats.events,
        "events_per_s": stats.events / wall,
        "cpu_us_per_event": cpu / stats.events * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=56)
    parser.add_argument(
        "--start", default="2018-05-06", help="Replay the rows from this day (UTC) on."
    )
    parser.add_argument(
        "--state-dir", type=Path, default=Path("/tmp/streamsense-fraud-monitoring-bench")
    )
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    args.state_dir.mkdir(parents=True, exist_ok=True)
    data = prepare(args.state_dir, args.customers, args.days)
    app = load_app(APP)
    rows = []
    for round_ in range(args.rounds):
        order = [False, True] if round_ % 2 == 0 else [True, False]
        for monitored in order:
            row = one_run(app, args.state_dir, data, monitored, epoch_ms(args.start, "--start"))
            rows.append({"round": round_, **row})
            print(row, flush=True)
    sys.path.insert(0, str(ROOT / "bench"))
    from results import fraud_monitoring_tables, save_results

    settings = {
        "rounds": args.rounds, "customers": args.customers, "days": args.days, "start": args.start
    }  # fmt: skip
    path = save_results(Path(args.results), "fraud_monitoring_bench", settings, rows)
    print(f"raw results: {path}")
    print(fraud_monitoring_tables({"rows": rows}))


if __name__ == "__main__":
    main()
