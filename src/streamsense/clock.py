"""Injectable clocks: code that needs the time asks a Clock, so tests and replays never
depend on the wall clock."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Source of time. ``now_ms`` is wall time (UTC epoch milliseconds); ``monotonic`` is for
    measuring durations and timeouts."""

    def now_ms(self) -> int: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
