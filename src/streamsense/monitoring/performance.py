"""Live performance as labels arrive: decisions joined to their late labels by id, judged
over tumbling windows of label time.

Decisions (id, score, event time, group: the card, the user) are kept until their label
arrives; a label whose decision has not been seen yet (the two streams are read side by
side, not in event-time order) waits for it. A window [k*size, (k+1)*size) of label time
closes when both streams' watermarks have passed its end: every label of the window has
arrived, and so has every decision they can be joined with (a label comes after its
payment). Each closed window yields ``Observation``s of kind ``performance``: per metric,
its value (statistic ``value``) and, given the reference level (what the model scored on
validation), the ratio to it (statistic ``vs_reference``), so one rule such as "average
precision below 0.6 of the reference" holds for any model version. The window's errors
|label - score|, in label-time order, also feed a Page-Hinkley detector (statistic
``page_hinkley``, subject ``error``).

Memory is bounded: decisions older than ``max_label_delay_ms`` behind the decisions'
watermark are forgotten (their label is not coming), and a window's joined rows are kept
only until it closes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from streamsense.errors import ConfigError
from streamsense.monitoring import classification
from streamsense.monitoring.alerts import Observation
from streamsense.monitoring.detectors import PageHinkley, change_observation

# An app's own metric over a window: labels, scores, groups, decision times (epoch ms).
WindowMetric = Callable[
    [npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]],
    float,
]
NO_TIME = int(np.iinfo(np.int64).min)


@dataclass
class _Window:
    labels: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)
    decided: list[int] = field(default_factory=list)
    label_times: list[int] = field(default_factory=list)


class PerformanceWindows:
    """Feed decisions and labels in any interleaving; ``close`` returns the observations of
    every window both watermarks have passed (see the module's docstring)."""

    def __init__(
        self,
        window_ms: int,
        *,
        reference: Mapping[str, float] | None = None,
        thresholds: Sequence[float] = (),
        metrics: Mapping[str, WindowMetric] | None = None,
        max_label_delay_ms: int = 30 * 86_400_000,
        page_hinkley: PageHinkley | None = None,
    ) -> None:
        if window_ms <= 0 or max_label_delay_ms <= 0:
            raise ConfigError("performance windows need a positive size and label delay")
        self.window_ms = window_ms
        self.reference = dict(reference or {})
        self.thresholds = list(thresholds)
        self.metrics = dict(metrics or {})
        self.max_label_delay_ms = max_label_delay_ms
        self.page_hinkley = page_hinkley
        self._decisions: dict[int, tuple[float, int, int]] = {}  # id -> score, time, group
        self._arrived: deque[tuple[int, int]] = deque()  # (time, id), for forgetting
        self._waiting: dict[int, tuple[int, int]] = {}  # label before its decision
        self._waiting_by_window: dict[int, list[int]] = {}  # window start -> their ids
        self._windows: dict[int, _Window] = {}
        self.decision_watermark = NO_TIME
        self.label_watermark = NO_TIME

    def decisions(
        self, ids: Sequence[int], scores: Sequence[float], times: Sequence[int],
        groups: Sequence[int],
    ) -> None:  # fmt: skip
        for i, score, time, group in zip(ids, scores, times, groups, strict=True):
            waiting = self._waiting.pop(i, None)
            if waiting is not None:  # its label came first
                self._add(waiting[0], waiting[1], float(score), int(time), int(group))
                continue
            self._decisions[i] = (float(score), int(time), int(group))
            self._arrived.append((int(time), i))
        if len(times):
            self.decision_watermark = max(self.decision_watermark, int(max(times)))
        self._forget()

    def labels(self, ids: Sequence[int], labels: Sequence[int], times: Sequence[int]) -> None:
        for i, label, time in zip(ids, labels, times, strict=True):
            if self._window_start(int(time)) + self.window_ms <= self._closed_before():
                continue  # its window has closed: too late to count
            decided = self._decisions.pop(i, None)
            if decided is None:
                self._waiting[i] = (int(label), int(time))
                self._waiting_by_window.setdefault(self._window_start(int(time)), []).append(i)
                continue
            self._add(int(label), int(time), *decided)
        if len(times):
            self.label_watermark = max(self.label_watermark, int(max(times)))

    def label_time(self, time: int) -> None:
        """The labels stream has reached ``time`` (a record on it that is no label)."""
        self.label_watermark = max(self.label_watermark, int(time))

    def close(self) -> list[Observation]:
        """Observations of the windows whose end both watermarks have passed."""
        return self._close(self._closed_before())

    def flush(self) -> list[Observation]:
        """Close every open window (the end of a replay)."""
        return self._close(2**62)

    def _closed_before(self) -> int:
        return min(self.decision_watermark, self.label_watermark)

    def _window_start(self, time: int) -> int:
        return time - time % self.window_ms

    def _add(self, label: int, label_time: int, score: float, decided: int, group: int) -> None:
        start = self._window_start(label_time)
        window = self._windows.setdefault(start, _Window())
        window.labels.append(label)
        window.scores.append(score)
        window.groups.append(group)
        window.decided.append(decided)
        window.label_times.append(label_time)

    def _forget(self) -> None:
        """Decisions whose label is overdue, and labels whose decision never came."""
        horizon = self.decision_watermark - self.max_label_delay_ms
        while self._arrived and self._arrived[0][0] < horizon:
            _, i = self._arrived.popleft()
            self._decisions.pop(i, None)

    def _close(self, before: int) -> list[Observation]:
        seen: list[Observation] = []
        for start in sorted(self._windows):
            end = start + self.window_ms
            if end > before:
                break
            window = self._windows.pop(start)
            seen.extend(self._observe(window, end))
        self._drop_unmatched(before)
        return seen

    def _drop_unmatched(self, before: int) -> None:
        """Labels of closed windows still waiting: their decision never came."""
        for start in [s for s in self._waiting_by_window if s + self.window_ms <= before]:
            for i in self._waiting_by_window.pop(start):
                self._waiting.pop(i, None)

    def _observe(self, window: _Window, end: int) -> list[Observation]:
        y = np.asarray(window.labels, np.int64)
        score = np.asarray(window.scores, np.float64)
        values = self._metric_values(window, y, score)
        seen = []
        for name, value in values.items():
            if not np.isfinite(value):
                continue  # undefined on this window (one class only, nothing flagged)
            seen.append(self._observation(name, "value", value, end, y.size))
            reference = self.reference.get(name)
            if reference:
                seen.append(self._observation(name, "vs_reference", value / reference, end, y.size))
        seen.extend(self._changes(window, y, score))
        return seen

    def _metric_values(
        self, window: _Window, y: npt.NDArray[np.int64], score: npt.NDArray[np.float64]
    ) -> dict[str, float]:
        values = {
            "auc": classification.auc_roc(y, score),
            "average_precision": classification.average_precision(y, score),
            "positive_rate": float(y.mean()) if y.size else float("nan"),
        }
        for threshold in self.thresholds:
            precision, recall = classification.precision_recall_at(y, score, threshold)
            values[f"precision@{threshold:g}"] = precision
            values[f"recall@{threshold:g}"] = recall
        groups = np.asarray(window.groups, np.int64)
        decided = np.asarray(window.decided, np.int64)
        for name, metric in self.metrics.items():
            values[name] = metric(y, score, groups, decided) if y.size else float("nan")
        return values

    def _changes(
        self, window: _Window, y: npt.NDArray[np.int64], score: npt.NDArray[np.float64]
    ) -> list[Observation]:
        if self.page_hinkley is None or not y.size:
            return []
        order = np.argsort(np.asarray(window.label_times, np.int64), kind="stable")
        errors = np.abs(y - score)[order]
        times = np.asarray(window.label_times, np.int64)[order]
        changes = self.page_hinkley.update_many(zip(errors.tolist(), times.tolist(), strict=True))
        return [change_observation(change, "error") for change in changes]

    def _observation(
        self, subject: str, statistic: str, value: float, end: int, rows: int
    ) -> Observation:
        return Observation(
            kind="performance",
            subject=subject,
            statistic=statistic,
            value=float(value),
            window_ms=self.window_ms,
            window_end_ms=end,
            rows=rows,
        )
