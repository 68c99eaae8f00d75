"""Printed after a replay: readings scored, and the alerts per machine (or series) by
detector."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from rich.console import Console

from streamsense.brokers import Broker
from streamsense.testing import drain_topic

from .readings import ALERTS_TOPIC, SCORES_TOPIC, Alert
from .score_batches import read_scores


def summary(broker: Broker, console: Console, inputs: Mapping[str, Path]) -> None:
    scores = read_scores(broker, SCORES_TOPIC)
    series = {s.series for s in scores}
    decode = msgspec.json.Decoder(Alert).decode
    alerts = [decode(r.value or b"") for r in drain_topic(broker, ALERTS_TOPIC)]
    console.print(f"scored {len(scores):,} readings of {len(series)} series; {len(alerts)} alerts")
    by_owner = Counter((a.machine or a.series, a.detector) for a in alerts)
    first: dict[tuple[str, str], Alert] = {}
    for a in sorted(alerts, key=lambda a: a.timestamp):
        first.setdefault((a.machine or a.series, a.detector), a)
    for (owner, detector), count in sorted(by_owner.items()):
        when = first[(owner, detector)]
        console.print(
            f"  {owner}: {count} × {detector} (first at {_iso(when.timestamp)}: {when.reason})"
        )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
