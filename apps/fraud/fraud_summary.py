"""What `streamsense replay apps/fraud` and `make demo` print at the end: events, decisions
by action and tier, decision latency, and detection quality against the labels that came
back on the label stream."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

import streamsense as ss

from .fraud_exports import decisions, labels, records
from .metrics import auc_roc, average_precision

TIERS = ("rules", "light", "heavy", "fallback")
ACTIONS = ("allow", "review", "block")


def summary(broker: ss.Broker, console: Console, inputs: Mapping[str, Path]) -> None:
    decided = decisions(broker)
    known = labels(broker)
    compromised = sum(len(chunk) for chunk in records(broker, "fraud.compromised-cards"))
    console.print(
        f"fraud: {len(decided['score']):,} payments decided, {len(known['TX_FRAUD']):,} labels "
        f"received, {compromised:,} cards became known compromised"
    )
    if not len(decided["score"]):
        return
    table = Table(title="decisions by action and tier")
    table.add_column("action")
    for tier in TIERS:
        table.add_column(tier, justify="right")
    table.add_column("total", justify="right")
    for action in ACTIONS:
        mine = decided["action"] == action
        counts = [int((mine & (decided["tier"] == tier)).sum()) for tier in TIERS]
        table.add_row(action, *(f"{c:,}" for c in counts), f"{int(mine.sum()):,}")
    console.print(table)
    _latency(console, decided)
    _quality(console, decided, known)


def _latency(console: Console, decided: dict[str, np.ndarray]) -> None:
    table = Table(title="decision latency (ms, in the pipeline's decide stage)")
    table.add_column("")
    for q in ("p50", "p90", "p99", "p99.9", "max"):
        table.add_column(q, justify="right")
    table.add_column("decisions", justify="right")
    for name, column in (
        ("whole cascade", "latency_ms"),
        ("light model", "latency_light"),
        ("heavy model", "latency_heavy"),
    ):
        values = decided[column][~np.isnan(decided[column])]
        if not len(values):
            continue
        marks = np.percentile(values, [50, 90, 99, 99.9])
        table.add_row(name, *(f"{v:.3f}" for v in marks), f"{values.max():.3f}", f"{len(values):,}")
    console.print(table)
    degraded = int(decided["degraded"].sum())
    console.print(f"degraded decisions (a tier over its budget or unavailable): {degraded:,}")


def _quality(
    console: Console, decided: dict[str, np.ndarray], known: dict[str, np.ndarray]
) -> None:
    order = np.argsort(known["TRANSACTION_ID"], kind="stable")
    ids, fraud = known["TRANSACTION_ID"][order], known["TX_FRAUD"][order]
    if not len(ids):
        return
    at = np.clip(np.searchsorted(ids, decided["TRANSACTION_ID"]), 0, len(ids) - 1)
    labelled = ids[at] == decided["TRANSACTION_ID"]
    y = fraud[at][labelled]
    flagged = (decided["action"] != "allow")[labelled]
    caught, total = int(y[flagged].sum()), int(y.sum())
    precision = caught / flagged.sum() if flagged.any() else 0.0
    recall = caught / total if total else 0.0
    console.print(
        f"detection on the labels: {caught:,} of {total:,} frauds flagged (recall {recall:.1%}),"
        f" precision {precision:.1%} ({int(flagged.sum()):,} payments blocked or reviewed)"
    )
    scored = (decided["tier"] != "rules")[labelled]
    if not scored.any() or not 0 < y[scored].sum() < scored.sum():
        return
    score = decided["score"][labelled]
    console.print(
        f"scores of the {int(scored.sum()):,} payments the models decided: "
        f"AUC ROC {auc_roc(y[scored], score[scored]):.3f}, "
        f"average precision {average_precision(y[scored], score[scored]):.3f}"
    )
    no_rule = np.array([rule is None for rule in decided["rule"]], np.bool_)
    if not ((decided["tier"] == "rules") & no_rule).any():  # models decided throughout
        console.print(
            f"all decided payments (rules and models): AUC ROC {auc_roc(y, score):.3f}, "
            f"average precision {average_precision(y, score):.3f}"
        )
