"""Window assignment in event time. Every window answers one question: at time t, which of
a key's events (in time order, ties in log order) does it hold?

* ``tumbling(size)``: [k·size, (k+1)·size), the one containing t, up to t.
* ``hopping(size, every)``: windows of ``size`` starting every ``every``; at t, the latest
  one containing t ([e − size, e) with e the first hop boundary after t), up to t.
* ``rolling(size, offset=0)``: exactly (t − offset − size, t − offset].
* ``session(gap)``: the run of events with gaps under ``gap`` that is still open at t
  (empty once t is ``gap`` past the last event).
* ``last_n(n)``: the n latest events at or before t.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from streamsense.errors import ConfigError

ROLLING, TUMBLING, HOPPING, SESSION, LAST_N = range(5)

Duration = int | str | timedelta
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)\s*$")


def to_ms(duration: Duration) -> int:
    """``5000``, ``"5s"``, ``"30m"``, ``"7d"`` or a timedelta → milliseconds."""
    if isinstance(duration, timedelta):
        return int(duration.total_seconds() * 1000)
    if isinstance(duration, int):
        return duration
    match = _DURATION.match(duration)
    if match is None:
        raise ConfigError(f"cannot read duration {duration!r}: use e.g. 500ms, 5s, 30m, 2h, 7d")
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class Window:
    """A window kind and its two parameters, as the kernels read them."""

    kind: int
    p1: int
    p2: int = 0

    @property
    def retention_ms(self) -> int:
        """How far behind the watermark its events are still needed (sessions: see the
        engine, which keeps an open session whole)."""
        if self.kind == ROLLING:
            return self.p1 + self.p2
        if self.kind in (TUMBLING, HOPPING, SESSION):
            return self.p1
        return 0

    @property
    def keeps_last(self) -> int:
        return self.p1 if self.kind == LAST_N else 0

    def describe(self) -> str:
        names = {ROLLING: "rolling", TUMBLING: "tumbling", HOPPING: "hopping", SESSION: "session"}
        if self.kind == LAST_N:
            return f"last_n({self.p1})"
        extra = f", {self.p2}ms" if self.p2 else ""
        return f"{names[self.kind]}({self.p1}ms{extra})"


def _positive(name: str, value: int) -> int:
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {value}")
    return value


def tumbling(size: Duration) -> Window:
    return Window(TUMBLING, _positive("size", to_ms(size)))


def hopping(size: Duration, every: Duration) -> Window:
    size_ms, every_ms = _positive("size", to_ms(size)), _positive("every", to_ms(every))
    if every_ms > size_ms:
        raise ConfigError("a hopping window's hop cannot exceed its size")
    return Window(HOPPING, size_ms, every_ms)


def rolling(size: Duration, offset: Duration = 0) -> Window:
    offset_ms = to_ms(offset)
    if offset_ms < 0:
        raise ConfigError("offset cannot be negative")
    return Window(ROLLING, _positive("size", to_ms(size)), offset_ms)


def session(gap: Duration) -> Window:
    return Window(SESSION, _positive("gap", to_ms(gap)))


def last_n(n: int) -> Window:
    return Window(LAST_N, _positive("n", n))
