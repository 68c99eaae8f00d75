"""The detectors as compiled online kernels: a batch of readings of many series in one
pass, each series' state in its row of ``rows`` and ``tables`` (layout.py).

Every score uses only the series' readings up to the one scored: a reading is scored
first, then learned from. Three detectors share the pass:

- ``gaussian``: the windowed Gaussian baseline, |z| against an exponentially weighted
  mean and variance, as a two-sided tail probability.
- ``context``: novelty of the current quantised value after the last 1..ORDERS quantised
  values (CAD OSE's context-based prediction of quantised values), with values
  quantised in the series' own range learned online, novelty counts decaying with time,
  and values past the seen extremes counted as novel outright.
- ``likelihood``: HTM's anomaly likelihood over the raw scores of both (how unusual the
  recent average raw score is against its own long-run distribution), on a log scale,
  with an alert expiry after a high score (Skyline's) so one event is one detection.
- ``rarity`` (the default): a wholly novel context scored by how long the series went
  without one.
- ``features``: the reading against the feature engine's rolling statistics of its series
  (feature_score.py), with the alert expiry; ``rarity+features``: the larger of the two.
  Only these read the engine's features (a column per input, ``features``); the others
  are given no columns.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import numpy.typing as npt

from .feature_score import feature_score
from .layout import (
    BIN_COUNTS,
    DECAY,
    G_MEAN,
    G_VAR,
    GAUSS_ALPHA,
    HI,
    HIGH,
    L_MEAN,
    L_VAR,
    LAST_ALERT,
    LAST_HIGH,
    LO,
    LONG_ALPHA,
    MARGIN,
    ORDERS,
    RARITY,
    RES0,
    RES_WIDTH,
    SHORT,
    SHORT0,
    SHORT_POS,
    SHORT_SUM,
    SUPPRESS,
    TABLE,
    WARMUP,
    N,
    cache_name,
)

# Compiled once and cached under a fixed module name (layout.cache_name says why).
__name__ = cache_name(__name__, "streamsense_apps_iot_kernels")

GAUSSIAN, CONTEXT, LIKELIHOOD, RARITY_DETECTOR, FEATURES, RARITY_FEATURES = range(6)
DETECTORS = {
    "gaussian": GAUSSIAN,
    "context": CONTEXT,
    "likelihood": LIKELIHOOD,
    "rarity": RARITY_DETECTOR,
    "features": FEATURES,
    "rarity+features": RARITY_FEATURES,
}
USES_FEATURES = frozenset({"features", "rarity+features"})
_LOG_FLOOR = math.log(1e-10)
_LOG_TINY = math.log(1e-300)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@numba.njit(nogil=True, cache=True)
def _gaussian(row: F64, value: float) -> float:
    """How improbable the value is under the series' recent Gaussian: the two-sided tail
    probability on a log scale (1 at the smallest a float holds), so far tails stay apart."""
    mean, var = row[G_MEAN], row[G_VAR]
    score = 0.0
    if row[N] >= WARMUP and var > 0.0:
        tail = math.erfc(abs(value - mean) / math.sqrt(2.0 * var))
        score = min(math.log(max(tail, 1e-300)) / _LOG_TINY, 1.0)
    elif row[N] >= WARMUP and value != mean:
        score = 1.0
    alpha = max(GAUSS_ALPHA, 1.0 / (row[N] + 1.0))  # a plain average until the window fills
    delta = value - mean
    row[G_MEAN] = mean + alpha * delta
    row[G_VAR] = (1.0 - alpha) * (var + alpha * delta * delta)
    return score


@numba.njit(nogil=True, cache=True)
def _quantise(row: F64, value: float, bins: int) -> int:
    span = row[HI] - row[LO]
    if span <= 0.0:
        return 0
    b = int((value - row[LO]) / span * bins)
    return min(max(b, 0), bins - 1)


@numba.njit(nogil=True, cache=True)
def _context(row: F64, table: F64, value: float) -> tuple[float, float]:
    """The share of the value's contexts not seen recently (1 past the seen extremes),
    and its rarity score: per resolution, a wholly novel context scores by how long the
    resolution went without one (the first in a long while is an anomaly, the tenth in a
    row the series' new normal), averaged over the resolutions."""
    n = row[N]
    if n == 0:
        row[LO] = value
        row[HI] = value
    span = row[HI] - row[LO]
    outside = value > row[HI] + MARGIN * span or value < row[LO] - MARGIN * span
    novel = 0.0
    rare = 0.0
    for r in range(len(BIN_COUNTS)):
        base = RES0 + r * RES_WIDTH
        count = _novelty(row, table, base, r, _quantise(row, value, BIN_COUNTS[r]))
        novel += count
        if count == ORDERS or outside:
            gap = n - row[base + 2] if row[base + 2] > 0 else RARITY
            row[base + 2] = n
            rare += min(1.0, gap / RARITY)
    # A value far past the seen extremes (by half the range or more) is an anomaly however
    # often the series has been novel lately.
    if n >= WARMUP and span > 0.0 and max(value - row[HI], row[LO] - value) >= 0.5 * span:
        rare = float(len(BIN_COUNTS))
    row[LO] = min(row[LO], value)
    row[HI] = max(row[HI], value)
    if n < WARMUP:
        return 0.0, 0.0
    if outside:
        novel = ORDERS * len(BIN_COUNTS)
    return novel / (ORDERS * len(BIN_COUNTS)), rare / len(BIN_COUNTS)


@numba.njit(nogil=True, cache=True)
def _novelty(row: F64, table: F64, base: int, r: int, current: int) -> int:
    """How many of the contexts of bin ``current`` at resolution ``r`` (its fields from
    ``base``) are new, learning them. A context is the bin, how long (log2 readings) the
    series has stayed in it, and the 1..ORDERS distinct bins before: shapes independent of
    their speed, and a series stuck (or flat) longer than it ever was is new."""
    n = row[N]
    history = base + 3
    if n > 0 and current == int(row[base]):
        row[base + 1] += 1.0
    else:
        if n > 0:
            for order in range(ORDERS - 1, 0, -1):
                row[history + order] = row[history + order - 1]
            row[history] = row[base]
        row[base] = current
        row[base + 1] = 1.0
    h = current + 1 + r * 7919 + 131 * min(int(math.log2(row[base + 1])), 15)
    novel = 0
    for order in range(ORDERS):
        h = (h * 1000003 + int(row[history + order]) + 7) & 0x7FFFFFFF
        slot = (h ^ (order * 0x9E3779B1)) % TABLE
        seen = table[slot] * DECAY ** (n - table[TABLE + slot])
        if seen < 0.5:
            novel += 1
        table[slot] = seen + 1.0
        table[TABLE + slot] = n
    return novel


@numba.njit(nogil=True, cache=True)
def _likelihood(row: F64, raw: float) -> float:
    """How unusual the short average of raw scores is against its long-run distribution,
    on HTM's log scale (0.5 ≈ a one-in-100,000 average)."""
    pos = int(row[SHORT_POS])
    row[SHORT_SUM] += raw - row[SHORT0 + pos]
    row[SHORT0 + pos] = raw
    row[SHORT_POS] = (pos + 1) % SHORT
    short = row[SHORT_SUM] / SHORT
    mean, var = row[L_MEAN], row[L_VAR]
    std = math.sqrt(max(var, 1e-6))
    tail = 0.5 * math.erfc((short - mean) / (std * math.sqrt(2.0)))  # P(X >= short)
    alpha = max(LONG_ALPHA, 1.0 / (row[N] + 1.0))
    delta = short - mean
    row[L_MEAN] = mean + alpha * delta
    row[L_VAR] = (1.0 - alpha) * (var + alpha * delta * delta)
    if row[N] < WARMUP:
        return 0.0
    return min(math.log(max(tail, 1e-10)) / _LOG_FLOOR, 1.0)


@numba.njit(nogil=True, cache=True)
def _expire(row: F64, score: float) -> float:
    """After a high score the next SUPPRESS readings are damped: one event, one alert."""
    since = row[N] - row[LAST_HIGH]
    if row[LAST_HIGH] > 0 and since < SUPPRESS:
        score *= since / SUPPRESS
    if score >= HIGH:
        row[LAST_HIGH] = row[N]
    return score


@numba.njit(nogil=True, cache=True)
def score_batch(
    detector: int, index: I64, values: F64, features: F64, rows: F64, tables: F64, out: F64
) -> None:
    """Scores ``values`` (series ``index[i]`` each, engine features ``features[i]``) in
    order into ``out``, learning as it goes; every detector's state advances whichever
    one is reported."""
    for i in range(values.shape[0]):
        row, table = rows[index[i]], tables[index[i]]
        out[i] = _score_one(detector, row, table, values[i], features[i])


@numba.njit(nogil=True, cache=True)
def score_and_alert(
    detector: int,
    index: I64,
    values: F64,
    times: I64,
    features: F64,
    rows: F64,
    tables: F64,
    threshold: float,
    cooldown_ms: int,
    out: F64,
    alerts: npt.NDArray[np.bool_],
) -> None:
    """``score_batch``, and which readings raise an alert: a score at or above
    ``threshold`` at least ``cooldown_ms`` after the series' last alert (de-duplication
    per series, on event time so replays decide the same)."""
    for i in range(values.shape[0]):
        row = rows[index[i]]
        score = _score_one(detector, row, tables[index[i]], values[i], features[i])
        out[i] = score
        due = row[LAST_ALERT] == 0.0 or times[i] - row[LAST_ALERT] >= cooldown_ms
        alerts[i] = score >= threshold and due
        if alerts[i]:
            row[LAST_ALERT] = times[i]


@numba.njit(nogil=True, cache=True)
def _score_one(detector: int, row: F64, table: F64, value: float, features: F64) -> float:
    """One reading of one series: every detector learns it, ``detector`` is reported."""
    gauss = _gaussian(row, value)
    novelty, rare = _context(row, table, value)
    raw = max(novelty, gauss)  # novel contexts, or a value far in the Gaussian's tails
    likely = _likelihood(row, raw)
    warm = row[N] >= WARMUP
    row[N] += 1.0
    if detector == GAUSSIAN:
        return gauss
    if detector == CONTEXT:
        return novelty
    if detector == LIKELIHOOD:
        return _expire(row, likely)
    if detector in (FEATURES, RARITY_FEATURES):
        featured = _expire(row, feature_score(value, features) if warm else 0.0)
        return featured if detector == FEATURES else max(rare, featured)
    return rare


def no_features(readings: int) -> F64:
    """The features argument of the detectors that read none: no columns."""
    return np.zeros((readings, 0))
