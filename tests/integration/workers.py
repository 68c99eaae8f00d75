"""Worker processes on real Kafka for the scale-out and crash tests: start them as users do
(`python -m streamsense run APP --broker kafka://...`), watch the group's progress, and check
what they wrote against a single worker's run of the same events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from streamsense.brokers import MemoryBroker, TopicPartition
from streamsense.brokers.base import Broker, OutRecord, Record
from streamsense.runtime.lag import group_lag
from streamsense.runtime.worker import Worker
from streamsense.testing import drain_topic
from tests.apps import scaleout
from tests.apps.counter import Click

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "tests" / "apps" / "scaleout.py")
SESSION_TIMEOUT_MS = 6000  # Kafka's minimum (group.min.session.timeout.ms)
USERS = 60


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> str:
        """SIGTERM: the worker commits, leaves the group and prints its stats."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        assert code == 0, f"{self.name} exited with {code}:\n{self.output()[-3000:]}"
        return self.output()


def start_worker(
    tmp: Path,
    name: str,
    app_name: str,
    broker_url: str,
    *,
    batch_size: int = 500,
    state_every_s: float = 30.0,
) -> WorkerProcess:
    log = tmp / f"{name}.log"
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
        "STREAMSENSE_SCALEOUT_NAME": app_name,
        "COLUMNS": "200",  # rich wraps the final stats line otherwise
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamsense",
                "run",
                APP,
                "--broker",
                broker_url,
                "--batch-size",
                str(batch_size),
                "--session-timeout-ms",
                str(SESSION_TIMEOUT_MS),
                "--state-every-s",
                str(state_every_s),
                "--state-dir",
                str(tmp / name),
                "-v",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return WorkerProcess(name, process, log)


def wait_until(
    condition: Callable[[], bool], workers: list[WorkerProcess], what: str, timeout: float = 90
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for worker in workers:
            assert worker.process.poll() is None, f"{worker.name} died:\n{worker.output()[-3000:]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


_ADMINS: dict[str, AdminClient] = {}


def live_members(bootstrap: str, group: str) -> int:
    admin = _ADMINS.get(bootstrap) or _ADMINS.setdefault(
        bootstrap, AdminClient({"bootstrap.servers": bootstrap})
    )
    try:
        described = admin.describe_consumer_groups([group], request_timeout=10)[group].result()
    except KafkaException as error:
        # A broker that just started is still loading its group coordinators: ask again.
        if error.args[0].code() in _COORDINATOR_MOVING:
            return -1
        raise
    return len(described.members)


_COORDINATOR_MOVING = frozenset(
    {
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
    }
)


def processed(broker: Broker, group: str, topic: str) -> int:
    """Events the group committed (offsets: the source topic is not transactional)."""
    lag = group_lag(broker, group, [topic])
    return sum(p.committed or 0 for p in lag.partitions)


def events(n: int, step_ms: int = 50) -> list[Click]:
    """Clicks of the last minutes. Outputs carry their event's time as the Kafka timestamp,
    and the test broker deletes records older than an hour (log.retention.hours=1)."""
    start = int(time.time() * 1000) - n * step_ms - 60_000
    return [Click(f"user-{i % USERS}", start + i * step_ms, float(i % 10)) for i in range(n)]


def backlog(n: int, users: int, before: list[Click]) -> list[Click]:
    """``n`` clicks of ``users`` users in the second before ``before`` starts: history
    for many keys, so the feature stage's state is large."""
    start = before[0].ts - 1000
    return [Click(f"bulk-{i % users}", start + i * 1000 // n, float(i % 7)) for i in range(n)]


class Feeder(threading.Thread):
    """Produces ``records`` at ``rate`` records/s (a live stream) and notes when each one
    named in ``ids`` (same order; None for no name) was sent, as ``time.time()``. With
    ``hold_after``, it stops after that many records until ``release()``: a test can make
    sure events are still to come after a step that takes an unknown time."""

    def __init__(
        self,
        broker: Broker,
        records: list[OutRecord],
        rate: float,
        ids: list[str | None] | None = None,
        hold_after: int | None = None,
    ) -> None:
        super().__init__(daemon=True, name="feeder")
        self.broker, self.records, self.rate = broker, records, rate
        self.ids = ids or [None] * len(records)
        self.sent_at: dict[str, float] = {}
        self.error: BaseException | None = None
        self.hold_after = len(records) if hold_after is None else hold_after
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    def run(self) -> None:
        try:
            producer = self.broker.producer(linger_ms=5)
            started = time.monotonic()
            chunk = max(1, int(self.rate / 20))
            lo = 0
            while lo < len(self.records):
                if lo == self.hold_after and not self._released.is_set():
                    self._released.wait()
                    started = time.monotonic() - lo / self.rate  # the same pace after
                # A chunk ends at the hold: not one record more is sent before release().
                hi = min(lo + chunk, self.hold_after if lo < self.hold_after else len(self.records))
                for out, name in zip(self.records[lo:hi], self.ids[lo:hi], strict=True):
                    producer.send(out.topic, out.value, out.key)
                    if name is not None:
                        self.sent_at[name] = time.time()
                producer.flush()
                ahead = started + hi / self.rate - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
                lo = hi
            producer.close()
        except BaseException as error:  # reported by the test
            self.error = error


def reference_outputs(name: str, items: list[Click]) -> list[bytes]:
    """What one uninterrupted worker writes for ``items`` (in memory, same app)."""
    app, clicks = scaleout.build(name)
    broker = MemoryBroker()
    Worker(app, broker).ensure_topics()
    with broker.producer() as producer:
        for click in items:
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
    Worker(app, broker).run(until_caught_up=True)
    return sorted(r.value or b"" for r in drain_topic(broker, f"{name}.features"))


def check_outputs(records: list[Record], reference: list[bytes], *, dedup: bool) -> int:
    """Every source event has exactly one output (after dropping copies by source
    coordinates when ``dedup``), each user's sequence is 1, 2, 3... in offset order, and
    the feature vectors equal a single worker's. Returns how many copies were dropped."""
    by_source: dict[str, list[Record]] = {}
    for record in records:
        source = dict(record.headers)["source"].decode()
        by_source.setdefault(source, []).append(record)
    copies = len(records) - len(by_source)
    if not dedup:
        assert copies == 0, f"{copies} duplicate outputs"
    for source, found in by_source.items():
        # A replayed event's output is the same bytes as the first time (deterministic).
        assert len({r.value for r in found}) == 1, source
    unique = [found[0] for found in by_source.values()]
    decoded = [msgspec.json.decode(r.value or b"") for r in unique]
    per_user: dict[str, list[tuple[int, int, int]]] = {}
    for r, d in zip(unique, decoded, strict=True):
        _, partition, offset = d["source"].rsplit("/", 2)
        assert d["source"] == dict(r.headers)["source"].decode()
        per_user.setdefault(d["user"], []).append((int(partition), int(offset), d["n"]))
    for user, seq in per_user.items():
        assert len({p for p, _, _ in seq}) == 1, f"{user} moved partitions"
        ns = [n for _, _, n in sorted(seq)]
        wrong = next((i for i, n in enumerate(ns) if n != i + 1), None)
        assert wrong is None, (
            f"{user}: gap or repeat at {sorted(seq)[wrong]}: {ns[wrong - 3 : wrong + 3]}"
        )
    got = sorted(r.value or b"" for r in unique)
    assert len(got) == len(reference), (len(got), len(reference))
    assert got == reference, "feature vectors differ from a single worker's"
    return copies


def source_partitions(topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in range(scaleout.PARTITIONS)]
