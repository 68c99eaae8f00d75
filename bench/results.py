"""Raw benchmark results kept in the repository, and the tables made from them.

Every benchmark run that feeds BENCHMARKS.md saves its raw measurements with
`save_results` as one small JSON file under bench/results/: the machine, the date, the
commit, the command line, the settings and one row per measured run. The tables in
BENCHMARKS.md are printed from those files (median and range over the rounds of one
invocation, ratios taken within a round, i.e. side by side), never typed in by hand:

    python bench/results.py bench/results/kafka_bench-2026-12-06T2015-abc1234.json   # print
    python bench/results.py --update BENCHMARKS.md   # rewrite its `<!-- results: BENCH -->` blocks
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict[str, Any]:
    with open("/proc/cpuinfo") as info:
        models = [line.split(":", 1)[1].strip() for line in info if "model name" in line]
    with open("/proc/meminfo") as info:
        kib = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
    return {
        "cores": os.cpu_count(),
        "cpu": models[0] if models else platform.processor(),
        "memory_gib": round(kib / 2**20, 1),
        "python": platform.python_version(),
        "system": platform.system(),
    }


def commit() -> str:
    """The commit measured, with "+dirty" when the checkout had changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short=10", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def save_results(
    directory: Path, bench: str, settings: dict[str, Any], rows: list[dict[str, Any]]
) -> Path:
    now = datetime.now(UTC)
    record = {
        "bench": bench,
        "date": now.isoformat(timespec="seconds"),
        "commit": commit(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "machine": machine(),
        "settings": settings,
        "rows": rows,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{bench}-{now:%Y-%m-%dT%H%M}-{record['commit'][:7]}.json"
    path.write_text(json.dumps(record, indent=1, default=str) + "\n")
    return path


def spread(values: list[float], fmt: str = ",.0f") -> str:
    """Median and range, e.g. "19,026 (18,954–19,540)"; a single value as it is."""
    if len(values) == 1:
        return format(values[0], fmt)
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:{fmt}} ({low:{fmt}}–{high:{fmt}})"


def kafka_tables(record: dict[str, Any]) -> str:
    """BENCHMARKS.md's tables for one kafka_bench invocation."""
    lines: list[str] = []
    throughput = [r for r in record["rows"] if r["kind"] == "throughput"]
    if throughput:
        by: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
        for r in throughput:
            by[r["peer"], r["workers"]].append(r)
        lines += [
            "| peer | workers | rounds | events/s | CPU µs/event | decisions equal to DuckDB's |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for (peer, workers), runs in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            lines.append(
                f"| {peer} | {workers} | {len(runs)} "
                f"| {spread([r['events_per_s'] for r in runs])} "
                f"| {spread([r['cpu_us_per_event'] for r in runs])} "
                f"| {spread([100 * r['exact'] for r in runs], '.2f')} % |"
            )
        lines += ["", *ratio_lines(throughput)]
    latency = [r for r in record["rows"] if r["kind"] == "latency"]
    if latency:
        lines += ["", "| peer | rounds | p50 ms | p99 ms | max ms | missing |",
                  "|---|---:|---:|---:|---:|---:|"]  # fmt: skip
        peers = sorted({r["peer"] for r in latency})
        for peer in peers:
            runs = [r for r in latency if r["peer"] == peer]
            lines.append(
                f"| {peer} | {len(runs)} | {spread([r['p50_ms'] for r in runs], '.1f')} "
                f"| {spread([r['p99_ms'] for r in runs], '.1f')} "
                f"| {spread([r['max_ms'] for r in runs], '.1f')} "
                f"| {sum(r['missing'] for r in runs)} |"
            )
    return "\n".join(lines)


def ratio_lines(rows: list[dict[str, Any]], peer: str = "streamsense") -> list[str]:
    """streamsense's throughput over each other peer's, within each round (side by side)."""
    out: list[str] = []
    others = sorted({r["peer"] for r in rows} - {peer})
    for workers in sorted({r["workers"] for r in rows}):
        for other in others:
            ratios = []
            for round_index in sorted({r["round"] for r in rows}):
                pair = {r["peer"]: r for r in rows
                        if r["round"] == round_index and r["workers"] == workers}  # fmt: skip
                if peer in pair and other in pair:
                    ratios.append(pair[peer]["events_per_s"] / pair[other]["events_per_s"])
            if ratios:
                listed = ", ".join(f"{x:.2f}×" for x in ratios)
                out.append(f"- {workers} worker(s): {peer} / {other} throughput, per round: "
                           f"{listed}; median {statistics.median(ratios):.2f}×")  # fmt: skip
    return out


def broker_tables(record: dict[str, Any]) -> str:
    """BENCHMARKS.md's table for one broker_bench invocation."""
    rows = record["rows"]
    lines = ["| path | streamsense embedded, ev/s | raw sqlite3 rows, ev/s | ratio per round |",
             "|---|---:|---:|---|"]  # fmt: skip
    for path in ("produce", "consume"):
        runs = [r for r in rows if r["kind"] == path]
        ours = [r["events_per_s"] for r in runs if r["peer"] == "streamsense"]
        raw = [r["events_per_s"] for r in runs if r["peer"] == "raw sqlite3"]
        ratios = ", ".join(f"{a / b:.2f}×" for a, b in zip(ours, raw, strict=True))
        lines.append(f"| {path} | {spread(ours)} | {spread(raw)} | {ratios} |")
    return "\n".join(lines)


def monitoring_tables(record: dict[str, Any]) -> str:
    """BENCHMARKS.md's tables for one monitoring_bench invocation."""
    rows = record["rows"]
    lines = ["| drift windows over | CPU µs/row |", "|---|---:|"]
    for peer in sorted({r["peer"] for r in rows if r["kind"] == "windows"}):
        runs = [r["us_per_row"] for r in rows if r["kind"] == "windows" and r["peer"] == peer]
        lines.append(f"| {peer} | {spread(runs, '.2f')} |")
    lines += ["", "| flow | events/s |", "|---|---:|"]
    flows = [r for r in rows if r["kind"] == "flow"]
    for peer in ("flow", "flow+monitor"):
        rates = [r["events_per_s"] for r in flows if r["peer"] == peer]
        lines.append(f"| {peer} | {spread(rates)} |")
    costs = []
    for index in sorted({r["round"] for r in flows}):
        pair = {r["peer"]: r["events_per_s"] for r in flows if r["round"] == index}
        costs.append(100 * (1 - pair["flow+monitor"] / pair["flow"]))
    listed = ", ".join(f"{c:.1f} %" for c in costs)
    lines += ["", f"- throughput monitoring costs, per round: {listed}"]
    return "\n".join(lines)


def fraud_monitoring_tables(record: dict[str, Any]) -> str:
    """BENCHMARKS.md's table for one fraud_monitoring_bench invocation: the fraud pipeline
    with and without its monitoring, CPU per event and the share of throughput it costs."""
    rows = record["rows"]
    lines = ["| fraud pipeline | events/s | CPU µs/event |", "|---|---:|---:|"]
    for peer in ("plain", "monitored"):
        runs = [r for r in rows if r["peer"] == peer]
        lines.append(
            f"| {peer} | {spread([r['events_per_s'] for r in runs])} "
            f"| {spread([r['cpu_us_per_event'] for r in runs], '.1f')} |"
        )
    costs = []
    for index in sorted({r["round"] for r in rows}):
        pair = {r["peer"]: r["cpu_us_per_event"] for r in rows if r["round"] == index}
        costs.append(100 * (1 - pair["plain"] / pair["monitored"]))
    listed = ", ".join(f"{c:.1f} %" for c in costs)
    lines += ["", f"- share of throughput (CPU per event) monitoring costs, per round: {listed}"]
    return "\n".join(lines)


def acceptance_tables(record: dict[str, Any]) -> str:
    """BENCHMARKS.md's table for one monitoring_acceptance run: each check, passed or not,
    with its figure (the first alert and how long after the shift it came)."""
    lines = ["| check | result | detail |", "|---|---|---|"]
    for row in record["rows"]:
        lines.append(
            f"| {row['check']} | {'pass' if row['passed'] else '**FAIL**'} | {_detail(row)} |"
        )
    return "\n".join(lines)


def _detail(row: dict[str, Any]) -> str:
    first = row.get("first")
    if isinstance(first, dict):
        after = row.get("hours_after")
        when = f"{after:.0f} h" if after is not None else f"{row.get('days_after', 0):.1f} days"
        return (
            f"{first['kind']} on {first['subject']} at {first['detected_at']} ({when} after), "
            f"{first['statistic']} {first['value']:.3f} > {first['threshold']}"
        )
    if "by_kind_after_shift" in row:
        return ", ".join(f"{k} {v}" for k, v in sorted(row["by_kind_after_shift"].items()))
    if "drift_alerts_in_period" in row:
        found = len(row["drift_alerts_in_period"])
        return f"{found} drift alerts in the period, {row['alerts']} in all"
    return ", ".join(f"{k}: {v}" for k, v in row.items() if k not in ("check", "passed"))


TABLES = {
    "fraud_monitoring_bench": fraud_monitoring_tables,
    "monitoring_acceptance": acceptance_tables,
    "kafka_bench": kafka_tables,
    "broker_bench": broker_tables,
    "monitoring_bench": monitoring_tables,
}
BLOCK = re.compile(r"(<!-- results: (\w+) -->\n)(.*?)(<!-- /results -->)", re.DOTALL)


def render(record: dict[str, Any]) -> str:
    m = record["machine"]
    where = f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, Python {m['python']}"
    when = record["date"][:16].replace("T", " ")
    head = f"`{record['command']}` — {when} UTC, commit {record['commit']}, {where}"
    return f"{head}\n\n{TABLES[record['bench']](record)}\n"


def newest(directory: Path, bench: str) -> dict[str, Any]:
    records = [json.loads(path.read_text()) for path in directory.glob(f"{bench}-*.json")]
    if not records:
        raise SystemExit(f"no results of {bench} in {directory}")
    return max(records, key=lambda r: str(r["date"]))


def update(document: Path, directory: Path) -> None:
    """Rewrite every `<!-- results: BENCH -->` block of ``document`` from BENCH's newest file."""
    text = document.read_text()
    text = BLOCK.sub(lambda match: match[1] + render(newest(directory, match[2])) + match[4], text)
    document.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="results files to print")
    parser.add_argument("--update", type=Path, help="rewrite this document's results blocks")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    if args.update:
        update(args.update, args.results)
    for path in args.files:
        print(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
