"""The moving parts of a chaos scenario: worker processes of the chaos app, a paced producer
of uniquely identified payments (and, when asked, malformed records), and a collector that
reads the decisions topic as they arrive, with the time each arrived."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from streamsense.brokers.base import Broker, Consumer, Record, TopicPartition
from streamsense.errors import StreamsenseError
from tests.apps.chaos_app import Payment, payments
from tests.integration.workers import SESSION_TIMEOUT_MS, WorkerProcess

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.apps.chaos_app:application"


@dataclass(frozen=True)
class Scenario:
    """One test's names and paths: its topics and group start with ``name``."""

    name: str
    bootstrap: str
    tmp: Path
    model: Path

    @property
    def control(self) -> Path:
        return self.tmp / "control"

    def url(self, *, exactly_once: bool, slot: int = 0) -> str:
        if not exactly_once:
            return f"kafka://{self.bootstrap}"
        # One transactional id per worker slot: a replacement in the same slot fences its
        # dead predecessor and aborts the transaction it left open at once.
        return f"kafka://{self.bootstrap}?exactly_once=true&transactional_id={self.name}-slot{slot}"

    def start_worker(
        self,
        label: str,
        url: str,
        *,
        batch_size: int = 100,
        session_timeout_ms: int = SESSION_TIMEOUT_MS,
        env: dict[str, str] | None = None,
    ) -> WorkerProcess:
        """``streamsense run`` as a user starts it, with INFO logs (breaker transitions);
        ``env`` adds to the app's environment (its remote model, its online store)."""
        log = self.tmp / f"{label}.log"
        self.control.mkdir(exist_ok=True)
        env = {
            **os.environ,
            "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
            "STREAMSENSE_CHAOS_NAME": self.name,
            "STREAMSENSE_CHAOS_MODEL": str(self.model),
            "STREAMSENSE_CHAOS_CONTROL": str(self.control),
            "COLUMNS": "200",  # rich wraps the final stats line otherwise
            **(env or {}),
        }
        command = [sys.executable, "-m", "streamsense", "run", APP, "--broker", url]
        command += ["--batch-size", str(batch_size), "--verbose"]
        command += ["--session-timeout-ms", str(session_timeout_ms)]
        command += ["--state-dir", str(self.tmp / label)]
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        return WorkerProcess(label, process, log)

    def slow_model(self, seconds: float) -> None:
        """Flip the chaos app's switch: every model call sleeps ``seconds`` first, on the
        cascade's clock (it takes that long as the breaker measures it; nobody waits)."""
        switch = self.control / "slow"
        partial = switch.with_suffix(".tmp")
        partial.write_text(str(seconds))
        partial.replace(switch)  # atomic: the app never reads a half-written value

    def fast_model(self) -> None:
        (self.control / "slow").unlink(missing_ok=True)


@dataclass(frozen=True)
class Item:
    """One record to produce; ``event_id`` is None for a malformed one."""

    event_id: str | None
    key: bytes
    value: bytes


def payment_items(n: int, seed: int, users: int = 40) -> list[Item]:
    """``n`` valid payments of the last minutes, ids ``p000000``..., about 5% over the rule's
    amount (decided by the rule), the rest scored by the model."""
    rng = random.Random(seed)
    start = int(time.time() * 1000) - 60_000
    items = []
    for i in range(n):
        amount = rng.uniform(901, 2000) if rng.random() < 0.05 else rng.uniform(1, 900)
        payment = Payment(f"p{i:06d}", f"user-{i % users}", start + i, amount, rng.random())
        record = payments.to_record(payment)
        items.append(Item(payment.id, record.key or b"", record.value or b""))
    return items


@dataclass
class Arrival:
    at: float  # time.time() when the collector read it
    record: Record


@dataclass(eq=False)  # a thread: hashed by identity
class Collector(threading.Thread):
    """Reads every partition of ``topic`` from the start (read_committed: a transaction's
    outputs appear when it commits) and keeps each record with its arrival time."""

    broker: Broker
    topic: str
    partitions: int
    arrivals: list[Arrival] = field(default_factory=list)
    retried_errors: int = 0
    error: BaseException | None = None

    def __post_init__(self) -> None:
        super().__init__(daemon=True, name="chaos-collector")
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            consumer = self.broker.consumer()
            try:
                consumer.assign([TopicPartition(self.topic, p) for p in range(self.partitions)])
                while not self._stop_event.is_set():
                    self._poll_once(consumer)
            finally:
                consumer.close()
        except BaseException as error:  # reported by the test
            self.error = error

    def _poll_once(self, consumer: Consumer) -> None:
        try:
            records = consumer.poll(1000, timeout=0.1)
        except StreamsenseError as error:
            if not error.retryable:
                raise
            self.retried_errors += 1  # the broker is restarting: read on after it
            time.sleep(0.2)
            return
        now = time.time()
        with self._lock:
            self.arrivals.extend(Arrival(now, r) for r in records)

    def snapshot(self) -> list[Arrival]:
        with self._lock:
            return list(self.arrivals)

    def stop(self) -> list[Arrival]:
        self._stop_event.set()
        self.join(timeout=30)
        return self.snapshot()
