"""Page-Hinkley change detection on an error stream (e.g. |label - score| as late labels
arrive): raises when the stream's mean has risen by more than ``delta`` for long enough that
the cumulative excess passes ``threshold`` (the lambda of the literature).

    m_t = sum_{i<=t} (x_i - mean_i - delta),  M_t = min_{i<=t} m_i,  change: m_t - M_t > threshold

The running mean is exact (a count and a sum); after a change the detector restarts, so the
new level becomes the baseline. Memory is O(1). Detects increases only, which is what an
error stream's degradation looks like.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from streamsense.errors import ConfigError
from streamsense.monitoring.alerts import Observation


class Change(msgspec.Struct, frozen=True, kw_only=True):
    event_time_ms: int
    statistic: float  # m_t - M_t when it crossed the threshold
    samples: int  # observations since the last restart


class PageHinkley:
    def __init__(
        self, *, delta: float = 0.005, threshold: float = 50.0, min_samples: int = 30
    ) -> None:
        if threshold <= 0 or delta < 0 or min_samples < 1:
            raise ConfigError("Page-Hinkley needs threshold > 0, delta >= 0, min_samples >= 1")
        self.delta = delta
        self.threshold = threshold
        self.min_samples = min_samples
        self._reset()

    def _reset(self) -> None:
        self.samples = 0
        self._sum = 0.0
        self._cumulative = 0.0
        self._minimum = 0.0

    @property
    def statistic(self) -> float:
        return self._cumulative - self._minimum

    def update(self, value: float, event_time_ms: int) -> Change | None:
        """Add one observation; a ``Change`` when this one completes a detection."""
        self.samples += 1
        self._sum += value
        mean = self._sum / self.samples
        self._cumulative += value - mean - self.delta
        self._minimum = min(self._minimum, self._cumulative)
        if self.samples < self.min_samples or self.statistic <= self.threshold:
            return None
        change = Change(event_time_ms=event_time_ms, statistic=self.statistic, samples=self.samples)
        self._reset()
        return change

    def update_many(self, values: Iterable[tuple[float, int]]) -> list[Change]:
        return [c for v, t in values if (c := self.update(v, t)) is not None]


def change_observation(change: Change, subject: str) -> Observation:
    """A change as an observation of kind ``performance``, for the alert rules (its window is
    the samples since the last restart; ``window_ms`` 0 = not a fixed window)."""
    return Observation(
        kind="performance",
        subject=subject,
        statistic="page_hinkley",
        value=change.statistic,
        window_ms=0,
        window_end_ms=change.event_time_ms,
        rows=change.samples,
    )
