"""Broker implementations under the one contract suite: memory, embedded, Kafka and Pulsar.

The self-hosted brokers (memory, embedded) run group membership and retention on the clock
they are given, so tests drive them with a ManualClock. Kafka runs them on its own wall
clock: the same tests wait for it in real time, within bounds. Pulsar's groups follow its
wall clock (a member's connection), its retention the clock it is given (streamsense moves
the log start itself, see brokers.pulsar_retention). ``Backend`` says which a broker is, and
what it can show within a test.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from streamsense.brokers import EmbeddedBroker, MemoryBroker
from streamsense.brokers.base import Broker, Consumer, PartitionInfo
from streamsense.brokers.kafka import KafkaBroker
from streamsense.brokers.log import LogBroker
from streamsense.brokers.pulsar import PulsarBroker
from streamsense.clock import Clock
from streamsense.testing import ManualClock
from tests.integration.kafka_server import kafka_bootstrap  # noqa: F401  (fixture)
from tests.integration.pulsar_server import pulsar_url  # noqa: F401  (fixture)

BrokerFactory = Callable[..., Broker]
ROOT = Path(__file__).resolve().parents[2]
SETTLE_TIMEOUT_S = 45.0
BROKERS = [
    "memory",
    "embedded",
    pytest.param("kafka", marks=pytest.mark.kafka),
    pytest.param("pulsar", marks=pytest.mark.pulsar),
]
REMOTE = ("kafka", "pulsar")

# A group member in another process, so it can die without leaving the group (kill -9).
_MEMBER = """
import sys
from streamsense.brokers import open_broker
url, group, topic, session = sys.argv[1:5]
consumer = open_broker(url).consumer(group, session_timeout_ms=int(session))
consumer.subscribe([topic])
while True:
    consumer.poll(1, timeout=0.1)
"""


class Member:
    """A member of a group that will stop heartbeating without leaving."""

    def __init__(self, consumer: Consumer | None, process: subprocess.Popen[bytes] | None) -> None:
        self._consumer = consumer  # self-hosted: alive until it misses heartbeats
        self._process = process

    def die(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=10)


@dataclass
class Backend:
    name: str
    factory: BrokerFactory
    bootstrap: str | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def manual_clock(self) -> bool:
        """Groups follow the broker's ManualClock (else: wall clock)."""
        return self.name not in REMOTE

    @property
    def retention_on_call(self) -> bool:
        """enforce_retention applies retention at once, on the broker's clock, and counts
        what it removed. Kafka's log cleaner does it in its own time."""
        return self.name != "kafka"

    @property
    def session_timeout_ms(self) -> int:
        # Kafka refuses sessions shorter than group.min.session.timeout.ms (6 s).
        return 6000 if self.name in REMOTE else 1000

    @property
    def compacts_on_write(self) -> bool:
        """Compaction is visible at once. Kafka compacts closed segments in the background,
        Pulsar into a compacted ledger that streamsense's full readers do not use: a reader
        may still see superseded records (never a wrong latest value)."""
        return self.name not in REMOTE

    @property
    def checks_expected_offsets(self) -> bool:
        """commit_transaction enforces Transaction.expected atomically. Kafka cannot; its
        group generation fences stale workers (the stale-transaction contract case asserts
        that; tests/integration/test_kafka_transactions has a member dropped by a rebalance).
        Pulsar checks them for a commit made without group membership (this case), before
        writing, not atomically with it; a member is fenced by ownership (brokers.pulsar)."""
        return self.name != "kafka"

    @property
    def retention_slack_bytes(self) -> int:
        """How far above retention_bytes a partition may stay: Kafka deletes whole segments
        and never one that would take the partition below the limit (segments >= 1 MiB)."""
        return (1 << 20) if self.name == "kafka" else 0

    def settle(
        self, clock: ManualClock, consumers: Sequence[Consumer], done: Callable[[], bool]
    ) -> None:
        """Poll ``consumers`` (advancing the ManualClock a heartbeat at a time for the
        self-hosted brokers) until ``done()``, or fail after SETTLE_TIMEOUT_S."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while not done():
            assert time.monotonic() < deadline, f"{self.name}: group did not settle"
            if self.manual_clock:
                clock.advance(self.session_timeout_ms / 4)
            for consumer in consumers:
                assert consumer.poll(1, timeout=0.0 if self.manual_clock else 0.05) == []

    def silent_member(self, clock: ManualClock, group: str, topic: str) -> Member:
        if self.manual_clock:
            consumer = self.factory(clock).consumer(
                group, session_timeout_ms=self.session_timeout_ms
            )
            consumer.subscribe([topic])  # and never polls again
            return Member(consumer, None)
        url = self.bootstrap or ""
        url = f"kafka://{url}" if self.name == "kafka" else url
        args = [url, group, topic, str(self.session_timeout_ms)]
        process = subprocess.Popen(
            [sys.executable, "-c", _MEMBER, *args],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return Member(None, process)

    def apply_retention(
        self, broker: Broker, topic: str, done: Callable[[PartitionInfo], bool]
    ) -> int:
        """Enforce retention; for Kafka, wait until its log cleaner thread has (it checks
        every 30 s on the test broker). Returns what enforce_retention() reported."""
        removed = broker.enforce_retention()
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while not done(broker.describe_topic(topic).partitions[0]):
            assert not self.retention_on_call, "retention was not applied"
            assert time.monotonic() < deadline, "Kafka did not apply retention in time"
            time.sleep(0.5)
        return removed


@pytest.fixture(params=BROKERS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened: list[Broker] = []
    bootstrap = None
    if request.param in REMOTE:
        bootstrap = request.getfixturevalue(
            "kafka_bootstrap" if request.param == "kafka" else "pulsar_url"
        )

    def factory(clock: Clock | None = None) -> Broker:
        kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
        broker: Broker
        if request.param == "memory":
            memory = MemoryBroker(**kwargs)
            # A second handle on the same memory broker shares its storage.
            if opened and isinstance(opened[0], LogBroker):
                memory.store = opened[0].store
            broker = memory
        elif request.param == "embedded":
            broker = EmbeddedBroker(tmp_path / "log.db", **kwargs)
        elif request.param == "kafka":
            broker = KafkaBroker(bootstrap or "", **kwargs)
        else:
            broker = PulsarBroker((bootstrap or "").removeprefix("pulsar://"), **kwargs)
        opened.append(broker)
        return broker

    backend = Backend(request.param, factory, bootstrap)
    yield backend
    for process in backend.processes:
        process.kill()
        process.wait(timeout=10)
    for broker in opened:
        broker.close()


@pytest.fixture
def make_broker(backend: Backend) -> BrokerFactory:
    return backend.factory


@pytest.fixture
def broker(make_broker: BrokerFactory) -> Broker:
    return make_broker()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Topic and group names of their own: a real broker is shared by every test."""
    return lambda base: f"{base}-{uuid.uuid4().hex[:10]}"
