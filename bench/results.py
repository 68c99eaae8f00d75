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
from dataclasses import dataclass
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
        # Other work on the machine when the results were saved (1, 5, 15 min): a loaded
        # machine widens every range, so the record says so.
        "load_average": [round(x, 2) for x in os.getloadavg()],
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


def spread(values: list[float | None], fmt: str = ",.0f") -> str:
    """Median and range, e.g. "19,026 (18,954–19,540)"; a single value as it is; values a
    run did not have (None) left out."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
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


def pulsar_tables(record: dict[str, Any]) -> str:
    """bench/pulsar_bench.py: kafka_bench's tables with the broker as the peer, and Pulsar's
    throughput over Kafka's within each round."""
    throughput = [r for r in record["rows"] if r["kind"] == "throughput"]
    tables = re.sub(r"\n{3,}", "\n\n", kafka_tables(record))  # it has no ratio lines here
    return "\n".join([tables, "", *ratio_lines(throughput, peer="pulsar")])


def rebalance_tables(record: dict[str, Any]) -> str:
    """BENCHMARKS.md's table for one rebalance_bench invocation: a row per round."""
    lines = ["| round | protocol | moved partitions | survivors' p99 steady ms | p99 in the kill "
             "window ms | ratio | recovery s (session s) | missing | load average |",
             "|---:|---|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for r in record["rows"]:
        load = ", ".join(f"{x:.1f}" for x in r["load_average"])
        lines.append(
            f"| {r['round']} | {r['group_protocol']} | {r['moved_partitions']} "
            f"| {r['steady_p99_ms']:.1f} | {r['kill_window_p99_ms']:.1f} | {r['p99_ratio']:.2f} "
            f"| {r['recovery_s']:.2f} ({r['session_timeout_ms'] / 1000:.0f}) | {r['missing']} "
            f"| {load} |"
        )
    return "\n".join(lines)


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


@dataclass(frozen=True)
class Column:
    field: str
    header: str
    fmt: str = ",.0f"


@dataclass(frozen=True)
class Ratio:
    """`ours` against every other value of `field`, for `metric`, within each round (side by
    side) and each combination of `within`; `lower_is_better` divides the other way."""

    metric: str
    field: str = "peer"
    ours: str = "streamsense"
    within: tuple[str, ...] = ()
    lower_is_better: bool = False


@dataclass(frozen=True)
class Layout:
    """A bench's rows as one table: a line per distinct `by` (first-seen order), each column
    the median (range) over the rounds; then the per-round ratios."""

    by: tuple[str, ...]
    columns: tuple[Column, ...]
    ratios: tuple[Ratio, ...] = ()

    def __call__(self, record: dict[str, Any]) -> str:
        rows = record["rows"]
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(row[f] for f in self.by), []).append(row)
        head = [*self.by, "rounds", *(c.header for c in self.columns)]
        lines = ["| " + " | ".join(head) + " |",
                 "|" + "---|" * len(self.by) + "---:|" * (1 + len(self.columns))]  # fmt: skip
        for key, runs in groups.items():
            cells = [str(k) for k in key] + [str(len(runs))]
            cells += [spread([r[c.field] for r in runs], c.fmt) for c in self.columns]
            lines.append("| " + " | ".join(cells) + " |")
        ratio_text = [line for ratio in self.ratios for line in ratio_per_round(rows, ratio)]
        return "\n".join(lines + (["", *ratio_text] if ratio_text else []))


def ratio_per_round(rows: list[dict[str, Any]], ratio: Ratio) -> list[str]:
    out: list[str] = []
    contexts = list(dict.fromkeys(tuple(r[f] for f in ratio.within) for r in rows))
    others = list(dict.fromkeys(r[ratio.field] for r in rows if r[ratio.field] != ratio.ours))
    for context in contexts:
        scope = [r for r in rows if tuple(r[f] for f in ratio.within) == context]
        for other in others:
            values = []
            for index in sorted({r["round"] for r in scope}):
                pair = {r[ratio.field]: r[ratio.metric] for r in scope if r["round"] == index}
                if ratio.ours in pair and other in pair and pair[ratio.ours] and pair[other]:
                    a, b = pair[ratio.ours], pair[other]
                    values.append(b / a if ratio.lower_is_better else a / b)
            if values:
                out.append(ratio_line(ratio, context, other, values))
    return out


def ratio_line(ratio: Ratio, context: tuple[Any, ...], other: str, values: list[float]) -> str:
    """E.g. "- p99_ms (keys 1): feast ÷ sqlite, per round: 430×, 422×; median 426×": above 1
    means `ours` is better, whichever way the metric goes."""
    where = ", ".join(f"{f} {v}" for f, v in zip(ratio.within, context, strict=True))
    scope = f" ({where})" if where else ""
    quotient = f"{other} ÷ {ratio.ours}" if ratio.lower_is_better else f"{ratio.ours} ÷ {other}"
    listed = ", ".join(f"{v:.2f}×" for v in values)
    median = statistics.median(values)
    return f"- {ratio.metric}{scope}: {quotient}, per round: {listed}; median {median:.2f}×"


PEER_TIMES = Layout(
    by=("peer", "start"),
    columns=(
        Column("seconds", "seconds", ".2f"),
        Column("events_per_s", "events/s"),
        Column("peak_rss_mib", "peak RSS MiB"),
    ),
    ratios=(Ratio("events_per_s", within=("start",)),),
)

BACKFILL = Layout(
    by=("backfill",),
    columns=(Column("seconds", "seconds", ".2f"), Column("events_per_s", "events/s")),
)


def online_latency(ours: str) -> Layout:
    return Layout(
        by=("store", "keys"),
        columns=(Column("p50_ms", "p50 ms", ".3f"), Column("p99_ms", "p99 ms", ".3f")),
        ratios=(Ratio("p99_ms", "store", ours, ("keys",), lower_is_better=True),),
    )


LANES = Layout(
    by=("run",),
    columns=(
        Column("high_p50_ms", "high-priority p50 ms"),
        Column("high_p99_ms", "high-priority p99 ms"),
        Column("backlog_p50_ms", "backlog p50 ms"),
        Column("backlog_p99_ms", "backlog p99 ms"),
        Column("drain_s", "drain s", ".2f"),
        Column("events_per_s", "events/s"),
    ),
    ratios=(
        Ratio("high_p99_ms", "run", "lanes", lower_is_better=True),
        Ratio("drain_s", "run", "lanes", lower_is_better=True),
    ),
)

SERVING_CALLS = Layout(
    by=("call",),
    columns=(Column("p50_us", "p50 µs", ".1f"), Column("p99_us", "p99 µs", ".1f")),
)

HTTP_IN_PROCESS = Layout(
    by=("part",),
    columns=(
        Column("p50_ms", "p50 ms", ".3f"),
        Column("p99_ms", "p99 ms", ".3f"),
        Column("p999_ms", "p99.9 ms", ".3f"),
    ),
)
HTTP_OPEN_LOOP = Layout(
    by=("endpoint", "rate"),
    columns=(
        Column("achieved", "achieved/s"),
        Column("p50_ms", "p50 ms", ".2f"),
        Column("p99_ms", "p99 ms", ".2f"),
        Column("p999_ms", "p99.9 ms", ".2f"),
        Column("service_p99_ms", "service p99 ms", ".2f"),
        Column("errors", "errors"),
    ),
    ratios=(Ratio("p99_ms", "endpoint", "streamsense /v1/decide", ("rate",), True),),
)


def http_tables(record: dict[str, Any]) -> str:
    """In process (decide_event) and open-loop HTTP, ms from the scheduled send."""
    inproc = [r for r in record["rows"] if r["kind"] == "in process"]
    http = [r for r in record["rows"] if r["kind"] == "http"]
    return f"{HTTP_IN_PROCESS({'rows': inproc})}\n\n{HTTP_OPEN_LOOP({'rows': http})}"


def iot_tables(record: dict[str, Any]) -> str:
    """BENCHMARKS.md's tables for one iot_bench invocation."""
    rows = record["rows"]
    runs = [r for r in rows if r["kind"] == "end_to_end"]
    lines = ["| pipeline (NAB corpus, embedded broker) | rounds | readings/s (wall) "
             "| readings per CPU second |", "|---|---:|---:|---:|"]  # fmt: skip
    for pipeline in sorted({r["pipeline"] for r in runs}):
        mine = [r for r in runs if r["pipeline"] == pipeline]
        lines.append(
            f"| {pipeline} | {len(mine)} | {spread([r['readings_per_s'] for r in mine])} "
            f"| {spread([r['readings_per_cpu_s'] for r in mine])} |"
        )
    kernel = [r["readings_per_s"] for r in rows if r["kind"] == "kernel"]
    latency = [r for r in rows if r["kind"] == "latency"]
    demo = [r for r in rows if r["kind"] == "demo"]
    lines += ["", "| measure | rounds | result |", "|---|---:|---:|"]
    if kernel:
        lines.append(f"| detector kernel alone, readings/s | {len(kernel)} | {spread(kernel)} |")
    for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
        values = [r[key] for r in latency]
        if values:
            lines.append(f"| reading → score in the stage, {label} ms | {len(values)} "
                         f"| {spread(values, '.4f')} |")  # fmt: skip
    for key, label in (("seconds", "wall"), ("cpu_seconds", "CPU")):
        values = [r[key] for r in demo]
        if values:
            lines.append(f"| `streamsense demo apps/iot`, {label} s | {len(values)} "
                         f"| {spread(values, '.1f')} |")  # fmt: skip
    return "\n".join(lines)


def recs_http_tables(record: dict[str, Any]) -> str:
    """BENCHMARKS.md's table for one recs_http_bench invocation: a row per round (a fresh
    server each), then median and range."""
    rows, settings = record["rows"], record["settings"]
    lines = [
        f"GET /v1/recommend/{{user}}?k=20, open loop at {settings['rate']:,.0f}/s for "
        f"{settings['seconds']:.0f} s per round, latency from the scheduled send time",
        "",
        "| round | answered | errors | degraded | p50 ms | p99 ms | p99.9 ms | ready s "
        "| server CPU ms per request | load average |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        cpu = r.get("cpu_ms_per_request")
        lines.append(
            f"| {r['round'] + 1} | {r['answered']:,} | {r['errors']} | {r['degraded']} "
            f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['p999_ms']:.2f} "
            f"| {r['ready_s']:.1f} | {'-' if cpu is None else f'{cpu:.3f}'} "
            f"| {r['load_average']:.1f} |"
        )
    p99 = spread([r["p99_ms"] for r in rows], ".2f")
    p50 = spread([r["p50_ms"] for r in rows], ".2f")
    lines += ["", f"p99 median (range) over {len(rows)} rounds: {p99} ms; p50 {p50} ms"]
    return "\n".join(lines)


def recs_tables(record: dict[str, Any]) -> str:
    """BENCHMARKS.md's table for one recs_bench invocation: prequential quality, then the
    replay's speed per round (the whole command: start, CSV conversion, ingest, pipeline,
    export)."""
    settings = record["settings"]
    lines = [
        f"Scored from {settings['score_from']} (until {settings['score_until']}):",
        "",
        "| | Hit@10 | MRR@10 | NDCG@10 |",
        "|---|---:|---:|---:|",
    ]
    for name, values in settings["quality"].items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values.values()) + " |")
    lines += ["", "| round | wall s | CPU s | ratings/s per core | load average |",
              "|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in record["rows"]:
        lines.append(
            f"| {r['round'] + 1} | {r['wall_s']:.1f} | {r['cpu_s']:.2f} "
            f"| {r['ratings_per_cpu_s']:,.0f} | {r['load_average']:.1f} |"
        )
    rate = spread([r["ratings_per_cpu_s"] for r in record["rows"]])
    lines += ["", f"{settings['ratings']:,} ratings; ratings/s per core, median (range): {rate}"]
    return "\n".join(lines)


def ui_tables(record: dict[str, Any]) -> str:
    """The operator UI's first renders per page (median and range over rounds) and its CPU
    while a page is open."""
    renders: dict[str, list[float | None]] = defaultdict(list)
    for r in record["rows"]:
        if r["kind"] == "first_render":
            renders[r["page"]].append(r["ms"])
    settings = record["settings"]
    lines = [
        f"{settings['decisions']:,} decisions stored; each page's first GET on a fresh UI, "
        "server time in ms, median (range) over the rounds:",
        "",
        "| page | first render ms |",
        "|---|---:|",
    ]
    lines += [f"| {page} | {spread(times)} |" for page, times in renders.items()]
    for r in record["rows"]:
        if r["kind"] == "open_page_cpu":
            lines += ["", f"A page open, {r['rate']:,.0f} decisions/s written: the UI used "
                      f"{100 * r['cpu_share']:.1f} % of a core."]  # fmt: skip
    return "\n".join(lines)


STATE_RESTORE = Layout(
    by=("broker",),
    columns=(
        Column("keys", "keys"),
        Column("records", "records"),
        Column("state_mb", "MB", ".1f"),
        Column("read_s", "read s", ".1f"),
        Column("restore_s", "read + rebuild s", ".1f"),
        Column("keys_per_s", "keys/s"),
        Column("peak_rss_mb", "peak RSS added MB"),
    ),
)

FRAUD_REPLAY = Layout(
    by=("code",),
    columns=(
        Column("events_per_s", "events/s"),
        Column("payments_per_s", "payments/s"),
        Column("cpu_s", "CPU s", ".1f"),
        Column("events_per_cpu_s", "events per CPU s"),
        Column("peak_rss_mib", "peak RSS MiB"),
        Column("broker_mib", "broker file MiB"),
    ),
    ratios=(
        Ratio("events_per_s", "code", "this commit"),
        Ratio("events_per_cpu_s", "code", "this commit"),
    ),
)


def fraud_replay_tables(record: dict[str, Any]) -> str:
    """Events per CPU second beside events/s: on a shared machine the wall clock counts
    the others' work too, the CPU time much less."""
    rows = [{**r, "events_per_cpu_s": r["events"] / r["cpu_s"]} for r in record["rows"]]
    same = {r.get("same_decisions") for r in rows} - {None}
    note = {True: "\n\nDecisions identical between the codes in every round.",
            False: "\n\n**Decisions differ between the codes.**"}  # fmt: skip
    return FRAUD_REPLAY({"rows": rows}) + (note[same == {True}] if same else "")


TABLES: dict[str, Any] = {
    "fraud_replay_bench": fraud_replay_tables,
    "state_restore_bench": STATE_RESTORE,
    "recs_bench": recs_tables,
    "recs_http_bench": recs_http_tables,
    "http_bench": http_tables,
    "serving_calls_bench": SERVING_CALLS,
    "lanes_bench": LANES,
    "online_store_bench": online_latency("sqlite (file, WAL)"),
    "online_features_bench": online_latency("streamsense, embedded (SQLite)"),
    "backfill_bench": BACKFILL,
    "features_bench": PEER_TIMES,
    "handbook_peers": PEER_TIMES,
    "fraud_monitoring_bench": fraud_monitoring_tables,
    "monitoring_acceptance": acceptance_tables,
    "kafka_bench": kafka_tables,
    "pulsar_bench": pulsar_tables,
    "rebalance_bench": rebalance_tables,
    "broker_bench": broker_tables,
    "monitoring_bench": monitoring_tables,
    "iot_bench": iot_tables,
    "ui_bench": ui_tables,
}
BLOCK = re.compile(r"(<!-- results: (\w+) -->\n)(.*?)(<!-- /results -->)", re.DOTALL)


def render(record: dict[str, Any]) -> str:
    m = record["machine"]
    where = f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, Python {m['python']}"
    if "load_average" in m:
        where += f", load average {m['load_average'][2]:.1f} over the last 15 min"
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
