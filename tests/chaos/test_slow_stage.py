"""One stage made slow: the decide stage's model call takes 10 s while a switch is on (on the
cascade's clock, so only switched calls are slow, however loaded the machine). The cascade's
breaker (slow-call threshold 2 s) opens, decisions fall back to the rules and are marked
degraded; once the model is fast again a half-open probe closes the breaker and the model
decides again. No payment is lost or decided twice meanwhile."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.chaos.checks import (
    assert_one_decision_each,
    breaker_transitions,
    recovery,
    tally_figures,
)
from tests.chaos.harness import payment_items
from tests.chaos.pipeline import ChaosPipeline

pytestmark = [pytest.mark.kafka, pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(120)]
EVENTS, RATE = 3000, 150.0  # a 20 s stream
SLOW_S, HOLD_S = 10.0, 4.0  # how slow the model gets, and for how long after the breaker opens


def test_a_slow_model_opens_the_breaker_degrades_then_recovers(
    make_pipeline: Callable[..., ChaosPipeline], figures: dict[str, Any]
) -> None:
    items = payment_items(EVENTS, seed=4)
    pipeline = make_pipeline(exactly_once=False)
    worker = pipeline.start_worker("w0")
    feeder = pipeline.feed(items, RATE)
    pipeline.wait_decided(EVENTS // 6)

    def moved(to: str, since: float) -> list[float]:
        return [
            t.at
            for t in breaker_transitions([worker.log])
            if t.breaker == "light-model" and t.current == to and t.at >= since
        ]

    assert not moved("open", 0.0), "the breaker opened before the model was slowed"
    slowed = time.time()
    pipeline.scenario.slow_model(SLOW_S)
    pipeline.wait(lambda: bool(moved("open", slowed)), "the breaker to open")
    time.sleep(HOLD_S)  # stays slow: half-open probes are slow too and reopen it
    fast_again = time.time()
    pipeline.scenario.fast_model()
    pipeline.wait(lambda: bool(moved("closed", fast_again)), "the breaker to close")
    pipeline.wait_drained(EVENTS, timeout=80)
    result = pipeline.finish([i.event_id for i in items if i.event_id])

    assert_one_decision_each(result, exactly_once=False)
    assert result.reasons["light_unavailable"] > 0, result.reasons
    assert result.tiers["light"] > result.degraded, "the model should decide most events"
    opened = moved("open", slowed)
    figures.update(
        fault=f"model call {SLOW_S:.0f} s slower (breaker slow-call threshold 2 s)",
        delivery="at least once",
        **tally_figures(result),
        breaker_opened=len(opened),
        breaker_open_to_closed_s=round(moved("closed", fast_again)[0] - opened[0], 2),
        breaker_closed_after_fast_s=round(moved("closed", fast_again)[0] - fast_again, 2),
        **recovery(result, feeder.sent_at, slowed, fast_again),
    )
