"""Kafka broker restarted mid-stream: the worker rides it out (librdkafka reconnects, commits
are retried), and afterwards every payment has exactly one decision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.chaos.checks import assert_one_decision_each, recovery, tally_figures
from tests.chaos.harness import payment_items
from tests.chaos.kafka_node import KafkaNode
from tests.chaos.pipeline import ChaosPipeline

pytestmark = [pytest.mark.kafka, pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(120)]
EVENTS, RATE = 4000, 200.0  # a 20 s stream; the restart lands in its first half
# The group session is the chaos tests' usual 6 s, shorter than the outage (8-12 s here):
# the worker's member expires while the broker is down, so it must rejoin and reload. Under
# exactly once, its transaction's coordinator calls hang after the restart (librdkafka
# #5511), so the committer must give up on the producer and make a new one.


@pytest.mark.parametrize(
    "exactly_once",
    [pytest.param(True, id="exactly-once"), pytest.param(False, id="at-least-once")],
)
def test_a_broker_restart_loses_and_duplicates_nothing(
    chaos_kafka: KafkaNode,
    make_pipeline: Callable[..., ChaosPipeline],
    figures: dict[str, Any],
    exactly_once: bool,
) -> None:
    items = payment_items(EVENTS, seed=1)
    pipeline = make_pipeline(exactly_once=exactly_once)
    worker = pipeline.start_worker("w0")
    feeder = pipeline.feed(items, RATE)
    pipeline.wait_decided(EVENTS // 5)  # decisions are flowing
    down, ready = chaos_kafka.restart()
    pipeline.wait_drained(EVENTS, timeout=50)
    assert pipeline.live_workers() == [worker]  # it rode the restart out, never restarted
    log = worker.output()
    result = pipeline.finish([i.event_id for i in items if i.event_id])

    assert_one_decision_each(result, exactly_once=exactly_once)
    figures.update(
        fault="broker stopped and restarted (same data)",
        delivery="exactly once" if exactly_once else "at least once",
        collector_retries=pipeline.collector.retried_errors,
        # Clients given up on because a request to a coordinator went unanswered.
        clients_replaced=log.count("replacing the"),
        **tally_figures(result),
        **recovery(result, feeder.sent_at, down, ready),
    )
