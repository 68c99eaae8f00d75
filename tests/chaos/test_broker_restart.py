"""Kafka broker restarted mid-stream: the worker rides it out (librdkafka reconnects, commits
are retried), and afterwards every payment has exactly one decision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.chaos.checks import assert_one_decision_each, recovery, tally_figures
from tests.chaos.harness import payment_items
from tests.chaos.kafka_node import KafkaNode
from tests.chaos.pipeline import ChaosPipeline, PipelineStalled

pytestmark = [pytest.mark.kafka, pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(120)]
EVENTS, RATE = 4000, 200.0  # a 20 s stream; the restart lands in its first half
# The group session must outlast the outage (8-12 s here): a member whose session expires
# while the broker is down is dropped from the group (see docs/reliability.md for what the
# worker does then).
SESSION_TIMEOUT_MS = 30_000


# Known failure, intermittent (docs/reliability.md): under exactly once the worker's commit
# often hangs in librdkafka's send_offsets_to_transaction (brokers/kafka_txn.py) past its 60 s
# timeout once the broker is back. Only that stall is tolerated: a worker that does recover
# must still lose and duplicate nothing, or the test fails.
STUCK_TRANSACTION = pytest.mark.xfail(
    raises=PipelineStalled,
    reason="exactly-once commit often stalls after a broker restart (kafka_txn)",
)


@pytest.mark.parametrize(
    "exactly_once",
    [
        pytest.param(True, marks=STUCK_TRANSACTION, id="exactly-once"),
        pytest.param(False, id="at-least-once"),
    ],
)
def test_a_broker_restart_loses_and_duplicates_nothing(
    chaos_kafka: KafkaNode,
    make_pipeline: Callable[..., ChaosPipeline],
    figures: dict[str, Any],
    exactly_once: bool,
) -> None:
    items = payment_items(EVENTS, seed=1)
    pipeline = make_pipeline(exactly_once=exactly_once)
    pipeline.start_worker("w0", session_timeout_ms=SESSION_TIMEOUT_MS)
    feeder = pipeline.feed(items, RATE)
    pipeline.wait_decided(EVENTS // 5)  # decisions are flowing
    down, ready = chaos_kafka.restart()
    pipeline.wait_drained(EVENTS, timeout=50)
    result = pipeline.finish([i.event_id for i in items if i.event_id])

    assert_one_decision_each(result, exactly_once=exactly_once)
    figures.update(
        fault="broker stopped and restarted (same data)",
        delivery="exactly once" if exactly_once else "at least once",
        collector_retries=pipeline.collector.retried_errors,
        **tally_figures(result),
        **recovery(result, feeder.sent_at, down, ready),
    )
