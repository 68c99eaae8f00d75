"""Drift statistics against scipy and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from streamsense.monitoring import stats
from streamsense.monitoring.profile import bin_index, quantile_edges


def test_psi_matches_the_hand_computed_sum() -> None:
    p = np.array([0.5, 0.3, 0.2])
    q = np.array([0.4, 0.4, 0.2])
    hand = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.4 - 0.3) * math.log(0.4 / 0.3)
    assert stats.psi(p, q) == pytest.approx(hand, rel=1e-12)


def test_psi_floors_empty_bins_instead_of_going_infinite() -> None:
    value = stats.psi(np.array([1.0, 0.0]), np.array([0.5, 0.5]))
    assert math.isfinite(value) and value > 1.0


def test_jensen_shannon_distance_matches_scipy_in_bits() -> None:
    rng = np.random.default_rng(1)
    p = stats.frequencies(rng.integers(0, 100, 12))
    q = stats.frequencies(rng.integers(0, 100, 12))
    q[3] = 0.0
    q = q / q.sum()
    assert stats.js_distance(p, q) == pytest.approx(jensenshannon(p, q, base=2), rel=1e-9)
    assert stats.js_distance(p, p) == pytest.approx(0.0, abs=1e-7)


def test_binned_ks_is_within_its_documented_error_of_scipy() -> None:
    rng = np.random.default_rng(2)
    reference = rng.lognormal(3.0, 0.8, 20_000)
    window = rng.lognormal(3.2, 0.8, 5_000)
    edges = quantile_edges(reference, 20)
    p = stats.frequencies(np.bincount(bin_index(reference, edges), minlength=edges.size + 1))
    q = stats.frequencies(np.bincount(bin_index(window, edges), minlength=edges.size + 1))
    exact = scipy_stats.ks_2samp(reference, window).statistic
    binned = stats.ks_binned(p, q)
    assert binned <= exact + 1e-12
    assert exact <= binned + max(p.max(), q.max())


def test_wasserstein_of_bin_masses_at_bin_means_matches_scipy_on_those_atoms() -> None:
    p = np.array([0.2, 0.5, 0.3])
    p_means = np.array([-1.0, 0.4, 2.5])
    q = np.array([0.1, 0.3, 0.6])
    q_means = np.array([-0.5, 0.9, 4.0])
    exact = scipy_stats.wasserstein_distance(p_means, q_means, p, q)
    assert stats.wasserstein_binned(p, p_means, q, q_means, 2.0) == pytest.approx(exact / 2.0)


def test_a_pure_shift_moves_wasserstein_by_the_shift_in_reference_stds() -> None:
    p = np.array([0.5, 0.5])
    means = np.array([0.5, 1.5])
    assert stats.wasserstein_binned(p, means, p, means + 1.0, 0.5) == pytest.approx(2.0)


def _binned(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    index = bin_index(values, edges)
    counts = np.bincount(index, minlength=edges.size + 1)
    sums = np.bincount(index, weights=values, minlength=edges.size + 1)
    return stats.frequencies(counts), stats.bin_means(sums, counts, edges)


def test_binned_wasserstein_is_within_its_documented_error_of_scipy() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(0.0, 1.0, 50_000)
    window = rng.normal(0.3, 1.6, 20_000)  # the CDFs cross
    edges = quantile_edges(reference, 20)
    p, p_means = _binned(reference, edges)
    q, q_means = _binned(window, edges)
    scale = float(reference.std())
    binned = stats.wasserstein_binned(p, p_means, q, q_means, scale)
    exact = scipy_stats.wasserstein_distance(reference, window) / scale
    bound = (_spread(reference, edges) + _spread(window, edges)) / scale
    assert abs(binned - exact) <= bound
    assert binned == pytest.approx(exact, rel=0.05)


def _spread(values: np.ndarray, edges: np.ndarray) -> float:
    """sum_b share_b * mean |x - mean_b| over the values of bin b."""
    index = bin_index(values, edges)
    total = 0.0
    for b in np.unique(index):
        inside = values[index == b]
        total += inside.size / values.size * float(np.abs(inside - inside.mean()).mean())
    return total


def test_chi_square_and_its_p_value_match_scipy() -> None:
    reference = np.array([0.5, 0.3, 0.15, 0.05])
    observed = np.array([230, 170, 70, 30], dtype=np.int64)
    statistic, p_value = stats.chi_square(reference, observed)
    expected = scipy_stats.chisquare(observed, reference * observed.sum())
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value == pytest.approx(expected.pvalue, rel=1e-9)


@pytest.mark.parametrize(("dof", "x"), [(1, 0.5), (1, 30.0), (3, 2.0), (9, 40.0), (50, 48.0)])
def test_upper_gamma_matches_the_chi_square_survival_function(dof: int, x: float) -> None:
    value = stats.upper_gamma_regularised(dof / 2.0, x / 2.0)
    assert value == pytest.approx(scipy_stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300)


def test_a_category_the_reference_never_saw_weighs_heavily() -> None:
    statistic, p_value = stats.chi_square(
        np.array([0.6, 0.4, 0.0]), np.array([60, 30, 10], dtype=np.int64)
    )
    assert statistic > 1000 and p_value < 1e-6
