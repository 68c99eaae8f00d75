"""The whole fraud pipeline replaying the handbook file: events/s, CPU, memory and broker
size of `streamsense replay apps/fraud` (issues 8 and #19), optionally beside another commit.

    python bench/fraud_replay_bench.py [--start 2018-07-01 --end 2018-08-01] [--rounds 3]
        [--compare REV] [--full]

One replay is: an empty state dir holding only the trained models (`streamsense fraud
train`, run once by this bench into --models-dir and reused), the payments and their labels
ingested into the embedded broker, one worker running both flows (features, online store,
feature log, the cascade, decisions, exactly-once commits) and the decisions exported.
Timed by the replay itself ("processed N events in S s"); CPU and peak RSS from the child's
rusage. With --compare REV the same replay runs with the code of REV (a temporary git
worktree), alternating which goes first each round, and the decisions of the two are
compared column by column (the latencies aside, which are measured, not computed).
Prints one JSON line per replay and keeps them under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench")]

from results import save_results  # noqa: E402

HANDBOOK = ROOT.parent / "shared" / "datasets" / "fraud-handbook" / "transactions.parquet"
PROCESSED = re.compile(r"processed ([\d,]+) events in ([\d.]+) s")
COMPARED = ("TRANSACTION_ID", "score", "action", "tier", "model_version")


def train(models_dir: Path, transactions: Path, days: int) -> Path:
    """The production models of `streamsense fraud train` (this checkout), made once."""
    if (models_dir / "models").is_dir():
        return models_dir / "models"
    shutil.rmtree(models_dir, ignore_errors=True)
    command = [sys.executable, "-m", "streamsense", "fraud", "train"]
    command += ["--transactions", str(transactions), "--state-dir", str(models_dir)]
    command += ["--train-days", str(days), "--history-days", str(min(40, days * 6))]
    subprocess.run(command, cwd=ROOT, env=_env(ROOT), check=True, stdout=subprocess.DEVNULL)
    return models_dir / "models"


def warm_up(checkout: Path, models: Path, args: argparse.Namespace) -> None:
    """An hour's replay, not measured: numba caches compiled kernels by source path, so a
    checkout's first replay would also time their compilation (seconds)."""
    hour = argparse.Namespace(**{**vars(args), "full": False, "end": f"{args.start[:10]}T01:00"})
    shutil.rmtree(replay(checkout, models, hour, "warm-up")["state_dir"], ignore_errors=True)


def replay(checkout: Path, models: Path, args: argparse.Namespace, label: str) -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix=f"fraud-replay-{label}-"))
    shutil.copytree(models, state / "models")
    command = [sys.executable, "-m", "streamsense", "replay", "apps/fraud"]
    command += ["--transactions", str(args.transactions), "--state-dir", str(state)]
    command += ["--export-decisions", str(state / "decisions.parquet")]
    if not args.full:
        command += ["--start", args.start, "--end", args.end]
    started = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=checkout, env=_env(checkout), stdout=subprocess.PIPE, text=True
    )
    out = child.stdout.read() if child.stdout else ""
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"replay with {label} failed:\n{out[-3000:]}")
    found = PROCESSED.search(" ".join(out.split()))
    if found is None:
        raise SystemExit(f"no 'processed ... events' line in the replay's output:\n{out[-2000:]}")
    events, seconds = int(found.group(1).replace(",", "")), float(found.group(2))
    return {
        "code": label,
        "events": events,
        "processing_s": seconds,
        "events_per_s": events / seconds,
        "payments_per_s": events / 2 / seconds,  # each payment and its label
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "broker_mib": sum(p.stat().st_size for p in state.glob("*.db*")) / 2**20,
        "state_dir": str(state),
    }


def same_decisions(first: Path, second: Path) -> bool:
    import pyarrow.parquet as pq

    a, b = (pq.read_table(p / "decisions.parquet", columns=list(COMPARED)) for p in (first, second))
    return a.equals(b)


def worktree(rev: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix="fraud-replay-rev-")) / "checkout"
    subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=ROOT, check=True)
    return path


def _resolve(rev: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short=10", rev], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()


def _env(checkout: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(checkout / "src")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=Path, default=HANDBOOK)
    parser.add_argument("--start", default="2018-07-01", help="first day replayed (UTC)")
    parser.add_argument("--end", default="2018-08-01", help="day after the last one replayed")
    parser.add_argument("--full", action="store_true", help="the whole file (1.75 M payments)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare", metavar="REV", help="also replay with this commit's code")
    parser.add_argument("--models-dir", type=Path, default=Path("/tmp/streamsense-bench-fraud"))
    parser.add_argument("--train-days", type=int, default=7, help="7: as `fraud train`")
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    if not args.transactions.exists():
        raise SystemExit(f"{args.transactions}: not found (see ../shared/datasets/README.md)")
    models = train(args.models_dir, args.transactions, args.train_days)
    checkouts = {"this commit": ROOT}
    if args.compare:
        checkouts[args.compare] = worktree(args.compare)
    rows: list[dict[str, Any]] = []
    try:
        for path in checkouts.values():
            warm_up(path, models, args)
        for round_ in range(1, args.rounds + 1):
            order = list(checkouts.items())
            order = order if round_ % 2 else order[::-1]  # alternate who goes first
            runs = [{"round": round_, **replay(path, models, args, label)} for label, path in order]
            if len(runs) == 2:
                same = same_decisions(*(Path(r["state_dir"]) for r in runs))
                for run in runs:
                    run["same_decisions"] = same
            for run in runs:
                shutil.rmtree(run.pop("state_dir"), ignore_errors=True)
                print(json.dumps(run), flush=True)
            rows += runs
    finally:
        for path in checkouts.values():
            if path != ROOT:
                subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT)
    span = "whole file" if args.full else f"{args.start} to {args.end}"
    settings = {"transactions": args.transactions.name, "span": span, "rounds": args.rounds}
    if args.compare:
        settings["compared_with"] = _resolve(args.compare)
    print(f"results: {save_results(Path(args.results), 'fraud_replay_bench', settings, rows)}")


if __name__ == "__main__":
    main()
