"""NAB's scoring, written from its documentation (Lavin & Ahmad, "Evaluating Real-time
Anomaly Detection Algorithms – the Numenta Anomaly Benchmark", 2015, and NAB's README).

- The first 15 % of each file (at most 15 % of 5,000 rows) is probationary: no detection
  there counts, for or against.
- A detection is a row whose score reaches the threshold. Inside a labelled window only
  the earliest detection counts, rewarded by the scaled sigmoid of its position
  (≈ +1 at the window's start, 0 at its end) times the profile's TP weight; a window with
  no detection costs the FN weight. A detection outside every window costs the FP weight
  times the scaled sigmoid of its distance past the previous window (−1 far from any
  window or before the first; less just after a window ends).
- One threshold for the whole corpus, the one that maximises the summed raw score.
- Normalised: 100 · (raw − null) / (perfect − null), the null detector detecting nothing
  (every window missed) and the perfect one detecting each window at its first row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

PROBATIONARY = 0.15


@dataclass(frozen=True)
class Profile:
    tp: float
    fp: float
    fn: float


PROFILES: Mapping[str, Profile] = {
    "standard": Profile(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": Profile(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": Profile(tp=1.0, fp=0.11, fn=2.0),
}


def scaled_sigmoid(position: float) -> float:
    """NAB's reward curve: 2/(1+e^{5x}) − 1, and −1 beyond x = 3."""
    if position > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probationary_rows(length: int) -> int:
    return int(min(math.floor(PROBATIONARY * length), PROBATIONARY * 5000))


@dataclass(frozen=True)
class LabelledSeries:
    """One file: its timestamps (epoch ms, in order) and its windows as row ranges."""

    windows: tuple[tuple[int, int], ...]  # inclusive first and last row of each window
    length: int

    @staticmethod
    def from_times(
        times: npt.NDArray[np.int64], windows: Sequence[tuple[int, int]]
    ) -> LabelledSeries:
        rows = []
        for start, end in windows:
            first = int(np.searchsorted(times, start, side="left"))
            last = int(np.searchsorted(times, end, side="right")) - 1
            rows.append((first, last))
        return LabelledSeries(tuple(rows), len(times))

    def row_values(self, profile: Profile) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """The value of a detection at each row (TP reward inside a window, negative FP
        cost outside) and, for rows inside windows, which window (else −1). Windows do
        not overlap, so the k-th in order holds the rows after k windows have ended."""
        ordered = sorted(self.windows)
        firsts = np.array([w[0] for w in ordered], dtype=np.int64)
        lasts = np.array([w[1] for w in ordered], dtype=np.int64)
        rows = np.arange(self.length)
        w = np.searchsorted(lasts, rows, side="left")  # windows ended before each row
        at = np.minimum(w, max(len(ordered) - 1, 0))
        inside = (w < len(ordered)) & (firsts[at] <= rows) if ordered else rows < 0
        value = np.full(self.length, -profile.fp)
        window = np.where(inside, w, -1)
        if ordered:
            width = (lasts - firsts + 1)[at]
            value[inside] = profile.tp * _sigmoid(-(lasts[at] - rows + 1) / width)[inside]
            after = ~inside & (w > 0)  # past a window: the cost eases right after it
            prev = np.maximum(w - 1, 0)
            gap = np.abs(lasts[prev] - rows) / np.maximum(lasts[prev] - firsts[prev], 1)
            value[after] = profile.fp * _sigmoid(gap)[after]
        return value, window


def _sigmoid(position: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``scaled_sigmoid`` of every position."""
    with np.errstate(over="ignore"):  # exp overflows to inf far before a window: −1
        curve = 2.0 / (1.0 + np.exp(5.0 * position)) - 1.0
    return np.where(position > 3.0, -1.0, curve)


def raw_score(
    series: LabelledSeries, scores: npt.NDArray[np.float64], threshold: float, profile: Profile
) -> float:
    """One file's raw NAB score at ``threshold``."""
    value, window = series.row_values(profile)
    return _raw(value, window, len(series.windows), scores, threshold, profile)


def _raw(
    value: npt.NDArray[np.float64],
    window: npt.NDArray[np.int64],
    windows: int,
    scores: npt.NDArray[np.float64],
    threshold: float,
    profile: Profile,
) -> float:
    detected = scores >= threshold
    detected[: probationary_rows(len(scores))] = False
    total = float(value[detected & (window < 0)].sum())
    hit = np.flatnonzero(detected & (window >= 0))
    # Rows come in order: np.unique's first index per window is its earliest detection.
    found, first = np.unique(window[hit], return_index=True)
    total += float(value[hit[first]].sum())
    return total - profile.fn * (windows - len(found))


def _raw_all(
    value: npt.NDArray[np.float64],
    window: npt.NDArray[np.int64],
    windows: int,
    scores: npt.NDArray[np.float64],
    thresholds: npt.NDArray[np.float64],
    profile: Profile,
) -> npt.NDArray[np.float64]:
    """``_raw`` at every threshold at once: the false positives at threshold t are the
    outside rows scoring ≥ t (a cumulative sum over them sorted by score), and a window's
    earliest detection is the first row where the window's running maximum reaches t."""
    live = scores.astype(np.float64, copy=True)
    live[: probationary_rows(len(scores))] = -np.inf  # never detected
    outside = window < 0
    by_score = np.argsort(live[outside], kind="stable")
    ascending = live[outside][by_score]
    costs = np.concatenate(([0.0], np.cumsum(value[outside][by_score][::-1])))
    total = costs[len(ascending) - np.searchsorted(ascending, thresholds, side="left")]
    for w in range(windows):
        rows = np.flatnonzero(window == w)
        if not len(rows):
            total = total - profile.fn
            continue
        earliest = np.searchsorted(np.maximum.accumulate(live[rows]), thresholds, side="left")
        reward = value[rows[np.minimum(earliest, len(rows) - 1)]]
        total = total + np.where(earliest < len(rows), reward, -profile.fn)
    return total


@dataclass(frozen=True)
class CorpusScore:
    score: float  # normalised: null 0, perfect 100
    threshold: float
    raw: float
    null: float
    perfect: float


def score_corpus(
    corpus: Mapping[str, tuple[LabelledSeries, npt.NDArray[np.float64]]],
    profile: Profile,
    thresholds: Sequence[float] | None = None,
    candidates: int = 2000,
) -> CorpusScore:
    """The normalised score at the best single threshold for the whole corpus (among
    ``thresholds``, default: a grid plus up to ``candidates`` of the distinct high scores)."""
    prepared = []
    for series, scores in corpus.values():
        value, window = series.row_values(profile)
        prepared.append((value, window, len(series.windows), scores))
    tried = np.asarray(
        thresholds if thresholds is not None else _candidates(corpus, candidates), np.float64
    )
    raws = sum(
        (_raw_all(v, w, n, s, tried, profile) for v, w, n, s in prepared), np.zeros(len(tried))
    )
    best = int(np.argmax(raws)) if len(tried) else -1  # the first of equals, as before
    best_raw = float(raws[best]) if len(tried) else -math.inf
    best_threshold = float(tried[best]) if len(tried) else 1.0
    null = -profile.fn * sum(n for _, _, n, _ in prepared)
    perfect = sum(
        _raw(v, w, n, _perfect_scores(series), 0.5, profile)
        for (v, w, n, _), (series, _) in zip(prepared, corpus.values(), strict=True)
    )
    score = 100.0 * (best_raw - null) / (perfect - null) if perfect != null else 0.0
    return CorpusScore(score, best_threshold, best_raw, null, perfect)


def _perfect_scores(series: LabelledSeries) -> npt.NDArray[np.float64]:
    """The perfect detector: a detection at the first row of every window, nothing else."""
    scores = np.zeros(series.length)
    for first, _ in series.windows:
        scores[first] = 1.0
    return scores


def _candidates(
    corpus: Mapping[str, tuple[LabelledSeries, npt.NDArray[np.float64]]], most: int
) -> list[float]:
    """Thresholds worth trying: a grid, the distinct high scores (at most ``most`` of
    them), and one above everything (detect nothing)."""
    scores = np.concatenate([s for _, s in corpus.values()])
    high = np.unique(scores[scores >= 0.3])
    if len(high) > most:
        high = np.quantile(high, np.linspace(0.0, 1.0, most))
    grid = np.linspace(0.0, 1.0, min(401, most + 1))
    return sorted({*grid.tolist(), *high.tolist(), float(scores.max(initial=1.0)) + 1e-9})
