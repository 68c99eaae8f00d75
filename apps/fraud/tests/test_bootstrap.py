"""Bootstrap intervals over cards: whole cards drawn, the same draws for a seed."""

from __future__ import annotations

import numpy as np

from ..bootstrap import card_draws, intervals
from ..metrics import auc_roc, average_precision


def test_each_drawn_card_brings_all_its_payments_under_a_new_id() -> None:
    card = np.array([5, 9, 5, 7, 9, 9])
    for rows, ids in card_draws(card, replicates=20, seed=1):
        assert len(np.unique(ids)) == 3  # as many cards as the test set has
        for new in np.unique(ids):
            originals = card[rows[ids == new]]
            assert len(set(originals.tolist())) == 1
            assert len(originals) == int((card == originals[0]).sum())


def test_the_same_seed_gives_the_same_intervals_around_the_figures() -> None:
    rng = np.random.default_rng(0)
    card = rng.integers(0, 300, 3000)
    y = (rng.uniform(0, 1, 3000) < 0.05).astype(np.int64)
    score = y * 0.3 + rng.uniform(0, 1, 3000)
    day = rng.integers(0, 7, 3000)
    first = intervals(card_draws(card, 100, 7), day, y, score)
    again = intervals(card_draws(card, 100, 7), day, y, score)
    assert first == again and first.replicates == 100 and first.level == 0.95
    low, high = first.auc
    assert low < auc_roc(y, score) < high
    low, high = first.average_precision
    assert low < average_precision(y, score) < high
    other = intervals(card_draws(card, 100, 8), day, y, score)
    assert other.auc != first.auc  # the seed matters
