"""CircuitBreaker: resilience4j's state machine, driven by a manual clock (no real waits)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from streamsense.errors import BrokerUnavailable, CircuitOpen, ConfigError
from streamsense.resilience import BreakerConfig, CircuitBreaker, StateChange
from streamsense.testing import ManualClock


def breaker(clock: ManualClock, **config: object) -> CircuitBreaker:
    settings: dict[str, object] = {
        "window_size": 10,
        "minimum_calls": 4,
        "wait_in_open": 30.0,
        "permitted_calls_in_half_open": 2,
        "slow_call_duration": 1.0,
    }
    settings.update(config)
    return CircuitBreaker("model", BreakerConfig(**settings), clock=clock)  # type: ignore[arg-type]


def ok() -> str:
    return "ok"


def fail() -> str:
    raise BrokerUnavailable("down")


def taking(clock: ManualClock, seconds: float, result: Callable[[], str] = ok) -> Callable[[], str]:
    def call() -> str:
        clock.advance(seconds * 1000)
        return result()

    return call


def run(b: CircuitBreaker, *calls: Callable[[], str]) -> None:
    for fn in calls:
        with contextlib.suppress(BrokerUnavailable):
            b.call(fn)


def open_breaker(clock: ManualClock, **config: object) -> CircuitBreaker:
    b = breaker(clock, **config)
    run(b, fail, fail, fail, fail)
    assert b.state == "open"
    return b


def test_opens_on_failure_rate_only_after_minimum_calls() -> None:
    b = breaker(ManualClock())
    run(b, fail, fail, ok)
    m = b.metrics()
    assert (b.state, m.calls, m.failed_calls, m.failure_rate) == ("closed", 3, 2, None)
    run(b, ok)  # 4 calls, 50 %: at the threshold
    assert b.state == "open"
    assert b.metrics().failure_rate == 50.0  # kept while open: the rate that opened it


def test_stays_closed_below_the_threshold() -> None:
    b = breaker(ManualClock())
    run(b, fail, ok, ok, ok, ok, ok)
    assert b.state == "closed"
    assert b.metrics().failure_rate == pytest.approx(100 / 6)


def test_count_window_keeps_only_the_last_calls() -> None:
    b = breaker(ManualClock(), window_size=4)
    run(b, fail, ok, ok, ok, ok, fail)  # the first failure has left the window
    assert (b.state, b.metrics().calls, b.metrics().failed_calls) == ("closed", 4, 1)
    run(b, fail)
    assert b.state == "open"


def test_slow_calls_open_it() -> None:
    clock = ManualClock()
    b = breaker(clock, slow_call_rate_threshold=50.0)
    run(b, taking(clock, 1.0), ok, taking(clock, 1.5))  # exactly the limit is not slow
    assert (b.state, b.metrics().slow_calls) == ("closed", 1)
    run(b, taking(clock, 2.0))
    m = b.metrics()
    assert (b.state, m.failure_rate, m.slow_call_rate) == ("open", 0.0, 50.0)


def test_slow_failures_count_as_both() -> None:
    clock = ManualClock()
    b = breaker(clock, failure_rate_threshold=100.0, slow_call_rate_threshold=100.0)
    run(b, *[taking(clock, 5.0, fail)] * 4)
    m = b.metrics()
    assert (b.state, m.failed_calls, m.slow_calls) == ("open", 4, 4)


def test_open_rejects_without_calling() -> None:
    clock = ManualClock()
    b = open_breaker(clock)
    called: list[int] = []
    clock.advance(10_000)
    with pytest.raises(CircuitOpen) as caught:
        b.call(lambda: called.append(1))
    assert called == []
    assert caught.value.retryable and caught.value.breaker == "model"
    assert caught.value.retry_after == pytest.approx(20.0)
    assert b.metrics().not_permitted == 1


def test_half_open_after_wait_and_probes_close_it() -> None:
    clock = ManualClock()
    b = open_breaker(clock)
    clock.advance(29_999)
    assert b.state == "open"
    clock.advance(1)
    assert b.state == "half_open"
    run(b, ok)
    assert b.state == "half_open"  # waits for every permitted probe
    run(b, ok)
    assert b.state == "closed"
    assert b.metrics().calls == 0  # a fresh window


def test_failed_probes_reopen_it() -> None:
    clock = ManualClock()
    b = open_breaker(clock)
    clock.advance(30_000)
    run(b, ok, fail)  # 50 % of the probes failed
    assert b.state == "open"
    with pytest.raises(CircuitOpen) as caught:
        b.call(ok)
    assert caught.value.retry_after == pytest.approx(30.0)  # the wait starts again


def test_half_open_permits_only_the_probes() -> None:
    clock = ManualClock()
    b = open_breaker(clock, permitted_calls_in_half_open=1)
    clock.advance(30_000)

    def probe() -> str:
        with pytest.raises(CircuitOpen) as caught:
            b.call(ok)  # a second caller while the only probe is in flight
        assert caught.value.retry_after is None
        return "ok"

    b.call(probe)
    assert b.state == "closed"


def test_time_window_forgets_old_calls() -> None:
    clock = ManualClock()
    b = breaker(clock, window_type="time", window_size=10, minimum_calls=3)
    run(b, fail, fail)
    clock.advance(9_000)
    assert b.metrics().calls == 2  # seconds 0..9 are the last ten
    clock.advance(1_000)
    assert b.metrics().calls == 0
    run(b, fail, ok)
    assert b.state == "closed"
    run(b, fail)
    assert b.state == "open"


def test_errors_that_a_retry_cannot_fix_are_ignored() -> None:
    clock = ManualClock()
    b = breaker(clock)
    for exc in (ConfigError("bad"), ValueError("bad"), BrokerUnavailable("x", retryable=False)):
        for _ in range(5):
            with pytest.raises(type(exc)):
                b.call(_raiser(exc))
    assert (b.state, b.metrics().calls) == ("closed", 0)
    run(b, fail, fail, fail, fail)
    clock.advance(30_000)
    with pytest.raises(ValueError):
        b.call(_raiser(ValueError("bad")))
    run(b, ok, ok)  # the ignored probe gave its slot back
    assert b.state == "closed"


def test_os_errors_and_timeouts_count_as_failures() -> None:
    b = breaker(ManualClock())
    for exc in (TimeoutError(), ConnectionResetError(), OSError()):
        with pytest.raises(OSError):
            b.call(_raiser(exc))
    run(b, ok)
    assert b.state == "open"


def test_a_call_that_started_before_a_transition_does_not_count() -> None:
    b = breaker(ManualClock())

    def slow_success() -> str:
        run(b, fail, fail, fail, fail)  # meanwhile, other calls open the breaker
        return "ok"

    assert b.call(slow_success) == "ok"
    assert (b.state, b.metrics().calls, b.metrics().failed_calls) == ("open", 4, 4)


def test_state_changes_reach_listener_log_and_prometheus(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    registry = CollectorRegistry()
    changes: list[StateChange] = []
    config = BreakerConfig(minimum_calls=2, wait_in_open=5.0, permitted_calls_in_half_open=1)
    b = CircuitBreaker(
        "model", config, clock=clock, on_state_change=changes.append, registry=registry
    )
    CircuitBreaker("store", config, clock=clock, registry=registry)  # shares the registry

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("streamsense_circuit_breaker_state", breaker="model", state="closed") == 1
    with caplog.at_level(logging.INFO, logger="streamsense.resilience.breaker"):
        run(b, fail, fail)
        with pytest.raises(CircuitOpen):
            b.call(ok)
        clock.advance(5_000)
        run(b, ok)
    assert [(c.previous, c.current) for c in changes] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert (changes[0].failure_rate, changes[2].failure_rate) == (100.0, 0.0)
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO", "INFO"]
    assert "closed -> open" in caplog.records[0].getMessage()
    assert sample("streamsense_circuit_breaker_state", breaker="model", state="open") == 0
    assert sample("streamsense_circuit_breaker_state", breaker="model", state="closed") == 1
    opened = {"breaker": "model", "from_state": "closed", "to_state": "open"}
    assert sample("streamsense_circuit_breaker_transitions_total", **opened) == 1
    calls = "streamsense_circuit_breaker_calls_total"
    assert sample(calls, breaker="model", outcome="failure") == 2
    assert sample(calls, breaker="model", outcome="not_permitted") == 1
    assert sample(calls, breaker="model", outcome="success") == 1


def test_a_failing_listener_does_not_break_calls() -> None:
    def broken(change: StateChange) -> None:
        raise RuntimeError("listener bug")

    config = BreakerConfig(minimum_calls=1)
    b = CircuitBreaker("model", config, clock=ManualClock(), on_state_change=broken)
    run(b, fail)
    assert b.state == "open"


def test_async_calls() -> None:
    clock = ManualClock()
    b = breaker(clock)

    async def ok_async() -> str:
        return "ok"

    async def fail_async() -> str:
        raise BrokerUnavailable("down")

    async def scenario() -> None:
        assert await b.acall(ok_async) == "ok"
        for _ in range(3):
            with pytest.raises(BrokerUnavailable):
                await b.acall(fail_async)
        assert b.state == "open"
        with pytest.raises(CircuitOpen):
            await b.acall(ok_async)
        clock.advance(30_000)
        assert [await b.acall(ok_async), await b.acall(ok_async)] == ["ok", "ok"]
        assert b.state == "closed"

    asyncio.run(scenario())


def test_a_cancelled_call_is_not_recorded() -> None:
    b = breaker(ManualClock())

    async def scenario() -> None:
        task = asyncio.create_task(b.acall(asyncio.sleep, 3600))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert b.metrics().calls == 0


@pytest.mark.parametrize(
    "config",
    [
        {"failure_rate_threshold": 0},
        {"slow_call_rate_threshold": 101},
        {"window_size": 0},
        {"minimum_calls": 0},
        {"permitted_calls_in_half_open": 0},
        {"slow_call_duration": 0},
        {"wait_in_open": -1},
        {"window_type": "sliding"},
    ],
)
def test_invalid_config_is_rejected(config: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        BreakerConfig(**config)  # type: ignore[arg-type]


def _raiser(exc: BaseException) -> Callable[[], str]:
    def call() -> str:
        raise exc

    return call


def test_a_reset_closes_an_open_breaker_with_an_empty_window() -> None:
    guard = breaker(ManualClock())
    for _ in range(4):
        with pytest.raises(BrokerUnavailable):
            guard.call(fail)
    assert guard.state == "open"
    guard.reset()
    assert guard.state == "closed" and guard.metrics().calls == 0
    assert guard.call(ok) == "ok"
