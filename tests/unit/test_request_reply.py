"""Request/reply on the embedded broker with a worker deciding in a thread."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from streamsense.brokers import EmbeddedBroker
from streamsense.runtime.worker import Worker, WorkerConfig
from streamsense.serving.decision import DecisionRecord
from streamsense.serving.request_reply import RequestReply
from tests.apps import decider
from tests.apps.counter import Click

T0 = 1_600_000_000_000


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(tmp_path / "log.db")
    Worker(decider.app, broker).ensure_topics()
    yield broker
    broker.close()


@contextmanager
def worker(broker: EmbeddedBroker) -> Iterator[Worker]:
    running = Worker(decider.app, broker, WorkerConfig(mode="realtime", poll_timeout_s=0.01))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.stop()
        thread.join(timeout=10)


def client(broker: EmbeddedBroker, timeout: float = 5.0) -> RequestReply:
    return RequestReply(broker, decider.clicks, "decider.decisions", timeout=timeout)


def test_each_caller_gets_the_decision_of_its_own_event(broker: EmbeddedBroker) -> None:
    with worker(broker), client(broker) as rr:
        first = rr.request(Click("u1", T0, 5.0))
        assert (first.action, first.tier, first.degraded) == ("allow", "light", False)
        assert first.event_id.startswith("rr/") and first.score == pytest.approx(0.1)
        big = rr.request({"user": "u1", "ts": T0 + 1000, "amount": 5000.0})
        assert (big.action, big.tier, big.features["n_10s"]) == ("block", "rules", 2)

        def ask(i: int) -> DecisionRecord:
            return rr.request(Click(f"user-{i}", T0 + 2000, float(i)))  # none late

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(ask, range(16)))
        assert [a.key for a in answers] == [f"user-{i}" for i in range(16)]
        assert len({a.event_id for a in answers}) == 16 and not any(a.degraded for a in answers)
        assert rr.stats.replies == 18 and rr.stats.timeouts == 0


def test_a_late_pipeline_gets_a_fallback_marked_degraded(broker: EmbeddedBroker) -> None:
    with client(broker, timeout=0.1) as rr:
        started = time.perf_counter()
        answer = rr.request(Click("u2", T0, 5.0))  # no worker is running
        assert time.perf_counter() - started < 1.0
        assert (answer.tier, answer.action, answer.degraded) == ("fallback", "review", True)
        assert answer.degraded_reasons == ["timeout"] and answer.latency_ms["total"] >= 100
        with worker(broker):  # the pipeline catches up: its decision comes too late
            deadline = time.monotonic() + 10
            while rr.stats.late == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert (rr.stats.timeouts, rr.stats.late, rr.stats.replies) == (1, 1, 0)


def test_asyncio_callers_wait_without_blocking_the_loop(broker: EmbeddedBroker) -> None:
    async def main(rr: RequestReply) -> list[DecisionRecord]:
        return await asyncio.gather(*(rr.arequest(Click(f"a{i}", T0, 1.0)) for i in range(5)))

    with worker(broker), client(broker) as rr:
        answers = asyncio.run(main(rr))
    assert sorted(a.key for a in answers) == [f"a{i}" for i in range(5)]
    assert not any(a.degraded for a in answers)
