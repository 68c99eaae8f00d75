"""The handbook's test set (known-compromised cards left out) and Card Precision@k, on
cases small enough to work out by hand."""

from __future__ import annotations

import numpy as np

from .. import fraud_metrics as metrics  # not its names: pytest would collect test_mask
from ..features import LABEL_DELAY_MS
from ..fraud_metrics import DAY_MS, Protocol
from ..metrics import card_precision_at_k

DAY0 = 1_532_476_800_000  # the training week starts here; the test week 14 days later
PROTOCOL = Protocol(DAY0, train_days=7, delay_days=7, test_days=7)
NOON = DAY_MS // 2


def at(day: int) -> int:
    return DAY0 + day * DAY_MS + NOON


def test_the_test_set_leaves_out_cards_known_compromised_by_each_day() -> None:
    # Frauds (card, day paid): 1 in the training week, 3 in the delay (label on day 15),
    # 4 before training started (the handbook does not count it), 2 in the test week.
    frauds = [(1, 2), (3, 8), (4, -3), (2, 14)]
    label_customers = np.array([c for c, _ in frauds])
    label_time = np.array([at(d) + LABEL_DELAY_MS for _, d in frauds])
    label_fraud = np.ones(len(frauds), np.int64)
    payments = [(c, d) for c in (1, 2, 3, 4, 5) for d in (13, 14, 15, 16, 20, 21)]
    customers = np.array([c for c, _ in payments])
    times = np.array([at(d) for _, d in payments])
    keep = metrics.test_mask(times, customers, label_customers, label_fraud, label_time, PROTOCOL)
    kept = {(c, d) for (c, d), k in zip(payments, keep, strict=True) if k}
    expected = {(c, d) for c in (2, 4, 5) for d in (14, 15, 16, 20)} | {(3, 14), (3, 15)}
    assert kept == expected  # day 13 is before the test week, day 21 after it


def test_card_precision_ranks_cards_by_their_best_score_and_drops_cards_found() -> None:
    rows = [
        # day, card, fraud, score
        (0, 10, 1, 0.9),  # found on day 0
        (0, 11, 0, 0.8),
        (0, 11, 0, 0.05),  # the card's best score (0.8) counts
        (0, 12, 1, 0.1),
        (1, 10, 0, 0.99),  # already found: out of day 1's ranking
        (1, 12, 1, 0.7),
        (1, 13, 1, 0.75),
        (1, 14, 0, 0.2),
    ]
    day, card, y, score = (np.array(column) for column in zip(*rows, strict=True))
    # Day 0: top 2 = 10 (fraud), 11 → 1/2. Day 1: top 2 = 13, 12, both frauds → 2/2.
    assert card_precision_at_k(day, card, y, score, k=2) == 0.75
    # Top 1 each day: 10 (fraud), then 13 (fraud).
    assert card_precision_at_k(day, card, y, score, k=1) == 1.0


def test_card_precision_breaks_ties_by_the_lower_card_id() -> None:
    day, card = np.zeros(3, np.int64), np.array([7, 3, 5])
    y, score = np.array([0, 1, 0]), np.array([0.5, 0.5, 0.5])
    assert card_precision_at_k(day, card, y, score, k=1) == 1.0  # card 3 first
    assert card_precision_at_k(day, card, y, score, k=3) == 1 / 3
