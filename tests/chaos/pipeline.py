"""A running chaos pipeline: the app's topics, the producer, the collector and the workers of
one scenario, with the waits every scenario needs and the figures every scenario records."""

from __future__ import annotations

import time
from collections.abc import Callable

from streamsense.brokers.base import OutRecord, Record
from streamsense.brokers.kafka import KafkaBroker
from streamsense.runtime.lag import group_lag
from streamsense.runtime.worker import Worker
from streamsense.testing import drain_topic
from tests.apps import chaos_app
from tests.chaos.checks import Tally, tally
from tests.chaos.harness import Collector, Item, Scenario
from tests.integration.workers import Feeder, WorkerProcess

WAIT_S = 60.0  # the longest any wait may take; each test has its own timeout too


def log_tail(worker: WorkerProcess, lines: int = 30) -> str:
    """The end of a worker's log without librdkafka's reconnection chatter."""
    noise = ("Connect to", "Connection refused", "brokers are down", "Disconnected")
    kept = [ln for ln in worker.output().splitlines() if not any(n in ln for n in noise)]
    return "\n".join(line[:400] for line in kept[-lines:])


class PipelineStalled(AssertionError):
    """A worker died, or progress stopped until a wait timed out: the pipeline did not
    recover from the fault (as opposed to recovering with a wrong result)."""


class ChaosPipeline:
    def __init__(self, scenario: Scenario, *, exactly_once: bool) -> None:
        self.scenario = scenario
        self.exactly_once = exactly_once
        self.app, self.source = chaos_app.build(scenario.name, None, None)
        self.broker = KafkaBroker(scenario.bootstrap)
        Worker(self.app, self.broker).ensure_topics()
        self.decisions_topic = f"{scenario.name}.decisions"
        self.collector = Collector(self.broker, self.decisions_topic, chaos_app.PARTITIONS)
        self.collector.start()
        self.workers: list[WorkerProcess] = []
        self.feeder: Feeder | None = None
        self.env: dict[str, str] = {}  # for every worker started from now on

    # -- parts ----------------------------------------------------------------------------
    def start_worker(self, label: str, *, slot: int = 0, **options: int) -> WorkerProcess:
        """A worker in ``slot`` (its transactional id under exactly once); ``options`` go to
        ``Scenario.start_worker`` (batch_size, session_timeout_ms)."""
        url = self.scenario.url(exactly_once=self.exactly_once, slot=slot)
        worker = self.scenario.start_worker(label, url, env=self.env, **options)
        self.workers.append(worker)
        return worker

    def live_workers(self) -> list[WorkerProcess]:
        return [w for w in self.workers if w.process.returncode is None]

    def feed(self, items: list[Item], rate: float) -> Feeder:
        records = [OutRecord(self.source.topic, i.value, i.key) for i in items]
        self.feeder = Feeder(self.broker, records, rate, [i.event_id for i in items])
        self.feeder.start()
        return self.feeder

    # -- waiting --------------------------------------------------------------------------
    def wait(self, condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> float:
        """Wait until ``condition`` holds while every live worker stays alive; returns the
        time.time() it first held."""
        deadline = time.monotonic() + timeout
        while not condition():
            for worker in self.live_workers():
                code = worker.process.poll()
                if code is not None:
                    raise PipelineStalled(f"{worker.name} died ({code}):\n{log_tail(worker)}")
            for part in (self.feeder, self.collector):
                assert part is None or part.error is None, f"{part}: {part.error!r}"
            if time.monotonic() >= deadline:
                raise PipelineStalled(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.05)
        return time.time()

    def decided(self) -> int:
        return len({dict(a.record.headers)["source"] for a in self.collector.snapshot()})

    def wait_decided(self, n: int, timeout: float = WAIT_S) -> float:
        return self.wait(lambda: self.decided() >= n, f"{n} decisions", timeout)

    def lag(self) -> int:
        return group_lag(self.broker, self.app.group, [self.source.topic]).total

    def wait_drained(self, events: int, timeout: float = WAIT_S) -> float:
        """Every produced record consumed and committed (lag 0) and ``events`` decided,
        within ``timeout`` seconds in all."""
        feeder = self.feeder
        assert feeder is not None
        deadline = time.monotonic() + timeout
        self.wait(lambda: not feeder.is_alive(), "the producer to finish", timeout)
        assert feeder.error is None, repr(feeder.error)
        self.wait_decided(events, deadline - time.monotonic())
        return self.wait(lambda: self.lag() == 0, "lag 0", deadline - time.monotonic())

    # -- ending ---------------------------------------------------------------------------
    def finish(self, expected: list[str]) -> Tally:
        """Stop the workers (SIGTERM: each commits and prints its stats) and the collector;
        the decisions read, against ``expected``."""
        for worker in self.live_workers():
            worker.stop()
        return tally(self.collector.stop(), expected)

    def dead_letter_records(self) -> list[Record]:
        return drain_topic(self.broker, self.source.dead_letter_topic)

    def close(self) -> None:
        for worker in self.live_workers():
            worker.kill()
        self.collector.stop()
        self.broker.close()
