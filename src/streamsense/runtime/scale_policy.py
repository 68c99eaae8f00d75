"""When to add or remove workers, and when to restart one that died: pure decisions over
lag samples and an injected clock, so every rule is testable without processes.

Lag is the group's total (runtime/lag.py), in offsets. The policy adds a worker when the
lag stays above ``scale_up_lag`` for ``scale_up_after_s``, or keeps growing for that long
(a backlog forming under the threshold still means the group is too slow); it removes one
when the lag stays at or below ``idle_lag`` for ``idle_after_s``. One worker per change,
and never two changes within ``cooldown_s``: a new member needs a rebalance (and, for the
feature engine, a state restore) before its effect shows in the lag.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamsense.clock import Clock
from streamsense.errors import ConfigError


@dataclass(frozen=True)
class ScaleConfig:
    """Bounds and thresholds. ``max_workers`` should be the source partition count: the
    group gives partition p to member p mod n, so members beyond it would sit idle."""

    min_workers: int = 1
    max_workers: int = 1
    scale_up_lag: int = 1000
    scale_up_after_s: float = 10.0
    idle_lag: int = 0
    idle_after_s: float = 60.0
    cooldown_s: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_workers <= self.max_workers:
            raise ConfigError(
                f"need 1 <= min workers ({self.min_workers}) <= max workers ({self.max_workers})"
            )
        if self.idle_lag >= self.scale_up_lag:
            raise ConfigError(
                f"the idle lag ({self.idle_lag}) must be below the scale-up lag "
                f"({self.scale_up_lag}), or the policy would flap"
            )


@dataclass(frozen=True)
class ScaleDecision:
    target: int
    reason: str


class ScalePolicy:
    """Feed it one lag sample per check (``decide``); it answers with a new worker count
    or None. It assumes its decisions are applied."""

    def __init__(self, config: ScaleConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._last_change: float | None = None
        self._above_since: float | None = None  # lag above the scale-up threshold
        self._growing_since: float | None = None  # lag never fell since then
        self._growing_from = 0
        self._previous: int | None = None
        self._idle_since: float | None = None

    def decide(self, lag: int, workers: int) -> ScaleDecision | None:
        now = self._clock.monotonic()
        self._track(now, lag)
        decision = self._bounds(workers) or self._rules(now, lag, workers)
        if decision is not None:
            self._last_change = now
        return decision

    def _track(self, now: float, lag: int) -> None:
        config = self.config
        self._above_since = _since(self._above_since, now, lag > config.scale_up_lag)
        idle = lag <= config.idle_lag
        self._idle_since = _since(self._idle_since, now, idle)
        falling = self._previous is not None and lag < self._previous
        if idle or falling:
            self._growing_since = None
        elif self._growing_since is None:
            self._growing_since, self._growing_from = now, lag
        self._previous = lag

    def _bounds(self, workers: int) -> ScaleDecision | None:
        # Outside the bounds (at start, or after a worker was removed by hand): no waiting.
        if workers < self.config.min_workers:
            return ScaleDecision(self.config.min_workers, "below the minimum")
        if workers > self.config.max_workers:
            return ScaleDecision(self.config.max_workers, "above the maximum")
        return None

    def _rules(self, now: float, lag: int, workers: int) -> ScaleDecision | None:
        config = self.config
        if self._last_change is not None and now - self._last_change < config.cooldown_s:
            return None
        if workers < config.max_workers:
            if self._held(self._above_since, now, config.scale_up_after_s):
                return ScaleDecision(
                    workers + 1,
                    f"lag {lag:,} above {config.scale_up_lag:,} "
                    f"for {self._held_for(self._above_since, now):.1f} s",
                )
            growing = self._held(self._growing_since, now, config.scale_up_after_s)
            if growing and lag > self._growing_from:
                return ScaleDecision(
                    workers + 1,
                    f"lag grew from {self._growing_from:,} to {lag:,} "
                    f"in {self._held_for(self._growing_since, now):.1f} s",
                )
        if workers > config.min_workers and self._held(self._idle_since, now, config.idle_after_s):
            return ScaleDecision(
                workers - 1,
                f"lag at most {config.idle_lag:,} "
                f"for {self._held_for(self._idle_since, now):.1f} s",
            )
        return None

    @staticmethod
    def _held_for(since: float | None, now: float) -> float:
        return now - (now if since is None else since)

    @staticmethod
    def _held(since: float | None, now: float, duration: float) -> bool:
        return since is not None and now - since >= duration


def _since(started: float | None, now: float, holds: bool) -> float | None:
    """When a condition that holds now started holding (None: it does not hold)."""
    if not holds:
        return None
    return now if started is None else started


@dataclass(frozen=True)
class RestartConfig:
    """Backoff for restarting a worker that died: ``initial_s`` doubling up to ``max_s``.
    A worker that ran ``healthy_after_s`` before dying starts the backoff over."""

    initial_s: float = 1.0
    max_s: float = 60.0
    healthy_after_s: float = 60.0


class RestartBackoff:
    """Per worker slot: when it started, how often it died in a row, when it may restart."""

    def __init__(self, config: RestartConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._started: dict[int, float] = {}
        self._failures: dict[int, int] = {}
        self._ready_at: dict[int, float] = {}
        self.restarts = 0

    def started(self, slot: int) -> None:
        self._started[slot] = self._clock.monotonic()
        self._ready_at.pop(slot, None)

    def died(self, slot: int) -> float:
        """Record an unexpected exit; returns the seconds to wait before the restart."""
        now = self._clock.monotonic()
        lived = now - self._started.get(slot, now)
        failures = 1 if lived >= self.config.healthy_after_s else self._failures.get(slot, 0) + 1
        self._failures[slot] = failures
        delay = min(self.config.max_s, self.config.initial_s * 2.0 ** (failures - 1))
        self._ready_at[slot] = now + delay
        return delay

    def ready(self, slot: int) -> bool:
        return self._clock.monotonic() >= self._ready_at.get(slot, 0.0)

    def restarted(self, slot: int) -> None:
        self.restarts += 1
        self.started(slot)

    def forget(self, slot: int) -> None:
        """The slot was removed (scaled down): its history no longer matters."""
        for table in (self._started, self._failures, self._ready_at):
            table.pop(slot, None)
