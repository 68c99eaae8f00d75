"""At least once on real Pulsar under SIGKILL: a worker process is killed at random points of
its progress, several times, and restarted. The Pulsar broker has no transactions (the
Python client has no API for them), so a killed worker's last outputs may be written again
when its input is replayed: after dropping copies by their source coordinates, every event
has exactly one output, no user's sequence has a gap or a repeat, and the feature vectors
equal an uninterrupted worker's."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streamsense.brokers import open_broker
from streamsense.runtime.lag import group_lag
from streamsense.runtime.worker import Worker
from streamsense.testing import drain_topic
from tests.apps import scaleout
from tests.integration.pulsar_server import pulsar_url  # noqa: F401  (fixture)
from tests.integration.workers import (
    check_outputs,
    events,
    processed,
    reference_outputs,
    start_worker,
    wait_until,
)

Names = Callable[[str], str]
pytestmark = [pytest.mark.pulsar, pytest.mark.slow]
EVENTS = 6_000
KILLS = 3


def test_sigkill_under_at_least_once_on_pulsar_loses_nothing(
    pulsar_url: str,  # noqa: F811
    unique: Names,
    tmp_path: Path,
) -> None:
    name = unique("pulsar-kill")
    app, clicks = scaleout.build(name)
    broker = open_broker(pulsar_url)
    Worker(app, broker).ensure_topics()
    items = events(EVENTS)
    with broker.producer() as producer:
        for click in items:
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
    rng = random.Random(7)
    targets = sorted(rng.uniform(0.05, 0.85) * EVENTS for _ in range(KILLS))
    progress: list[int] = []
    for i, target in enumerate(targets):
        worker = start_worker(
            tmp_path, f"run{i}", name, pulsar_url, batch_size=rng.choice([20, 50, 200])
        )
        goal = max(target, progress[-1] + 1 if progress else 0)
        wait_until(
            lambda g=goal: processed(broker, app.group, clicks.topic) >= g,
            [worker],
            "progress",
            timeout=180,
        )
        time.sleep(rng.uniform(0.0, 0.1))
        worker.kill()
        progress.append(processed(broker, app.group, clicks.topic))
    assert progress[-1] < EVENTS and len(set(progress)) == KILLS, progress
    worker = start_worker(tmp_path, "last", name, pulsar_url)
    wait_until(
        lambda: group_lag(broker, app.group, [clicks.topic]).total == 0,
        [worker],
        "lag 0",
        timeout=180,
    )
    worker.stop()

    records = drain_topic(broker, f"{name}.features")
    copies = check_outputs(records, reference_outputs(name, items), dedup=True)
    print(f"copies dropped by source coordinates: {copies}")
    broker.close()
