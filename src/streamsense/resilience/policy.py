"""One stage's resilience policy: timeout, retry, circuit breaker and fallback, composed in
resilience4j's order

    fallback( retry( breaker( timeout( call ) ) ) )

- the timeout bounds each attempt, and a timed-out attempt is a failure the breaker counts;
- the breaker sees every attempt, so retries cannot hide a failing stage from it, and an
  open breaker rejects an attempt without making it;
- retry re-runs transient failures with backoff, but not ``CircuitOpen`` (see
  ``retry.should_retry``): once the breaker is open the fallback answers at once;
- the fallback turns the final error into a value, and the ``Outcome`` says it was degraded
  and why, so the decision record can say so too.

Timeouts are enforced on the async path only (``asyncio.timeout``: the attempt is cancelled
and ``StageTimeout`` raised). A sync call cannot be interrupted safely from Python, so on the
sync path ``timeout`` is not enforced: the latency is measured (``Outcome.latency_ms``) and
the breaker's slow-call threshold is what protects the stage. Give sync clients their own
I/O timeouts (socket, HTTP); the ``TimeoutError`` they raise is a failure like any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import CircuitOpen, ConfigError, StageTimeout
from streamsense.resilience.breaker import CircuitBreaker
from streamsense.resilience.retry import RetryPolicy, RetryTrace

__all__ = ["Outcome", "Policy", "degradation_reason"]

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What a guarded call produced. ``degraded`` is true when ``value`` came from the
    fallback; ``reason`` then says why (see ``degradation_reason``) and ``error`` is the error
    that caused it. ``attempts`` counts calls tried (rejections by an open breaker included);
    ``latency_ms`` covers every attempt and backoff, by the policy's clock."""

    value: T
    degraded: bool = False
    reason: str | None = None
    attempts: int = 1
    latency_ms: float = 0.0
    error: BaseException | None = None


def degradation_reason(exc: BaseException) -> str:
    """A short, stable label for a decision record: ``circuit_open``, ``timeout`` or
    ``error:<ExceptionType>``."""
    if isinstance(exc, CircuitOpen):
        return "circuit_open"
    if isinstance(exc, StageTimeout | TimeoutError):
        return "timeout"
    return f"error:{type(exc).__name__}"


class Policy(Generic[T]):
    """Guards the calls of stage ``name``; every part is optional.

    ``fallback(error)`` returns the value to use instead; it may re-raise to let an error
    through (a fatal configuration error, say). Without a fallback the final error propagates.
    Declare ``Policy[X](...)`` when no fallback lets the type checker infer ``X``.
    """

    def __init__(
        self,
        name: str,
        *,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        fallback: Callable[[Exception], T] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if timeout is not None and timeout <= 0:
            raise ConfigError(f"timeout must be > 0, got {timeout}")
        self.name = name
        self.timeout = timeout
        self.retry = retry
        self.breaker = breaker
        self.fallback = fallback
        self.clock = clock

    def call(self, fn: Callable[..., T], *args: object) -> Outcome[T]:
        """``fn(*args)`` under the policy (timeout not enforced: see the module doc)."""
        started = self.clock.monotonic()
        trace = RetryTrace()
        try:
            if self.retry is not None:
                value = self.retry.call(self._guarded, fn, *args, trace=trace)
            else:
                trace.attempts = 1
                value = self._guarded(fn, *args)
        except Exception as exc:
            if self.fallback is None:
                raise
            return self._fall_back(exc, trace, started)
        return Outcome(value, attempts=trace.attempts, latency_ms=self._since(started))

    async def acall(self, fn: Callable[..., Awaitable[T]], *args: object) -> Outcome[T]:
        """``await fn(*args)`` under the policy, each attempt bounded by ``timeout``."""
        started = self.clock.monotonic()
        trace = RetryTrace()
        try:
            if self.retry is not None:
                value = await self.retry.acall(self._aguarded, fn, *args, trace=trace)
            else:
                trace.attempts = 1
                value = await self._aguarded(fn, *args)
        except Exception as exc:
            if self.fallback is None:
                raise
            return self._fall_back(exc, trace, started)
        return Outcome(value, attempts=trace.attempts, latency_ms=self._since(started))

    def _guarded(self, fn: Callable[..., T], *args: object) -> T:
        if self.breaker is not None:
            return self.breaker.call(fn, *args)
        return fn(*args)

    async def _aguarded(self, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        if self.breaker is not None:
            return await self.breaker.acall(self._timed, fn, *args)
        return await self._timed(fn, *args)

    async def _timed(self, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        if self.timeout is None:
            return await fn(*args)
        # asyncio.timeout rather than wait_for: ``expired()`` tells our deadline apart from
        # a TimeoutError raised inside the call (which stays a plain TimeoutError).
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                return await fn(*args)
        except TimeoutError as exc:
            if deadline.expired():
                raise StageTimeout(self.name, self.timeout) from exc
            raise

    def _fall_back(self, exc: Exception, trace: RetryTrace, started: float) -> Outcome[T]:
        assert self.fallback is not None
        reason = degradation_reason(exc)
        log.debug("stage %s degraded (%s): %s", self.name, reason, exc)
        value = self.fallback(exc)
        return Outcome(value, True, reason, trace.attempts, self._since(started), exc)

    def _since(self, started: float) -> float:
        return (self.clock.monotonic() - started) * 1000.0
