"""Printed after a replay: readings scored, alerts per series."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from rich.console import Console

from streamsense.brokers import Broker

from .nab_input import read_scores


def summary(broker: Broker, console: Console, inputs: Mapping[str, Path]) -> None:
    scores = read_scores(broker)
    alerts = Counter(s.machine or s.series for s in scores if s.alert)
    series = {s.series for s in scores}
    console.print(
        f"scored {len(scores):,} readings of {len(series)} series; {sum(alerts.values())} alerts"
    )
    for name, count in sorted(alerts.items()):
        console.print(f"  {name}: {count} alert{'s' if count != 1 else ''}")
