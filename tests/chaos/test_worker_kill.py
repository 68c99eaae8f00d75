"""A worker SIGKILLed mid-stream and a replacement started: the group rebalances, the
replacement resumes from the last commit, and every payment has exactly one decision."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.chaos.checks import assert_one_decision_each, recovery, tally_figures
from tests.chaos.harness import payment_items
from tests.chaos.pipeline import ChaosPipeline

pytestmark = [pytest.mark.kafka, pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(120)]
EVENTS, RATE = 4000, 200.0


@pytest.mark.parametrize("exactly_once", [True, False], ids=["exactly-once", "at-least-once"])
def test_a_killed_worker_is_replaced_without_loss_or_duplicate(
    make_pipeline: Callable[..., ChaosPipeline], figures: dict[str, Any], exactly_once: bool
) -> None:
    items = payment_items(EVENTS, seed=2)
    pipeline = make_pipeline(exactly_once=exactly_once)
    pipeline.start_worker("w0", slot=0)
    victim = pipeline.start_worker("w1", slot=1)
    feeder = pipeline.feed(items, RATE)
    pipeline.wait(lambda: "assigned" in victim.output(), "the second worker to get partitions")
    pipeline.wait_decided(EVENTS // 4)
    killed = time.time()
    victim.kill()
    # Same slot: under exactly once its transactional id fences the dead worker and aborts
    # the transaction it left open.
    pipeline.start_worker("w1-replacement", slot=1)
    pipeline.wait_drained(EVENTS, timeout=80)
    result = pipeline.finish([i.event_id for i in items if i.event_id])

    assert_one_decision_each(result, exactly_once=exactly_once)
    figures.update(
        fault="one of two workers SIGKILLed, a replacement started at once",
        delivery="exactly once" if exactly_once else "at least once",
        **tally_figures(result),
        **recovery(result, feeder.sent_at, killed, killed),
    )
