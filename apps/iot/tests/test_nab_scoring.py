"""NAB's scoring on its documented cases: the null detector scores 0, the perfect one 100,
the reward curve's values, the probationary period, false positives' costs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ..nab_scoring import (
    PROFILES,
    LabelledSeries,
    probationary_rows,
    raw_score,
    scaled_sigmoid,
    score_corpus,
)

STANDARD = PROFILES["standard"]


def series(
    length: int = 4000, windows: tuple[tuple[int, int], ...] = ((2000, 2399),)
) -> LabelledSeries:
    return LabelledSeries(windows, length)


def test_scaled_sigmoid_values() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)  # 0.9866
    assert scaled_sigmoid(0.0) == pytest.approx(0.0)
    assert scaled_sigmoid(3.5) == -1.0
    assert scaled_sigmoid(1.0) == pytest.approx(2 / (1 + math.exp(5)) - 1)


def test_probationary_period_is_15_percent_at_most_750_rows() -> None:
    assert probationary_rows(1000) == 150
    assert probationary_rows(22_695) == 750


def test_null_detector_scores_zero_and_perfect_scores_100() -> None:
    files = {"a": series(), "b": series(6000, ((3000, 3099), (5000, 5199)))}
    null = {k: (s, np.zeros(s.length)) for k, s in files.items()}
    assert score_corpus(null, STANDARD).score == pytest.approx(0.0)
    perfect = {}
    for k, s in files.items():
        scores = np.zeros(s.length)
        scores[[first for first, _ in s.windows]] = 1.0
        perfect[k] = (s, scores)
    for profile in PROFILES.values():
        assert score_corpus(perfect, profile).score == pytest.approx(100.0)


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    s = series()
    early, late = np.zeros(4000), np.zeros(4000)
    early[[2000, 2100, 2200]] = 1.0
    late[2390] = 1.0
    reward_early = raw_score(s, early, 0.5, STANDARD)
    assert reward_early == pytest.approx(scaled_sigmoid(-1.0))
    assert 0 < raw_score(s, late, 0.5, STANDARD) < 0.1


def test_false_positives_cost_less_right_after_a_window() -> None:
    s = series()
    before, after, far = (np.zeros(4000) for _ in range(3))
    before[1000] = after[2405] = far[3999] = 1.0
    miss = -STANDARD.fn
    assert raw_score(s, before, 0.5, STANDARD) == pytest.approx(miss - STANDARD.fp)
    assert miss - STANDARD.fp < raw_score(s, after, 0.5, STANDARD) < miss
    assert raw_score(s, far, 0.5, STANDARD) < raw_score(s, after, 0.5, STANDARD)


def test_detections_in_the_probationary_period_do_not_count() -> None:
    s = series()
    scores = np.zeros(4000)
    scores[:600] = 1.0  # probation is 600 rows here
    assert raw_score(s, scores, 0.5, STANDARD) == pytest.approx(-STANDARD.fn)


def test_profiles_weigh_misses_and_false_alarms_as_documented() -> None:
    s = series()
    noisy = np.zeros(4000)
    noisy[[700, 900, 1100]] = 1.0
    low_fp = raw_score(s, noisy, 0.5, PROFILES["reward_low_FP_rate"])
    assert low_fp == pytest.approx(-1.0 - 3 * 0.22)
    assert raw_score(s, np.zeros(4000), 0.5, PROFILES["reward_low_FN_rate"]) == -2.0


def test_the_threshold_is_chosen_for_the_whole_corpus() -> None:
    s = series()
    good = np.zeros(4000)
    good[2000] = 0.8
    good[1000] = 0.6  # a false alarm below the window's score: the best threshold skips it
    result = score_corpus({"a": (s, good)}, STANDARD)
    assert 0.6 < result.threshold <= 0.8
    assert result.score == pytest.approx(100.0)


def random_series(rng: np.random.Generator) -> LabelledSeries:
    """A file of random length with up to three disjoint windows."""
    length = int(rng.integers(1, 400))
    windows, end = [], -1
    for start in sorted(rng.choice(length, size=min(3, length), replace=False).tolist()):
        if start > end and rng.random() < 0.7:
            end = int(min(length - 1, start + rng.integers(0, 30)))
            windows.append((start, end))
    return LabelledSeries(tuple(windows), length)


@pytest.mark.parametrize("seed", range(20))
def test_the_corpus_sweep_equals_scoring_each_threshold_alone(seed: int) -> None:
    # score_corpus scores every threshold in one sweep; raw_score scores one, row by row.
    rng = np.random.default_rng(seed)
    corpus = {}
    for name in "abc":
        s = random_series(rng)
        corpus[name] = (s, np.round(rng.random(s.length), 2))
    thresholds = sorted({0.0, 1.5, *np.round(rng.random(15), 2).tolist()})
    for profile in PROFILES.values():
        result = score_corpus(corpus, profile, thresholds)
        each = [sum(raw_score(s, x, t, profile) for s, x in corpus.values()) for t in thresholds]
        assert result.raw == pytest.approx(max(each), abs=1e-9)
        assert result.threshold == thresholds[int(np.argmax(np.round(each, 9)))]
