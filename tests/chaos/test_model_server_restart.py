"""The heavy model tier in a `streamsense model-server` process, SIGKILLed mid-stream and
restarted after a while: the heavy tier's breaker opens, the light score decides meanwhile
(marked ``heavy_unavailable``), and once the server answers again a half-open probe closes
the breaker and the heavy model decides again. No payment is lost or decided twice."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
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
from tests.chaos.services import ModelServer, free_port, model_registry

pytestmark = [pytest.mark.kafka, pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(120)]
EVENTS, RATE = 3000, 150.0  # a 20 s stream
DOWN_S = 3.0  # how long the server stays dead after the breaker opened


def test_a_killed_model_server_opens_the_breaker_and_its_restart_closes_it(
    make_pipeline: Callable[..., ChaosPipeline],
    chaos_model: Path,
    tmp_path: Path,
    figures: dict[str, Any],
) -> None:
    registry = model_registry(chaos_model, tmp_path / "registry")
    server = ModelServer(registry, free_port(), tmp_path / "model-server.log")
    server.start()
    try:
        items = payment_items(EVENTS, seed=5)
        pipeline = make_pipeline(exactly_once=False)
        pipeline.env["STREAMSENSE_CHAOS_HEAVY_URL"] = server.url
        worker = pipeline.start_worker("w0")
        feeder = pipeline.feed(items, RATE)
        pipeline.wait_decided(EVENTS // 6)

        def moved(to: str, since: float) -> list[float]:
            return [
                t.at
                for t in breaker_transitions([worker.log])
                if t.breaker == "heavy-model" and t.current == to and t.at >= since
            ]

        assert not moved("open", 0.0), "the breaker opened before the server was killed"
        killed = time.time()
        server.kill()
        pipeline.wait(lambda: bool(moved("open", killed)), "the breaker to open")
        time.sleep(DOWN_S)  # half-open probes meet a refused connection and reopen it
        restarting = time.time()
        server.start()  # returns once /healthz answers (polled: the worker may see it first)
        answering = time.time()
        pipeline.wait(lambda: bool(moved("closed", restarting)), "the breaker to close")
        pipeline.wait_drained(EVENTS, timeout=60)
        result = pipeline.finish([i.event_id for i in items if i.event_id])
    finally:
        server.kill()

    assert_one_decision_each(result, exactly_once=False)
    opened, closed = moved("open", killed)[0], moved("closed", restarting)[0]
    # Every light score goes to the heavy tier (band [0, 1.01)): a model decision is either
    # the heavy model's, or the light model's marked with why the heavy one did not score.
    light_only = [d for d in result.decisions.values() if d.tier == "light"]
    assert light_only, "no decision fell back to the light score"
    unmarked = [d.event_id for d in light_only if "heavy_unavailable" not in d.degraded_reasons]
    assert not unmarked, f"light decisions not marked heavy_unavailable: {unmarked[:10]}"
    back = [at for e, at in result.first_arrival.items() if at >= closed]
    heavy_after = [
        result.first_arrival[e]
        for e, d in result.decisions.items()
        if d.tier == "heavy" and result.first_arrival[e] >= restarting
    ]
    assert back and heavy_after, "the heavy model never decided again"
    figures.update(
        fault=f"model server SIGKILLed, restarted {DOWN_S:.0f} s after the breaker opened",
        delivery="at least once",
        **tally_figures(result),
        breaker_opened=len(moved("open", killed)),
        breaker_open_after_kill_s=round(opened - killed, 2),
        breaker_open_to_closed_s=round(closed - opened, 2),
        server_start_s=round(answering - restarting, 2),
        breaker_closed_after_fast_s=round(closed - restarting, 2),
        healthy_after_fix_s=round(min(heavy_after) - restarting, 2),
        **recovery(result, feeder.sent_at, killed, answering),
    )
