"""A circuit breaker with resilience4j's semantics.

- **closed**: calls go through; each outcome lands in a sliding window, by count (the last
  ``window_size`` calls) or by time (the last ``window_size`` seconds, one bucket a second).
  Once the window holds ``minimum_calls`` calls, a failure rate or a slow-call rate at or above
  its threshold (percent) opens the breaker.
- **open**: calls are rejected with ``CircuitOpen`` without being made. After ``wait_in_open``
  seconds the next call (or a read of ``state``) moves the breaker to half-open.
- **half_open**: ``permitted_calls_in_half_open`` probe calls go through, others are rejected.
  When every probe has finished, their rates close the breaker or open it again.

Only errors that ``record_failure`` accepts count as failures (default: ``is_transient``);
any other error is ignored, as resilience4j's ``ignoreExceptions``: it is neither a success nor
a failure, and in half-open it gives its probe slot back. A call that started before a state
change does not count in the new state. A call is slow when it takes longer than
``slow_call_duration``, measured with the injected clock, whatever its outcome.

State changes go to a listener, to ``logging`` and, given a ``CollectorRegistry``, to
Prometheus. The listener runs synchronously under the breaker's lock: keep it short.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from prometheus_client import CollectorRegistry, Counter

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import CircuitOpen, ConfigError
from streamsense.resilience.breaker_metrics import BreakerState, breaker_metrics
from streamsense.resilience.retry import is_transient
from streamsense.resilience.window import SlidingWindow, Totals

__all__ = ["BreakerConfig", "BreakerMetrics", "BreakerState", "CircuitBreaker", "StateChange"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class BreakerConfig:
    """Thresholds and timings; the defaults are resilience4j's. Rates are percentages,
    durations seconds."""

    failure_rate_threshold: float = 50.0
    slow_call_rate_threshold: float = 100.0
    slow_call_duration: float = 60.0
    window_type: Literal["count", "time"] = "count"
    window_size: int = 100
    minimum_calls: int = 100
    wait_in_open: float = 60.0
    permitted_calls_in_half_open: int = 10
    record_failure: Callable[[BaseException], bool] = is_transient

    def __post_init__(self) -> None:
        for name in ("failure_rate_threshold", "slow_call_rate_threshold"):
            if not 0 < getattr(self, name) <= 100:
                raise ConfigError(f"{name} must be in (0, 100], got {getattr(self, name)}")
        if self.window_type not in ("count", "time"):
            raise ConfigError(f"window_type must be 'count' or 'time', got {self.window_type!r}")
        for name in ("window_size", "minimum_calls", "permitted_calls_in_half_open"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.slow_call_duration <= 0 or self.wait_in_open < 0:
            raise ConfigError("slow_call_duration must be > 0 and wait_in_open >= 0")


@dataclass(frozen=True)
class StateChange:
    """One transition, as given to the listener. Rates are those that decided it (percent)."""

    breaker: str
    previous: BreakerState
    current: BreakerState
    failure_rate: float | None
    slow_call_rate: float | None


@dataclass(frozen=True)
class BreakerMetrics:
    """A snapshot. Rates are percentages of the calls in the current window, ``None`` until
    the window holds the minimum number of calls; ``not_permitted`` counts since creation."""

    state: BreakerState
    calls: int
    failed_calls: int
    slow_calls: int
    failure_rate: float | None
    slow_call_rate: float | None
    not_permitted: int


class CircuitBreaker:
    """Guards one stage. Use ``call(fn, *args)`` or ``await acall(coro_fn, *args)``."""

    def __init__(
        self,
        name: str,
        config: BreakerConfig | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        on_state_change: Callable[[StateChange], None] | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.name = name
        self.config = config if config is not None else BreakerConfig()
        self.clock = clock
        self._listener = on_state_change
        self._prometheus = breaker_metrics(registry)
        self._call_counters: dict[str, Counter] = {}
        # Reentrant, so a listener may read ``state`` or ``metrics()``.
        self._lock = threading.RLock()
        self._state: BreakerState = "closed"
        self._generation = 0  # bumped on every transition; stale outcomes are dropped
        self._window = self._closed_window()
        self._opened_at = 0.0
        self._probes_left = 0
        self._not_permitted = 0
        if self._prometheus:
            self._prometheus.set_state(name, "closed")

    @property
    def state(self) -> BreakerState:
        with self._lock:
            self._maybe_half_open()
            return self._state

    def metrics(self) -> BreakerMetrics:
        with self._lock:
            self._maybe_half_open()
            totals = self._window.totals(self._now_s())
            failure_rate, slow_rate = self._rates(totals)
            return BreakerMetrics(
                self._state,
                totals.calls,
                totals.failures,
                totals.slow,
                failure_rate,
                slow_rate,
                self._not_permitted,
            )

    def reset(self) -> None:
        """Close the breaker with an empty window (an operator's decision: the dependency is
        known to be back). Calls already in flight count for nothing afterwards."""
        with self._lock:
            self._transition("closed", None)

    def call(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` if the breaker permits it, else ``CircuitOpen``."""
        permit = self._acquire()
        started = self.clock.monotonic()
        try:
            result = fn(*args)
        except BaseException as exc:
            self._on_error(permit, started, exc)
            raise
        self._record(permit, started, failed=False)
        return result

    async def acall(self, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        """``await fn(*args)`` if the breaker permits it, else ``CircuitOpen``. A cancelled
        call is not recorded."""
        permit = self._acquire()
        started = self.clock.monotonic()
        try:
            result = await fn(*args)
        except BaseException as exc:
            self._on_error(permit, started, exc)
            raise
        self._record(permit, started, failed=False)
        return result

    # -- permission and recording -------------------------------------------------------------

    def _acquire(self) -> int:
        with self._lock:
            self._maybe_half_open()
            if self._state == "closed":
                return self._generation
            if self._state == "half_open" and self._probes_left > 0:
                self._probes_left -= 1
                return self._generation
            self._not_permitted += 1
            self._count("not_permitted")
            retry_after = None
            if self._state == "open":
                elapsed = self.clock.monotonic() - self._opened_at
                retry_after = max(0.0, self.config.wait_in_open - elapsed)
        raise CircuitOpen(self.name, retry_after=retry_after)

    def _on_error(self, permit: int, started: float, exc: BaseException) -> None:
        # BaseException (cancellation, KeyboardInterrupt) says nothing about the stage.
        if isinstance(exc, Exception) and self.config.record_failure(exc):
            self._record(permit, started, failed=True)
            return
        with self._lock:
            self._count("ignored")
            if permit == self._generation and self._state == "half_open":
                self._probes_left += 1

    def _record(self, permit: int, started: float, *, failed: bool) -> None:
        slow = self.clock.monotonic() - started > self.config.slow_call_duration
        with self._lock:
            outcome = "failure" if failed else "success"
            self._count(f"slow_{outcome}" if slow else outcome)
            if permit != self._generation:
                return
            now_s = self._now_s()
            self._window.record(now_s, failed=failed, slow=slow)
            totals = self._window.totals(now_s)
            if self._state == "closed" and totals.calls >= self._minimum_calls():
                if self._exceeds(totals):
                    self._transition("open", totals)
            elif self._state == "half_open" and totals.calls >= self._minimum_calls():
                self._transition("open" if self._exceeds(totals) else "closed", totals)

    # -- state machine ------------------------------------------------------------------------

    def _maybe_half_open(self) -> None:
        waited = self.clock.monotonic() - self._opened_at
        if self._state == "open" and waited >= self.config.wait_in_open:
            self._transition("half_open", None)

    def _transition(self, to: BreakerState, decided_by: Totals | None) -> None:
        # Rates first: they depend on the state's minimum number of calls.
        failure_rate, slow_rate = self._rates(decided_by) if decided_by else (None, None)
        previous, self._state = self._state, to
        self._generation += 1
        if to == "open":
            self._opened_at = self.clock.monotonic()
            # The window is kept while open, so metrics() shows the rates that opened it.
        elif to == "half_open":
            self._window = SlidingWindow(self.config.permitted_calls_in_half_open, by_time=False)
            self._probes_left = self.config.permitted_calls_in_half_open
        else:
            self._window = self._closed_window()
        self._report(StateChange(self.name, previous, to, failure_rate, slow_rate))

    def _report(self, change: StateChange) -> None:
        level = logging.WARNING if change.current == "open" else logging.INFO
        log.log(
            level,
            "circuit %s: %s -> %s (failure rate %s%%, slow-call rate %s%%)",
            self.name,
            change.previous,
            change.current,
            change.failure_rate,
            change.slow_call_rate,
        )
        if self._prometheus:
            self._prometheus.transitions.labels(self.name, change.previous, change.current).inc()
            self._prometheus.set_state(self.name, change.current)
        if self._listener is not None:
            try:
                self._listener(change)
            except Exception:  # a broken listener must not break the stage it watches
                log.exception("circuit %s: state-change listener failed", self.name)

    # -- helpers ------------------------------------------------------------------------------

    def _closed_window(self) -> SlidingWindow:
        return SlidingWindow(self.config.window_size, by_time=self.config.window_type == "time")

    def _minimum_calls(self) -> int:
        if self._state == "half_open":
            return self.config.permitted_calls_in_half_open
        if self.config.window_type == "count":
            # As resilience4j: a count window can never hold more than its size.
            return min(self.config.minimum_calls, self.config.window_size)
        return self.config.minimum_calls

    def _rates(self, totals: Totals) -> tuple[float | None, float | None]:
        if totals.calls == 0 or totals.calls < self._minimum_calls():
            return None, None
        return 100.0 * totals.failures / totals.calls, 100.0 * totals.slow / totals.calls

    def _exceeds(self, totals: Totals) -> bool:
        failure_rate, slow_rate = self._rates(totals)
        if failure_rate is None or slow_rate is None:
            return False
        return (
            failure_rate >= self.config.failure_rate_threshold
            or slow_rate >= self.config.slow_call_rate_threshold
        )

    def _now_s(self) -> int:
        return int(self.clock.monotonic())

    def _count(self, outcome: str) -> None:
        if self._prometheus:
            # labels() hashes and locks on every lookup: keep each outcome's child counter.
            counter = self._call_counters.get(outcome)
            if counter is None:
                counter = self._call_counters[outcome] = self._prometheus.calls.labels(
                    self.name, outcome
                )
            counter.inc()
