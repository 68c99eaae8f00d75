"""Function stages that take a micro-batch at once (Flow.batched_stage, issue #19): the
same outputs in realtime and micro-batch mode, one call per batch, rejections per event."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

import streamsense as ss
from streamsense.brokers import MemoryBroker
from streamsense.errors import FatalError, InvalidEvent
from streamsense.runtime.worker import Worker, WorkerConfig
from streamsense.testing import drain_topic
from tests.apps.counter import clicks, count, make_clicks


class Scorer:
    """Doubles each click's amount; refuses amounts of 7; records the batch sizes."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def __call__(self, values: Sequence[Any], contexts: Sequence[ss.Context]) -> list[Any]:
        self.batches.append(len(values))
        return [
            InvalidEvent("seven is refused", field="amount")
            if ctx.event.payload.amount == 7
            else {**v, "doubled": ctx.event.payload.amount * 2, "key": ctx.key}
            for v, ctx in zip(values, contexts, strict=True)
        ]


def app_with(scorer: Any) -> ss.App:
    app = ss.App("batched")
    app.flow(clicks).stage("count", count).batched_stage("score", scorer).sink(
        ss.TopicSink("batched.out")
    )
    return app


def run(config: WorkerConfig, scorer: Any, n: int = 300) -> tuple[list[Any], list[Any]]:
    app, broker = app_with(scorer), MemoryBroker()
    Worker(app, broker).ensure_topics()
    with broker.producer() as producer:
        for click in make_clicks(n):
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
    Worker(app, broker, config).run(until_caught_up=True)
    outputs = [(r.partition, r.offset, r.value) for r in drain_topic(broker, "batched.out")]
    # Dead letters of the three partitions interleave by when each partition ran: as a set.
    letters = sorted(r.value or b"" for r in drain_topic(broker, clicks.dead_letter_topic))
    return outputs, letters


def test_realtime_and_micro_batches_write_the_same_outputs_with_one_call_a_batch() -> None:
    realtime, batched = Scorer(), Scorer()
    first = run(WorkerConfig(mode="realtime"), realtime)
    second = run(WorkerConfig(mode="microbatch", batch_size=1000), batched)
    assert first == second
    outputs, letters = first
    assert len(outputs) + len(letters) == 300 and letters  # the sevens are dead letters
    assert msgspec.json.decode(outputs[0][2])["doubled"] % 2 == 0
    assert set(realtime.batches) == {1} and len(realtime.batches) == 300
    assert len(batched.batches) < 10 and sum(batched.batches) == 300


def test_a_batched_stage_must_answer_every_event() -> None:
    def short(values: Sequence[Any], contexts: Sequence[ss.Context]) -> list[Any]:
        return list(values)[1:]

    with pytest.raises(FatalError, match=r"returned \d+ results for \d+ events"):
        run(WorkerConfig(mode="microbatch", batch_size=10), short, n=10)


def test_a_none_result_ends_the_event_there() -> None:
    def evens(values: Sequence[Any], contexts: Sequence[ss.Context]) -> list[Any]:
        return [
            v if c.event.payload.amount % 2 == 0 else None
            for v, c in zip(values, contexts, strict=True)
        ]

    outputs, _ = run(WorkerConfig(mode="microbatch", batch_size=50), evens, n=100)
    assert len(outputs) == 50
