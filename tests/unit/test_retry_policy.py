"""RetryPolicy, Policy composition and last-known values, with a manual clock and seeded
randomness: deterministic and without real waits."""

from __future__ import annotations

import asyncio
import random

import pytest

from streamsense.errors import BrokerUnavailable, CircuitOpen, ConfigError, StageTimeout
from streamsense.resilience import (
    BreakerConfig,
    CircuitBreaker,
    LastKnownCache,
    Outcome,
    Policy,
    RetryPolicy,
    RetryTrace,
    confidence,
    is_transient,
)
from streamsense.testing import ManualClock


class Flaky:
    """Fails ``failures`` times with ``error``, then answers ``value``; counts its calls."""

    def __init__(self, failures: int, error: Exception | None = None, value: str = "ok") -> None:
        self.failures = failures
        self.error = error if error is not None else BrokerUnavailable("down")
        self.value = value
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.value

    async def acall(self) -> str:
        return self()


def retry(clock: ManualClock, **options: object) -> RetryPolicy:
    settings: dict[str, object] = {"attempts": 3, "base_delay": 0.1, "max_delay": 1.0}
    settings.update(options)
    return RetryPolicy(clock=clock, rng=random.Random(7), **settings)  # type: ignore[arg-type]


# -- RetryPolicy --------------------------------------------------------------------------------


def test_retries_transient_errors_until_success() -> None:
    clock = ManualClock()
    flaky, trace = Flaky(2), RetryTrace()
    assert retry(clock, jitter="none").call(flaky, trace=trace) == "ok"
    assert (flaky.calls, trace.attempts, trace.delays) == (3, 3, [0.1, 0.2])
    assert clock.monotonic() == pytest.approx(0.3)  # slept through the injected clock


def test_gives_up_after_the_last_attempt() -> None:
    flaky, trace = Flaky(5), RetryTrace()
    with pytest.raises(BrokerUnavailable):
        retry(ManualClock()).call(flaky, trace=trace)
    assert (flaky.calls, trace.attempts, len(trace.delays), len(trace.errors)) == (3, 3, 2, 3)


@pytest.mark.parametrize("error", [ConfigError("bad"), ValueError("bad"), CircuitOpen("model")])
def test_does_not_retry_what_a_retry_cannot_fix(error: Exception) -> None:
    flaky = Flaky(5, error)
    with pytest.raises(type(error)):
        retry(ManualClock()).call(flaky)
    assert flaky.calls == 1


def test_retry_on_decides_what_is_retried() -> None:
    flaky = Flaky(2, CircuitOpen("model"))
    assert retry(ManualClock(), retry_on=is_transient).call(flaky) == "ok"
    flaky = Flaky(2, KeyError("k"))
    assert retry(ManualClock(), retry_on=lambda e: isinstance(e, KeyError)).call(flaky) == "ok"


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    policy = retry(ManualClock(), jitter="none", multiplier=3.0)
    assert [policy.delay(n) for n in range(1, 6)] == pytest.approx([0.1, 0.3, 0.9, 1.0, 1.0])
    assert policy.ceiling(100_000) == 1.0  # no OverflowError


def test_full_jitter_spreads_over_zero_to_the_ceiling() -> None:
    policy = retry(ManualClock(), jitter="full", max_delay=10.0)
    delays = [policy.delay(4) for _ in range(2000)]  # ceiling 0.8
    assert all(0.0 <= d <= 0.8 for d in delays)
    assert min(delays) < 0.01 and max(delays) > 0.79
    assert sum(delays) / len(delays) == pytest.approx(0.4, abs=0.02)


def test_equal_jitter_keeps_half_the_ceiling() -> None:
    policy = retry(ManualClock(), jitter="equal", max_delay=10.0)
    delays = [policy.delay(4) for _ in range(2000)]
    assert all(0.4 <= d <= 0.8 for d in delays)
    assert sum(delays) / len(delays) == pytest.approx(0.6, abs=0.02)


def test_seeded_jitter_is_reproducible() -> None:
    first = [retry(ManualClock()).delay(n) for n in range(1, 6)]
    assert first == [retry(ManualClock()).delay(n) for n in range(1, 6)]
    trace_a, trace_b = RetryTrace(), RetryTrace()
    with pytest.raises(BrokerUnavailable):
        retry(ManualClock(), attempts=5).call(Flaky(9), trace=trace_a)
    with pytest.raises(BrokerUnavailable):
        retry(ManualClock(), attempts=5).call(Flaky(9), trace=trace_b)
    assert trace_a.delays == trace_b.delays and len(set(trace_a.delays)) == 4


def test_async_retry_sleeps_through_the_injected_sleep() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    flaky, trace = Flaky(2), RetryTrace()
    policy = retry(ManualClock(), jitter="none", sleep=sleep)
    assert asyncio.run(policy.acall(flaky.acall, trace=trace)) == "ok"
    assert slept == trace.delays == [0.1, 0.2]


@pytest.mark.parametrize(
    "options",
    [
        {"attempts": 0},
        {"base_delay": -1},
        {"max_delay": 0.01},
        {"multiplier": 0.5},
        {"jitter": "x"},
    ],
)
def test_invalid_retry_settings_are_rejected(options: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        retry(ManualClock(), **options)


# -- Policy -------------------------------------------------------------------------------------


def test_a_healthy_call_is_not_degraded() -> None:
    clock = ManualClock()
    policy: Policy[str] = Policy("model", retry=retry(clock), clock=clock)
    assert policy.call(Flaky(0)) == Outcome("ok", degraded=False, attempts=1, latency_ms=0.0)


def test_a_retried_success_is_not_degraded_but_counts_its_attempts() -> None:
    clock = ManualClock()
    policy: Policy[str] = Policy("model", retry=retry(clock, jitter="none"), clock=clock)
    outcome = policy.call(Flaky(1))
    assert (outcome.value, outcome.degraded, outcome.attempts) == ("ok", False, 2)
    assert outcome.latency_ms == pytest.approx(100.0)  # the backoff is part of the latency


def test_fallback_after_the_retries_marks_the_outcome_degraded() -> None:
    clock = ManualClock()
    policy = Policy("model", retry=retry(clock), fallback=lambda exc: "rules", clock=clock)
    outcome = policy.call(Flaky(9))
    assert (outcome.value, outcome.degraded, outcome.reason) == (
        "rules",
        True,
        "error:BrokerUnavailable",
    )
    assert outcome.attempts == 3 and isinstance(outcome.error, BrokerUnavailable)


def test_the_breaker_sees_every_attempt_and_then_the_fallback_answers_at_once() -> None:
    clock = ManualClock()
    config = BreakerConfig(minimum_calls=3, wait_in_open=60.0)
    breaker = CircuitBreaker("model", config, clock=clock)
    policy = Policy(
        "model", retry=retry(clock), breaker=breaker, fallback=lambda exc: "rules", clock=clock
    )
    down = Flaky(99)
    assert policy.call(down).reason == "error:BrokerUnavailable"
    assert (down.calls, breaker.state) == (3, "open")  # retry is outside the breaker
    outcome = policy.call(down)
    assert (outcome.value, outcome.reason, outcome.attempts) == ("rules", "circuit_open", 1)
    assert down.calls == 3  # not called, and an open breaker is not retried
    assert isinstance(outcome.error, CircuitOpen)


def test_without_a_fallback_the_error_propagates() -> None:
    policy: Policy[str] = Policy("model", clock=ManualClock())
    with pytest.raises(BrokerUnavailable):
        policy.call(Flaky(1))


def test_the_fallback_may_let_an_error_through() -> None:
    def fallback(exc: Exception) -> str:
        if isinstance(exc, ConfigError):
            raise exc
        return "rules"

    policy = Policy("model", fallback=fallback, clock=ManualClock())
    assert policy.call(Flaky(1)).value == "rules"
    with pytest.raises(ConfigError):
        policy.call(Flaky(1, ConfigError("no such model")))


def test_sync_timeout_is_measured_not_enforced() -> None:
    clock = ManualClock()

    def slow() -> str:
        clock.advance(500)
        return "late"

    policy = Policy("model", timeout=0.1, fallback=lambda exc: "rules", clock=clock)
    outcome = policy.call(slow)
    assert (outcome.value, outcome.degraded, outcome.latency_ms) == ("late", False, 500.0)


async def _never() -> str:
    await asyncio.Event().wait()
    return "never"


async def _no_sleep(seconds: float) -> None:
    pass


def test_async_timeout_is_a_retried_failure_the_breaker_counts() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker("model", BreakerConfig(minimum_calls=10), clock=clock)
    policy = Policy(
        "model",
        timeout=0.001,
        retry=retry(clock, sleep=_no_sleep),
        breaker=breaker,
        fallback=lambda exc: "rules",
        clock=clock,
    )
    outcome = asyncio.run(policy.acall(_never))
    assert (outcome.value, outcome.reason, outcome.attempts) == ("rules", "timeout", 3)
    assert isinstance(outcome.error, StageTimeout) and outcome.error.stage == "model"
    assert breaker.metrics().failed_calls == 3  # the timeout is inside the breaker


def test_a_timeout_error_from_the_call_itself_is_not_a_stage_timeout() -> None:
    async def refuses() -> str:
        raise TimeoutError("socket timeout")

    policy = Policy("model", timeout=10.0, fallback=lambda exc: "rules", clock=ManualClock())
    outcome = asyncio.run(policy.acall(refuses))
    assert outcome.reason == "timeout" and type(outcome.error) is TimeoutError


def test_async_policy_success_and_open_breaker() -> None:
    clock = ManualClock()
    breaker = CircuitBreaker("model", BreakerConfig(minimum_calls=1), clock=clock)
    policy = Policy("model", timeout=10.0, breaker=breaker, fallback=lambda e: "rules", clock=clock)
    assert asyncio.run(policy.acall(Flaky(0).acall)) == Outcome("ok", attempts=1)
    assert asyncio.run(policy.acall(Flaky(1).acall)).reason == "error:BrokerUnavailable"
    assert asyncio.run(policy.acall(Flaky(0).acall)).reason == "circuit_open"


def test_invalid_timeout_is_rejected() -> None:
    with pytest.raises(ConfigError):
        Policy("model", timeout=0)


# -- staleness ----------------------------------------------------------------------------------


def test_confidence_halves_every_half_life() -> None:
    assert confidence(0, 1000) == 1.0
    assert confidence(-50, 1000) == 1.0  # stamped in the future: fresh
    assert confidence(1000, 1000) == pytest.approx(0.5)
    assert confidence(3000, 1000) == pytest.approx(0.125)
    assert 0.0 < confidence(10**12, 1) < 1e-300  # never reaches zero
    with pytest.raises(ConfigError):
        confidence(1, 0)


def test_cache_returns_values_with_their_age_and_confidence() -> None:
    clock = ManualClock()
    cache: LastKnownCache[str, float] = LastKnownCache(10, half_life_ms=60_000, clock=clock)
    assert cache.get("card-1") is None
    cache.put("card-1", 3.5)
    clock.advance(120_000)
    stale = cache.get("card-1")
    assert stale is not None
    assert (stale.value, stale.age_ms, stale.confidence) == (3.5, 120_000, pytest.approx(0.25))
    cache.put("card-1", 4.0, at_ms=clock.now_ms() - 60_000)  # true as of a minute ago
    stale = cache.get("card-1")
    assert stale is not None and (stale.value, stale.age_ms) == (4.0, 60_000)


def test_cache_evicts_the_least_recently_used_key() -> None:
    cache: LastKnownCache[str, int] = LastKnownCache(2, half_life_ms=1000, clock=ManualClock())
    cache.put("a", 1)
    cache.put("b", 2)
    cache.get("a")  # "b" is now the least recently used
    cache.put("c", 3)
    assert (len(cache), cache.get("b")) == (2, None)
    assert [s.value for s in (cache.get("a"), cache.get("c")) if s] == [1, 3]


def test_cache_refuses_values_older_than_max_age() -> None:
    clock = ManualClock()
    cache: LastKnownCache[str, int] = LastKnownCache(
        2, half_life_ms=1000, max_age_ms=5000, clock=clock
    )
    cache.put("a", 1)
    clock.advance(5000)
    assert cache.get("a") is not None
    clock.advance(1)
    assert cache.get("a") is None


def test_feature_store_down_falls_back_to_last_known_values() -> None:
    clock = ManualClock()
    cache: LastKnownCache[str, float] = LastKnownCache(100, half_life_ms=60_000, clock=clock)
    store = Flaky(0, value="12.5")

    def read(key: str) -> tuple[float, float]:
        value = float(store())
        cache.put(key, value)
        return value, 1.0

    def last_known(exc: Exception) -> tuple[float, float]:
        stale = cache.get("card-1")
        if stale is None:
            raise exc
        return stale.value, stale.confidence

    policy = Policy("features", fallback=last_known, clock=clock)
    assert policy.call(read, "card-1").value == (12.5, 1.0)
    store.failures, store.calls = 1, 0
    clock.advance(60_000)
    outcome = policy.call(read, "card-1")
    assert outcome.degraded and outcome.value == (12.5, pytest.approx(0.5))
