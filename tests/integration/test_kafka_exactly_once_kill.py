"""Exactly once on real Kafka under SIGKILL: a worker process (Kafka transactions) is killed
at random points of its progress, several times, and restarted in the same slot (the same
transactional id, which aborts whatever transaction the dead one left open). A
read_committed reader then finds every event's output exactly once, with no
deduplication: no duplicate decision, nothing lost, no gap or repeat in any user's sequence,
and feature vectors equal to an uninterrupted worker's."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streamsense.brokers.kafka import KafkaBroker
from streamsense.runtime.lag import group_lag
from streamsense.runtime.worker import Worker
from streamsense.testing import drain_topic
from tests.apps import scaleout
from tests.integration.workers import (
    check_outputs,
    events,
    processed,
    reference_outputs,
    start_worker,
    wait_until,
)

Names = Callable[[str], str]
pytestmark = [pytest.mark.kafka, pytest.mark.slow]
EVENTS = 30_000
KILLS = 4


def test_sigkill_under_exactly_once_duplicates_and_loses_nothing(
    kafka_bootstrap: str, unique: Names, tmp_path: Path
) -> None:
    name = unique("eos-kill")
    app, clicks = scaleout.build(name)
    broker = KafkaBroker(kafka_bootstrap)
    Worker(app, broker).ensure_topics()
    items = events(EVENTS)
    with broker.producer() as producer:
        for click in items:
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
    url = (
        f"kafka://{kafka_bootstrap}?exactly_once=true"
        f"&transactional_id={name}-slot0&transaction_timeout_ms=10000"
    )
    rng = random.Random(5)
    targets = sorted(rng.uniform(0.05, 0.85) * EVENTS for _ in range(KILLS))
    progress = []
    for i, target in enumerate(targets):
        # Small batches: many transactions, so kills land inside and between them.
        worker = start_worker(tmp_path, f"run{i}", name, url, batch_size=rng.choice([20, 50, 200]))
        # Past the target and past the last kill: a fast worker may have overshot this
        # target before its kill, and each run must commit something of its own.
        goal = max(target, progress[-1] + 1 if progress else 0)
        wait_until(lambda g=goal: processed(broker, app.group, clicks.topic) >= g, [worker], "")
        time.sleep(rng.uniform(0.0, 0.1))
        worker.kill()
        progress.append(processed(broker, app.group, clicks.topic))
    assert progress[-1] < EVENTS and len(set(progress)) == KILLS, progress
    worker = start_worker(tmp_path, "last", name, url)
    wait_until(lambda: group_lag(broker, app.group, [clicks.topic]).total == 0, [worker], "lag 0")
    worker.stop()

    records = drain_topic(broker, f"{name}.features")
    assert check_outputs(records, reference_outputs(name, items), dedup=False) == 0
    broker.close()
