"""Drift statistics between a reference distribution and a window's, both given over the
same bins (numeric columns: the reference's quantile bins; categorical: its categories).

All work from bin counts, so a window keeps O(bins) numbers per column, whatever its size.

- PSI: sum (q - p) ln(q / p), frequencies floored at ``EPSILON`` (empty bins would be
  infinite).
- Jensen-Shannon distance: the square root of the JS divergence in bits, in [0, 1].
- KS: max |F_window - F_reference| over the bin edges. The true two-sample statistic lies
  between this value and this value plus the largest bin mass of either side (within a bin
  both CDFs are monotone, so neither can move by more than its bin's mass there). With 20
  quantile bins each reference bin holds about 5 %, so the error is at most 0.05 or the
  window's largest bin share, whichever is larger.
- Wasserstein-1, normalised: each side is summarised by its bin masses placed at its bin
  means (a window keeps a sum per bin), W1 between those two discrete distributions is
  exact, and it is divided by the reference's standard deviation, so the value reads "the
  distribution moved by this many reference standard deviations" (0.1 is a usual alarm
  level). Moving a bin's values to their mean moves mass by their mean absolute deviation
  from it, so the error is at most sum_b p_b * MAD_b(reference) + q_b * MAD_b(window):
  small for the narrow inner quantile bins, mostly from the two open end bins' tails.
- Chi-square: Pearson's statistic of the window's counts against the counts the reference
  frequencies predict, with its p-value (upper regularised incomplete gamma).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]
EPSILON = 1e-4


def frequencies(counts: npt.ArrayLike) -> Floats:
    values = np.asarray(counts, dtype=np.float64)
    total = values.sum()
    return values / total if total > 0 else np.zeros_like(values)


def psi(reference: Floats, window: Floats) -> float:
    p = np.maximum(reference, EPSILON)
    q = np.maximum(window, EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: Floats, window: Floats) -> float:
    middle = (reference + window) / 2.0
    divergence = (_kl_bits(reference, middle) + _kl_bits(window, middle)) / 2.0
    return math.sqrt(max(divergence, 0.0))


def _kl_bits(p: Floats, q: Floats) -> float:
    mask = p > 0
    return float(np.sum(p[mask] * np.log2(p[mask] / q[mask])))


def ks_binned(reference: Floats, window: Floats) -> float:
    return float(np.max(np.abs(np.cumsum(reference) - np.cumsum(window))))


def wasserstein_binned(
    reference: Floats, reference_means: Floats, window: Floats, window_means: Floats, scale: float
) -> float:
    """Normalised W1 between the two sides taken as point masses at their bin means (see the
    module's docstring); ``scale`` is the reference's standard deviation."""
    points = np.concatenate((reference_means, window_means))
    weights = np.concatenate((reference, -window))
    order = np.argsort(points, kind="stable")
    # F_reference - F_window just after each point, times the gap to the next point.
    difference = np.cumsum(weights[order])[:-1]
    area = float(np.sum(np.abs(difference) * np.diff(points[order])))
    return area / scale if scale > 0 else area


def bin_means(sums: Floats, counts: npt.NDArray[np.signedinteger[Any]], edges: Floats) -> Floats:
    """Mean value per bin; an empty bin (weight 0, so any point will do) gets an edge."""
    fallback = np.concatenate((edges[:1], edges))
    safe = np.where(counts > 0, counts, 1)
    means: Floats = np.where(counts > 0, sums / safe, fallback)
    return means


def chi_square(reference: Floats, observed: npt.NDArray[np.int64]) -> tuple[float, float]:
    """(statistic, p-value). Categories the reference never saw keep an expected share of
    ``EPSILON``, so a new category weighs heavily instead of dividing by zero."""
    total = float(observed.sum())
    if total == 0:
        return 0.0, 1.0
    used = (reference > 0) | (observed > 0)
    expected = np.maximum(reference[used], EPSILON) * total
    seen = observed[used].astype(np.float64)
    statistic = float(np.sum((seen - expected) ** 2 / expected))
    dof = int(used.sum()) - 1
    if dof < 1:
        return statistic, 1.0
    return statistic, upper_gamma_regularised(dof / 2.0, statistic / 2.0)


def upper_gamma_regularised(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a): the chi-square survival function at 2x with 2a
    degrees of freedom. Series below a + 1, Lentz's continued fraction above (both converge
    fast on their side)."""
    if x <= 0:
        return 1.0
    log_prefix = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        return max(0.0, 1.0 - _lower_series(a, x, log_prefix))
    return min(1.0, _upper_fraction(a, x, log_prefix))


def _lower_series(a: float, x: float, log_prefix: float) -> float:
    term = total = 1.0 / a
    denominator = a
    for _ in range(10_000):
        denominator += 1.0
        term *= x / denominator
        total += term
        if abs(term) < abs(total) * 1e-15:
            break
    return total * math.exp(log_prefix)


def _upper_fraction(a: float, x: float, log_prefix: float) -> float:
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return math.exp(log_prefix) * h
