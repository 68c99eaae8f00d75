"""The supervisor's decisions, on a manual clock: scale up on sustained or growing lag,
never above the partition count, down when idle, a cooldown between changes, and the
restart backoff of workers that die."""

from __future__ import annotations

import pytest

from streamsense.errors import ConfigError
from streamsense.runtime.scale_policy import (
    RestartBackoff,
    RestartConfig,
    ScaleConfig,
    ScalePolicy,
)
from streamsense.testing import ManualClock

CONFIG = ScaleConfig(
    min_workers=1,
    max_workers=4,
    scale_up_lag=1000,
    scale_up_after_s=10,
    idle_lag=0,
    idle_after_s=60,
    cooldown_s=30,
)


class Group:
    """Applies the policy's decisions to a worker count, one lag sample a second."""

    def __init__(self, config: ScaleConfig = CONFIG, workers: int = 1) -> None:
        self.clock = ManualClock()
        self.policy = ScalePolicy(config, self.clock)
        self.workers = workers
        self.changes: list[tuple[float, int]] = []  # (seconds since start, new count)

    def feed(self, lags: list[int]) -> None:
        for lag in lags:
            decision = self.policy.decide(lag, self.workers)
            if decision is not None:
                self.workers = decision.target
                self.changes.append((self.clock.monotonic(), decision.target))
            self.clock.advance(1000)


def test_starts_the_minimum_at_once() -> None:
    group = Group(ScaleConfig(min_workers=2, max_workers=4), workers=0)
    group.feed([0])
    assert group.changes == [(0.0, 2)]


def test_sustained_lag_adds_one_worker_after_the_hold_time() -> None:
    group = Group()
    group.feed([5000] * 10)
    assert group.workers == 1  # above the threshold for 9 s only
    group.feed([5000])
    assert group.changes == [(10.0, 2)]


def test_a_short_burst_adds_nothing() -> None:
    group = Group()
    group.feed([5000] * 8 + [10] * 100)
    assert group.changes == []


def test_cooldown_spaces_the_changes_and_the_count_never_passes_the_partitions() -> None:
    group = Group()
    group.feed([50_000] * 200)
    assert group.changes == [(10.0, 2), (40.0, 3), (70.0, 4)]  # then capped at 4
    assert group.workers == CONFIG.max_workers


def test_lag_that_keeps_growing_below_the_threshold_adds_a_worker() -> None:
    group = Group()
    group.feed(list(range(10, 120, 10)))  # 10, 20... 110: growing for 10 s
    assert group.changes == [(10.0, 2)]


def test_lag_that_falls_is_not_growing() -> None:
    group = Group()
    group.feed([10, 20, 30, 40, 50, 60, 20, 30, 40, 50, 60, 70, 80] * 3)
    assert group.changes == []


def test_idle_for_the_idle_period_removes_workers_one_per_cooldown() -> None:
    group = Group(workers=3)
    group.feed([0] * 59)
    assert group.workers == 3
    group.feed([0] * 100)
    assert group.changes == [(60.0, 2), (90.0, 1)]  # never below the minimum
    assert group.workers == 1


def test_a_little_lag_interrupts_the_idle_period() -> None:
    group = Group(workers=2)
    group.feed(([0] * 50 + [3]) * 3)
    assert group.changes == []


def test_scale_up_then_down_when_the_backlog_is_gone() -> None:
    group = Group(ScaleConfig(max_workers=4, scale_up_after_s=2, idle_after_s=5, cooldown_s=3))
    group.feed([10_000] * 12 + [0] * 15)
    assert group.changes == [(2.0, 2), (5.0, 3), (8.0, 4), (17.0, 3), (20.0, 2), (23.0, 1)]


def test_outside_the_bounds_is_corrected_without_cooldown() -> None:
    group = Group(workers=6)
    group.feed([0])
    assert group.changes == [(0.0, 4)]


def test_bounds_and_thresholds_are_checked() -> None:
    with pytest.raises(ConfigError):
        ScaleConfig(min_workers=3, max_workers=2)
    with pytest.raises(ConfigError):
        ScaleConfig(min_workers=0, max_workers=2)
    with pytest.raises(ConfigError):
        ScaleConfig(max_workers=2, scale_up_lag=10, idle_lag=10)


def test_a_worker_that_keeps_dying_waits_longer_each_time() -> None:
    clock = ManualClock()
    backoff = RestartBackoff(RestartConfig(initial_s=1, max_s=8, healthy_after_s=60), clock)
    backoff.started(0)
    delays = []
    for _ in range(6):
        clock.advance(500)  # dies half a second after each start
        delay = backoff.died(0)
        delays.append(delay)
        assert not backoff.ready(0)
        clock.advance(delay * 1000 - 1)
        assert not backoff.ready(0)
        clock.advance(1)
        assert backoff.ready(0)
        backoff.restarted(0)
    assert delays == [1, 2, 4, 8, 8, 8]
    assert backoff.restarts == 6


def test_a_worker_that_ran_healthily_restarts_quickly_again() -> None:
    clock = ManualClock()
    backoff = RestartBackoff(RestartConfig(initial_s=1, max_s=60, healthy_after_s=60), clock)
    backoff.started(0)
    assert [backoff.died(0), backoff.died(0), backoff.died(0)] == [1, 2, 4]
    backoff.restarted(0)
    clock.advance(61_000)
    assert backoff.died(0) == 1
    backoff.started(1)  # slots have histories of their own
    assert backoff.died(1) == 1


def test_a_removed_slot_forgets_its_failures() -> None:
    clock = ManualClock()
    backoff = RestartBackoff(RestartConfig(initial_s=1), clock)
    backoff.started(3)
    backoff.died(3)
    backoff.died(3)
    backoff.forget(3)
    assert backoff.ready(3)
    backoff.started(3)
    assert backoff.died(3) == 1
