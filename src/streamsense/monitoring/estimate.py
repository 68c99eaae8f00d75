"""Performance estimated before the labels arrive, from the scores alone, in the manner of
NannyML's confidence-based performance estimation (CBPE): if the scores are calibrated (a
score of 0.2 is right one time in five), each decision's label is a coin with its score as
the chance of heads, and a window's metrics have an expected value.

* expected AUC: E[sum over pairs p_i (1 - p_j) [s_i > s_j]] / E[positives x negatives],
  ties counted one half, in O(n log n) through prefix sums over the sorted scores;
* expected precision and recall at a threshold: mean score of the flagged decisions, and
  their share of the expected positives.

The estimate holds under covariate shift (inputs moving where the model is still calibrated)
and cannot see concept drift (the same inputs now meaning something else): that is what
the labels, once they come, are for (performance.py). Windows are tumbling windows of the
decisions' event time, closed when their watermark passes the end; the observations are of
kind ``estimated_performance``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from streamsense.errors import ConfigError
from streamsense.monitoring.alerts import Observation

Floats = npt.NDArray[np.float64]


def expected_auc(scores: Floats) -> float:
    """AUC ROC expected when each label is 1 with its (calibrated) score's probability."""
    p = np.clip(scores, 0.0, 1.0)
    positives, negatives = float(p.sum()), float((1 - p).sum())
    pairs = positives * negatives - float(np.sum(p * (1 - p)))  # a decision is not its pair
    if pairs <= 0:
        return float("nan")
    values, inverse = np.unique(p, return_inverse=True)
    heads = np.bincount(inverse, weights=p)  # expected positives per distinct score
    tails = np.bincount(inverse, weights=1 - p)
    below = np.cumsum(tails) - tails  # expected negatives with a lower score
    same = heads * tails - np.bincount(inverse, weights=p * (1 - p))  # pairs within a tie
    wins = float(np.sum(heads * below) + 0.5 * np.sum(same))
    return wins / pairs if values.size else float("nan")


def expected_precision_recall(scores: Floats, threshold: float) -> tuple[float, float]:
    p = np.clip(scores, 0.0, 1.0)
    flagged = p >= threshold
    precision = float(p[flagged].mean()) if flagged.any() else float("nan")
    total = float(p.sum())
    recall = float(p[flagged].sum()) / total if total > 0 else float("nan")
    return precision, recall


class EstimatedPerformance:
    """Feed decisions' scores with their event times; ``update`` returns the estimates of
    every window the decisions' watermark has passed."""

    def __init__(self, window_ms: int, *, thresholds: Sequence[float] = ()) -> None:
        if window_ms <= 0:
            raise ConfigError(f"window size must be positive, got {window_ms} ms")
        self.window_ms = window_ms
        self.thresholds = list(thresholds)
        self._open: dict[int, list[Floats]] = {}
        self.watermark = int(np.iinfo(np.int64).min)

    def update(self, scores: Sequence[float], times: Sequence[int]) -> list[Observation]:
        at = np.asarray(times, np.int64)
        if not at.size:
            return []
        values = np.asarray(scores, np.float64)
        starts = at - at % self.window_ms
        for start in np.unique(starts):
            if start + self.window_ms > self.watermark:  # a closed window's rows are late
                self._open.setdefault(int(start), []).append(values[starts == start])
        self.watermark = max(self.watermark, int(at.max()))
        return self._close(self.watermark)

    def flush(self) -> list[Observation]:
        return self._close(2**62)

    def _close(self, before: int) -> list[Observation]:
        seen: list[Observation] = []
        for start in sorted(self._open):
            end = start + self.window_ms
            if end > before:
                break
            window = np.concatenate(self._open.pop(start))
            seen.extend(self._observe(window, end))
        return seen

    def _observe(self, scores: Floats, end: int) -> list[Observation]:
        values = {"auc": expected_auc(scores), "positive_rate": float(scores.mean())}
        for threshold in self.thresholds:
            precision, recall = expected_precision_recall(scores, threshold)
            values[f"precision@{threshold:g}"] = precision
            values[f"recall@{threshold:g}"] = recall
        return [
            Observation(
                kind="estimated_performance",
                subject=name,
                statistic="value",
                value=value,
                window_ms=self.window_ms,
                window_end_ms=end,
                rows=int(scores.size),
            )
            for name, value in values.items()
            if np.isfinite(value)
        ]
