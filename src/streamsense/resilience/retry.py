"""Retry with exponential backoff and jitter.

The delay before retry ``n`` (1 for the first retry) grows as
``ceiling = min(max_delay, base_delay * multiplier ** (n - 1))`` and is then jittered, as in
AWS' "Exponential Backoff And Jitter" (Marc Brooker, 2015):

- ``"full"`` (default): uniform in [0, ceiling]. Spreads retrying clients the most, so a
  recovering service is not hit by synchronised waves.
- ``"equal"``: ceiling/2 + uniform in [0, ceiling/2]. Never retries almost at once.
- ``"none"``: exactly the ceiling. Predictable; for tests and single clients.

Only errors that ``retry_on`` accepts are retried (by default: transient ones, see
``is_transient``); anything else propagates at once. Sync calls sleep through the injected
clock; async calls through an injectable ``sleep`` (``asyncio.sleep`` by default), so tests
never wait in real time.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import CircuitOpen, ConfigError, StreamsenseError

__all__ = ["Jitter", "RetryPolicy", "RetryTrace", "is_transient", "should_retry"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Jitter = Literal["full", "equal", "none"]


def is_transient(exc: BaseException) -> bool:
    """True for errors that may go away by themselves: a streamsense error marked retryable,
    or an OS-level failure (connection refused or reset, socket timeout, ``TimeoutError``)."""
    if isinstance(exc, StreamsenseError):
        return exc.retryable
    return isinstance(exc, OSError)


def should_retry(exc: BaseException) -> bool:
    """The default ``retry_on``: transient errors, except an open circuit breaker. A breaker
    stays open for its ``wait_in_open``, usually far longer than a backoff delay, so retrying
    into it only spends the latency budget that the fallback could use."""
    return is_transient(exc) and not isinstance(exc, CircuitOpen)


@dataclass
class RetryTrace:
    """What one call went through: how many attempts, the delays slept between them and the
    errors that caused them. Pass one in to observe a call; ``Policy`` does."""

    attempts: int = 0
    delays: list[float] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


class RetryPolicy:
    """Up to ``attempts`` tries of a call (1 = no retry), with jittered exponential backoff.

    ``rng`` drives the jitter: pass a seeded ``random.Random`` for reproducible delays.
    """

    def __init__(
        self,
        attempts: int = 3,
        base_delay: float = 0.1,
        max_delay: float = 10.0,
        multiplier: float = 2.0,
        jitter: Jitter = "full",
        retry_on: Callable[[BaseException], bool] = should_retry,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if attempts < 1:
            raise ConfigError(f"attempts must be at least 1, got {attempts}")
        if base_delay < 0 or max_delay < base_delay:
            raise ConfigError(f"need 0 <= base_delay <= max_delay, got {base_delay}, {max_delay}")
        if multiplier < 1:
            raise ConfigError(f"multiplier must be at least 1, got {multiplier}")
        if jitter not in ("full", "equal", "none"):
            raise ConfigError(f"jitter must be 'full', 'equal' or 'none', got {jitter!r}")
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.multiplier = multiplier
        self.jitter: Jitter = jitter
        self.retry_on = retry_on
        self.clock = clock
        self.rng = rng if rng is not None else random.Random()
        self.sleep = sleep

    def ceiling(self, retry: int) -> float:
        """The un-jittered delay before retry number ``retry`` (1-based)."""
        try:
            raw = self.base_delay * self.multiplier ** (retry - 1)
        except OverflowError:  # thousands of retries: the cap applies anyway
            return self.max_delay
        return min(self.max_delay, raw)

    def delay(self, retry: int) -> float:
        """The jittered delay before retry number ``retry`` (1-based)."""
        cap = self.ceiling(retry)
        if self.jitter == "full":
            return self.rng.uniform(0.0, cap)
        if self.jitter == "equal":
            return cap / 2 + self.rng.uniform(0.0, cap / 2)
        return cap

    def call(self, fn: Callable[..., T], *args: object, trace: RetryTrace | None = None) -> T:
        """``fn(*args)``, retried on transient errors; the last error propagates."""
        trace = trace if trace is not None else RetryTrace()
        while True:
            trace.attempts += 1
            try:
                return fn(*args)
            except Exception as exc:
                if not self._may_retry(exc, trace):
                    raise
            self.clock.sleep(trace.delays[-1])

    async def acall(
        self,
        fn: Callable[..., Awaitable[T]],
        *args: object,
        trace: RetryTrace | None = None,
    ) -> T:
        """``await fn(*args)``, retried on transient errors; the last error propagates."""
        trace = trace if trace is not None else RetryTrace()
        while True:
            trace.attempts += 1
            try:
                return await fn(*args)
            except Exception as exc:
                if not self._may_retry(exc, trace):
                    raise
            await self.sleep(trace.delays[-1])

    def _may_retry(self, exc: Exception, trace: RetryTrace) -> bool:
        """Records the failed attempt; if another is allowed, appends its delay to ``trace``."""
        trace.errors.append(exc)
        if trace.attempts >= self.attempts or not self.retry_on(exc):
            return False
        wait = self.delay(trace.attempts)
        trace.delays.append(wait)
        log.info(
            "attempt %d/%d failed (%s: %s); retrying in %.3f s",
            trace.attempts,
            self.attempts,
            type(exc).__name__,
            exc,
            wait,
        )
        return True
