"""Bootstrap confidence intervals of the test-week metrics, resampling cards.

Payments of one card are not independent (a compromised card's frauds come in a burst, and
Card Precision@100 counts cards), so the unit drawn with replacement is the card: all of
its test payments come along. A card drawn twice counts as two cards (Card Precision@100
ranks them apart). The seed is fixed, so the same scores give the same intervals, and every
row of an evaluation is resampled with the same draws (their intervals are comparable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .metrics import auc_roc, average_precision, card_precision_at_k

REPLICATES = 200
SEED = 7
LEVEL = 0.95


@dataclass(frozen=True)
class Intervals:
    """Percentile intervals at ``level`` of AUC ROC, average precision, Card Precision@100."""

    auc: tuple[float, float]
    average_precision: tuple[float, float]
    card_precision: tuple[float, float]
    replicates: int
    level: float


def card_draws(card: np.ndarray, replicates: int = REPLICATES, seed: int = SEED) -> list[
    tuple[np.ndarray, np.ndarray]
]:  # fmt: skip
    """Each replicate as (row indices, new card ids): cards drawn with replacement."""
    order = np.argsort(card, kind="stable")
    cards, starts, counts = np.unique(card[order], return_index=True, return_counts=True)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(replicates):
        drawn = rng.integers(0, len(cards), len(cards))
        sizes = counts[drawn]
        # Row positions: each drawn card's run in the sorted order, one after the other.
        first = np.repeat(starts[drawn], sizes)
        within = np.arange(sizes.sum()) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        draws.append((order[first + within], np.repeat(np.arange(len(drawn)), sizes)))
    return draws


def intervals(
    draws: list[tuple[np.ndarray, np.ndarray]],
    day: np.ndarray,
    y: np.ndarray,
    score: np.ndarray,
    level: float = LEVEL,
) -> Intervals:
    """The metrics over every replicate in ``draws``, and their central ``level`` range."""
    values = np.array(
        [
            (
                auc_roc(y[rows], score[rows]),
                average_precision(y[rows], score[rows]),
                card_precision_at_k(day[rows], ids, y[rows], score[rows]),
            )
            for rows, ids in draws
        ]
    )
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(values, [tail, 100 - tail], axis=0)
    pairs = [(float(a), float(b)) for a, b in zip(low, high, strict=True)]
    return Intervals(pairs[0], pairs[1], pairs[2], len(draws), level)
