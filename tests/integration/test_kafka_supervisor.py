"""`streamsense run --workers auto` on real Kafka: a backlog on 4 partitions makes the
supervisor add workers to the real consumer group, the lag returns to 0, every event has
its output once after deduplication by source (at-least-once mode; exactly once, with one
transactional id per worker slot, without any copy), each user's state
followed the partition moves, the idle group shrinks to one worker and SIGTERM ends it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from streamsense.brokers.kafka import KafkaBroker
from streamsense.runtime.lag import group_lag
from streamsense.runtime.worker import Worker
from streamsense.testing import drain_topic
from tests.apps import slow
from tests.integration.workers import SESSION_TIMEOUT_MS, events

Names = Callable[[str], str]
pytestmark = [pytest.mark.kafka, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
EVENTS = 3000


def _status(tmp: Path) -> dict[str, Any]:
    path = tmp / "status.json"
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.mark.parametrize("exactly_once", [False, True], ids=["at-least-once", "exactly-once"])
def test_supervisor_scales_a_kafka_group(
    kafka_bootstrap: str, unique: Names, tmp_path: Path, exactly_once: bool
) -> None:
    name = unique("supervised")
    app, clicks = slow.build(name)
    broker = KafkaBroker(kafka_bootstrap)
    Worker(app, broker).ensure_topics()
    with broker.producer() as producer:
        for click in events(EVENTS):
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}", "STREAMSENSE_SLOW_NAME": name}
    command = [sys.executable, "-m", "streamsense", "run", str(ROOT / "tests/apps/slow.py")]
    url = f"kafka://{kafka_bootstrap}"
    if exactly_once:
        # One transactional id for the app: each worker slot must still get its own, or
        # the workers fence each other.
        url += f"?exactly_once=true&transactional_id={name}&transaction_timeout_ms=10000"
    command += ["--workers", "auto", "--broker", url]
    command += ["--state-dir", str(tmp_path), "--batch-size", "50", "--batch-ms", "50"]
    command += ["--session-timeout-ms", str(SESSION_TIMEOUT_MS), "--check-seconds", "0.3"]
    command += ["--scale-up-lag", "100", "--scale-up-seconds", "1", "--idle-seconds", "3"]
    command += ["--cooldown-seconds", "3", "--status-file", str(tmp_path / "status.json")]
    log = tmp_path / "supervisor.log"
    with log.open("wb") as out:
        supervisor = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)

    def wait_for(condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 150
        while not condition():
            assert supervisor.poll() is None, f"supervisor died:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, (
                f"timed out waiting for {what}:\n{log.read_text()[-3000:]}"
            )
            time.sleep(0.2)

    try:
        wait_for(lambda: _status(tmp_path).get("workers", 0) > 1, "a scale-up")
        wait_for(lambda: group_lag(broker, app.group, [clicks.topic]).total == 0, "no lag")
        wait_for(
            lambda: _status(tmp_path)["workers"] == 1 and _status(tmp_path)["stopping"] == 0,
            "the scale-down",
        )
    finally:
        supervisor.send_signal(signal.SIGTERM)
        code = supervisor.wait(timeout=90)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "scale up: 1 → 2 workers" in text and "scale down" in text, text[-3000:]
    status = _status(tmp_path)
    assert 1 < status["most_workers"] <= slow.PARTITIONS

    outputs = drain_topic(broker, f"{name}.out")
    broker.close()
    if exactly_once:
        assert len(outputs) == EVENTS  # read_committed: not a single copy
    first: dict[str, bytes] = {}
    for record in outputs:
        source = dict(record.headers)["source"].decode()
        assert first.setdefault(source, record.value or b"") == record.value  # copies equal
    assert len(first) == EVENTS
    by_user: dict[str, list[int]] = {}
    for value in first.values():
        decoded = msgspec.json.decode(value)
        by_user.setdefault(decoded["user"], []).append(decoded["n"])
    for ns in by_user.values():
        assert sorted(ns) == list(range(1, len(ns) + 1))
