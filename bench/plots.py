"""BENCHMARKS.md's plots, drawn from the raw results in bench/results/ (never by hand).

    python bench/plots.py [--results bench/results] [--out docs/plots]

For each benchmark below, the newest results file gives one SVG: a bar per measured case
(peer, store, run...) at the median over the rounds, with a line from the lowest to the
highest round, so the spread is as visible as the value. Latency in log scale where cases
differ by orders of magnitude. Needs matplotlib (the `bench` extra).
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from results import ROOT, newest


@dataclass(frozen=True)
class Plot:
    title: str
    metric: str
    label: str  # the value axis
    by: tuple[str, ...]  # fields naming a bar
    keep: Callable[[dict[str, Any]], bool] = lambda row: True
    log: bool = False


PLOTS = {
    "features_bench": Plot(
        "15 handbook features over the file", "events_per_s", "events/s", ("peer", "start")
    ),
    "kafka_bench": Plot(
        "Kafka backlog, decisions",
        "events_per_s",
        "events/s",
        ("peer", "workers"),
        keep=lambda row: row["kind"] == "throughput",
    ),
    "broker_bench": Plot("Embedded broker", "events_per_s", "events/s", ("kind", "peer")),
    "backfill_bench": Plot("Backfill", "events_per_s", "events/s", ("backfill",)),
    "online_features_bench": Plot(
        "Online feature vector reads", "p99_ms", "p99 ms", ("store", "keys"), log=True
    ),
    "online_store_bench": Plot(
        "Online store reads", "p99_ms", "p99 ms", ("store", "keys"), log=True
    ),
    "serving_calls_bench": Plot("One serving call", "p99_us", "p99 µs", ("call",), log=True),
    "lanes_bench": Plot(
        "Priority lanes under a backlog",
        "high_p99_ms",
        "high-priority p99 ms",
        ("run",),
        keep=lambda row: row["high_p99_ms"] is not None,
    ),
    "http_bench": Plot(
        "Decisions over HTTP, open loop",
        "p99_ms",
        "p99 ms (from the scheduled send)",
        ("endpoint", "rate"),
        keep=lambda row: row["kind"] == "http",
        log=True,
    ),
    "monitoring_bench": Plot(
        "Monitoring's cost on a flow",
        "events_per_s",
        "events/s",
        ("peer",),
        keep=lambda row: row["kind"] == "flow",
    ),
}


def bars(record: dict[str, Any], plot: Plot) -> list[tuple[str, float, float, float]]:
    """(label, median, low, high) per case, in first-seen order."""
    groups: dict[str, list[float]] = {}
    for row in record["rows"]:
        if plot.keep(row) and row.get(plot.metric) is not None:
            label = ", ".join(str(row[field]) for field in plot.by)
            groups.setdefault(label, []).append(float(row[plot.metric]))
    return [(k, statistics.median(v), min(v), max(v)) for k, v in groups.items()]


def draw(record: dict[str, Any], plot: Plot, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: files of a few KB
    import matplotlib.pyplot as plt

    cases = bars(record, plot)
    figure, axes = plt.subplots(figsize=(8, 0.45 * len(cases) + 1.4))
    positions = range(len(cases))
    medians = [c[1] for c in cases]
    axes.barh(positions, medians, color="#4c78a8")
    lows = [c[1] - c[2] for c in cases]
    highs = [c[3] - c[1] for c in cases]
    axes.errorbar(medians, positions, xerr=[lows, highs], fmt="none", ecolor="black", capsize=3)
    axes.set_yticks(list(positions), [c[0] for c in cases])
    axes.invert_yaxis()
    axes.set_xlabel(plot.label)
    if plot.log:
        axes.set_xscale("log")
    else:
        axes.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    rounds = max((row.get("round", 0) for row in record["rows"]), default=0) + 1
    when = record["date"][:16].replace("T", " ")
    axes.set_title(f"{plot.title}\n{when} UTC, commit {record['commit']}, {rounds} round(s)")
    figure.tight_layout()
    figure.savefig(path, metadata={"Date": None})  # no date: a rerun on the same file is equal
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "plots")
    parser.add_argument("--format", default="svg", help="svg (BENCHMARKS.md), or png")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for bench, plot in PLOTS.items():
        if not any(args.results.glob(f"{bench}-*.json")):
            continue  # never run here yet: no figure to draw
        path = args.out / f"{bench}.{args.format}"
        draw(newest(args.results, bench), plot, path)
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
