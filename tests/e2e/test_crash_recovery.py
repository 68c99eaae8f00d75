"""A real worker process is SIGKILLed at random moments; after it finishes on restart every
output exists exactly once and every key's state continued without gap or repeat."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from streamsense.brokers import EmbeddedBroker, TopicPartition
from streamsense.runtime.worker import Worker
from streamsense.testing import drain_topic
from tests.apps.counter import app, clicks, make_clicks

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "tests" / "apps" / "counter.py")
EVENTS = 40_000
BAD = 400


def _feed(db: Path) -> None:
    broker = EmbeddedBroker(db)
    Worker(app, broker).ensure_topics()
    with broker.producer() as producer:
        for i, click in enumerate(make_clicks(EVENTS)):
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
            if i % (EVENTS // BAD) == 0:
                producer.send(clicks.topic, b'{"user": "broken"', b"broken")
    broker.close()


def _start_worker(
    state_dir: Path, mode: str, batch_size: int, app: str = APP
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamsense",
            "run",
            app,
            "--state-dir",
            str(state_dir),
            "--mode",
            mode,
            "--batch-size",
            str(batch_size),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _committed_total(db: Path) -> int:
    broker = EmbeddedBroker(db)
    try:
        tps = [TopicPartition(clicks.topic, p) for p in range(clicks.partitions)]
        return sum(v or 0 for v in broker.committed(app.group, tps).values())
    finally:
        broker.close()


def _wait_until(condition: Callable[[], bool], worker: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else ""
        assert time.monotonic() < deadline, "the worker made no progress"
        time.sleep(0.02)


def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "broker.db"
    _feed(db)
    rng = random.Random(20261130)
    total = EVENTS + BAD
    # Kill when the committed progress passes random targets, plus a random extra delay,
    # so each kill lands mid-stream at a different point of the commit cycle.
    targets = sorted(rng.uniform(0.05, 0.9) * total for _ in range(6))
    progress = []
    for target in targets:
        mode = rng.choice(["microbatch", "microbatch", "realtime"])
        worker = _start_worker(tmp_path, mode, rng.choice([50, 300, 1000]))
        _wait_until(lambda t=target: _committed_total(db) >= t, worker)
        time.sleep(rng.uniform(0.0, 0.05))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        progress.append(_committed_total(db))
    assert progress[0] < total and len(set(progress)) > 3, progress
    # Last run: let it finish, then stop it cleanly with SIGTERM.
    worker = _start_worker(tmp_path, "microbatch", 500)
    _wait_until(lambda: _committed_total(db) >= total, worker)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.stderr.read() if worker.stderr else ""

    broker = EmbeddedBroker(db)
    counts = [msgspec.json.decode(r.value or b"") for r in drain_topic(broker, "counter.counts")]
    letters = drain_topic(broker, clicks.dead_letter_topic)
    broker.close()
    assert len(counts) == EVENTS
    assert len({c["source"] for c in counts}) == EVENTS
    by_user: dict[str, list[int]] = {}
    for c in counts:
        by_user.setdefault(c["user"], []).append(c["n"])
    for ns in by_user.values():
        assert ns == list(range(1, len(ns) + 1))  # per-key order and state survived
    assert len(letters) == BAD
    assert len({dict(r.headers)["source"] for r in letters}) == BAD


WINDOWED = str(ROOT / "tests" / "apps" / "windowed.py")


def test_sigkill_never_changes_windowed_features(tmp_path: Path) -> None:
    """The feature engine's state comes back from snapshots plus a silent replay: after
    kills, every feature vector equals the one an uninterrupted run computes."""
    from tests.apps import windowed

    items = make_clicks(20_000, users=50)
    db = tmp_path / "broker.db"
    broker = EmbeddedBroker(db)
    Worker(windowed.app, broker).ensure_topics()
    with broker.producer() as producer:
        for click in items:
            out = windowed.clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
    broker.close()
    total = len(items)
    rng = random.Random(7)

    def committed() -> int:
        b = EmbeddedBroker(db)
        try:
            tps = [TopicPartition(windowed.clicks.topic, p) for p in range(3)]
            return sum(v or 0 for v in b.committed("windowed", tps).values())
        finally:
            b.close()

    for target in sorted(rng.uniform(0.1, 0.9) * total for _ in range(4)):
        worker = _start_worker(tmp_path, "microbatch", rng.choice([100, 500]), WINDOWED)
        _wait_until(lambda t=target: committed() >= t, worker)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    worker = _start_worker(tmp_path, "microbatch", 500, WINDOWED)
    _wait_until(lambda: committed() >= total, worker)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0

    from streamsense.brokers import MemoryBroker

    straight = MemoryBroker()
    Worker(windowed.app, straight).ensure_topics()
    with straight.producer() as producer:
        for click in items:
            out = windowed.clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
    Worker(windowed.build(allowed_lateness_ms=2000, idle_timeout_ms=None), straight).run(
        until_caught_up=True
    )
    broker = EmbeddedBroker(db)
    got = sorted(r.value or b"" for r in drain_topic(broker, "windowed.features"))
    broker.close()
    want = sorted(r.value or b"" for r in drain_topic(straight, "windowed.features"))
    assert len(got) == total
    assert got == want
