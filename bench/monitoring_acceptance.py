"""Monitoring's acceptance on real data (issue #17): the handbook's payments, models trained
on the handbook's protocol, alerts from the replay's contract (`--export-alerts`).

    python bench/monitoring_acceptance.py [--work DIR] [--shift-from 2018-08-20]

1. `streamsense fraud train --transactions HANDBOOK --state-dir WORK/train` (skipped when
   WORK/train already holds trained models);
2. a copy of the file where, from ``--shift-from`` on, amounts at a fifth of the terminals
   are x 2.5 (apps/fraud/drift_scenarios.py); training is the same on both files as long as
   the shift starts after the test start (2018-08-08), so the models are trained once;
3. `streamsense replay apps/fraud --transactions F --state-dir D --export-alerts A.jsonl`
   for both files, each in a state dir of its own holding the trained models (so the whole
   file, from 2018-04-01, is decided by them and monitored), the two side by side;
4. the checks: on the unchanged file no drift alert (feature or prediction) with event time
   in June to September; on the copy a feature-drift alert on an amount feature within
   24 hours of event time after the shift, and a prediction-drift or performance alert
   within two weeks. Results go to bench/results/monitoring_acceptance-*.json.

A whole replay of the handbook file takes several minutes: this is a script, not a test
(`make test` runs the same scenarios on the simulator: apps/fraud/tests/test_monitoring.py).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HANDBOOK = ROOT / "../shared/datasets/fraud-handbook/transactions.parquet"
QUIET_FROM, QUIET_TO = datetime(2018, 6, 1, tzinfo=UTC), datetime(2018, 10, 1, tzinfo=UTC)
DRIFT_KINDS = ("feature_drift", "prediction_drift")


def streamsense(*args: str, log: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "streamsense", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "120"}
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def run(*args: str, log: Path) -> None:
    if streamsense(*args, log=log).wait() != 0:
        raise SystemExit(f"streamsense {' '.join(args)} failed: see {log}")


def train(work: Path) -> float:
    state = work / "train"
    if (state / "models" / "fraud-heavy").exists():
        return 0.0
    began = time.perf_counter()
    run("fraud", "train", "--transactions", str(HANDBOOK), "--state-dir", str(state),
        log=work / "train.log")  # fmt: skip
    return time.perf_counter() - began


def shifted_copy(work: Path, start: datetime) -> Path:
    import pyarrow.parquet as pq

    sys.path.insert(0, str(ROOT))
    from apps.fraud.drift_scenarios import shift_amounts

    target = work / "shifted.parquet"
    pq.write_table(shift_amounts(pq.read_table(HANDBOOK), start.replace(tzinfo=None)), target)
    return target


def replays(work: Path, files: dict[str, Path]) -> dict[str, float]:
    """Both replays side by side, each in a fresh state dir with the trained models."""
    running, began = {}, time.perf_counter()
    for name, path in files.items():
        state = work / name
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        shutil.copytree(work / "train" / "models", state / "models")
        running[name] = streamsense(
            "replay", "apps/fraud", "--transactions", str(path), "--state-dir", str(state),
            "--export-alerts", str(work / f"{name}-alerts.jsonl"), log=work / f"{name}.log",
        )  # fmt: skip
    seconds = {}
    for name, process in running.items():
        if process.wait() != 0:
            raise SystemExit(f"the {name} replay failed: see {work / f'{name}.log'}")
        seconds[name] = time.perf_counter() - began
    return seconds


def alerts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def reached(work: Path, name: str, data: Path) -> str:
    """How far a replay has come (its state dir's committed offset on transactions, as the
    event time of that row): a run stopped before its end is judged as far as it went."""
    import pyarrow.parquet as pq

    command = [sys.executable, "-m", "streamsense", "status", "apps/fraud", "--state-dir",
               str(work / name), "--format", "json", "-t", "transactions"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, check=True).stdout
    part = json.loads(out)["partitions"][0]
    times = pq.read_table(data, columns=["TX_DATETIME"])["TX_DATETIME"]
    row = min(int(part["committed"]), len(times)) - 1
    return str(times[row].as_py().isoformat()) + f" (row {row + 1:,} of {len(times):,})"


def partial_alerts(work: Path, name: str) -> Path:
    """The alerts a replay still running (or stopped) has raised so far, as an export."""
    sys.path.insert(0, str(ROOT / "src"))
    from streamsense.brokers import open_broker
    from streamsense.cli.common import broker_url
    from streamsense.cli.monitor_status import read_alerts
    from streamsense.monitoring import alerts_jsonl

    broker = open_broker(broker_url(None, work / name))
    try:
        target = work / f"{name}-alerts-so-far.jsonl"
        target.write_bytes(alerts_jsonl(read_alerts(broker, ["fraud.alerts"])))
    finally:
        broker.close()
    return target


def at(alert: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(alert["detected_at"].replace("Z", "+00:00"))


def checks(work: Path, shift: datetime, so_far: bool) -> list[dict[str, Any]]:
    def of(name: str) -> list[dict[str, Any]]:
        return alerts(partial_alerts(work, name) if so_far else work / f"{name}-alerts.jsonl")

    original, shifted = of("original"), of("shifted")
    quiet = [a for a in original if a["kind"] in DRIFT_KINDS and QUIET_FROM <= at(a) < QUIET_TO]
    amount = [
        a for a in shifted
        if a["kind"] == "feature_drift" and "AMOUNT" in a["subject"]
        and shift < at(a) <= shift + timedelta(hours=24)
    ]  # fmt: skip
    follow = [
        a for a in shifted
        if a["kind"] in ("prediction_drift", "performance")
        and shift < at(a) <= shift + timedelta(days=14)
    ]  # fmt: skip
    first = min(amount, key=at, default=None)
    following = min(follow, key=at, default=None)
    return [
        {"check": "no drift alert June-September on the unchanged file",
         "passed": not quiet, "alerts": len(original), "drift_alerts_in_period": quiet[:20]},
        {"check": "feature drift on an amount feature within 24 h of the shift",
         "passed": first is not None, "first": first,
         "hours_after": None if first is None else (at(first) - shift).total_seconds() / 3600},
        {"check": "prediction drift or performance alert within 14 days of the shift",
         "passed": following is not None, "first": following,
         "days_after": None if following is None else _days(at(following) - shift)},
        {"check": "alerts after the shift (all kinds)", "passed": True,
         "alerts": len(shifted), "by_kind_after_shift": _by_kind(shifted, shift)},
    ]  # fmt: skip


def _days(elapsed: timedelta) -> float:
    return elapsed.total_seconds() / 86400


def _by_kind(raised: list[dict[str, Any]], shift: datetime) -> dict[str, int]:
    counts: dict[str, int] = {}
    for alert in raised:
        if at(alert) > shift:
            counts[alert["kind"]] = counts.get(alert["kind"], 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/streamsense-monitoring-acceptance"))
    parser.add_argument("--shift-from", default="2018-08-20", help="First shifted day (UTC).")
    parser.add_argument("--checks-only", action="store_true", help="Judge the last run's files.")
    parser.add_argument(
        "--so-far", action="store_true",
        help="With --checks-only: judge what the replays raised so far (still running).",
    )  # fmt: skip
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    shift = datetime.fromisoformat(args.shift_from).replace(tzinfo=UTC)
    args.work.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    sys.path.insert(0, str(ROOT / "bench"))
    from results import commit

    started_at = commit()  # the code the replays run (the results file names the code at the end)
    if not args.checks_only:
        seconds["train"] = train(args.work)
        files = {"original": HANDBOOK.resolve(), "shifted": shifted_copy(args.work, shift)}
        seconds.update(replays(args.work, files))
    rows = checks(args.work, shift, args.so_far)
    if args.so_far:
        files = {"original": HANDBOOK.resolve(), "shifted": args.work / "shifted.parquet"}
        progress = {name: reached(args.work, name, path) for name, path in files.items()}
        rows.append({"check": "replays reached (event time)", "passed": True, **progress})
    from results import save_results

    settings = {
        "shift_from": args.shift_from, "factor": 2.5, "seconds": seconds, "so_far": args.so_far,
        "commit_at_start": started_at,
    }  # fmt: skip
    path = save_results(Path(args.results), "monitoring_acceptance", settings, rows)
    for row in rows:
        print(("PASS " if row["passed"] else "FAIL ") + row["check"], json.dumps(
            {k: v for k, v in row.items() if k not in ("check", "passed", "drift_alerts_in_period")}
        ))  # fmt: skip
    print(f"raw results: {path}")
    if not all(row["passed"] for row in rows):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
