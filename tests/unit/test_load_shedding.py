"""Shedding by tier: above a lag threshold the cascade skips its heavy model (and marks the
decision), and gets it back once the lag is below a lower threshold."""

from __future__ import annotations

import re
from typing import Any

import pytest

import streamsense as ss
from streamsense.brokers import MemoryBroker
from streamsense.errors import ConfigError
from streamsense.runtime.lag import group_lag
from streamsense.runtime.load import LoadMonitor, SheddingConfig
from streamsense.runtime.worker import Worker, WorkerConfig
from streamsense.serving.cascade import Cascade, CascadeConfig
from streamsense.serving.models import ConstantModel, FunctionModel
from streamsense.testing import ManualClock
from tests.apps.counter import Click, clicks, make_clicks

FEATURES = ["amount", "risk"]


def test_the_monitor_sheds_above_one_threshold_and_restores_below_the_other() -> None:
    clock = ManualClock()
    monitor = LoadMonitor(SheddingConfig(shed_above=100, restore_below=20), clock)
    assert monitor.due() and not monitor.due()  # measured at most every check_every_s
    clock.advance(500)
    assert monitor.due()
    changes = [monitor.observe(lag) for lag in (50, 101, 60, 20, 19, 99, 101)]
    assert changes == [False, True, False, False, True, False, True]
    assert monitor.shed_heavy and monitor.changes == 3
    assert [(shed, lag) for _, shed, lag in monitor.history] == [
        (True, 101),
        (False, 19),
        (True, 101),
    ]


def test_without_a_config_nothing_is_ever_shed() -> None:
    monitor = LoadMonitor()
    assert not monitor.due()
    assert not monitor.observe(10**9) and not monitor.shed_heavy
    with pytest.raises(ConfigError):
        SheddingConfig(shed_above=10, restore_below=10)


def test_a_worker_behind_sheds_the_heavy_tier_and_restores_it_when_caught_up() -> None:
    light = FunctionModel(lambda X: X[:, 1], FEATURES, name="light", version=1)
    heavy = ConstantModel(0.95, FEATURES, name="heavy", version=2)
    budgets = CascadeConfig(light_budget_ms=10_000, heavy_budget_ms=10_000)
    cascade = Cascade(light=light, heavy=heavy, config=budgets)
    seen: list[tuple[str, int, bool]] = []

    def decide(click: Click, ctx: ss.Context) -> dict[str, Any]:
        # Every event is borderline for the light model: the heavy one decides, unless shed.
        record = cascade.decide(
            ctx.event.id,
            ctx.key,
            {"amount": click.amount, "risk": 0.5},
            shed_heavy=ctx.load.shed_heavy,
        )
        seen.append((record.tier, ctx.load.lag, "heavy_shed" in record.degraded_reasons))
        return {"tier": record.tier, "reasons": record.degraded_reasons}

    app = ss.App("shedder")
    app.flow(clicks).stage("decide", decide).sink(ss.TopicSink("shedder.decisions"))
    broker = MemoryBroker()
    Worker(app, broker).ensure_topics()
    with broker.producer() as producer:
        for click in make_clicks(900):
            out = clicks.to_record(click)
            producer.send(out.topic, out.value, out.key)
    shedding = SheddingConfig(shed_above=400, restore_below=150, check_every_s=0.0)
    config = WorkerConfig(batch_size=20, poll_timeout_s=0.005, shedding=shedding)
    worker = Worker(app, broker, config, clock=ManualClock())
    stats = worker.run(until_caught_up=True)

    tiers = "".join("S" if shed else ("H" if tier == "heavy" else "?") for tier, _, shed in seen)
    assert re.fullmatch(r"H+S+H+", tiers), tiers  # full, shed while behind, full again
    shed_lags = [lag for _, lag, shed in seen if shed]
    assert shed_lags[0] > 400 and min(shed_lags) >= 150  # hysteresis: on above, off below
    assert all(tier == "light" for tier, _, shed in seen if shed)  # the light score decided
    assert stats.shed_changes == 2 and not worker.load.shed_heavy
    [(_, on, on_lag), (_, off, off_lag)] = worker.load.history
    assert (on, off) == (True, False) and on_lag > 400 and off_lag < 150
    assert heavy.calls == tiers.count("H")
    assert group_lag(broker, "shedder", [clicks.topic]).total == 0
