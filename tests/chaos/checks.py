"""What a chaos scenario checks and measures: one decision per event (nothing lost, no
duplicate action), degraded decisions marked with a reason, the breaker's transitions as the
worker logged them, and how long the pipeline took to recover."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import msgspec

from streamsense.serving.decision import DecisionRecord
from tests.chaos.harness import Arrival

_decode = msgspec.json.Decoder(DecisionRecord).decode


@dataclass
class Tally:
    """The decisions read, against the events produced. ``copies`` are records dropped
    because another record came from the same source coordinates (an at-least-once replay:
    the idempotent-sink contract); ``duplicates`` are events decided from more than one
    source record, which no sink could tell apart: a duplicate action."""

    events: int
    records: int = 0
    copies: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    degraded: int = 0
    unmarked: int = 0  # degraded without a reason: must never happen
    reasons: Counter[str] = field(default_factory=Counter)
    tiers: Counter[str] = field(default_factory=Counter)
    first_arrival: dict[str, float] = field(default_factory=dict)
    decisions: dict[str, DecisionRecord] = field(default_factory=dict)


def tally(arrivals: Iterable[Arrival], expected: Iterable[str]) -> Tally:
    wanted = set(expected)
    result = Tally(events=len(wanted))
    by_source: dict[str, tuple[float, DecisionRecord]] = {}
    for arrival in arrivals:
        result.records += 1
        source = dict(arrival.record.headers)["source"].decode()
        decision = _decode(arrival.record.value or b"")
        if source in by_source:
            result.copies += 1
            assert by_source[source][1].event_id == decision.event_id, source
            continue
        by_source[source] = (arrival.at, decision)
    sources_of: dict[str, list[str]] = {}
    for source, (at, decision) in by_source.items():
        sources_of.setdefault(decision.event_id, []).append(source)
        result.first_arrival[decision.event_id] = min(
            at, result.first_arrival.get(decision.event_id, at)
        )
        result.decisions[decision.event_id] = decision
        result.tiers[decision.tier] += 1
        if decision.degraded:
            result.degraded += 1
            result.unmarked += not decision.degraded_reasons
            result.reasons.update(decision.degraded_reasons)
    result.duplicates = sorted(e for e, s in sources_of.items() if len(s) > 1)
    result.lost = sorted(wanted - sources_of.keys())
    result.unexpected = sorted(sources_of.keys() - wanted)
    return result


def assert_one_decision_each(result: Tally, *, exactly_once: bool) -> None:
    """Nothing lost, no duplicate action, every degraded decision says why. Exactly once
    also means no copy at all (read_committed sees no aborted or replayed output)."""
    assert not result.lost, f"{len(result.lost)} events without a decision: {result.lost[:10]}"
    assert not result.duplicates, f"decided twice: {result.duplicates[:10]}"
    assert not result.unexpected, f"decisions for unknown events: {result.unexpected[:10]}"
    assert result.unmarked == 0, f"{result.unmarked} degraded decisions without a reason"
    if exactly_once:
        assert result.copies == 0, f"{result.copies} copies under exactly once"


@dataclass(frozen=True)
class Transition:
    at: float  # time.time() of the worker's log line
    breaker: str
    previous: str
    current: str


# resilience/breaker.py logs "circuit NAME: FROM -> TO (...)" (open: WARNING, else INFO),
# through the CLI's format "%(asctime)s %(levelname)s %(name)s: %(message)s".
_TRANSITION = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ streamsense\.resilience\.breaker: "
    r"circuit (\S+): (\w+) -> (\w+)",
    re.MULTILINE,
)


def breaker_transitions(logs: Iterable[Path]) -> list[Transition]:
    found = []
    for path in logs:
        text = path.read_text("utf-8", "replace")
        for stamp, name, previous, current in _TRANSITION.findall(text):
            at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()  # local time
            found.append(Transition(at, name, previous, current))
    return sorted(found, key=lambda t: t.at)


def recovery(
    result: Tally, sent_at: Mapping[str, float], fault_start: float, fault_end: float
) -> dict[str, float]:
    """Seconds, from the end of the fault: until the first decision is read after it
    (``resume_s``), and until every event sent before it is decided (``catch_up_s``); and
    the longest any event waited for its decision once the pipeline was up (``worst_delay_s``,
    over the events sent after the first decision, so worker start-up does not count)."""
    arrivals = result.first_arrival
    after = [at for at in arrivals.values() if at >= fault_end]
    before = [arrivals[e] for e, sent in sent_at.items() if sent < fault_end]
    up = min(arrivals.values())
    delays = [arrivals[e] - sent for e, sent in sent_at.items() if sent >= up]
    return {
        "fault_s": round(fault_end - fault_start, 2),
        "resume_s": round(max(0.0, min(after) - fault_end), 2) if after else -1.0,
        "catch_up_s": round(max(0.0, max(before) - fault_end), 2) if before else 0.0,
        "worst_delay_s": round(max(delays), 2) if delays else 0.0,
    }


def tally_figures(result: Tally) -> dict[str, object]:
    return {
        "events": result.events,
        "decision_records": result.records,
        "lost": len(result.lost),
        "duplicates": len(result.duplicates),
        "copies_deduplicated": result.copies,
        "degraded": result.degraded,
        "degraded_reasons": dict(result.reasons),
        "tiers": dict(result.tiers),
    }
