"""`streamsense verify`: are the vectors that were served exactly what the definitions give?

Samples served vectors from the feature log, recomputes them by replaying the source log
through a fresh engine built from the current definitions, and reports per feature how many
differ and by how much. The engine is a deterministic function of the log, so any mismatch
is a bug (or a definition changed since serving), never noise.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import msgspec

from streamsense.brokers.base import Broker, TopicPartition
from streamsense.features.definitions import FeatureSet
from streamsense.features.engine import FeatureEngine
from streamsense.features.stage import FeatureLogEntry
from streamsense.store.backfill import _chunks, _decode, require_one_log
from streamsense.testing import drain_topic


@dataclass
class FeatureCheck:
    name: str
    checked: int = 0
    mismatched: int = 0
    largest_difference: float = 0.0

    @property
    def rate(self) -> float:
        return self.mismatched / self.checked if self.checked else 0.0


@dataclass
class VerifyReport:
    sampled: int
    missing_events: int = 0
    features: dict[str, FeatureCheck] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.missing_events == 0 and all(c.mismatched == 0 for c in self.features.values())


def verify(
    features: FeatureSet,
    broker: Broker,
    log_topic: str,
    *,
    sample: int = 1000,
    seed: int = 0,
    allowed_lateness_ms: int = 0,
) -> VerifyReport:
    entries = [
        msgspec.json.decode(r.value or b"", type=FeatureLogEntry)
        for r in drain_topic(broker, log_topic)
    ]
    chosen = random.Random(seed).sample(entries, min(sample, len(entries)))
    served = {e.event_id: e.features for e in chosen}
    recomputed = _recompute(features, broker, set(served), allowed_lateness_ms)
    report = VerifyReport(sampled=len(served))
    report.features = {name: FeatureCheck(name) for name in features.names}
    for event_id, vector in served.items():
        again = recomputed.get(event_id)
        if again is None:
            report.missing_events += 1
            continue
        for name in set(vector) | set(again):
            check = report.features.setdefault(name, FeatureCheck(name))
            check.checked += 1
            if name not in vector or name not in again:
                check.mismatched += 1
                check.largest_difference = float("inf")
                continue
            difference = abs(float(vector[name]) - float(again[name]))
            if difference > 0 or vector[name] != again[name]:
                check.mismatched += 1
                check.largest_difference = max(check.largest_difference, difference)
    return report


def _recompute(
    features: FeatureSet, broker: Broker, wanted: set[str], allowed_lateness_ms: int
) -> dict[str, dict[str, float | int]]:
    engine = FeatureEngine(features, allowed_lateness_ms=allowed_lateness_ms)
    source = engine.source
    found: dict[str, dict[str, float | int]] = {}
    require_one_log(source, "verify")
    for part in broker.describe_topic(source.topic).partitions:
        tp = TopicPartition(source.topic, part.partition)
        last = max(
            (
                int(e.rsplit("/", 1)[1])
                for e in wanted
                if e.startswith(f"{tp.topic}/{tp.partition}/")
            ),
            default=-1,
        )
        if last < 0:
            continue
        for records in _chunks(broker, tp, part.low, last + 1, 100_000):
            events, _ = _decode(source, records)
            if not events:
                continue
            result = engine.process_events(tp.partition, events)
            for i, event in enumerate(events):
                if event.id in wanted and not result.late[i]:
                    found[event.id] = {
                        f.name: (int(v) if f.output_dtype == "int64" else v)
                        for f, v in zip(features.features, result.values[i].tolist(), strict=True)
                    }
    return found
