from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

import streamsense as ss
from streamsense.brokers import EmbeddedBroker, MemoryBroker, TopicPartition
from streamsense.brokers.log import LogBroker
from streamsense.runtime.worker import Worker, WorkerConfig
from streamsense.testing import drain_topic
from tests.apps.counter import Click, app, clicks, count, make_clicks

BAD_INPUTS = [
    b"{not json",
    b'{"user": "u-bad", "ts": 1}',
    b'{"user": "u-bad", "ts": 1, "amount": 1e999}',
    b'{"user": "u-bad", "ts": 99999999999999999, "amount": 1}',
    b'{"user": "u-bad", "ts": 1, "amount": 1, "pad": "' + b"x" * 4000 + b'"}',
]


def feed(broker: LogBroker, n: int, *, start: int = 0, bad_every: int = 0) -> None:
    Worker(app, broker).ensure_topics()
    with broker.producer() as producer:
        for i, click in enumerate(make_clicks(start + n)[start:]):
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
            if bad_every and i % bad_every == 0:
                producer.send(
                    clicks.topic, BAD_INPUTS[(i // bad_every) % len(BAD_INPUTS)], b"u-bad"
                )


def outputs(broker: LogBroker) -> list[dict[str, object]]:
    return [msgspec.json.decode(r.value or b"") for r in drain_topic(broker, "counter.counts")]


def test_every_event_is_processed_with_state_per_key() -> None:
    broker = MemoryBroker()
    feed(broker, 100)
    stats = Worker(app, broker).run(until_caught_up=True)
    assert (stats.events, stats.outputs, stats.dead_letters) == (100, 100, 0)
    by_user: dict[object, list[object]] = {}
    for out in outputs(broker):
        by_user.setdefault(out["user"], []).append(out["n"])
    assert all(ns == list(range(1, len(ns) + 1)) for ns in by_user.values())
    assert sum(len(ns) for ns in by_user.values()) == 100


def test_bad_input_goes_to_dead_letters_and_the_pipeline_keeps_going() -> None:
    broker = MemoryBroker()
    feed(broker, 60, bad_every=6)
    stats = Worker(app, broker).run(until_caught_up=True)
    assert stats.dead_letters == 10
    assert stats.outputs == 60
    letters = drain_topic(broker, clicks.dead_letter_topic)
    assert sorted(r.value or b"" for r in letters) == sorted(BAD_INPUTS * 2)
    assert all(dict(r.headers)["reason"] for r in letters)
    assert set(stats.dead_letter_reasons) >= {"amount", "ts"}


def _partitioned_outputs(broker: LogBroker) -> list[tuple[int, int, bytes | None, bytes | None]]:
    return [(r.partition, r.offset, r.key, r.value) for r in drain_topic(broker, "counter.counts")]


def test_realtime_and_microbatch_write_identical_outputs() -> None:
    results = []
    for config in (
        WorkerConfig(mode="realtime"),
        WorkerConfig(mode="microbatch", batch_size=7),
        WorkerConfig(mode="microbatch", batch_size=1000),
    ):
        broker = MemoryBroker()
        feed(broker, 300, bad_every=11)
        Worker(app, broker, config).run(until_caught_up=True)
        results.append(
            (
                _partitioned_outputs(broker),
                [r.value for r in drain_topic(broker, clicks.dead_letter_topic)],
            )
        )
    assert results[0] == results[1] == results[2]
    assert len(results[0][0]) == 300


def test_a_restart_resumes_from_committed_offsets_and_restores_state(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "log.db")
    feed(broker, 50)
    Worker(app, broker, WorkerConfig(batch_size=8)).run(until_caught_up=True)
    broker.close()
    broker = EmbeddedBroker(tmp_path / "log.db")  # a new process would see the same
    feed(broker, 50, start=50)
    stats = Worker(app, broker).run(until_caught_up=True)
    assert stats.events == 50
    assert stats.restored_keys == 17
    counts = outputs(broker)
    assert len(counts) == 100
    assert len({c["source"] for c in counts}) == 100
    last = {c["user"]: c["n"] for c in counts}
    assert sum(last.values()) == 100  # the counts continued across the restart
    broker.close()


def test_a_stale_worker_is_fenced_and_reloads_instead_of_duplicating() -> None:
    """Worker B commits partitions that worker A has processed but not yet committed: A's
    commit is refused, A reloads state and offsets, and no output exists twice."""
    broker = MemoryBroker()
    feed(broker, 60)
    racing = ss.App("counter")
    nested_runs = []

    def count_then_race(value: object, ctx: ss.Context) -> object:
        if not nested_runs:
            nested_runs.append(Worker(app, broker).run(until_caught_up=True))
        return app.flows["clicks"].stages[0].fn(value, ctx)

    racing.flow(clicks).stage("count", count_then_race).sink(ss.TopicSink("counter.counts"))
    stats = Worker(racing, broker, WorkerConfig(batch_size=1000)).run(until_caught_up=True)
    assert stats.fenced >= 1
    assert nested_runs[0].events > 0
    counts = outputs(broker)
    assert sorted(c["source"] for c in counts) == sorted({c["source"] for c in counts})
    assert len(counts) == 60
    by_user: dict[object, list[object]] = {}
    for out in counts:
        by_user.setdefault(out["user"], []).append(out["n"])
    assert all(sorted(ns) == list(range(1, len(ns) + 1)) for ns in by_user.values())


def test_stop_commits_what_was_processed_and_returns(tmp_path: Path) -> None:
    """stop() mid-batch: the batch is neither full nor due (batch_ms is ten minutes), so only
    the commit on the way out makes its events' offsets and outputs durable."""
    broker = EmbeddedBroker(tmp_path / "log.db")
    feed(broker, 20)
    workers: list[Worker] = []

    def count_then_stop(click: Click, ctx: ss.Context) -> dict[str, Any]:
        if ctx.event.offset == 2:
            workers[0].stop()  # the loop ends after this batch
        return count(click, ctx)

    stopper = ss.App("stopper")
    stopper.flow(clicks).stage("count", count_then_stop).sink(ss.TopicSink("stopper.counts"))
    workers.append(Worker(stopper, broker, WorkerConfig(batch_size=1000, batch_ms=600_000)))
    stats = workers[0].run()
    tps = [TopicPartition(clicks.topic, p) for p in range(clicks.partitions)]
    committed = broker.committed(stopper.group, tps)
    assert stats.events > 0 and sum(v or 0 for v in committed.values()) == stats.events
    assert len(drain_topic(broker, "stopper.counts")) == stats.events
    broker.close()


@pytest.mark.parametrize("mode", ["realtime", "microbatch"])
def test_public_api_runs_an_app(mode: str) -> None:
    broker = ss.open_broker("memory://")
    feed(broker, 10)  # type: ignore[arg-type]
    config = ss.WorkerConfig(mode="realtime" if mode == "realtime" else "microbatch")
    assert ss.Worker(app, broker, config).run(until_caught_up=True).outputs == 10
