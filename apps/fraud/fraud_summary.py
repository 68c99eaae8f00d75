"""What `streamsense replay apps/fraud` and `make demo` print at the end."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgspec
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

import streamsense as ss
from streamsense.testing import drain_topic


def summary(broker: ss.Broker, console: Console, inputs: dict[str, Path]) -> None:
    decisions = [
        msgspec.json.decode(r.value or b"{}") for r in drain_topic(broker, "fraud.decisions")
    ]
    rules = Counter((d["action"], d["rule"]) for d in decisions)
    table = Table(title=f"fraud: {len(decisions):,} decisions")
    table.add_column("action")
    table.add_column("rule")
    table.add_column("decisions", justify="right")
    for (action, rule), count in rules.most_common():
        table.add_row(action, rule, f"{count:,}")
    console.print(table)
    source = inputs.get("transactions")
    if source is None or source.suffix != ".parquet":
        return
    labels = pq.read_table(source, columns=["TRANSACTION_ID", "TX_FRAUD"]).to_pydict()
    fraud = dict(zip(labels["TRANSACTION_ID"], labels["TX_FRAUD"], strict=True))
    flagged = [d for d in decisions if d["action"] != "allow"]
    caught = sum(fraud.get(d["transaction_id"], 0) for d in flagged)
    total = sum(fraud.get(d["transaction_id"], 0) for d in decisions)
    precision = caught / len(flagged) if flagged else 0.0
    recall = caught / total if total else 0.0
    console.print(
        f"detection on the simulated labels: {caught:,} of {total:,} frauds flagged "
        f"(recall {recall:.1%}), precision {precision:.1%}"
    )
