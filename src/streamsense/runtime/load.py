"""Load shedding by tier: when the worker falls behind, stages skip their expensive work.

The worker measures its own lag (records between what it has processed and the end of the
partitions it owns) a few times a second and feeds it here. Above ``shed_above`` the
monitor switches shedding on; it switches it off only once the lag is below
``restore_below``, so a lag hovering around one threshold does not flap. Stages read
``ctx.load.shed_heavy`` (a cascade skips its heavy model and marks the
decision "heavy_shed"). Shedding makes decisions depend on load, not only on the log,
which is why it is off unless configured and why every shed decision says so.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from streamsense.clock import SYSTEM_CLOCK, Clock
from streamsense.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SheddingConfig:
    """Lag thresholds (in records) with hysteresis, and how often lag is measured."""

    shed_above: int
    restore_below: int
    check_every_s: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.restore_below < self.shed_above:
            raise ConfigError("shedding needs 0 <= restore_below < shed_above")


class LoadMonitor:
    """What stages see of the worker's load (``ctx.load``): the last measured lag and
    whether the heavy tier is shed. Without a config it never sheds."""

    def __init__(self, config: SheddingConfig | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self._clock = clock
        self._last_check: float | None = None
        self.lag = 0
        self.shed_heavy = False
        self.changes = 0  # how many times shedding switched on or off
        self.history: list[tuple[float, bool, int]] = []  # (monotonic time, shedding, lag)

    def due(self) -> bool:
        """Whether a new lag measurement is wanted now (measuring costs broker calls)."""
        if self.config is None:
            return False
        now = self._clock.monotonic()
        if self._last_check is not None and now - self._last_check < self.config.check_every_s:
            return False
        self._last_check = now
        return True

    def observe(self, lag: int) -> bool:
        """Record a lag measurement; returns True when shedding switched on or off."""
        self.lag = lag
        if self.config is None:
            return False
        if not self.shed_heavy and lag > self.config.shed_above:
            return self._switch(True)
        if self.shed_heavy and lag < self.config.restore_below:
            return self._switch(False)
        return False

    def _switch(self, shed: bool) -> bool:
        self.shed_heavy = shed
        self.changes += 1
        self.history.append((self._clock.monotonic(), shed, self.lag))
        if shed:
            log.warning("lag %d above %d: shedding the heavy tier", self.lag, self._above())
        else:
            log.info("lag %d below %d: heavy tier restored", self.lag, self._below())
        return True

    def _above(self) -> int:
        return 0 if self.config is None else self.config.shed_above

    def _below(self) -> int:
        return 0 if self.config is None else self.config.restore_below


NO_LOAD = LoadMonitor()  # the Context default outside a worker: never sheds
